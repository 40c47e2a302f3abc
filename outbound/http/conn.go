package http

import (
	"errors"
	"net"
	"sync"
)

// bufferedConn is a tunnel whose first bytes arrived with the relay's
// response and were read along with it.
type bufferedConn struct {
	net.Conn
	mu    sync.Mutex
	extra []byte
}

func (c *bufferedConn) Read(b []byte) (int, error) {
	c.mu.Lock()
	if len(c.extra) > 0 {
		n := copy(b, c.extra)
		c.extra = c.extra[n:]
		c.mu.Unlock()
		return n, nil
	}
	c.mu.Unlock()
	return c.Conn.Read(b)
}

// CloseWrite half-closes the tunnel, as on the raw conn.
func (c *bufferedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.New("http relay conn cannot half-close")
}
