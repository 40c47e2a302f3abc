package mptp

import (
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"github.com/mptp/mptp/internal/failure"
	"github.com/mptp/mptp/internal/leaf"
	"github.com/mptp/mptp/internal/session"
	"github.com/mptp/mptp/internal/wire"
)

// Path is one way to reach the server: an actor.
type Path struct {
	// Name identifies the path in logs and stats (the actor's tag).
	Name string
	// Dial opens a sub-connection to address; nil means a plain TCP dial.
	Dial DialFunc
	// Backup paths carry data only while no other path can.
	Backup bool
}

// ext is what a path's handshake says about it.
func (p *Path) ext() []byte {
	if p.Backup {
		return wire.AppendExt(nil, wire.ExtPathFlags, []byte{wire.PathBackup})
	}
	return nil
}

// Client dials MPTP sessions.
type Client struct {
	// Server is the MPTP server's "host:port".
	Server string
	// Paths are dialed in parallel for every session; at least one.
	Paths []Path
	// Version is the protocol: 2 (default) or 1 to talk to a Leaf server.
	Version int
	Options
	Logger *slog.Logger

	mu    sync.Mutex
	live  map[*session.Session]struct{}
	ended map[string]*PathStats
	obs   observer // for Status (stats.go)

	// The tunnel (client_tunnel.go), guarded by mu.
	tun     *clientTunnel
	running map[*clientTunnel]struct{} // every runTunnel still going
	closed  bool
	warm    bool // Start or Warm was called: keep a tunnel open
	// noTunnels is set once the server refused a tunnel as an unknown
	// command: it predates them, and gets a session per connection.
	noTunnels bool
	ctx       context.Context // canceled by Close
	cancel    context.CancelFunc
	tunnels   sync.WaitGroup // runTunnel goroutines
}

// PathStats are one path's totals over a Client's sessions.
type PathStats struct {
	Name          string
	BytesSent     uint64 // payload bytes, retransmissions included
	BytesReceived uint64
	Retransmitted uint64
	Joins, Fails  uint64
	Stalls        uint64 // times a path of this name went silent (stale)
	// DatagramsSent and DatagramsReceived count UDP datagram frames,
	// copies included.
	DatagramsSent, DatagramsReceived uint64
}

func (p *PathStats) add(c session.Counters) {
	p.BytesSent += c.BytesSent
	p.BytesReceived += c.BytesReceived
	p.Retransmitted += c.Retransmitted
	p.Joins += c.Joins
	p.Fails += c.Fails
	p.Stalls += c.Stalls
	p.DatagramsSent += c.DatagramsSent
	p.DatagramsReceived += c.DatagramsReceived
}

// Stats returns each path's totals, in the order of Paths.
func (c *Client) Stats() []PathStats {
	c.mu.Lock()
	byName := map[string]*PathStats{}
	for name, ps := range c.ended {
		cp := *ps
		byName[name] = &cp
	}
	live := make([]*session.Session, 0, len(c.live))
	for s := range c.live {
		live = append(live, s)
	}
	c.mu.Unlock()
	for _, s := range live {
		for _, ctr := range s.Stats() {
			ps := byName[ctr.Name]
			if ps == nil {
				ps = &PathStats{Name: ctr.Name}
				byName[ctr.Name] = ps
			}
			ps.add(ctr)
		}
	}
	out := make([]PathStats, 0, len(c.Paths))
	for _, p := range c.Paths {
		ps := byName[p.Name]
		if ps == nil {
			ps = &PathStats{Name: p.Name}
		}
		out = append(out, *ps)
	}
	return out
}

// track counts a session's paths in Stats while it lives and after.
func (c *Client) track(s *session.Session) {
	c.mu.Lock()
	if c.live == nil {
		c.live, c.ended = map[*session.Session]struct{}{}, map[string]*PathStats{}
	}
	c.live[s] = struct{}{}
	c.mu.Unlock()
	c.sessionStarted(s)
	<-s.Done()
	c.sessionEnded(s)
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.live, s)
	for _, ctr := range s.Stats() {
		ps := c.ended[ctr.Name]
		if ps == nil {
			ps = &PathStats{Name: ctr.Name}
			c.ended[ctr.Name] = ps
		}
		ps.add(ctr)
	}
}

