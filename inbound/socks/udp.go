package socks

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mptp/mptp/internal/socks5"
	"github.com/mptp/mptp/internal/socksaddr"
	"github.com/mptp/mptp/outbound"
)

// UDP ASSOCIATE (RFC 1928 section 7): the client gets a UDP socket of its
// own on the address its control connection came in on, sends datagrams
// there with a SOCKS5 UDP header naming each one's target, and gets the
// replies back with a header naming their source. The association lives
// as long as its control connection, or until it is idle too long.

// associate serves a UDP ASSOCIATE request on control connection c. dst is
// where the client said it will send from ("0.0.0.0:0" when it does not
// know).
func (s *server) associate(c net.Conn, dst string) {
	log := s.log.With("client", c.RemoteAddr().String(), "udp", true)
	pl, ok := s.ctx.Dialer.(outbound.PacketListener)
	if !s.udp.on || !ok {
		log.Info("socks udp associate refused", "reason", "UDP is off or the outbound cannot carry it")
		socks5.WriteReply(c, socks5.RepCmdUnsupported, unbound)
		return
	}
	ctrl, _ := netip.ParseAddrPort(c.RemoteAddr().String())
	release, ok := s.udpAdmit(ctrl.Addr().Unmap().String())
	if !ok {
		log.Info("socks udp associate refused", "reason", "too many associations from this client")
		socks5.WriteReply(c, socks5.RepGeneralFailure, unbound)
		return
	}
	defer release()
	local, _ := netip.ParseAddrPort(c.LocalAddr().String())
	uc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(local.Addr(), 0)))
	if err != nil {
		log.Info("socks udp associate failed", "err", err)
		socks5.WriteReply(c, socks5.RepGeneralFailure, unbound)
		return
	}
	out, err := pl.ListenPacket(s.life)
	if err != nil {
		uc.Close()
		log.Info("socks udp associate failed", "err", err)
		socks5.WriteReply(c, socks5.RepGeneralFailure, unbound)
		return
	}
	bound := uc.LocalAddr().(*net.UDPAddr).AddrPort()
	if err := socks5.WriteReply(c, socks5.RepSucceeded, netip.AddrPortFrom(bound.Addr().WithZone(""), bound.Port()).String()); err != nil {
		uc.Close()
		out.Close()
		return
	}
	a := &association{uc: uc, out: out, ctrlIP: ctrl.Addr().Unmap()}
	if want, err := netip.ParseAddrPort(dst); err == nil {
		a.wantPort = want.Port()
	}
	start := time.Now()
	a.run(c, s.udp.idle)
	log.Info("socks udp association end", "up", a.up.Load(), "down", a.down.Load(),
		"dropped", a.dropped.Load(), "duration", time.Since(start).Round(time.Millisecond))
}

// udpAdmit counts an association for ip, or refuses it.
func (s *server) udpAdmit(ip string) (release func(), ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.udpByIP[ip] >= s.udp.maxPerIP {
		return nil, false
	}
	s.udpByIP[ip]++
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.udpByIP[ip]--; s.udpByIP[ip] <= 0 {
			delete(s.udpByIP, ip)
		}
	}, true
}

type association struct {
	uc  *net.UDPConn   // the client's side
	out net.PacketConn // the outbound's side
	// Datagrams are taken only from the control connection's IP, and from
	// the port the request named or else the first one that sends.
	ctrlIP   netip.Addr
	wantPort uint16

	mu     sync.Mutex
	client netip.AddrPort // set by the first accepted datagram

	last              atomic.Int64 // unix nanoseconds of the last datagram
	up, down, dropped atomic.Uint64
}

// run relays until the control connection ends, either socket fails, or
// nothing moves for idle. It closes both sockets and c.
func (a *association) run(c net.Conn, idle time.Duration) {
	a.last.Store(time.Now().UnixNano())
	var once sync.Once
	stop := func() {
		once.Do(func() {
			c.Close()
			a.uc.Close()
			a.out.Close()
		})
	}
	var wg sync.WaitGroup
	wg.Go(func() { defer stop(); a.fromClient() })
	wg.Go(func() { defer stop(); a.toClient() })
	wg.Go(func() {
		// The control connection carries nothing more; its end (or any
		// byte, which is a protocol error) ends the association.
		defer stop()
		c.Read(make([]byte, 1))
	})
	ended := make(chan struct{})
	go func() { wg.Wait(); close(ended) }()
	tick := time.NewTicker(min(idle/4, 5*time.Second))
	defer tick.Stop()
	for {
		select {
		case <-ended:
			return
		case <-tick.C:
			if time.Since(time.Unix(0, a.last.Load())) >= idle {
				stop()
			}
		}
	}
}

func (a *association) fromClient() {
	buf := make([]byte, 65536)
	for {
		n, from, err := a.uc.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		if !a.accept(from) {
			a.dropped.Add(1)
			continue
		}
		frag, target, payload, err := socks5.ParseUDP(buf[:n])
		if err != nil || frag != 0 {
			a.dropped.Add(1) // fragments are not supported (RFC 1928 allows that)
			continue
		}
		a.last.Store(time.Now().UnixNano())
		if _, err := a.out.WriteTo(payload, socksaddr.Addr(target)); err != nil {
			if isClosed(err) {
				return
			}
			a.dropped.Add(1)
			continue
		}
		a.up.Add(uint64(len(payload)))
	}
}

// accept reports whether a datagram from may come from the client.
func (a *association) accept(from netip.AddrPort) bool {
	from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	if from.Addr() != a.ctrlIP || a.wantPort != 0 && from.Port() != a.wantPort {
		return false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.client.IsValid() {
		a.client = from
	}
	return a.client == from
}

func (a *association) toClient() {
	buf := make([]byte, 65536)
	var hdr []byte
	for {
		n, from, err := a.out.ReadFrom(buf)
		if err != nil {
			return
		}
		a.mu.Lock()
		client := a.client
		a.mu.Unlock()
		if !client.IsValid() {
			a.dropped.Add(1) // nobody to give it to yet
			continue
		}
		a.last.Store(time.Now().UnixNano())
		hdr, err = socks5.AppendUDP(hdr[:0], from.String(), buf[:n])
		if err != nil {
			a.dropped.Add(1)
			continue
		}
		if _, err := a.uc.WriteToUDPAddrPort(hdr, client); err != nil {
			if isClosed(err) {
				return
			}
			a.dropped.Add(1)
			continue
		}
		a.down.Add(uint64(n))
	}
}

// isClosed tells a socket that is gone from a datagram that failed alone.
func isClosed(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)
}
