package mptp

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/mptp/mptp/internal/failure"
	"github.com/mptp/mptp/internal/secure"
)

// secure runs the secure channel's handshake on a dialed sub-connection
// when the client has a password; the v2 handshake then goes inside. A
// server's refusal (no password, or another) ends the dial.
func (c *Client) secure(conn net.Conn, p Path) (net.Conn, error) {
	if c.Password == "" {
		return conn, nil
	}
	conn.SetDeadline(time.Now().Add(c.handshakeTimeout()))
	sc, err := secure.Client(conn, secure.KeyFromPassword(c.Password))
	if err != nil {
		conn.Close()
		var r *secure.Refusal
		if errors.As(err, &r) {
			return nil, &serverRefusal{&failure.Error{Reason: failure.Reason(r.Status), Msg: r.Msg}}
		}
		return nil, fmt.Errorf("path %s: %w", p.Name, err)
	}
	return sc, nil
}
