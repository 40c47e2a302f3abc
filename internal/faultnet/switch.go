package faultnet

import (
	"net"
	"sync/atomic"
)

// Conn is a connection that can be made to fail on command, the way real
// links fail: go silent (packets vanish, no error ever comes), come back,
// or be reset.
type Conn struct {
	net.Conn
	silent atomic.Bool
}

// Wrap returns c with its failure switches.
func Wrap(c net.Conn) *Conn { return &Conn{Conn: c} }

// Silence makes the link drop everything both ways: writes succeed and
// vanish, and what arrives is thrown away, as when a radio link is gone
// but no RST ever comes.
func (c *Conn) Silence() { c.silent.Store(true) }

// Resume ends a silence. What was dropped stays lost (a real link's TCP
// would have sent it again), so only the stream above can tell.
func (c *Conn) Resume() { c.silent.Store(false) }

// Reset closes the connection at once with an RST.
func (c *Conn) Reset() {
	if tc, ok := c.Conn.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Conn.Close()
}

func (c *Conn) Write(b []byte) (int, error) {
	if c.silent.Load() {
		return len(b), nil
	}
	return c.Conn.Write(b)
}

func (c *Conn) Read(b []byte) (int, error) {
	for {
		n, err := c.Conn.Read(b)
		if err == nil && c.silent.Load() {
			continue // arrived during the silence: lost
		}
		return n, err
	}
}

// CloseWrite half-closes, unless the link is silent.
func (c *Conn) CloseWrite() error {
	if c.silent.Load() {
		return nil
	}
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}
