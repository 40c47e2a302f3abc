package mptp

import (
	"context"
	"errors"
	"github.com/mptp/mptp/internal/accept"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mptp/mptp/internal/failure"
	"github.com/mptp/mptp/internal/leaf"
	"github.com/mptp/mptp/internal/mux"
	"github.com/mptp/mptp/internal/relay"
	"github.com/mptp/mptp/internal/session"
	"github.com/mptp/mptp/internal/wire"
)

// Server accepts MPTP sub-connections, v2 and Leaf's v1, told apart by
// their first byte.
type Server struct {
	// Dial connects a new session's target. When nil, sessions are handed
	// to Accept instead (v2 only).
	Dial DialFunc
	Options
	UDPOptions
	// MaxPaths bounds the sub-connections of one session. Default 16.
	MaxPaths int
	Limits
	Logger *slog.Logger

	door *accept.Door // handshakes, and the v2 sessions JOINs look up

	mu       sync.Mutex
	v1       map[[16]byte]*leaf.Conn
	v1Count  atomic.Int64 // len(v1), read where s.mu may not be taken
	lns      []net.Listener
	accepted chan *Conn
	closing  chan struct{} // closed by Close
	// v1Ended remembers recent v1 sessions: Leaf opens sub-connections
	// with no answer, and a late one must not start the session again.
	v1Ended     map[[16]byte]time.Time
	udpByIP     perIP // live UDP associations per client IP
	tunnelsByIP perIP // live tunnels per client IP
	tunnels     map[*mux.Tunnel]struct{}
	closed      bool
	wg          sync.WaitGroup

	// noTunnels refuses tunnels as servers before them did (tests of the
	// client's fallback).
	noTunnels bool

	// draining is set by Shutdown: listeners closed, sessions live on.
	draining bool
	obs      observer // for Status (stats.go)
	refused  refusals // sub-connections turned away at the handshake limit
}

// Conn is a session a Server accepted, for programs that serve MPTP
// themselves (Server.Dial nil).
type Conn struct {
	net.Conn
	target string
}

// Target is the "host:port" the client asked for.
func (c *Conn) Target() string { return c.target }

// CloseWrite half-closes the connection: the client reads EOF once it has
// every byte written before.
func (c *Conn) CloseWrite() error {
	return c.Conn.(interface{ CloseWrite() error }).CloseWrite()
}

var ErrServerClosed = errors.New("mptp: server closed")

func (s *Server) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.New(slog.DiscardHandler)
}

func (s *Server) init() {
	if s.door == nil {
		s.door = accept.New(accept.Config{Password: s.Password, HandshakeTimeout: s.handshakeTimeout(),
			MaxHandshakes: s.maxHandshakes(), MaxPaths: s.maxPaths(), Logger: s.logger(),
			Open: s.open, V1: s.handleV1, Refused: s.obs.refused})
		s.v1 = map[[16]byte]*leaf.Conn{}
		s.accepted = make(chan *Conn)
		s.closing = make(chan struct{})
		s.v1Ended = map[[16]byte]time.Time{}
		s.tunnels = map[*mux.Tunnel]struct{}{}
	}
}

// Serve accepts sub-connections on ln until Close. It returns
// ErrServerClosed after Close.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	s.init()
	if s.closed {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.lns = append(s.lns, ln)
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	for {
		conn, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed || s.draining
			s.mu.Unlock()
			if closed {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return err
		}
		if err := s.door.Admit(conn); err != nil {
			conn.Close()
			if err == accept.ErrClosed {
				return ErrServerClosed
			}
			s.refusedAtLimit()
			continue
		}
		s.wg.Go(func() { s.door.Handle(conn) })
	}
}

// Accept returns the next session when Server.Dial is nil.
func (s *Server) Accept() (*Conn, error) {
	s.mu.Lock()
	s.init()
	s.mu.Unlock()
	select {
	case c := <-s.accepted:
		return c, nil
	case <-s.closing:
		return nil, ErrServerClosed
	}
}

