// Package accept is the server's front door. It takes each sub-connection
// a listener accepted, within a limit on those in their handshake; tells
// the versions apart by the first byte (v2, the secure channel, Leaf's
// v1); runs the secure channel's handshake when the server has a password;
// reads the v2 request; and keeps the table of sessions by connection ID
// that JOINs are checked against (token, path count) before their path is
// added. What an OPEN or a v1 session becomes is the server's: the door
// hands them over through the callbacks in Config.
package accept

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/mptp/mptp/internal/leaf"
	"github.com/mptp/mptp/internal/secure"
	"github.com/mptp/mptp/internal/session"
	"github.com/mptp/mptp/internal/wire"
)

// Config is what the door needs from the server.
type Config struct {
	// Password, when set, lets in only the secure channel.
	Password         string
	HandshakeTimeout time.Duration
	// MaxHandshakes bounds the sub-connections in their handshake at once.
	MaxHandshakes int
	// MaxPaths bounds the paths of one session: JOINs past it are refused.
	MaxPaths int
	Logger   *slog.Logger
	// Open is given each v2 OPEN, read and checked; it answers with
	// Open.Refuse or Open.Accept and serves the session.
	Open func(*Open)
	// V1 is given each Leaf v1 sub-connection, its handshake read; conn
	// reads whatever came behind the handshake first.
	V1 func(hs leaf.Handshake, conn net.Conn, log *slog.Logger)
	// Refused is told each sub-connection turned away in its handshake, by
	// reason (Reason's names, and "bad_version"), for the counters.
	Refused func(reason string)
}

// Errors of Admit.
var (
	ErrClosed = errors.New("mptp: server closed")
	ErrBusy   = errors.New("mptp: too many handshakes")
)

// Door is the front door of one server.
type Door struct {
	cfg Config

	mu       sync.Mutex
	conns    map[net.Conn]struct{} // in their handshake
	sessions map[[16]byte]*entry
	closed   bool
}

// New returns a door; cfg's callbacks must be set.
func New(cfg Config) *Door {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Door{cfg: cfg, conns: map[net.Conn]struct{}{}, sessions: map[[16]byte]*entry{}}
}

// Admit registers a sub-connection in its handshake, so that Close can cut
// it, unless the door is closed (ErrClosed) or as many are in their
// handshake as the limit allows (ErrBusy). Handle must follow an Admit.
func (d *Door) Admit(c net.Conn) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return ErrClosed
	}
	if len(d.conns) >= d.cfg.MaxHandshakes {
		return ErrBusy
	}
	d.conns[c] = struct{}{}
	return nil
}

// done takes a sub-connection out of its handshake.
func (d *Door) done(c net.Conn) {
	d.mu.Lock()
	delete(d.conns, c)
	d.mu.Unlock()
}

// Handshaking is the number of sub-connections in their handshake.
func (d *Door) Handshaking() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.conns)
}

// Idle reports whether no v2 session is in the table and no handshake is
// under way.
func (d *Door) Idle() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.sessions) == 0 && len(d.conns) == 0
}

// Count returns the number of tunnels and of other sessions in the table.
func (d *Door) Count() (tunnels, others int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.countLocked()
}

func (d *Door) countLocked() (tunnels, others int) {
	for _, e := range d.sessions {
		if e.tunnel {
			tunnels++
		}
	}
	return tunnels, len(d.sessions) - tunnels
}

// Close cuts the handshakes under way, resets the sessions in the table
// with reason code, and refuses what comes after.
func (d *Door) Close(code uint16, msg string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	for c := range d.conns {
		c.Close()
	}
	for _, e := range d.sessions {
		e.sess.Reset(code, msg)
	}
}

// Handle serves one admitted sub-connection through its handshake.
func (d *Door) Handle(conn net.Conn) {
	conn.SetDeadline(time.Now().Add(d.cfg.HandshakeTimeout))
	br := bufio.NewReaderSize(conn, 512)
	first, err := br.Peek(1)
	if err != nil {
		d.done(conn)
		conn.Close()
		return
	}
	log := d.cfg.Logger.With("peer", conn.RemoteAddr().String())
	version := first[0]
	if d.cfg.Password != "" || version == secure.Version {
		var ok bool
		if conn, br, ok = d.secure(conn, br, version, log); !ok {
			return
		}
		version = wire.Version // only v2 is spoken inside
	}
	switch version {
	case wire.Version:
		d.handleV2(conn, br, log)
	case leaf.Version:
		d.handleV1(conn, br, log)
	default:
		d.done(conn)
		d.cfg.Refused("bad_version")
		log.Info("handshake refused", "reason", fmt.Sprintf("unknown version 0x%02x", first[0]))
		conn.Close()
	}
}

func (d *Door) handleV2(conn net.Conn, br *bufio.Reader, log *slog.Logger) {
	req, err := wire.ReadRequest(br)
	// From here on the session, not Close, ends the sub-connection, so
	// that the client gets an RST rather than a cut.
	d.done(conn)
	if err == nil && br.Buffered() > 0 {
		err = errors.New("data before the handshake reply")
	}
	if err != nil {
		log.Info("handshake refused", "reason", err)
		d.refuse(conn, wire.StatusBadRequest, err.Error())
		return
	}
	flags, err := req.PathFlags()
	if err != nil {
		d.refuse(conn, wire.StatusBadRequest, err.Error())
		return
	}
	backup := flags&wire.PathBackup != 0
	if req.Kind == wire.KindJoin {
		d.join(conn, req, backup, log)
		return
	}
	d.cfg.Open(&Open{Req: req, Conn: conn, Backup: backup, Log: log, d: d})
}

// refuse answers a v2 request with status and closes the sub-connection.
func (d *Door) refuse(conn net.Conn, status byte, msg string) {
	d.cfg.Refused(Reason(status))
	conn.Write(wire.AppendReply(nil, &wire.Reply{Status: status, Msg: msg}))
	conn.Close()
}

func (d *Door) handleV1(raw net.Conn, br *bufio.Reader, log *slog.Logger) {
	hs, err := leaf.ReadHandshake(br)
	d.done(raw)
	if err != nil {
		d.cfg.Refused(Reason(wire.StatusBadRequest))
		log.Info("v1 handshake refused", "reason", err)
		raw.Close()
		return
	}
	raw.SetDeadline(time.Time{})
	// Leaf sends frames right behind the handshake: they may sit in br.
	d.cfg.V1(hs, &bufferedConn{Conn: raw, r: br}, log)
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

// entry is a v2 session in the table.
type entry struct {
	sess    *session.Session
	target  string
	token   []byte // secure sessions: what a JOIN must show
	tunnel  bool
	joining sync.Mutex
}
