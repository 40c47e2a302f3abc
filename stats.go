package mptp

import (
	"fmt"
	"net"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mptp/mptp/internal/mux"
	"github.com/mptp/mptp/internal/session"
)

// Status is what a Client or Server reports to status pages and metrics.
type Status struct {
	SessionsOpen  int
	SessionsTotal uint64 // since the start
	// Refusals counts refused handshakes by reason (a Server's only).
	Refusals map[string]uint64
	// UDPAssociations is the number of UDP associations open.
	UDPAssociations int64
	// Streams counts the connections carried in tunnels.
	Streams StreamStatus
	// Paths are the totals of each path over all sessions, ended and live:
	// by actor tag on a Client (in the order of Client.Paths), by peer IP
	// address on a Server (sorted).
	Paths    []PathStatus
	Sessions []SessionStatus // the live ones, oldest first
}

// StreamStatus counts streams: open now, opened since the start, and
// (a Server's only) refused, by the limit that refused them
// ("max_streams", "stream_rate", "draining") or the target's answer
// ("connection_refused", "host_unreachable", ...).
type StreamStatus struct {
	Open    int64
	Total   uint64
	Refused map[string]uint64
}

// PathStatus is a path's totals and its state now.
type PathStatus struct {
	PathStats
	// State is "up", "standby" (a backup while a primary works), "stale"
	// (silent, skipped) or "down" (no live sub-connection); over several
	// sessions, the best of their states.
	State  string
	RTT    time.Duration // smoothed, the mean over live sub-connections; 0 when down
	Backup bool
}

// SessionStatus is one live session.
type SessionStatus struct {
	ID      uint64 // in the order sessions started, from 1
	Target  string
	Started time.Time
	// Sent and Received count the session's stream bytes: written by this
	// side, and received in order from the other.
	Sent, Received uint64
	Paths          []PathStatus // sorted by name
	// Tunnel is set for a tunnel's session (its Target is "tunnel"), with
	// its streams: how many are open, and the oldest of them (at most
	// maxStreamList).
	Tunnel      bool
	StreamsOpen int
	Streams     []StreamInfo
}

// StreamInfo is one open stream of a tunnel.
type StreamInfo struct {
	ID     uint32
	Target string
	// Sent and Received count the stream's bytes.
	Sent, Received uint64
}

// maxStreamList bounds the streams Status lists per tunnel.
const maxStreamList = 100

// maxPeerStats bounds the peers a Server keeps totals for; the paths of
// further peers are counted as one, named "other".
const maxPeerStats = 256

// observer counts sessions for Status. Its zero value is ready to use.
type observer struct {
	// udp is the number of UDP associations open, for the UDP work to move.
	udp atomic.Int64
	// streams open and opened in all.
	streams      atomic.Int64
	streamsTotal atomic.Uint64

	mu       sync.Mutex
	nextID   uint64
	live     map[*session.Session]uint64 // ID of each live v2 session
	v1       int                         // live v1 sessions (no path detail)
	ended    map[string]*PathStats       // totals of ended sessions' paths, by key
	refusals map[string]uint64
	// streamRefusals counts streams refused at a limit, by its name.
	streamRefusals map[string]uint64
	// tunnels maps a tunnel's session to the tunnel, for its streams.
	tunnels map[*session.Session]*mux.Tunnel
}

// tunnel records that sess carries t, until sess ends.
func (o *observer) tunnel(sess *session.Session, t *mux.Tunnel) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if _, live := o.live[sess]; !live {
		return // it ended already
	}
	if o.tunnels == nil {
		o.tunnels = map[*session.Session]*mux.Tunnel{}
	}
	o.tunnels[sess] = t
}

func (o *observer) streamBegin() {
	o.streams.Add(1)
	o.streamsTotal.Add(1)
}

func (o *observer) streamEnd() { o.streams.Add(-1) }

func (o *observer) streamRefused(limit string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.streamRefusals == nil {
		o.streamRefusals = map[string]uint64{}
	}
	o.streamRefusals[limit]++
}

func (o *observer) begin(s *session.Session) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.live == nil {
		o.live = map[*session.Session]uint64{}
	}
	o.nextID++
	o.live[s] = o.nextID
}

// end moves an ended session's path totals under key(path name).
func (o *observer) end(s *session.Session, key func(string) string) {
	info := s.Info()
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.live, s)
	delete(o.tunnels, s)
	if o.ended == nil {
		o.ended = map[string]*PathStats{}
	}
	for _, p := range info.Paths {
		k := key(p.Name)
		ps := o.ended[k]
		if ps == nil {
			if len(o.ended) >= maxPeerStats {
				k = "other"
				ps = o.ended[k]
			}
			if ps == nil {
				ps = &PathStats{Name: k}
				o.ended[k] = ps
			}
		}
		ps.add(p.Counters)
	}
}

// beginV1 and endV1 count a Leaf v1 session, which has no path detail.
func (o *observer) beginV1() {
	o.mu.Lock()
	o.nextID++
	o.v1++
	o.mu.Unlock()
}

func (o *observer) endV1() {
	o.mu.Lock()
	o.v1--
	o.mu.Unlock()
}

// refused counts a refused handshake by the status sent, or reason when
// none was.
func (o *observer) refused(reason string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.refusals == nil {
		o.refusals = map[string]uint64{}
	}
	o.refusals[reason]++
}

