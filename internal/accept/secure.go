package accept

import (
	"bufio"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"

	"github.com/mptp/mptp/internal/leaf"
	"github.com/mptp/mptp/internal/secure"
	"github.com/mptp/mptp/internal/wire"
)

// secure applies the password to a sub-connection whose first byte is
// first: with a password, only the secure channel is let in, and the v2
// handshake is read inside it; without, a client that brings a password
// is told the server has none. It returns the conn and reader the v2
// handshake comes through, or ok false once it has refused.
func (d *Door) secure(conn net.Conn, br *bufio.Reader, first byte, log *slog.Logger) (net.Conn, *bufio.Reader, bool) {
	refuse := func(reason string, reply bool) {
		d.done(conn)
		log.Info("handshake refused", "reason", reason)
		if reply {
			d.refuse(conn, wire.StatusAuthFailed, reason)
		} else {
			conn.Close()
		}
	}
	if d.cfg.Password == "" {
		refuse("the client uses a password; this server has none", true)
		return nil, nil, false
	}
	switch first {
	case secure.Version:
	case leaf.Version:
		refuse("Leaf v1 client: v1 has no authentication and this server requires a password", false)
		return nil, nil, false
	case wire.Version:
		refuse("unauthenticated v2 handshake: this server requires a password", true)
		return nil, nil, false
	default:
		refuse(fmt.Sprintf("unknown version 0x%02x", first), false)
		return nil, nil, false
	}
	sc, err := secure.Server(conn, br, secure.KeyFromPassword(d.cfg.Password))
	if err != nil {
		if errors.Is(err, secure.ErrAuth) {
			refuse("wrong password (secure handshake failed)", true)
		} else {
			refuse(err.Error(), false)
		}
		return nil, nil, false
	}
	if !d.replace(conn, sc) {
		sc.Close()
		return nil, nil, false
	}
	return sc, bufio.NewReaderSize(sc, 512), true
}

// replace puts a sub-connection's secure channel in its place among those
// in their handshake, so that Close and the count follow the new one.
func (d *Door) replace(old, c net.Conn) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.conns, old)
	if d.closed {
		return false
	}
	d.conns[c] = struct{}{}
	return true
}

// newJoinToken returns the secret a secure session's JOINs must show, or
// nil without a password.
func (d *Door) newJoinToken() []byte {
	if d.cfg.Password == "" {
		return nil
	}
	t := make([]byte, 16)
	rand.Read(t)
	return t
}

// joinAllowed checks a JOIN's token against its session's.
func joinAllowed(want []byte, req *wire.Request) bool {
	if want == nil {
		return true
	}
	got, err := wire.Ext(req.Ext, wire.ExtJoinToken)
	return err == nil && subtle.ConstantTimeCompare(got, want) == 1
}