func (c *Client) logger() *slog.Logger {
	if c.Logger != nil {
		return c.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// Dial is DialContext with context.Background.
func (c *Client) Dial(network, target string) (net.Conn, error) {
	return c.DialContext(context.Background(), network, target)
}

// DialContext opens a stream to target ("host:port") in the client's
// tunnel, opening the tunnel first if it is not up (see Start). It returns
// once the server has connected the target. A refusal by the server is a
// *failure.Error carrying its reason. Safe for concurrent use.
//
// With Version 1 (a Leaf server), every connection is a session of its
// own, dialed over every path.
func (c *Client) DialContext(ctx context.Context, network, target string) (net.Conn, error) {
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return nil, fmt.Errorf("mptp: network %q not supported", network)
	}
	if c.Version == 1 {
		return c.open(ctx, wire.CmdConnect, target)
	}
	return c.openStream(ctx, wire.CmdConnect, target)
}

// open starts a session of cmd (CONNECT or UDP) over the paths.
func (c *Client) open(ctx context.Context, cmd byte, target string) (net.Conn, error) {
	if len(c.Paths) == 0 {
		return nil, errors.New("mptp: client has no paths")
	}
	cid := newCID()
	if c.Version == 1 && c.Password != "" {
		return nil, errors.New("mptp: Leaf v1 has no authentication: a password needs version 2")
	}
	if c.Version == 1 {
		return c.dialV1(ctx, cid, cmd, target)
	}
	return c.newDial(cid, cmd, target).run(ctx)
}

func (c *Client) newDial(cid [16]byte, cmd byte, target string) *dial {
	log := c.logger()
	if cmd != wire.CmdMux {
		log = log.With("target", target)
	}
	return &dial{c: c, cid: cid, cmd: cmd, target: target, log: log,
		opened: make(chan struct{}), stop: make(chan struct{})}
}

// newCID returns a random connection ID shaped as a UUID v4, as Leaf's.
func newCID() [16]byte {
	var cid [16]byte
	crand.Read(cid[:])
	cid[6] = cid[6]&0x0f | 0x40
	cid[8] = cid[8]&0x3f | 0x80
	return cid
}

// dial is one session being set up and kept supplied with paths.
type dial struct {
	c      *Client
	cid    [16]byte
	cmd    byte
	target string
	log    *slog.Logger

	mu      sync.Mutex
	token   []byte        // from the OPEN's reply: JOINs show it
	attempt chan struct{} // an OPEN in progress; closed when it ends
	failed  int           // paths whose first attempt failed before the session opened
	trying  int           // primary (not backup) paths still on their first attempt
	tried   chan struct{} // closed and replaced whenever trying drops
	sess    *session.Session
	openErr error
	opened  chan struct{} // closed once sess or openErr is set
	stop    chan struct{} // closed when opening failed or the session ended
	keeping sync.WaitGroup
}

func (d *dial) run(ctx context.Context) (net.Conn, error) {
	d.tried = make(chan struct{})
	for _, p := range d.c.Paths {
		if !p.Backup {
			d.trying++
		}
	}
	for i := range d.c.Paths {
		d.keeping.Go(func() { d.keep(ctx, d.c.Paths[i]) })
	}
	select {
	case <-d.opened:
	case <-ctx.Done():
		d.finish(nil, ctx.Err())
		<-d.opened
	}
	if d.openErr != nil {
		return nil, d.openErr
	}
	// Counted now, so that a tunnel's streams can be listed with it at
	// once (stats.go).
	d.c.obs.begin(d.sess)
	// Paths stop redialing once the session is over.
	go func() { // ends with the session
		d.c.track(d.sess)
		close(d.stop)
	}()
	return d.sess, nil
}

// finish records the outcome of opening; the first call wins and it
// reports whether this one did.
func (d *dial) finish(s *session.Session, err error) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	select {
	case <-d.opened:
		return false
	default:
	}
	d.sess, d.openErr = s, err
	close(d.opened)
	if s == nil {
		close(d.stop)
	}
	return true
}

// keep dials one path, joins it to the session, and dials again with
// backoff whenever it dies, for as long as the session lives.
func (d *dial) keep(ctx context.Context, p Path) {
	backoff := 100 * time.Millisecond
	first := true
	for {
		var h session.Path
		conn, err := d.connect(ctx, p)
		if err == nil {
			h, err = d.attach(conn, p)
		}
		if first && !p.Backup {
			d.primaryTried()
		}
		if err == nil {
			backoff = 100 * time.Millisecond
			err = watch(conn, h)
			if err == nil {
				return // the session finished cleanly
			}
		}
		if first {
			first = false
			if d.firstFailed(err) {
				return
			}
		}
		var refused *serverRefusal
		if errors.As(err, &refused) || errors.Is(err, errSessionOver) {
			return
		}
		d.log.Info("path down", "path", p.Name, "reason", err, "retry_in", backoff)
		// Jitter keeps paths that died together from redialing together.
		wait := backoff/2 + rand.N(backoff/2+1)
		backoff = min(2*backoff, 2*time.Second)
		select {
		case <-time.After(wait):
		case <-d.stop:
			return
		}
	}
}

var errSessionOver = errors.New("mptp: session is over")

