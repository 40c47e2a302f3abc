package mptp

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/mptp/mptp/internal/dial"
	"github.com/mptp/mptp/internal/failure"
	"github.com/mptp/mptp/internal/mux"
	"github.com/mptp/mptp/internal/session"
	"github.com/mptp/mptp/internal/wire"
)

// tunnelTarget is what a tunnel's OPEN names: a tunnel has no target of
// its own, its streams do.
const tunnelTarget = "0.0.0.0:0"

// ErrClientClosed is returned by a Client's dials after Close.
var ErrClientClosed = errors.New("mptp: client closed")

// clientTunnel is the client's one tunnel: a session over every path that
// carries the streams of all its connections.
type clientTunnel struct {
	ready chan struct{} // closed once t or err is set
	t     *mux.Tunnel
	sess  *session.Session
	err   error
}

// sessionLinger bounds how long a tunnel's session may take to finish
// cleanly after the tunnel ended, before it is cut.
const sessionLinger = 5 * time.Second

// endSession lets a tunnel's session finish, within sessionLinger if it
// has a path to finish on, then cuts it, and waits until it has ended.
func endSession(sess *session.Session) {
	if sess.PathCount() > 0 {
		select {
		case <-sess.Done():
			return
		case <-time.After(sessionLinger):
		}
	}
	sess.Reset(wire.RstClosed, "tunnel closed")
	<-sess.Done()
}

// Start opens the client's tunnel now and waits until it is up (its first
// path connected and authenticated; the others join as they connect), so
// that the first connection finds it warm. From then on the client keeps a tunnel open, opening a
// new one whenever one ends. Without Start, the first Dial opens the
// tunnel, and an ended one is replaced at the next Dial. With Version 1
// there is no tunnel and Start does nothing.
func (c *Client) Start(ctx context.Context) error {
	if c.Version == 1 {
		return nil
	}
	c.mu.Lock()
	c.warm = true
	c.mu.Unlock()
	_, err := c.tunnel(ctx)
	return err
}

// Warm is Start without the wait: the tunnel opens in the background, and
// is opened again rewarmDelay after a failure.
func (c *Client) Warm() {
	if c.Version == 1 {
		return
	}
	c.mu.Lock()
	c.warm = true
	c.current()
	c.mu.Unlock()
}

// Close ends the client's tunnel and every stream in it, and waits for
// its goroutines. Dials after Close fail with ErrClientClosed.
func (c *Client) Close() error {
	c.mu.Lock()
	c.closed = true
	// The current tunnel, and those replaced (after a GOAWAY) whose
	// streams still run.
	all := make([]*clientTunnel, 0, len(c.running))
	for ct := range c.running {
		all = append(all, ct)
	}
	if c.cancel != nil {
		c.cancel()
	}
	c.mu.Unlock()
	for _, ct := range all {
		<-ct.ready
		if ct.t != nil {
			ct.t.Close()
		}
	}
	c.tunnels.Wait()
	return nil
}

// current returns the tunnel being opened or open, starting one if there
// is none. Called with c.mu held.
func (c *Client) current() *clientTunnel {
	if c.tun == nil {
		if c.ctx == nil {
			c.ctx, c.cancel = context.WithCancel(context.Background())
		}
		ct := &clientTunnel{ready: make(chan struct{})}
		c.tun = ct
		if c.running == nil {
			c.running = map[*clientTunnel]struct{}{}
		}
		c.running[ct] = struct{}{}
		c.tunnels.Go(func() {
			c.runTunnel(ct)
			c.mu.Lock()
			delete(c.running, ct)
			c.mu.Unlock()
		})
	}
	return c.tun
}

