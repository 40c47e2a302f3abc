package mux

import (
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/mptp/mptp/internal/deadline"
	"github.com/mptp/mptp/internal/failure"
)

// ErrReset is wrapped by the errors of a stream that was reset.
var ErrReset = syscall.ECONNRESET

// Stream is one reliable, ordered byte stream in a tunnel, in both
// directions, with half-close and reset: the net.Conn applications see.
//
// Its receive side is guarded by mu, its send side by the tunnel's mutex
// (the writer goroutine serves every stream). Lock order: mu, then the
// tunnel's.
type Stream struct {
	t      *Tunnel
	id     uint32
	cmd    byte
	target string

	// Receive side, guarded by mu.
	mu       sync.Mutex
	rq       byteQueue // received, unread
	rwin     recvWindow
	peerFin  bool
	readShut bool  // Close was called
	rerr     error // why reading fails, once the stream is reset
	readable chan struct{}
	rdl      *deadline.Deadline
	// Datagrams of the stream's association (datagram.go).
	dq        [][]byte
	dqBytes   int
	dqDropped uint64

	// Send side and life, guarded by t.mu.
	state    state
	opened   chan struct{} // closed when the peer's REPLY came (opener) or Accept/Refuse was called
	openErr  error
	sendq    byteQueue     // written, not yet taken by the writer
	wdone    chan struct{} // the writer took bytes from sendq
	credit   sendCredit
	finReq   bool
	finSent  bool
	peerFinT bool // the peer's FIN, as seen by the tunnel's side
	werr     error
	sched    schedItem
	linger   *time.Timer
	wdl      *deadline.Deadline
	sentN    uint64 // payload bytes sent, for stats
	recvN    uint64 // payload bytes received, guarded by mu
}

type state uint8

const (
	stateOpening state = iota // OPEN sent or received, no REPLY yet
	stateOpen
	stateGone // out of the table: finished, reset or refused
)

func newStream(t *Tunnel, id uint32, cmd byte, target string) *Stream {
	st := &Stream{
		t: t, id: id, cmd: cmd, target: target,
		rwin:     newRecvWindow(t.cfg.StreamWindow, t.cfg.MaxStreamWindow),
		readable: make(chan struct{}, 1),
		opened:   make(chan struct{}),
		wdone:    make(chan struct{}, 1),
		rdl:      deadline.New(),
		wdl:      deadline.New(),
	}
	st.sched.st = st
	return st
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// ID is the stream's number in its tunnel.
func (st *Stream) ID() uint32 { return st.id }

// Cmd is the command of the stream's OPEN (CONNECT, UDP, ...).
func (st *Stream) Cmd() byte { return st.cmd }

// Target is the "host:port" the opener asked for.
func (st *Stream) Target() string { return st.target }

// Accept answers an OPEN from the peer with OK: the stream carries data
// from now on.
func (st *Stream) Accept() error {
	t := st.t
	t.mu.Lock()
	defer t.mu.Unlock()
	if st.state != stateOpening {
		return st.errLocked()
	}
	st.state = stateOpen
	close(st.opened)
	t.opened(st)
	t.queue(AppendReply(nil, st.id, 0, uint32(st.rwin.size), ""))
	return nil
}

// Refuse answers an OPEN from the peer with a failure; the stream is gone.
func (st *Stream) Refuse(reason failure.Reason, msg string) {
	t := st.t
	t.mu.Lock()
	defer t.mu.Unlock()
	if st.state != stateOpening {
		return
	}
	st.openErr = &failure.Error{Reason: reason, Msg: msg}
	close(st.opened)
	t.queue(AppendReply(nil, st.id, byte(reason), 0, msg))
	t.remove(st)
}

func (st *Stream) errLocked() error {
	switch {
	case st.werr != nil:
		return st.werr
	case st.openErr != nil:
		return st.openErr
	}
	return net.ErrClosed
}

// Read reads the peer's bytes; io.EOF after its FIN.
func (st *Stream) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	for {
		st.mu.Lock()
		if st.rq.len() > 0 {
			n := st.rq.read(b)
			st.consumed(n)
			st.mu.Unlock()
			return n, nil
		}
		err := st.readErrLocked()
		st.mu.Unlock()
		if err != nil {
			return 0, err
		}
		select {
		case <-st.readable:
		case <-st.rdl.Done():
			return 0, os.ErrDeadlineExceeded
		}
	}
}

// readErrLocked is why nothing more can be read, once the queue is empty:
// nil while the peer may still send. Called with st.mu held.
func (st *Stream) readErrLocked() error {
	switch {
	case st.readShut:
		return net.ErrClosed
	case st.rerr != nil:
		return st.rerr
	case st.peerFin:
		return io.EOF
	}
	return nil
}

// consumed returns window for n bytes read or dropped. Called with st.mu
// held; takes the tunnel's lock.
func (st *Stream) consumed(n int) {
	var inc uint32
	if !st.peerFin && st.rerr == nil {
		inc = st.rwin.consume(n, time.Now(), st.t.rtt())
	}
	st.t.consumed(st.id, n, inc)
}

// sendBuffer bounds what a stream holds written and not yet taken by the
// tunnel's writer. Write returns once its bytes are in, as a socket's
// does, so that the application makes its next bytes while these go out.
const sendBuffer = 256 << 10

