package mptp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"

	"github.com/mptp/mptp/internal/dial"
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
	// Retransmitted counts payload sent again: Rescued (copies of chunks
	// another path still held) and re-sends after a path failed or stalled.
	Retransmitted, Rescued uint64
	// Duplicates counts payload received twice (the second copy dropped).
	Duplicates   uint64
	Joins, Fails uint64
	Stalls       uint64 // times a path of this name went silent (stale)
	// DatagramsSent and DatagramsReceived count UDP datagram frames,
	// copies included.
	DatagramsSent, DatagramsReceived uint64
}

func (p *PathStats) add(c session.Counters) {
	p.BytesSent += c.BytesSent
	p.BytesReceived += c.BytesReceived
	p.Retransmitted += c.Retransmitted
	p.Rescued += c.Rescued
	p.Duplicates += c.Duplicates
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
	if c.Version == 1 {
		if c.Password != "" {
			return nil, errors.New("mptp: Leaf v1 has no authentication: a password needs version 2")
		}
		return dial.V1(ctx, c.Server, c.dialPaths(), cmd, target,
			leaf.Options{Logger: c.logger(), LocalAddr: Addr("client"), RemoteAddr: Addr(target)})
	}
	d := c.newDial(cmd, target)
	sess, err := d.Run(ctx)
	if err != nil {
		return nil, err
	}
	c.begin(sess)
	return sess, nil
}

// newDial prepares the dial of a session of cmd over the paths.
func (c *Client) newDial(cmd byte, target string) *dial.Dial {
	cfg := c.sessionConfig()
	cfg.LocalAddr, cfg.RemoteAddr = Addr("client"), Addr(target)
	log := c.logger()
	if cmd == wire.CmdMux {
		cfg.RemoteAddr = Addr("tunnel")
	} else {
		log = log.With("target", target)
	}
	return dial.New(dial.Config{Server: c.Server, Paths: c.dialPaths(), Cmd: cmd, Target: target,
		Password: c.Password, Session: cfg, HandshakeTimeout: c.handshakeTimeout(), Logger: log})
}

// begin counts an opened session in Stats and Status until it ends; the
// channel is closed once its end is counted and logged.
func (c *Client) begin(sess *session.Session) <-chan struct{} {
	// Counted now, so that a tunnel's streams can be listed with it at
	// once (stats.go).
	c.obs.begin(sess)
	tracked := make(chan struct{})
	go func() { // ends with the session
		c.track(sess)
		close(tracked)
	}()
	return tracked
}

func (c *Client) dialPaths() []dial.Path {
	ps := make([]dial.Path, len(c.Paths))
	for i, p := range c.Paths {
		ps[i] = dial.Path{Name: p.Name, Dial: dial.Func(p.Dial), Backup: p.Backup}
	}
	return ps
}