// tunnel returns the live tunnel, opening one if there is none.
func (c *Client) tunnel(ctx context.Context) (*mux.Tunnel, error) {
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return nil, ErrClientClosed
		}
		ct := c.current()
		c.mu.Unlock()
		select {
		case <-ct.ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if ct.err != nil {
			return nil, ct.err
		}
		if ct.t.Usable() {
			return ct.t, nil
		}
		// Ended, or the server takes no more streams on it: the next
		// round opens a new one while this one's streams finish.
		c.forget(ct)
	}
}

// forget drops ct as the client's tunnel, if it still is.
func (c *Client) forget(ct *clientTunnel) {
	c.mu.Lock()
	if c.tun == ct {
		c.tun = nil
	}
	c.mu.Unlock()
}

// runTunnel opens a tunnel's session over the paths, runs the tunnel over
// it, and waits until both have ended and the paths' goroutines are gone.
func (c *Client) runTunnel(ct *clientTunnel) {
	c.mu.Lock()
	ctx := c.ctx
	c.mu.Unlock()
	d := c.newDial(wire.CmdMux, tunnelTarget)
	log := c.logger()
	sess, err := d.Run(ctx)
	if err != nil {
		d.Wait()
		var refused *dial.Refusal
		if errors.As(err, &refused) && refused.Err.Reason == failure.CmdUnsupported {
			c.mu.Lock()
			c.noTunnels, c.warm = true, false
			c.mu.Unlock()
			log.Warn("the server has no tunnels (an older mptp): one session per connection")
		} else {
			log.Info("tunnel failed", "reason", err)
		}
		ct.err = err
		c.forget(ct)
		close(ct.ready)
		c.rewarm(ctx)
		return
	}
	tracked := c.begin(sess)
	ct.sess = sess
	ct.t = mux.New(sess, mux.Config{Client: true, RTT: sess.RTT, Datagrams: sess, Logger: log, LocalAddr: Addr("client"),
		Opened: func(_ *mux.Stream, remote bool) {
			if !remote {
				c.obs.streamBegin()
			}
		},
		Ended: func(_ *mux.Stream, remote bool) {
			if !remote {
				c.obs.streamEnd()
			}
		}})
	c.obs.tunnel(sess, ct.t)
	close(ct.ready)
	log.Info("tunnel open")
	<-ct.t.Done()
	c.forget(ct)
	endSession(sess)
	d.Wait()
	<-tracked
	log.Info("tunnel closed", "reason", ct.t.Err())
	c.rewarm(ctx)
}

// rewarmDelay is how long a warm client waits before it opens a tunnel
// again after one ended or failed to open.
const rewarmDelay = 2 * time.Second

// rewarm opens a new tunnel after rewarmDelay if the client keeps one warm
// and has no other. Called by runTunnel as it ends.
func (c *Client) rewarm(ctx context.Context) {
	c.mu.Lock()
	warm := c.warm
	c.mu.Unlock()
	if !warm {
		return
	}
	select {
	case <-time.After(rewarmDelay):
	case <-ctx.Done():
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.current()
	}
}

// openStream opens a stream of cmd to target in the tunnel. A tunnel that
// ends between the lookup and the OPEN is replaced once. A server that
// has no tunnels (an mptp older than them) gets a session per connection.
func (c *Client) openStream(ctx context.Context, cmd byte, target string) (net.Conn, error) {
	for try := 0; ; try++ {
		c.mu.Lock()
		legacy := c.noTunnels
		c.mu.Unlock()
		if legacy {
			return c.open(ctx, cmd, target)
		}
		t, err := c.tunnel(ctx)
		var refused *dial.Refusal
		if errors.As(err, &refused) && refused.Err.Reason == failure.CmdUnsupported {
			continue // runTunnel set noTunnels
		}
		if err != nil {
			return nil, err
		}
		st, err := t.Open(ctx, cmd, target)
		if err == nil {
			return st, nil
		}
		if try == 0 && (errors.Is(err, mux.ErrTunnelClosed) || errors.Is(err, mux.ErrGoaway)) {
			continue
		}
		return nil, err
	}
}