// serverRefusal is the server's answer that the session cannot be: it ends
// the dial. A failure.Error from an actor (a relay refusing) ends only that
// path's attempt.
type serverRefusal struct{ err *failure.Error }

func (r *serverRefusal) Error() string { return "mptp server: " + r.err.Error() }
func (r *serverRefusal) Unwrap() error { return r.err }

// firstFailed handles a path whose first attempt failed before the
// session opened: when every path has failed, the dial fails. It reports
// whether the path should give up.
func (d *dial) firstFailed(err error) bool {
	d.mu.Lock()
	opened := d.sess != nil
	select {
	case <-d.opened:
		if d.sess == nil {
			d.mu.Unlock()
			return true
		}
	default:
	}
	if opened {
		d.mu.Unlock()
		return false
	}
	d.failed++
	all := d.failed == len(d.c.Paths)
	d.mu.Unlock()
	var refused *serverRefusal
	if all || errors.As(err, &refused) {
		d.finish(nil, err)
		return true
	}
	return false
}

func (d *dial) connect(ctx context.Context, p Path) (net.Conn, error) {
	dialFn := p.Dial
	if dialFn == nil {
		var nd net.Dialer
		dialFn = nd.DialContext
	}
	d.mu.Lock()
	opened := d.sess != nil
	d.mu.Unlock()
	if opened {
		// Before the session opens, the caller's context bounds the dial;
		// after, only the session's life does.
		ctx = context.WithoutCancel(ctx)
	}
	ctx, cancel := context.WithTimeout(ctx, d.c.handshakeTimeout())
	defer cancel()
	go func() {
		select {
		case <-d.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	conn, err := dialFn(ctx, "tcp", d.c.Server)
	if err != nil {
		return nil, fmt.Errorf("path %s: %w", p.Name, err)
	}
	return d.c.secure(conn, p)
}

// primaryTried records that a primary path's first attempt ended.
func (d *dial) primaryTried() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.trying--
	close(d.tried)
	d.tried = make(chan struct{})
}

// backupHold is the longest a backup path holds back the OPEN for a
// primary path still connecting.
const backupHold = time.Second

// attach performs the handshake on conn: OPEN if no session exists and no
// other path is opening one, JOIN otherwise (after the OPEN succeeded).
// A backup path leaves the OPEN to a primary path still on its first
// attempt, for up to backupHold: the path that opens carries the first
// data, and a backup should carry none while a primary works.
func (d *dial) attach(conn net.Conn, p Path) (session.Path, error) {
	var hold <-chan time.Time
	held := !p.Backup
	for {
		d.mu.Lock()
		sess, open := d.sess, d.sess == nil && d.attempt == nil
		attempt, tried := d.attempt, d.tried
		if open && !held && d.trying > 0 {
			d.mu.Unlock()
			if hold == nil {
				hold = time.After(min(backupHold, d.c.handshakeTimeout()))
			}
			select {
			case <-tried:
			case <-d.opened:
			case <-hold:
				held = true
			case <-d.stop:
				conn.Close()
				return session.Path{}, errSessionOver
			}
			continue
		}
		select {
		case <-d.opened:
			if sess == nil { // the dial failed for good
				d.mu.Unlock()
				conn.Close()
				return session.Path{}, errSessionOver
			}
		default:
		}
		if open {
			attempt = make(chan struct{})
			d.attempt = attempt
		}
		d.mu.Unlock()
		if sess != nil {
			return d.join(conn, p, sess)
		}
		if !open {
			// Another path is opening: join once it has, or take over if
			// its attempt fails.
			select {
			case <-d.opened:
			case <-attempt:
			case <-d.stop:
				conn.Close()
				return session.Path{}, errSessionOver
			}
			continue
		}
		h, err := d.open(conn, p)
		d.mu.Lock()
		if err != nil && d.sess == nil {
			// The server may have the OPEN: the next one needs a new CID.
			d.cid = newCID()
		}
		d.attempt = nil
		close(attempt)
		d.mu.Unlock()
		return h, err
	}
}

func (d *dial) open(conn net.Conn, p Path) (session.Path, error) {
	cfg := d.c.sessionConfig()
	cfg.Logger = d.log
	cfg.LocalAddr, cfg.RemoteAddr = Addr("client"), Addr(d.target)
	if d.cmd == wire.CmdMux {
		cfg.RemoteAddr = Addr("tunnel")
	}
	if cfg.RecvWindow <= 0 {
		cfg.RecvWindow = session.DefaultRecvWindow
	}
	ext := p.ext()
	if (d.cmd == wire.CmdUDP || d.cmd == wire.CmdMux) && d.c.DatagramCopies {
		ext = wire.AppendExt(ext, wire.ExtSessionFlags, []byte{wire.SessionDatagramCopies})
	}
	req := &wire.Request{Kind: wire.KindOpen, CID: d.cid, Cmd: d.cmd, Target: d.target, Window: uint32(cfg.RecvWindow), Ext: ext}
	reply, _, err := d.handshake(conn, req)
	if err != nil {
		return session.Path{}, fmt.Errorf("path %s: %w", p.Name, err)
	}
	if reply.Status != wire.StatusOK {
		conn.Close()
		err := &serverRefusal{&failure.Error{Reason: failure.Reason(reply.Status), Msg: reply.Msg}}
		d.finish(nil, err)
		return session.Path{}, err
	}
	cfg.PeerWindow = reply.Window
	token, err := wire.Ext(reply.Ext, wire.ExtJoinToken)
	if err != nil {
		conn.Close()
		return session.Path{}, fmt.Errorf("path %s: %w", p.Name, err)
	}
	d.mu.Lock()
	d.token = token
	d.mu.Unlock()
	sess := session.New(cfg)
	h, err := sess.AddPath(conn, session.PathConfig{Name: p.Name, Backup: p.Backup})
	if err != nil {
		conn.Close()
		return h, err
	}
	if !d.finish(sess, nil) {
		// The caller gave up while this path was opening.
		sess.Reset(wire.RstClosed, "dial canceled")
		return h, errSessionOver
	}
	d.log.Debug("session open", "path", p.Name)
	return h, nil
}

func (d *dial) join(conn net.Conn, p Path, sess *session.Session) (session.Path, error) {
	d.mu.Lock()
	ext := p.ext()
	if d.token != nil {
		ext = wire.AppendExt(ext, wire.ExtJoinToken, d.token)
	}
	d.mu.Unlock()
	req := &wire.Request{Kind: wire.KindJoin, CID: d.cid, Window: sess.Window(), Ext: ext}
	reply, rtt, err := d.handshake(conn, req)
	if err != nil {
		return session.Path{}, fmt.Errorf("path %s: %w", p.Name, err)
	}
	if reply.Status != wire.StatusOK {
		conn.Close()
		if reply.Status == wire.StatusUnknownSession {
			sess.Forgotten()
			return session.Path{}, errSessionOver
		}
		return session.Path{}, fmt.Errorf("path %s: join refused: %s %s", p.Name, failure.Reason(reply.Status), reply.Msg)
	}
	h, err := sess.AddPath(conn, session.PathConfig{Name: p.Name, RTT: rtt, Backup: p.Backup})
	if err != nil {
		conn.Close()
		return h, errSessionOver
	}
	return h, nil
}

// handshake writes req and reads the reply, within the handshake timeout.
func (d *dial) handshake(conn net.Conn, req *wire.Request) (*wire.Reply, time.Duration, error) {
	conn.SetDeadline(time.Now().Add(d.c.handshakeTimeout()))
	b, err := wire.AppendRequest(nil, req)
	if err != nil {
		conn.Close()
		return nil, 0, err
	}
	start := time.Now()
	if _, err := conn.Write(b); err != nil {
		conn.Close()
		return nil, 0, err
	}
	reply, err := wire.ReadReply(conn)
	if err != nil {
		conn.Close()
		return nil, 0, fmt.Errorf("handshake: %w", err)
	}
	conn.SetDeadline(time.Time{})
	return reply, time.Since(start), nil
}

// dialV1 opens a Leaf v1 session: every path sends the same handshake and
// the server never answers, so the session is usable at once.
func (c *Client) dialV1(ctx context.Context, cid [16]byte, cmd byte, target string) (net.Conn, error) {
	// v1's CMD values are v2's: 0x01 CONNECT, 0x03 UDP.
	hs, err := leaf.AppendHandshake(nil, leaf.Handshake{CID: cid, Cmd: cmd, Target: target})
	if err != nil {
		return nil, err
	}
	conn := leaf.NewConn(leaf.Options{Logger: c.logger(), LocalAddr: Addr("client"), RemoteAddr: Addr(target)})
	type result struct {
		sub net.Conn
		err error
	}
	results := make(chan result, len(c.Paths))
	for _, p := range c.Paths {
		go func() {
			dialFn := p.Dial
			if dialFn == nil {
				var nd net.Dialer
				dialFn = nd.DialContext
			}
			sub, err := dialFn(ctx, "tcp", c.Server)
			if err == nil {
				if _, err = sub.Write(hs); err != nil {
					sub.Close()
				}
			}
			results <- result{sub, err}
		}()
	}
	var firstErr error
	added := 0
	for range c.Paths {
		r := <-results
		if r.err != nil {
			c.logger().Info("path down", "path", "v1", "reason", r.err)
			firstErr = cmpErr(firstErr, r.err)
			continue
		}
		conn.AddPath(r.sub)
		added++
	}
	if added == 0 {
		conn.Close()
		return nil, firstErr
	}
	return conn, nil
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}
