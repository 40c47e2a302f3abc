package mptp

import (
	"context"
	"github.com/mptp/mptp/internal/accept"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/mptp/mptp/internal/failure"
	"github.com/mptp/mptp/internal/mux"
	"github.com/mptp/mptp/internal/relay"
	"github.com/mptp/mptp/internal/session"
	"github.com/mptp/mptp/internal/wire"
)

// serveTunnel serves the streams of a tunnel until its session ends: each
// stream's target is dialed (or the stream handed to Accept).
func (s *Server) serveTunnel(sess *session.Session, client net.Addr, log *slog.Logger) {
	rate := &rateLimit{rate: float64(s.streamRate()), burst: float64(s.streamRate())}
	t := mux.New(sess, mux.Config{
		MaxStreams: s.maxStreams(),
		Accept: func(st *mux.Stream) {
			s.wg.Add(1) // the tunnel's reader runs inside the server's wait group
			go func() {
				defer s.wg.Done()
				s.serveStream(st, client, log)
			}()
		},
		Admit: func() string {
			if !rate.allow(time.Now()) {
				return "stream_rate"
			}
			return ""
		},
		Refused: s.obs.streamRefused,
		Opened: func(_ *mux.Stream, remote bool) {
			if remote {
				s.obs.streamBegin()
			}
		},
		Ended: func(_ *mux.Stream, remote bool) {
			if remote {
				s.obs.streamEnd()
			}
		},
		RTT:       sess.RTT,
		Datagrams: sess,
		Logger:    log,
		LocalAddr: Addr("server"),
	})
	s.obs.tunnel(sess, t)
	s.mu.Lock()
	s.tunnels[t] = struct{}{}
	draining := s.draining
	s.mu.Unlock()
	if draining {
		t.Drain(mux.RstShutdown, "server draining")
	}
	<-t.Done()
	s.mu.Lock()
	delete(s.tunnels, t)
	s.mu.Unlock()
	endSession(sess)
}

// serveStream connects a stream's target and relays between them.
func (s *Server) serveStream(st *mux.Stream, client net.Addr, log *slog.Logger) {
	switch st.Cmd() {
	case wire.CmdConnect:
	case wire.CmdUDP:
		s.serveAssociation(st, client, log.With("stream", st.ID(), "udp", true))
		return
	default:
		st.Refuse(failure.CmdUnsupported, "only CONNECT and UDP streams are supported")
		return
	}
	log = log.With("stream", st.ID(), "target", st.Target())
	if s.Dial == nil {
		if err := st.Accept(); err != nil {
			return
		}
		select {
		case s.accepted <- &Conn{Conn: st, target: st.Target()}:
		case <-s.closing:
			st.Reset(mux.RstShutdown, "server closing")
		}
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.handshakeTimeout())
	target, err := s.Dial(ctx, "tcp", st.Target())
	cancel()
	if err != nil {
		reason := failure.Of(err)
		log.Info("target refused", "reason", reason, "error", err)
		s.obs.streamRefused(accept.Reason(byte(reason)))
		st.Refuse(reason, err.Error())
		return
	}
	if err := st.Accept(); err != nil {
		target.Close() // the client gave up, or the tunnel ended
		return
	}
	start := time.Now()
	up, down, rerr := relay.Copy(st, target)
	log.Debug("stream end", "up", up, "down", down, "duration", time.Since(start).Round(time.Millisecond), "error", errOrNil(rerr))
}

// serveAssociation runs a UDP association whose datagrams travel in the
// tunnel with st's ID; st's end ends it.
func (s *Server) serveAssociation(st *mux.Stream, client net.Addr, log *slog.Logger) {
	if s.Dial == nil && s.ListenPacket == nil {
		st.Refuse(failure.CmdUnsupported, "UDP is not served here")
		return
	}
	release, ok := s.udpAdmit(client)
	if !ok {
		log.Info("udp association refused", "reason", "too many associations from this client")
		s.obs.streamRefused("udp_max_per_client")
		st.Refuse(failure.General, "limit=udp_max_per_client")
		return
	}
	defer release()
	ctx, cancel := context.WithTimeout(context.Background(), s.handshakeTimeout())
	pc, err := s.listenPacket(ctx)
	cancel()
	if err != nil {
		reason := failure.Of(err)
		log.Info("udp association refused", "reason", reason, "error", err)
		st.Refuse(reason, err.Error())
		return
	}
	if err := st.Accept(); err != nil {
		pc.Close()
		return
	}
	s.obs.udp.Add(1)
	defer s.obs.udp.Add(-1)
	start := time.Now()
	up, down := s.associate(&frameDatagrams{s: st}, pc, log)
	log.Info("udp association end", "up", up, "down", down, "duration", time.Since(start).Round(time.Millisecond), "dropped", st.DatagramsDropped())
}

// rateLimit is a token bucket: rate tokens a second, at most burst saved.
type rateLimit struct {
	mu          sync.Mutex
	rate, burst float64
	tokens      float64
	last        time.Time
}

func (r *rateLimit) allow(now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.last.IsZero() {
		r.tokens = r.burst
	} else {
		r.tokens = min(r.burst, r.tokens+now.Sub(r.last).Seconds()*r.rate)
	}
	r.last = now
	if r.tokens < 1 {
		return false
	}
	r.tokens--
	return true
}

// perIP counts something per client IP address against a limit.
type perIP map[string]int

// admit counts one more for addr's IP, unless max are counted; release
// undoes it. Both are called with the server's mutex held (release takes
// it itself).
func (s *Server) admitPerIP(m *perIP, addr net.Addr, max int) (release func(), ok bool) {
	ip := hostOf(addr)
	s.mu.Lock()
	defer s.mu.Unlock()
	if *m == nil {
		*m = perIP{}
	}
	if (*m)[ip] >= max {
		return nil, false
	}
	(*m)[ip]++
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if (*m)[ip]--; (*m)[ip] <= 0 {
			delete(*m, ip)
		}
	}, true
}

// tunnelAdmit counts a tunnel for client's IP, or refuses it.
func (s *Server) tunnelAdmit(client net.Addr) (release func(), ok bool) {
	return s.admitPerIP(&s.tunnelsByIP, client, s.maxTunnelsPerIP())
}