// Close stops accepting, resets every session and waits for the server's
// goroutines to end.
func (s *Server) Close() error {
	s.mu.Lock()
	s.init()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for _, ln := range s.lns {
		ln.Close()
	}
	v1 := make([]*leaf.Conn, 0, len(s.v1))
	for _, c := range s.v1 {
		v1 = append(v1, c)
	}
	close(s.closing)
	s.mu.Unlock()
	s.door.Close(wire.RstShutdown, "server closing")
	// A v1 Close may wait to flush: all at once, outside the lock.
	var wg sync.WaitGroup
	for _, c := range v1 {
		wg.Go(func() { c.Close() })
	}
	wg.Wait()
	s.wg.Wait()
	return nil
}

// open serves a v2 OPEN: a tunnel, a UDP association, or a connection to
// its target.
func (s *Server) open(o *accept.Open) {
	req, conn, log := o.Req, o.Conn, o.Log
	udp, tunnel := req.Cmd == wire.CmdUDP, req.Cmd == wire.CmdMux
	switch {
	case udp && s.Dial == nil && s.ListenPacket == nil:
		o.Refuse(byte(failure.CmdUnsupported), "UDP is not served here")
		return
	case req.Cmd != wire.CmdConnect && !udp && (!tunnel || s.noTunnels):
		o.Refuse(byte(failure.CmdUnsupported), "only CONNECT, UDP and tunnels are supported")
		return
	}
	switch {
	case tunnel:
		release, ok := s.tunnelAdmit(conn.RemoteAddr())
		if !ok {
			log.Warn("tunnel refused", "limit", "max_tunnels_per_ip", "max", s.maxTunnelsPerIP())
			o.Refuse(wire.StatusBusy, "limit=max_tunnels_per_ip")
			return
		}
		defer release()
		log = log.With("tunnel", true)
	case udp:
		release, ok := s.udpAdmit(conn.RemoteAddr())
		if !ok {
			log.Info("udp association refused", "reason", "too many associations from this client")
			o.Refuse(wire.StatusBusy, "too many UDP associations")
			return
		}
		defer release()
		log = log.With("udp", true)
	default:
		log = log.With("target", req.Target)
	}
	cfg := s.sessionConfig()
	cfg.PeerWindow = req.Window
	if sf, err := req.SessionFlags(); err == nil && sf&wire.SessionDatagramCopies != 0 {
		cfg.DatagramCopies = true
	}
	cfg.Logger = log
	cfg.LocalAddr, cfg.RemoteAddr = Addr("server"), Addr(req.Target)
	if tunnel {
		cfg.RemoteAddr = Addr("tunnel")
	}
	sess := session.New(cfg)
	if !o.Register(sess, tunnel, func(tunnels, others int) bool { return s.roomFor(tunnels, others, false, tunnel) }) {
		return
	}

	var (
		target net.Conn
		pc     net.PacketConn
	)
	var err error
	if udp || (s.Dial != nil && !tunnel) {
		ctx, cancel := context.WithTimeout(context.Background(), s.handshakeTimeout())
		if udp {
			pc, err = s.listenPacket(ctx)
		} else {
			target, err = s.Dial(ctx, "tcp", req.Target)
		}
		cancel()
		if err != nil {
			o.Forget()
			sess.Reset(wire.RstTarget, "target failed")
			reason := failure.Of(err)
			log.Info("target refused", "reason", reason, "error", err)
			o.Refuse(byte(reason), err.Error())
			return
		}
	}
	if err := o.Accept(); err != nil {
		closeAll(target, pc)
		return
	}
	log.Info("session start", "paths", 1)
	start := time.Now()
	s.obs.begin(sess)
	defer s.obs.end(sess, peerHost)
	if tunnel {
		s.serveTunnel(sess, conn.RemoteAddr(), log)
		o.Forget()
		log.Info("session end", "paths", pathSummary(sess.Info()), "duration", time.Since(start).Round(time.Millisecond), "error", errOrNil(sess.Err()))
		return
	}
	if udp {
		s.obs.udp.Add(1)
		defer s.obs.udp.Add(-1)
		up, down := s.associate(&frameDatagrams{s: sess}, pc, log)
		<-sess.Done()
		o.Forget()
		log.Info("session end", "up", up, "down", down, "paths", pathSummary(sess.Info()), "duration", time.Since(start).Round(time.Millisecond), "datagrams", sess.DatagramStats())
		return
	}
	if target == nil {
		s.mu.Lock()
		closed := s.closed
		s.mu.Unlock()
		if !closed {
			select {
			case s.accepted <- &Conn{Conn: sess, target: req.Target}:
			case <-sess.Done():
			case <-s.closing:
			}
		}
		<-sess.Done()
		o.Forget()
		return
	}
	up, down, rerr := relay.Copy(sess, target)
	<-sess.Done()
	o.Forget()
	log.Info("session end", "up", up, "down", down, "paths", pathSummary(sess.Info()), "duration", time.Since(start).Round(time.Millisecond), "error", errOrNil(rerr, sess.Err()))
}