// Write queues b to be sent; it blocks while the stream's send buffer is
// full, which the stream's and the tunnel's windows pace.
func (st *Stream) Write(b []byte) (int, error) {
	t := st.t
	n := 0
	for {
		t.mu.Lock()
		if err := st.writableLocked(); err != nil {
			t.mu.Unlock()
			return n, err
		}
		if room := min(sendBuffer-st.sendq.len(), TunnelSendBuffer-t.queued); room > 0 && n < len(b) {
			k := min(room, len(b)-n)
			st.sendq.write(b[n : n+k])
			t.queued += k
			n += k
			t.readyLocked(st)
		}
		troom := t.room
		t.mu.Unlock()
		if n == len(b) {
			return n, nil
		}
		select {
		case <-st.wdone:
		case <-troom:
		case <-st.wdl.Done():
			return n, os.ErrDeadlineExceeded
		}
	}
}

func (st *Stream) writableLocked() error {
	switch {
	case st.werr != nil:
		return st.werr
	case st.finReq:
		return fmt.Errorf("mux: write after close: %w", syscall.EPIPE)
	case st.state != stateOpen:
		return st.errLocked()
	}
	return nil
}

// CloseWrite sends FIN after every written byte; reading goes on.
func (st *Stream) CloseWrite() error {
	t := st.t
	t.mu.Lock()
	defer t.mu.Unlock()
	if st.werr != nil {
		return st.werr
	}
	st.closeWriteLocked()
	return nil
}

func (st *Stream) closeWriteLocked() {
	if st.finReq || st.state == stateGone {
		return
	}
	st.finReq = true
	if st.sendq.len() == 0 && st.state == stateOpen {
		st.sendFinLocked()
	}
	// Else the writer sends FIN after the buffered bytes.
}

func (st *Stream) sendFinLocked() {
	if st.finSent {
		return
	}
	st.finSent = true
	st.t.queue(AppendFin(nil, st.id))
	st.t.finishedLocked(st)
}

// Close ends the application's use of the stream, like closing a TCP
// socket: written bytes are still delivered and FIN follows them; unread
// bytes, or bytes that arrive later, reset the stream. A peer that does
// not finish within the linger time is reset too.
func (st *Stream) Close() error {
	st.mu.Lock()
	if st.readShut {
		st.mu.Unlock()
		return nil
	}
	st.readShut = true
	n := st.rq.len()
	unread := n > 0
	st.rq.reset()
	signal(st.readable)
	if n > 0 {
		st.t.consumed(st.id, n, 0) // the tunnel's window must not shrink
	}
	st.mu.Unlock()
	t := st.t
	t.mu.Lock()
	defer t.unlock()
	switch {
	case st.state == stateGone:
		return nil
	case st.state == stateOpening:
		// Opened by the peer and neither accepted nor refused yet.
		st.resetLocked(RstClosed, "closed before accept", true)
		return nil
	case unread:
		st.resetLocked(RstClosed, "closed with unread data", true)
		return nil
	}
	st.closeWriteLocked()
	if st.state != stateGone {
		st.linger = time.AfterFunc(t.cfg.Linger, func() {
			t.mu.Lock()
			defer t.unlock()
			st.resetLocked(RstLinger, "peer did not finish in time", true)
		})
	}
	return nil
}

// Reset aborts the stream: the peer's reads and writes fail with code.
func (st *Stream) Reset(code uint16, msg string) {
	t := st.t
	t.mu.Lock()
	defer t.unlock()
	st.resetLocked(code, msg, true)
}

// resetLocked ends the stream at once; local tells whether the peer must
// hear of it. Called with t.mu held.
func (st *Stream) resetLocked(code uint16, msg string, local bool) {
	if st.state == stateGone {
		return
	}
	var err error
	if local {
		err = fmt.Errorf("mux: stream reset (%s): %w", msg, ErrReset)
		st.t.queue(AppendRst(nil, TypeRst, st.id, code, msg))
	} else {
		err = fmt.Errorf("mux: stream reset by peer (code %d %s): %w", code, msg, ErrReset)
	}
	st.failLocked(err)
}

// failLocked ends the stream with err. Called with t.mu held; the receive
// side learns of it once t.mu is released (t.unlock), as the lock order
// demands.
func (st *Stream) failLocked(err error) {
	if st.state == stateGone {
		return
	}
	if st.state == stateOpening {
		st.openErr = err
		close(st.opened)
	}
	st.werr = err
	signal(st.wdone)
	st.t.remove(st)
	st.t.deferred = append(st.t.deferred, func() {
		st.mu.Lock()
		if st.rerr == nil {
			st.rerr = err
		}
		// Bytes that came before the reset stay readable, as in the
		// session: a reply cut short is still the reply's start.
		signal(st.readable)
		st.mu.Unlock()
	})
}

func (st *Stream) LocalAddr() net.Addr  { return st.t.cfg.LocalAddr }
func (st *Stream) RemoteAddr() net.Addr { return Addr(st.target) }

func (st *Stream) SetDeadline(t time.Time) error {
	st.rdl.Set(t)
	st.wdl.Set(t)
	return nil
}
func (st *Stream) SetReadDeadline(t time.Time) error { st.rdl.Set(t); return nil }
func (st *Stream) SetWriteDeadline(t time.Time) error {
	st.wdl.Set(t)
	signal(st.wdone) // a blocked Write looks at the new deadline
	return nil
}

// Addr is a stream's target as a net.Addr.
type Addr string

func (Addr) Network() string  { return "mptp" }
func (a Addr) String() string { return string(a) }
