package mptp

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

// secureHandshake applies the server's password to a sub-connection whose
// first byte is first: with a password, only the secure channel is let
// in, and the v2 handshake is read inside it; without, a client that
// brings a password is told the server has none. It returns the conn and
// reader the v2 handshake comes through, or ok false once it has refused
// (nothing was dialed).
func (s *Server) secureHandshake(conn net.Conn, br *bufio.Reader, first byte, log *slog.Logger) (net.Conn, *bufio.Reader, bool) {
	refuse := func(reason string, reply bool) {
		s.untrack(conn)
		log.Info("handshake refused", "reason", reason)
		if reply {
			s.refuse(conn, wire.StatusAuthFailed, reason)
		} else {
			conn.Close()
		}
	}
	if s.Password == "" {
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
	sc, err := secure.Server(conn, br, secure.KeyFromPassword(s.Password))
	if err != nil {
		if errors.Is(err, secure.ErrAuth) {
			refuse("wrong password (secure handshake failed)", true)
		} else {
			refuse(err.Error(), false)
		}
		return nil, nil, false
	}
	if !s.retrack(conn, sc) {
		sc.Close()
		return nil, nil, false
	}
	return sc, bufio.NewReaderSize(sc, 512), true
}

// retrack replaces a sub-connection in its handshake by its secure
// channel, so that Close and the handshake count follow the new one.
func (s *Server) retrack(old, c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, old)
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

// newJoinToken returns the secret a secure session's JOINs must show, or
// nil without a password.
func (s *Server) newJoinToken() []byte {
	if s.Password == "" {
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
