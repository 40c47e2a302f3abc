// Package dial is the client's path supply for a session (a tunnel, or a
// session per connection for servers that predate tunnels): it connects
// every path, runs the secure channel's handshake on it, OPENs the session
// on the first and JOINs the others, and dials a path that dies again,
// with backoff, for as long as the session lives.
package dial

import (
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"github.com/mptp/mptp/internal/failure"
	"github.com/mptp/mptp/internal/secure"
	"github.com/mptp/mptp/internal/session"
	"github.com/mptp/mptp/internal/wire"
)

// Func opens a connection to address, as net.Dialer.DialContext does.
type Func func(ctx context.Context, network, address string) (net.Conn, error)

// Path is one way to reach the server.
type Path struct {
	Name string
	// Dial opens a sub-connection; nil means a plain TCP dial.
	Dial Func
	// Backup paths carry data only while no other path can.
	Backup bool
}

// ext is what a path's handshake says about it.
func (p *Path) ext() []byte {
	if p.Backup {
		return wire.AppendExt(nil, wire.ExtPathFlags, []byte{wire.PathBackup})
	}
	return nil
}

func (p *Path) dial(ctx context.Context, address string) (net.Conn, error) {
	if p.Dial != nil {
		return p.Dial(ctx, "tcp", address)
	}
	var nd net.Dialer
	return nd.DialContext(ctx, "tcp", address)
}

// Config is one session's dial.
type Config struct {
	// Server is the MPTP server's "host:port".
	Server string
	Paths  []Path
	// Cmd and Target are the OPEN's: CONNECT or UDP and a target, or a
	// tunnel (wire.CmdMux).
	Cmd    byte
	Target string
	// Password, when set, runs the secure channel on every path.
	Password string
	// Session configures the session; Logger and the addresses are set
	// here.
	Session          session.Config
	HandshakeTimeout time.Duration
	Logger           *slog.Logger
}

// Refusal is the server's answer that the session cannot be: it ends the
// dial. A failure.Error from a path's actor (a relay refusing) ends only
// that path's attempt.
type Refusal struct{ Err *failure.Error }

func (r *Refusal) Error() string { return "mptp server: " + r.Err.Error() }
func (r *Refusal) Unwrap() error { return r.Err }

// errSessionOver ends a path's loop: the session is gone, or was never
// opened.
var errSessionOver = errors.New("mptp: session is over")

// NewCID returns a random connection ID shaped as a UUID v4, as Leaf's.
func NewCID() [16]byte {
	var cid [16]byte
	crand.Read(cid[:])
	cid[6] = cid[6]&0x0f | 0x40
	cid[8] = cid[8]&0x3f | 0x80
	return cid
}

// Dial is one session being set up and kept supplied with paths.
type Dial struct {
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	cid     [16]byte
	token   []byte        // from the OPEN's reply: JOINs show it
	attempt chan struct{} // an OPEN in progress; closed when it ends
	failed  int           // paths whose first attempt failed before the session opened
	trying  int           // primary (not backup) paths still on their first attempt
	tried   chan struct{} // closed and replaced whenever trying drops
	sess    *session.Session
	openErr error
	opened  chan struct{} // closed once sess or openErr is set
	stop    chan struct{} // closed when opening failed or the session ended
	keeping sync.WaitGroup
}

// New prepares a dial; Run starts it.
func New(cfg Config) *Dial {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = 10 * time.Second
	}
	return &Dial{cfg: cfg, log: cfg.Logger, cid: NewCID(),
		opened: make(chan struct{}), stop: make(chan struct{}), tried: make(chan struct{})}
}

// Run dials every path and returns the session once one path has opened
// it, or the error once every path failed or the server refused. The paths
// are kept (dialed again when they die) until the session ends.
func (d *Dial) Run(ctx context.Context) (*session.Session, error) {
	if len(d.cfg.Paths) == 0 {
		return nil, errors.New("mptp: client has no paths")
	}
	for _, p := range d.cfg.Paths {
		if !p.Backup {
			d.trying++
		}
	}
	for i := range d.cfg.Paths {
		d.keeping.Go(func() { d.keep(ctx, d.cfg.Paths[i]) })
	}
	select {
	case <-d.opened:
	case <-ctx.Done():
		d.finish(nil, ctx.Err())
		<-d.opened
	}
	if d.openErr != nil {
		return nil, d.openErr
	}
	// Paths stop redialing once the session is over.
	go func() { // ends with the session
		<-d.sess.Done()
		close(d.stop)
	}()
	return d.sess, nil
}

// Wait returns once the session has ended (or failed to open) and every
// path's goroutine is gone.
func (d *Dial) Wait() {
	<-d.stop
	d.keeping.Wait()
}