func closeAll(cs ...io.Closer) {
	for _, c := range cs {
		if c != nil {
			c.Close()
		}
	}
}

func errOrNil(errs ...error) any {
	if err := errors.Join(errs...); err != nil {
		return err.Error()
	}
	return nil
}

func (s *Server) maxPaths() int {
	if s.MaxPaths > 0 {
		return s.MaxPaths
	}
	return 16
}

// handleV1 serves a Leaf client. The first sub-connection of a CID creates
// the session and connects its target; the rest join it. v1 has no reply,
// so a failed target simply closes the sub-connections.
func (s *Server) handleV1(hs leaf.Handshake, conn net.Conn, log *slog.Logger) {
	s.mu.Lock()
	if c := s.v1[hs.CID]; c != nil {
		s.mu.Unlock()
		c.AddPath(conn)
		return
	}
	s.forgetV1(time.Now())
	tunnels, others := s.door.Count()
	if _, ended := s.v1Ended[hs.CID]; ended || s.closed || s.Dial == nil || !s.roomFor(tunnels, others, true, false) {
		s.mu.Unlock()
		conn.Close()
		return
	}
	log = log.With("target", hs.Target, "version", 1)
	c := leaf.NewConn(leaf.Options{Logger: log, LocalAddr: Addr("server"), RemoteAddr: Addr(hs.Target)})
	s.v1[hs.CID] = c
	s.v1Count.Add(1)
	s.mu.Unlock()
	c.AddPath(conn)
	defer func() {
		s.mu.Lock()
		delete(s.v1, hs.CID)
		s.v1Count.Add(-1)
		s.rememberV1(hs.CID)
		s.mu.Unlock()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), s.handshakeTimeout())
	if hs.Cmd == leaf.CmdUDP {
		defer cancel()
		s.associateV1(ctx, c, conn.RemoteAddr(), log)
		return
	}
	target, err := s.Dial(ctx, "tcp", hs.Target)
	cancel()
	if err != nil {
		log.Info("target refused", "reason", failure.Of(err), "error", err)
		c.Close()
		return
	}
	log.Info("session start")
	start := time.Now()
	s.obs.beginV1()
	defer s.obs.endV1()
	up, down, rerr := relay.Copy(c, target)
	log.Info("session end", "up", up, "down", down, "duration", time.Since(start).Round(time.Millisecond), "error", errOrNil(rerr))
}

// associateV1 serves a Leaf UDP session: datagrams framed in the stream.
func (s *Server) associateV1(ctx context.Context, c *leaf.Conn, client net.Addr, log *slog.Logger) {
	log = log.With("udp", true)
	release, ok := s.udpAdmit(client)
	if !ok {
		log.Info("udp association refused", "reason", "too many associations from this client")
		c.Close()
		return
	}
	defer release()
	pc, err := s.listenPacket(ctx)
	if err != nil {
		log.Info("udp socket failed", "error", err)
		c.Close()
		return
	}
	log.Info("session start")
	start := time.Now()
	s.obs.beginV1()
	defer s.obs.endV1()
	s.obs.udp.Add(1)
	defer s.obs.udp.Add(-1)
	up, down := s.associate(newStreamDatagrams(c), pc, log)
	log.Info("session end", "up", up, "down", down, "duration", time.Since(start).Round(time.Millisecond))
}

// v1Memory is how long an ended v1 session's CID is refused.
const v1Memory = time.Minute

// forgetV1 drops ended v1 CIDs older than v1Memory. Called with s.mu held.
func (s *Server) forgetV1(now time.Time) {
	for cid, at := range s.v1Ended {
		if now.Sub(at) > v1Memory {
			delete(s.v1Ended, cid)
		}
	}
}
