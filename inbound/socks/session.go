package socks

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/mptp/mptp/internal/failure"
	"github.com/mptp/mptp/internal/relay"
	"github.com/mptp/mptp/internal/socks5"
)

// negotiationTimeout bounds the client's part of the exchange: greeting,
// authentication and request. The dial that follows is bounded by the
// Dialer, not by this.
const negotiationTimeout = 10 * time.Second

// unbound is the BND address of replies that have no local address to give.
const unbound = "0.0.0.0:0"

// serve runs one client connection to its end.
func (s *server) serve(c net.Conn) {
	client := c.RemoteAddr().String()
	target, out, err := s.negotiate(c)
	if err != nil {
		s.log.Debug("socks negotiation failed", "client", client, "err", err)
		return
	}
	if out == nil {
		return
	}
	defer s.release(out)
	up, down, err := relay.Copy(c, out)
	args := []any{"client", client, "target", target, "up", up, "down", down}
	if err != nil {
		args = append(args, "err", err)
	}
	// At debug level: the outbound's session logs its own start and end
	// (an mptp session names its paths), one line each at info.
	s.log.Debug("socks session end", args...)
}

// negotiate runs the exchange up to and including the reply. It returns the
// outbound conn; a nil conn with a nil error means the dial failed, which is
// answered and logged already.
func (s *server) negotiate(c net.Conn) (target string, out net.Conn, err error) {
	if err := c.SetDeadline(time.Now().Add(negotiationTimeout)); err != nil {
		return "", nil, err
	}
	if err := s.authenticate(c); err != nil {
		return "", nil, err
	}
	cmd, target, err := socks5.ReadRequest(c)
	switch {
	case errors.Is(err, socks5.ErrAddrType):
		return "", nil, errors.Join(err, socks5.WriteReply(c, socks5.RepAddrUnsupported, unbound))
	case err != nil:
		return "", nil, err
	case cmd != socks5.CmdConnect:
		return "", nil, errors.Join(fmt.Errorf("command 0x%02x not supported", cmd),
			socks5.WriteReply(c, socks5.RepCmdUnsupported, unbound))
	}
	if err := c.SetDeadline(time.Time{}); err != nil {
		return "", nil, err
	}

	out, err = s.ctx.Dialer.DialContext(s.life, "tcp", target)
	if err != nil {
		reason := failure.Of(err)
		s.log.Info("socks connect failed", "client", c.RemoteAddr().String(), "target", target,
			"reason", reason.String(), "err", err)
		return "", nil, socks5.WriteReply(c, byte(reason), unbound)
	}
	if !s.track(out) {
		return "", nil, net.ErrClosed
	}
	if err := socks5.WriteReply(c, socks5.RepSucceeded, boundAddr(out)); err != nil {
		s.release(out)
		return "", nil, err
	}
	return target, out, nil
}

// authenticate reads the greeting, picks the method the settings require
// and, for username/password, checks the client's credentials.
func (s *server) authenticate(c net.Conn) error {
	methods, err := socks5.ReadGreeting(c)
	if err != nil {
		return err
	}
	method := byte(socks5.MethodNoAuth)
	if s.accounts != nil {
		method = socks5.MethodUserPass
	}
	if !slices.Contains(methods, method) {
		return errors.Join(errors.New("no acceptable authentication method"),
			socks5.WriteMethod(c, socks5.MethodNoAcceptable))
	}
	if err := socks5.WriteMethod(c, method); err != nil || method == socks5.MethodNoAuth {
		return err
	}
	user, pass, err := socks5.ReadUserPass(c)
	if err != nil {
		return err
	}
	want, ok := s.accounts[user]
	if !ok || subtle.ConstantTimeCompare([]byte(pass), []byte(want)) != 1 {
		s.log.Info("socks auth failed", "user", user, "client", c.RemoteAddr().String())
		return errors.Join(errors.New("wrong username or password"),
			socks5.WriteUserPassStatus(c, socks5.AuthFailure))
	}
	return socks5.WriteUserPassStatus(c, socks5.AuthSuccess)
}

// boundAddr is the address to report in a success reply: the outbound
// conn's local TCP address, if it has one.
func boundAddr(out net.Conn) string {
	a, ok := out.LocalAddr().(*net.TCPAddr)
	if !ok {
		return unbound
	}
	ap := a.AddrPort()
	if !ap.Addr().IsValid() {
		return unbound
	}
	// A zone cannot be sent; socksaddr would encode it as a domain.
	return netip.AddrPortFrom(ap.Addr().WithZone(""), ap.Port()).String()
}
