package accept

import (
	"log/slog"
	"net"
	"time"

	"github.com/mptp/mptp/internal/session"
	"github.com/mptp/mptp/internal/wire"
)

// Open is a v2 OPEN the door has read: the server answers it with Refuse,
// or with Register and Accept.
type Open struct {
	Req *wire.Request
	// Conn is the sub-connection, its handshake deadline still set.
	Conn   net.Conn
	Backup bool // the path is a backup (its PATH_FLAGS)
	Log    *slog.Logger

	d *Door
	e *entry
}

// Refuse answers the OPEN with status and msg and closes the
// sub-connection.
func (o *Open) Refuse(status byte, msg string) { o.d.refuse(o.Conn, status, msg) }

// Register enters sess in the table under the OPEN's CID, so that JOINs
// find it once it is accepted. room decides, given the tunnels and other
// sessions in the table, whether one more fits the server's limits; it is
// called under the table's lock and must not call back into the door. On
// failure (the CID is taken, the door is closed, no room) Register resets
// sess, refuses the OPEN and reports false.
func (o *Open) Register(sess *session.Session, tunnel bool, room func(tunnels, others int) bool) bool {
	d := o.d
	d.mu.Lock()
	_, dup := d.sessions[o.Req.CID]
	full := false
	if !dup && !d.closed {
		full = !room(d.countLocked())
	}
	if dup || d.closed || full {
		closed := d.closed
		d.mu.Unlock()
		sess.Reset(wire.RstClosed, "not opened")
		switch {
		case dup:
			o.Refuse(wire.StatusSessionExists, "session exists")
		case closed:
			o.Refuse(wire.StatusBusy, "server closing")
		default:
			o.Log.Warn("session refused", "reason", "session limit reached")
			o.Refuse(wire.StatusBusy, "too many sessions")
		}
		return false
	}
	o.e = &entry{sess: sess, target: o.Req.Target, token: d.newJoinToken(), tunnel: tunnel}
	d.sessions[o.Req.CID] = o.e
	d.mu.Unlock()
	return true
}

// Forget takes the registered session out of the table: it has ended, or
// could not start. JOINs for it are refused as for an unknown session.
func (o *Open) Forget() {
	o.d.mu.Lock()
	if o.d.sessions[o.Req.CID] == o.e {
		delete(o.d.sessions, o.Req.CID)
	}
	o.d.mu.Unlock()
}

// Accept answers the registered OPEN with OK, the session's window and its
// join token, and adds the sub-connection as the session's first path. On
// failure the session is forgotten and reset, the sub-connection closed.
func (o *Open) Accept() error {
	sess := o.e.sess
	reply := &wire.Reply{Status: wire.StatusOK, Window: sess.Window()}
	if o.e.token != nil {
		reply.Ext = wire.AppendExt(nil, wire.ExtJoinToken, o.e.token)
	}
	_, err := o.Conn.Write(wire.AppendReply(nil, reply))
	if err == nil {
		o.Conn.SetDeadline(time.Time{})
		_, err = sess.AddPath(o.Conn, session.PathConfig{Name: o.Conn.RemoteAddr().String(), Backup: o.Backup})
	}
	if err != nil {
		o.Forget()
		sess.Reset(wire.RstClosed, "handshake failed")
		o.Conn.Close()
	}
	return err
}

// join adds a JOIN's sub-connection to its session, after checking its
// token and the session's path count.
func (d *Door) join(conn net.Conn, req *wire.Request, backup bool, log *slog.Logger) {
	d.mu.Lock()
	e := d.sessions[req.CID]
	d.mu.Unlock()
	if e == nil {
		log.Info("join refused", "reason", "unknown session")
		d.refuse(conn, wire.StatusUnknownSession, "unknown session")
		return
	}
	if !joinAllowed(e.token, req) {
		log.Info("join refused", "reason", "wrong join token")
		d.refuse(conn, wire.StatusAuthFailed, "wrong join token")
		return
	}
	// One join at a time per session, so the path count cannot pass the
	// limit between the check and the add.
	e.joining.Lock()
	defer e.joining.Unlock()
	if e.sess.PathCount() >= d.cfg.MaxPaths {
		d.refuse(conn, wire.StatusTooManyPaths, "too many paths")
		return
	}
	if _, err := conn.Write(wire.AppendReply(nil, &wire.Reply{Status: wire.StatusOK, Window: e.sess.Window()})); err != nil {
		conn.Close()
		return
	}
	conn.SetDeadline(time.Time{})
	if _, err := e.sess.AddPath(conn, session.PathConfig{Name: conn.RemoteAddr().String(), Backup: backup}); err != nil {
		conn.Close()
		return
	}
	log.Debug("path joined", "target", e.target)
}
