package mptp

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/mptp/mptp/internal/failure"
	"github.com/mptp/mptp/internal/leaf"
	"github.com/mptp/mptp/internal/mux"
	"github.com/mptp/mptp/internal/relay"
	"github.com/mptp/mptp/internal/secure"
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

	mu       sync.Mutex
	sessions map[[16]byte]*serverSession
	v1       map[[16]byte]*leaf.Conn
	conns    map[net.Conn]struct{} // sub-connections in their handshake
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

type serverSession struct {
	sess    *session.Session
	target  string
	token   []byte // secure sessions: what a JOIN must show
	tunnel  bool
	joining sync.Mutex
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
	if s.sessions == nil {
		s.sessions = map[[16]byte]*serverSession{}
		s.v1 = map[[16]byte]*leaf.Conn{}
		s.conns = map[net.Conn]struct{}{}
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
		if err := s.track(conn); err != nil {
			conn.Close()
			if err == ErrServerClosed {
				return err
			}
			s.refusedAtLimit()
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.handle(conn)
		}()
	}
}

// track registers a sub-connection in its handshake, so Close can cut it,
// unless as many are in their handshake as the limit allows.
func (s *Server) track(c net.Conn) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrServerClosed
	}
	if len(s.conns) >= s.maxHandshakes() {
		return errBusy
	}
	s.conns[c] = struct{}{}
	return nil
}

func (s *Server) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
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
	for c := range s.conns {
		c.Close()
	}
	for _, ss := range s.sessions {
		ss.sess.Reset(wire.RstShutdown, "server closing")
	}
	v1 := make([]*leaf.Conn, 0, len(s.v1))
	for _, c := range s.v1 {
		v1 = append(v1, c)
	}
	close(s.closing)
	s.mu.Unlock()
	// A v1 Close may wait to flush: all at once, outside the lock.
	var wg sync.WaitGroup
	for _, c := range v1 {
		wg.Go(func() { c.Close() })
	}
	wg.Wait()
	s.wg.Wait()
	return nil
}

func (s *Server) handle(conn net.Conn) {
	conn.SetDeadline(time.Now().Add(s.handshakeTimeout()))
	br := bufio.NewReaderSize(conn, 512)
	first, err := br.Peek(1)
	if err != nil {
		s.untrack(conn)
		conn.Close()
		return
	}
	log := s.logger().With("peer", conn.RemoteAddr().String())
	version := first[0]
	if s.Password != "" || version == secure.Version {
		var ok bool
		if conn, br, ok = s.secureHandshake(conn, br, version, log); !ok {
			return
		}
		version = wire.Version // only v2 is spoken inside
	}
	switch version {
	case wire.Version:
		s.handleV2(conn, br, log)
	case leaf.Version:
		s.handleV1(conn, br, log)
	default:
		s.untrack(conn)
		s.obs.refused("bad_version")
		log.Info("handshake refused", "reason", fmt.Sprintf("unknown version 0x%02x", first[0]))
		conn.Close()
	}
}