// finish records the outcome of opening; the first call wins and it
// reports whether this one did.
func (d *Dial) finish(s *session.Session, err error) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	select {
	case <-d.opened:
		return false
	default:
	}
	d.sess, d.openErr = s, err
	close(d.opened)
	if s == nil {
		close(d.stop)
	}
	return true
}

// keep dials one path, joins it to the session, and dials again with
// backoff whenever it dies, for as long as the session lives.
func (d *Dial) keep(ctx context.Context, p Path) {
	backoff := 100 * time.Millisecond
	first := true
	for {
		var h session.Path
		conn, err := d.connect(ctx, p)
		if err == nil {
			h, err = d.attach(conn, p)
		}
		if first && !p.Backup {
			d.primaryTried()
		}
		if err == nil {
			backoff = 100 * time.Millisecond
			err = watch(conn, h)
			if err == nil {
				return // the session finished cleanly
			}
		}
		if first {
			first = false
			if d.firstFailed(err) {
				return
			}
		}
		var refused *Refusal
		if errors.As(err, &refused) || errors.Is(err, errSessionOver) {
			return
		}
		d.log.Info("path down", "path", p.Name, "reason", err, "retry_in", backoff)
		// Jitter keeps paths that died together from redialing together.
		wait := backoff/2 + rand.N(backoff/2+1)
		backoff = min(2*backoff, 2*time.Second)
		select {
		case <-time.After(wait):
		case <-d.stop:
			return
		}
	}
}

// firstFailed handles a path whose first attempt failed before the
// session opened: when every path has failed, the dial fails. It reports
// whether the path should give up.
func (d *Dial) firstFailed(err error) bool {
	d.mu.Lock()
	opened := d.sess != nil
	select {
	case <-d.opened:
		if d.sess == nil {
			d.mu.Unlock()
			return true
		}
	default:
	}
	if opened {
		d.mu.Unlock()
		return false
	}
	d.failed++
	all := d.failed == len(d.cfg.Paths)
	d.mu.Unlock()
	var refused *Refusal
	if all || errors.As(err, &refused) {
		d.finish(nil, err)
		return true
	}
	return false
}

