package mptp

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mptp/mptp/internal/leaf"
	"github.com/mptp/mptp/internal/netdial"
	"github.com/mptp/mptp/internal/session"
	"github.com/mptp/mptp/internal/socksaddr"
)

// The server's end of a UDP association: one UDP socket, datagrams from
// the client written to their targets, and every datagram that socket
// receives sent back with its source address.

// UDPOptions bound a Server's UDP associations; zero values take the
// defaults.
type UDPOptions struct {
	// ListenPacket opens an association's socket. Default: a UDP socket
	// on all addresses that resolves host names.
	ListenPacket ListenPacketFunc
	// UDPIdle ends an association that carried nothing either way for
	// this long. Default 2 minutes.
	UDPIdle time.Duration
	// MaxUDPPerClient bounds the associations of one client IP address.
	// Default 64.
	MaxUDPPerClient int
}

func (o *UDPOptions) udpIdle() time.Duration {
	if o.UDPIdle > 0 {
		return o.UDPIdle
	}
	return 2 * time.Minute
}

func (o *UDPOptions) maxUDPPerClient() int {
	if o.MaxUDPPerClient > 0 {
		return o.MaxUDPPerClient
	}
	return 64
}

var plainUDP = func() *netdial.Dialer {
	d, _ := netdial.New("", netdial.Options{}, nil, nil)
	return d
}()

func (o *UDPOptions) listenPacket(ctx context.Context) (net.PacketConn, error) {
	if o.ListenPacket != nil {
		return o.ListenPacket(ctx)
	}
	return plainUDP.ListenPacket(ctx)
}

// udpAdmit counts an association for client's IP, or refuses it.
func (s *Server) udpAdmit(client net.Addr) (release func(), ok bool) {
	return s.admitPerIP(&s.udpByIP, client, s.maxUDPPerClient())
}

func tooLarge(err error) bool {
	return errors.Is(err, session.ErrDatagramTooLarge) || errors.Is(err, leaf.ErrDatagramTooLarge)
}

func hostOf(a net.Addr) string {
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}

// associate relays between d and pc until either end closes or the
// association is idle for too long. It closes both.
func (s *Server) associate(d datagrams, pc net.PacketConn, log *slog.Logger) (up, down uint64) {
	var last atomic.Int64 // unix nanoseconds of the last datagram either way
	touch := func() { last.Store(time.Now().UnixNano()) }
	touch()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			d.Close()
			pc.Close()
		})
	}
	var wg sync.WaitGroup
	wg.Go(func() { // client to targets
		defer stop()
		for {
			addr, payload, err := d.receive()
			if err != nil {
				return
			}
			touch()
			if _, err := pc.WriteTo(payload, socksaddr.Addr(addr)); err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				log.Debug("udp send failed", "to", addr, "error", err)
				continue
			}
			up += uint64(len(payload))
		}
	})
	wg.Go(func() { // targets to client
		defer stop()
		buf := make([]byte, maxUDP+1)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			touch()
			if n > maxUDP {
				continue
			}
			if err := d.send(from.String(), buf[:n]); err != nil {
				if tooLarge(err) {
					continue // dropped and counted by the session
				}
				return
			}
			down += uint64(n)
		}
	})
	idle := s.udpIdle()
	tick := time.NewTicker(min(idle/4, 5*time.Second))
	ended := make(chan struct{})
	go func() { // ends when both relays have
		wg.Wait()
		close(ended)
	}()
	closing := s.closing
	for {
		select {
		case <-ended:
			tick.Stop()
			return up, down
		case <-closing:
			stop()
			closing = nil
		case <-tick.C:
			if time.Since(time.Unix(0, last.Load())) >= idle {
				log.Debug("udp association idle", "after", idle)
				stop()
			}
		}
	}
}