// status builds a Status; key maps a path name to the name it is counted
// under in Status.Paths.
func (o *observer) status(key func(string) string) Status {
	type liveSession struct {
		s  *session.Session
		id uint64
		t  *mux.Tunnel
	}
	o.mu.Lock()
	st := Status{SessionsOpen: len(o.live) + o.v1, SessionsTotal: o.nextID, UDPAssociations: o.udp.Load(),
		Refusals: map[string]uint64{},
		Streams:  StreamStatus{Open: o.streams.Load(), Total: o.streamsTotal.Load(), Refused: map[string]uint64{}}}
	for r, n := range o.refusals {
		st.Refusals[r] = n
	}
	for r, n := range o.streamRefusals {
		st.Streams.Refused[r] = n
	}
	paths := map[string]*PathStatus{}
	for k, ps := range o.ended {
		paths[k] = &PathStatus{PathStats: *ps, State: session.StateDown}
	}
	live := make([]liveSession, 0, len(o.live))
	for s, id := range o.live {
		live = append(live, liveSession{s, id, o.tunnels[s]})
	}
	o.mu.Unlock()

	sort.Slice(live, func(i, j int) bool { return live[i].id < live[j].id })
	rtts := map[string][]time.Duration{}
	for _, l := range live {
		info := l.s.Info()
		ss := SessionStatus{ID: l.id, Target: l.s.RemoteAddr().String(), Started: info.Started,
			Sent: info.Written, Received: info.Read}
		if l.t != nil {
			ss.Tunnel = true
			ss.StreamsOpen = l.t.Stats().Open
			for _, si := range l.t.StreamList(maxStreamList) {
				ss.Streams = append(ss.Streams, StreamInfo(si))
			}
		}
		for _, p := range info.Paths {
			one := pathStatus(p)
			ss.Paths = append(ss.Paths, one)
			k := key(p.Name)
			ps := paths[k]
			if ps == nil {
				ps = &PathStatus{PathStats: PathStats{Name: k}, State: session.StateDown}
				paths[k] = ps
			}
			ps.add(p.Counters)
			ps.State = better(ps.State, one.State)
			ps.Backup = ps.Backup || p.Backup
			if p.Live {
				rtts[k] = append(rtts[k], p.SRTT)
			}
		}
		st.Sessions = append(st.Sessions, ss)
	}
	for k, list := range rtts {
		var sum time.Duration
		for _, d := range list {
			sum += d
		}
		paths[k].RTT = sum / time.Duration(len(list))
	}
	for _, ps := range paths {
		st.Paths = append(st.Paths, *ps)
	}
	sort.Slice(st.Paths, func(i, j int) bool { return st.Paths[i].Name < st.Paths[j].Name })
	return st
}

func pathStatus(p session.PathInfo) PathStatus {
	ps := PathStatus{PathStats: PathStats{Name: p.Name}, State: p.State, Backup: p.Backup}
	ps.add(p.Counters)
	if p.Live {
		ps.RTT = p.SRTT
	}
	return ps
}

// stateRank orders states from worst to best.
var stateRank = []string{session.StateDown, session.StateStale, session.StateStandby, session.StateUp}

func better(a, b string) string {
	if slices.Index(stateRank, b) > slices.Index(stateRank, a) {
		return b
	}
	return a
}

// Status reports the client's sessions and paths.
func (c *Client) Status() Status {
	st := c.obs.status(func(name string) string { return name })
	// Every configured path is listed, in the configured order, even
	// before it carried anything.
	byName := map[string]PathStatus{}
	for _, ps := range st.Paths {
		byName[ps.Name] = ps
	}
	st.Paths = st.Paths[:0]
	for _, p := range c.Paths {
		ps, ok := byName[p.Name]
		if !ok {
			ps = PathStatus{PathStats: PathStats{Name: p.Name}, State: session.StateDown}
		}
		ps.Backup = p.Backup
		st.Paths = append(st.Paths, ps)
		delete(byName, p.Name)
	}
	for _, ps := range byName {
		st.Paths = append(st.Paths, ps)
	}
	return st
}

// Status reports the server's sessions, its paths by peer IP address and
// the handshakes it refused.
func (s *Server) Status() Status {
	return s.obs.status(peerHost)
}

// peerHost is the IP address of a server-side path's name (its peer's
// address): a client's sub-connections come from new ports each time.
func peerHost(name string) string {
	if host, _, err := net.SplitHostPort(name); err == nil {
		return host
	}
	return name
}

// sessionStarted and sessionEnded log a client session, in the shape of
// the server's lines; dial.run counts it in Status before it returns it.
func (c *Client) sessionStarted(s *session.Session) {
	var up []string
	for _, p := range s.Info().Paths {
		if p.Live {
			up = append(up, p.Name)
		}
	}
	c.logger().Info("session start", "target", s.RemoteAddr().String(), "paths", up)
}

func (c *Client) sessionEnded(s *session.Session) {
	c.obs.end(s, func(name string) string { return name })
	info := s.Info()
	c.logger().Info("session end", "target", s.RemoteAddr().String(), "up", info.Written, "down", info.Read,
		"paths", pathSummary(info), "duration", time.Since(info.Started).Round(time.Millisecond),
		"error", errOrNil(s.Err()))
}

// pathSummary lists what each path of a session carried, for its
// "session end" line: name(sent=N,rcvd=N).
func pathSummary(info session.Info) []string {
	out := make([]string, 0, len(info.Paths))
	for _, p := range info.Paths {
		out = append(out, fmt.Sprintf("%s(sent=%d,rcvd=%d)", p.Name, p.BytesSent, p.BytesReceived))
	}
	return out
}