// connect dials the path and runs the secure channel's handshake on it.
func (d *Dial) connect(ctx context.Context, p Path) (net.Conn, error) {
	d.mu.Lock()
	opened := d.sess != nil
	d.mu.Unlock()
	if opened {
		// Before the session opens, the caller's context bounds the dial;
		// after, only the session's life does.
		ctx = context.WithoutCancel(ctx)
	}
	ctx, cancel := context.WithTimeout(ctx, d.cfg.HandshakeTimeout)
	defer cancel()
	go func() {
		select {
		case <-d.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	conn, err := p.dial(ctx, d.cfg.Server)
	if err != nil {
		return nil, fmt.Errorf("path %s: %w", p.Name, err)
	}
	return d.secure(conn, p)
}

// secure runs the secure channel's handshake when there is a password;
// the v2 handshake then goes inside. A server's refusal (no password, or
// another) ends the dial.
func (d *Dial) secure(conn net.Conn, p Path) (net.Conn, error) {
	if d.cfg.Password == "" {
		return conn, nil
	}
	conn.SetDeadline(time.Now().Add(d.cfg.HandshakeTimeout))
	sc, err := secure.Client(conn, secure.KeyFromPassword(d.cfg.Password))
	if err != nil {
		conn.Close()
		var r *secure.Refusal
		if errors.As(err, &r) {
			return nil, &Refusal{&failure.Error{Reason: failure.Reason(r.Status), Msg: r.Msg}}
		}
		return nil, fmt.Errorf("path %s: %w", p.Name, err)
	}
	return sc, nil
}

// primaryTried records that a primary path's first attempt ended.
func (d *Dial) primaryTried() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.trying--
	close(d.tried)
	d.tried = make(chan struct{})
}

// backupHold is the longest a backup path holds back the OPEN for a
// primary path still connecting.
const backupHold = time.Second

// attach performs the handshake on conn: OPEN if no session exists and no
// other path is opening one, JOIN otherwise (after the OPEN succeeded).
// A backup path leaves the OPEN to a primary path still on its first
// attempt, for up to backupHold: the path that opens carries the first
// data, and a backup should carry none while a primary works.
func (d *Dial) attach(conn net.Conn, p Path) (session.Path, error) {
	var hold <-chan time.Time
	held := !p.Backup
	for {
		d.mu.Lock()
		sess, open := d.sess, d.sess == nil && d.attempt == nil
		attempt, tried := d.attempt, d.tried
		if open && !held && d.trying > 0 {
			d.mu.Unlock()
			if hold == nil {
				hold = time.After(min(backupHold, d.cfg.HandshakeTimeout))
			}
			select {
			case <-tried:
			case <-d.opened:
			case <-hold:
				held = true
			case <-d.stop:
				conn.Close()
				return session.Path{}, errSessionOver
			}
			continue
		}
		select {
		case <-d.opened:
			if sess == nil { // the dial failed for good
				d.mu.Unlock()
				conn.Close()
				return session.Path{}, errSessionOver
			}
		default:
		}
		if open {
			attempt = make(chan struct{})
			d.attempt = attempt
		}
		d.mu.Unlock()
		if sess != nil {
			return d.join(conn, p, sess)
		}
		if !open {
			// Another path is opening: join once it has, or take over if
			// its attempt fails.
			select {
			case <-d.opened:
			case <-attempt:
			case <-d.stop:
				conn.Close()
				return session.Path{}, errSessionOver
			}
			continue
		}
		h, err := d.open(conn, p)
		d.mu.Lock()
		if err != nil && d.sess == nil {
			// The server may have the OPEN: the next one needs a new CID.
			d.cid = NewCID()
		}
		d.attempt = nil
		close(attempt)
		d.mu.Unlock()
		return h, err
	}
}

func (d *Dial) open(conn net.Conn, p Path) (session.Path, error) {
	cfg := d.cfg.Session
	cfg.Logger = d.log
	if cfg.RecvWindow <= 0 {
		cfg.RecvWindow = session.DefaultRecvWindow
	}
	ext := p.ext()
	if (d.cfg.Cmd == wire.CmdUDP || d.cfg.Cmd == wire.CmdMux) && cfg.DatagramCopies {
		ext = wire.AppendExt(ext, wire.ExtSessionFlags, []byte{wire.SessionDatagramCopies})
	}
	d.mu.Lock()
	cid := d.cid
	d.mu.Unlock()
	req := &wire.Request{Kind: wire.KindOpen, CID: cid, Cmd: d.cfg.Cmd, Target: d.cfg.Target, Window: uint32(cfg.RecvWindow), Ext: ext}
	reply, _, err := d.handshake(conn, req)
	if err != nil {
		return session.Path{}, fmt.Errorf("path %s: %w", p.Name, err)
	}
	if reply.Status != wire.StatusOK {
		conn.Close()
		err := &Refusal{&failure.Error{Reason: failure.Reason(reply.Status), Msg: reply.Msg}}
		d.finish(nil, err)
		return session.Path{}, err
	}
	cfg.PeerWindow = reply.Window
	token, err := wire.Ext(reply.Ext, wire.ExtJoinToken)
	if err != nil {
		conn.Close()
		return session.Path{}, fmt.Errorf("path %s: %w", p.Name, err)
	}
	d.mu.Lock()
	d.token = token
	d.mu.Unlock()
	sess := session.New(cfg)
	h, err := sess.AddPath(conn, session.PathConfig{Name: p.Name, Backup: p.Backup})
	if err != nil {
		conn.Close()
		return h, err
	}
	if !d.finish(sess, nil) {
		// The caller gave up while this path was opening.
		sess.Reset(wire.RstClosed, "dial canceled")
		return h, errSessionOver
	}
	d.log.Debug("session open", "path", p.Name)
	return h, nil
}

func (d *Dial) join(conn net.Conn, p Path, sess *session.Session) (session.Path, error) {
	d.mu.Lock()
	ext := p.ext()
	if d.token != nil {
		ext = wire.AppendExt(ext, wire.ExtJoinToken, d.token)
	}
	cid := d.cid
	d.mu.Unlock()
	req := &wire.Request{Kind: wire.KindJoin, CID: cid, Window: sess.Window(), Ext: ext}
	reply, rtt, err := d.handshake(conn, req)
	if err != nil {
		return session.Path{}, fmt.Errorf("path %s: %w", p.Name, err)
	}
	if reply.Status != wire.StatusOK {
		conn.Close()
		if reply.Status == wire.StatusUnknownSession {
			sess.Forgotten()
			return session.Path{}, errSessionOver
		}
		return session.Path{}, fmt.Errorf("path %s: join refused: %s %s", p.Name, failure.Reason(reply.Status), reply.Msg)
	}
	h, err := sess.AddPath(conn, session.PathConfig{Name: p.Name, RTT: rtt, Backup: p.Backup})
	if err != nil {
		conn.Close()
		return h, errSessionOver
	}
	return h, nil
}

// handshake writes req and reads the reply, within the handshake timeout.
func (d *Dial) handshake(conn net.Conn, req *wire.Request) (*wire.Reply, time.Duration, error) {
	conn.SetDeadline(time.Now().Add(d.cfg.HandshakeTimeout))
	b, err := wire.AppendRequest(nil, req)
	if err != nil {
		conn.Close()
		return nil, 0, err
	}
	start := time.Now()
	if _, err := conn.Write(b); err != nil {
		conn.Close()
		return nil, 0, err
	}
	reply, err := wire.ReadReply(conn)
	if err != nil {
		conn.Close()
		return nil, 0, fmt.Errorf("handshake: %w", err)
	}
	conn.SetDeadline(time.Time{})
	return reply, time.Since(start), nil
}
