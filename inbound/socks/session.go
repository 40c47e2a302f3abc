package socks

import (
	"crypto/subtle"
	"errors"
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
	cmd, target, err := s.request(c)
	if err != nil {
		s.log.Debug("socks negotiation failed", "client", client, "err", err)
		return
	}
	switch cmd {
	case socks5.CmdConnect:
		s.connect(c, target)
	case socks5.CmdUDPAssociate:
		s.associate(c, target)
	default:
		s.log.Debug("socks command not supported", "client", client, "cmd", cmd)
		socks5.WriteReply(c, socks5.RepCmdUnsupported, unbound)
	}
}

// request runs the exchange up to the request: greeting, authentication,
// and the request itself, within the negotiation timeout.
func (s *server) request(c net.Conn) (cmd byte, target string, err error) {
	if err := c.SetDeadline(time.Now().Add(negotiationTimeout)); err != nil {
		return 0, "", err
	}
	if err := s.authenticate(c); err != nil {
		return 0, "", err
	}
	cmd, target, err = socks5.ReadRequest(c)
	if errors.Is(err, socks5.ErrAddrType) {
		return 0, "", errors.Join(err, socks5.WriteReply(c, socks5.RepAddrUnsupported, unbound))
	}
	if err != nil {
		return 0, "", err
	}
	return cmd, target, c.SetDeadline(time.Time{})
}

// connect serves a CONNECT: dial, reply, relay.
func (s *server) connect(c net.Conn, target string) {
	client := c.RemoteAddr().String()
	out, err := s.ctx.Dialer.DialContext(s.life, "tcp", target)
	if err != nil {
		reason := failure.Of(err)
		s.log.Info("socks connect failed", "client", client, "target", target,
			"reason", reason.String(), "err", err)
		socks5.WriteReply(c, byte(reason), unbound)
		return
	}
	if !s.track(out) {
		return
	}
	defer s.release(out)
	if err := socks5.WriteReply(c, socks5.RepSucceeded, boundAddr(out)); err != nil {
		return
	}
	up, down, err := relay.Copy(c, out)
	args := []any{"client", client, "target", target, "up", up, "down", down}
	if err != nil {
		args = append(args, "err", err)
	}
	// At debug level: the outbound's session logs its own start and end
	// (an mptp session names its paths), one line each at info.
	s.log.Debug("socks session end", args...)
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