func (s *Server) handleV2(conn net.Conn, br *bufio.Reader, log *slog.Logger) {
	req, err := wire.ReadRequest(br)
	// From here on the session, not Close, ends the sub-connection, so
	// that the client gets an RST rather than a cut.
	s.untrack(conn)
	if err == nil && br.Buffered() > 0 {
		err = errors.New("data before the handshake reply")
	}
	if err != nil {
		log.Info("handshake refused", "reason", err)
		s.refuse(conn, wire.StatusBadRequest, err.Error())
		return
	}
	flags, err := req.PathFlags()
	if err != nil {
		s.refuse(conn, wire.StatusBadRequest, err.Error())
		return
	}
	backup := flags&wire.PathBackup != 0
	if req.Kind == wire.KindJoin {
		s.join(conn, req, backup, log)
		return
	}
	udp, tunnel := req.Cmd == wire.CmdUDP, req.Cmd == wire.CmdMux
	switch {
	case udp && s.Dial == nil && s.ListenPacket == nil:
		s.refuse(conn, byte(failure.CmdUnsupported), "UDP is not served here")
		return
	case req.Cmd != wire.CmdConnect && !udp && (!tunnel || s.noTunnels):
		s.refuse(conn, byte(failure.CmdUnsupported), "only CONNECT, UDP and tunnels are supported")
		return
	}
	switch {
	case tunnel:
		release, ok := s.tunnelAdmit(conn.RemoteAddr())
		if !ok {
			log.Warn("tunnel refused", "limit", "max_tunnels_per_ip", "max", s.maxTunnelsPerIP())
			s.refuse(conn, wire.StatusBusy, "limit=max_tunnels_per_ip")
			return
		}
		defer release()
		log = log.With("tunnel", true)
	case udp:
		release, ok := s.udpAdmit(conn.RemoteAddr())
		if !ok {
			log.Info("udp association refused", "reason", "too many associations from this client")
			s.refuse(conn, wire.StatusBusy, "too many UDP associations")
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
	s.mu.Lock()
	_, dup := s.sessions[req.CID]
	if full := !s.roomForSession(false, tunnel); dup || s.closed || full {
		s.mu.Unlock()
		sess.Reset(wire.RstClosed, "not opened")
		switch {
		case dup:
			s.refuse(conn, wire.StatusSessionExists, "session exists")
		case full:
			log.Warn("session refused", "reason", "session limit reached")
			s.refuse(conn, wire.StatusBusy, "too many sessions")
		default:
			s.refuse(conn, wire.StatusBusy, "server closing")
		}
		return
	}
	token := s.newJoinToken()
	s.sessions[req.CID] = &serverSession{sess: sess, target: req.Target, token: token, tunnel: tunnel}
	s.mu.Unlock()
	forget := func() {
		s.mu.Lock()
		delete(s.sessions, req.CID)
		s.mu.Unlock()
	}

	var (
		target net.Conn
		pc     net.PacketConn
	)
	if udp || (s.Dial != nil && !tunnel) {
		ctx, cancel := context.WithTimeout(context.Background(), s.handshakeTimeout())
		if udp {
			pc, err = s.listenPacket(ctx)
		} else {
			target, err = s.Dial(ctx, "tcp", req.Target)
		}
		cancel()
		if err != nil {
			forget()
			sess.Reset(wire.RstTarget, "target failed")
			reason := failure.Of(err)
			log.Info("target refused", "reason", reason, "error", err)
			s.refuse(conn, byte(reason), err.Error())
			return
		}
	}
	reply := &wire.Reply{Status: wire.StatusOK, Window: sess.Window()}
	if token != nil {
		reply.Ext = wire.AppendExt(nil, wire.ExtJoinToken, token)
	}
	if _, err := conn.Write(wire.AppendReply(nil, reply)); err != nil {
		forget()
		sess.Reset(wire.RstClosed, "handshake failed")
		conn.Close()
		closeAll(target, pc)
		return
	}
	conn.SetDeadline(time.Time{})
	if _, err := sess.AddPath(conn, session.PathConfig{Name: conn.RemoteAddr().String(), Backup: backup}); err != nil {
		forget()
		conn.Close()
		closeAll(target, pc)
		return
	}
	log.Info("session start", "paths", 1)
	start := time.Now()
	s.obs.begin(sess)
	defer s.obs.end(sess, peerHost)
	if tunnel {
		s.serveTunnel(sess, conn.RemoteAddr(), log)
		forget()
		log.Info("session end", "paths", pathSummary(sess.Info()), "duration", time.Since(start).Round(time.Millisecond), "error", errOrNil(sess.Err()))
		return
	}
	if udp {
		s.obs.udp.Add(1)
		defer s.obs.udp.Add(-1)
		up, down := s.associate(&frameDatagrams{s: sess}, pc, log)
		<-sess.Done()
		forget()
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
		forget()
		return
	}
	up, down, rerr := relay.Copy(sess, target)
	<-sess.Done()
	forget()
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

func (s *Server) join(conn net.Conn, req *wire.Request, backup bool, log *slog.Logger) {
	s.mu.Lock()
	ss := s.sessions[req.CID]
	s.mu.Unlock()
	if ss == nil {
		log.Info("join refused", "reason", "unknown session")
		s.refuse(conn, wire.StatusUnknownSession, "unknown session")
		return
	}
	if !joinAllowed(ss.token, req) {
		log.Info("join refused", "reason", "wrong join token")
		s.refuse(conn, wire.StatusAuthFailed, "wrong join token")
		return
	}
	// One join at a time per session, so the path count cannot pass the
	// limit between the check and the add.
	ss.joining.Lock()
	defer ss.joining.Unlock()
	if ss.sess.PathCount() >= s.maxPaths() {
		s.refuse(conn, wire.StatusTooManyPaths, "too many paths")
		return
	}
	if _, err := conn.Write(wire.AppendReply(nil, &wire.Reply{Status: wire.StatusOK, Window: ss.sess.Window()})); err != nil {
		conn.Close()
		return
	}
	conn.SetDeadline(time.Time{})
	if _, err := ss.sess.AddPath(conn, session.PathConfig{Name: conn.RemoteAddr().String(), Backup: backup}); err != nil {
		conn.Close()
		return
	}
	log.Debug("path joined", "target", ss.target)
}

func (s *Server) refuse(conn net.Conn, status byte, msg string) {
	s.obs.refused(refusalReason(status))
	conn.Write(wire.AppendReply(nil, &wire.Reply{Status: status, Msg: msg}))
	conn.Close()
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
func (s *Server) handleV1(raw net.Conn, br *bufio.Reader, log *slog.Logger) {
	hs, err := leaf.ReadHandshake(br)
	s.untrack(raw)
	if err != nil {
		s.obs.refused("bad_request")
		log.Info("v1 handshake refused", "reason", err)
		raw.Close()
		return
	}
	raw.SetDeadline(time.Time{})
	// Leaf sends frames right behind the handshake: they may sit in br.
	conn := &bufferedConn{Conn: raw, r: br}
	s.mu.Lock()
	if c := s.v1[hs.CID]; c != nil {
		s.mu.Unlock()
		c.AddPath(conn)
		return
	}
	s.forgetV1(time.Now())
	if _, ended := s.v1Ended[hs.CID]; ended || s.closed || s.Dial == nil || !s.roomForSession(true, false) {
		s.mu.Unlock()
		conn.Close()
		return
	}
	log = log.With("target", hs.Target, "version", 1)
	c := leaf.NewConn(leaf.Options{Logger: log, LocalAddr: Addr("server"), RemoteAddr: Addr(hs.Target)})
	s.v1[hs.CID] = c
	s.mu.Unlock()
	c.AddPath(conn)
	defer func() {
		s.mu.Lock()
		delete(s.v1, hs.CID)
		s.rememberV1(hs.CID)
		s.mu.Unlock()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), s.handshakeTimeout())
	if hs.Cmd == leaf.CmdUDP {
		defer cancel()
		s.associateV1(ctx, c, raw.RemoteAddr(), log)
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

// bufferedConn reads through the reader that parsed the handshake. Only v1
// needs it: a v2 client sends nothing before the server's reply.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(b []byte) (int, error) { return c.r.Read(b) }

func (c *bufferedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}
