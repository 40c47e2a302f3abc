// Package mux carries many streams over one reliable, ordered byte stream:
// a tunnel's session, whose bytes the session spreads over every path. Each
// stream is a net.Conn with its own flow-control window; the tunnel has one
// more window over all of them, as QUIC has. The layout is specified in
// docs/PROTOCOL.md section 15.
//
// A Tunnel owns two goroutines: a reader that demultiplexes frames into
// streams, and a writer that serves the streams' data in the order the
// scheduler picks, control frames first; and a third that hands datagrams
// to the streams that are UDP associations, when it carries datagrams.
package mux

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/mptp/mptp/internal/failure"
)

// Config tunes a tunnel. Zero values take the defaults.
type Config struct {
	// Client tunnels open odd stream IDs, servers even ones.
	Client bool
	// StreamWindow is a new stream's receive window; it grows with the
	// reader's pace up to MaxStreamWindow. Defaults 256 KiB and 4 MiB: a quarter of
	// the tunnel window, so that a stream whose reader stops after a fast
	// start cannot hold all of it.
	StreamWindow, MaxStreamWindow uint32
	// TunnelWindow caps the bytes received and not yet read over all the
	// tunnel's streams. Default 16 MiB.
	TunnelWindow uint32
	// MaxStreams caps the streams the peer may have open at once; an OPEN
	// past it is refused. Default DefaultMaxStreams.
	MaxStreams int
	// Accept is called for each stream the peer opens, by the tunnel's
	// reader: it must not block (start a goroutine), and that goroutine
	// must call Accept or Refuse on the stream. Nil refuses them all.
	Accept func(*Stream)
	// Admit, if set, may refuse an OPEN before a stream exists (a rate
	// limit, say): it returns "" to let it in, else the name of the limit.
	Admit func() string
	// Refused, if set, is called with the name of the limit at which an
	// OPEN was refused.
	Refused func(limit string)
	// Opened is called with every stream as it opens (the peer's REPLY OK
	// came, or this end accepted it), and Ended as an open stream leaves
	// the table; remote tells whether the peer opened it. They are called
	// with the tunnel's lock held: they must be quick.
	Opened func(st *Stream, remote bool)
	Ended  func(st *Stream, remote bool)
	// RTT gives the tunnel's round-trip time, which window auto-tuning
	// needs. Nil: windows do not grow.
	RTT func() time.Duration
	// Datagrams, if set, carries the datagrams of streams that are UDP
	// associations, and the tunnel reads them in a third goroutine.
	Datagrams Datagrams
	// Linger bounds how long a closed stream waits for its peer's FIN.
	// Default 30 s.
	Linger    time.Duration
	LocalAddr net.Addr
	Logger    *slog.Logger
}

// Defaults.
const (
	DefaultStreamWindow    = 256 << 10
	DefaultMaxStreamWindow = 4 << 20
	DefaultTunnelWindow    = 16 << 20
	DefaultMaxStreams      = 16384
)

func (c *Config) defaults() {
	if c.StreamWindow == 0 {
		c.StreamWindow = DefaultStreamWindow
	}
	if c.MaxStreamWindow == 0 {
		c.MaxStreamWindow = DefaultMaxStreamWindow
	}
	c.MaxStreamWindow = max(c.MaxStreamWindow, c.StreamWindow)
	if c.TunnelWindow == 0 {
		c.TunnelWindow = DefaultTunnelWindow
	}
	if c.MaxStreams <= 0 {
		c.MaxStreams = DefaultMaxStreams
	}
	if c.Linger <= 0 {
		c.Linger = 30 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// ErrTunnelClosed is wrapped by the errors of streams whose tunnel ended.
var ErrTunnelClosed = errors.New("mux: tunnel closed")

// ErrGoaway is returned by Open once the peer said it takes no more streams.
var ErrGoaway = errors.New("mux: the peer takes no new streams (GOAWAY)")

// Tunnel multiplexes streams over conn.
type Tunnel struct {
	conn io.ReadWriteCloser
	cfg  Config

	mu       sync.Mutex
	streams  map[uint32]*Stream
	nextID   uint32
	peerMax  uint32 // the highest stream ID the peer opened
	ctrl     []byte // control frames for the writer, in order
	sched    scheduler
	credit   sendCredit // the tunnel's send window
	rwin     recvWindow // the tunnel's receive window
	err      error
	goaway   bool // the peer takes no new streams
	draining bool // this end takes no new streams and closes when none is left
	deferred []func()
	stats    Stats
	// queued is what all streams hold in their send buffers; room is
	// closed (and replaced) when it drops below TunnelSendBuffer again.
	queued int
	room   chan struct{}
	// refusals logged: one line a second, with the count since the last.
	refusedLog   time.Time
	refusedQuiet int

	wake chan struct{}
	done chan struct{} // closed when both goroutines are gone
	live int
}

// Stats are a tunnel's stream counters.
type Stats struct {
	Open           int    // streams in the table
	OpenedLocal    uint64 // streams this end opened
	OpenedRemote   uint64 // streams the peer opened and this end took
	Refused        uint64 // OPENs refused at a limit
	BytesSent      uint64 // DATA payload
	BytesReceived  uint64
	BufferedUnread uint64 // received and not yet read, all streams
	BufferedUnsent int    // written and not yet taken by the writer
}

// New starts a tunnel over conn and its two goroutines. Each end sends its
// tunnel window first.
func New(conn io.ReadWriteCloser, cfg Config) *Tunnel {
	cfg.defaults()
	t := &Tunnel{
		conn:    conn,
		cfg:     cfg,
		streams: map[uint32]*Stream{},
		nextID:  2,
		rwin:    newRecvWindow(cfg.TunnelWindow, cfg.TunnelWindow),
		wake:    make(chan struct{}, 1),
		room:    make(chan struct{}),
		done:    make(chan struct{}),
		live:    2,
	}
	if cfg.Datagrams != nil {
		t.live = 3
	}
	if cfg.Client {
		t.nextID = 1
	}
	// The tunnel window starts at 0: the WINDOW frame on stream 0 that
	// each end sends first grants it.
	t.rwin.limit = uint64(cfg.TunnelWindow)
	t.ctrl = AppendWindow(t.ctrl, 0, cfg.TunnelWindow)
	go t.readLoop()
	go t.writeLoop()
	if cfg.Datagrams != nil {
		go t.datagramLoop()
	}
	return t
}

// Done is closed when the tunnel has ended and its goroutines are gone.
func (t *Tunnel) Done() <-chan struct{} { return t.done }

// Err is why the tunnel ended.
func (t *Tunnel) Err() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.err
}

// Stats returns the tunnel's counters.
func (t *Tunnel) Stats() Stats {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.stats
	s.Open = len(t.streams)
	s.BufferedUnread = t.rwin.buffered()
	s.BufferedUnsent = t.queued
	return s
}

// Usable reports whether Open may succeed: the tunnel lives and the peer
// has not sent GOAWAY.
func (t *Tunnel) Usable() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.err == nil && !t.goaway
}

// unlock releases t.mu, then runs what had to wait for it (the receive
// sides of streams that ended: their lock comes first in the lock order).
func (t *Tunnel) unlock() {
	fns := t.deferred
	t.deferred = nil
	t.mu.Unlock()
	for _, fn := range fns {
		fn()
	}
}

// minTuneRTT is the least round trip auto-tuning assumes. A WINDOW frame
// waits in the session for its turn, its ACK and its path, longer than
// a path's RTT on a fast link: a window the reader goes through in less
// than this is too small whatever the paths' RTT.
const minTuneRTT = 10 * time.Millisecond

func (t *Tunnel) rtt() time.Duration {
	if t.cfg.RTT == nil {
		return 0
	}
	return max(t.cfg.RTT(), minTuneRTT)
}

// queue adds a control frame for the writer. Called with t.mu held.
func (t *Tunnel) queue(frame []byte) {
	if t.err != nil {
		return
	}
	t.ctrl = append(t.ctrl, frame...)
	signal(t.wake)
}

// readyLocked queues st's data with the scheduler if it can send now.
func (t *Tunnel) readyLocked(st *Stream) {
	if st.sendq.len() > 0 && st.credit.avail() > 0 && st.state == stateOpen {
		t.sched.ready(&st.sched)
		signal(t.wake)
	}
}

// remove takes st out of the table. Called with t.mu held.
func (t *Tunnel) remove(st *Stream) {
	if st.state == stateGone {
		return
	}
	wasOpen := st.state == stateOpen
	st.state = stateGone
	t.took(st.sendq.len())
	st.sendq.reset() // never to be sent
	if st.linger != nil {
		st.linger.Stop()
	}
	if t.streams[st.id] == st {
		delete(t.streams, st.id)
		if t.draining {
			signal(t.wake) // the writer closes the tunnel once none is left
		}
		if wasOpen && t.cfg.Ended != nil {
			t.cfg.Ended(st, t.remote(st))
		}
	}
}

// remote reports whether the peer opened st.
func (t *Tunnel) remote(st *Stream) bool { return st.id%2 != t.nextID%2 }

// opened reports a stream that became open. Called with t.mu held.
func (t *Tunnel) opened(st *Stream) {
	if t.cfg.Opened != nil {
		t.cfg.Opened(st, t.remote(st))
	}
}

// finishedLocked removes st once both directions have ended cleanly.
func (t *Tunnel) finishedLocked(st *Stream) {
	if st.finSent && st.peerFinT {
		t.remove(st)
	}
}

// consumed returns tunnel window for n bytes a stream's reader took or
// dropped, and queues the stream's own increment inc. Called with the
// stream's mu held (or none).
func (t *Tunnel) consumed(id uint32, n int, inc uint32) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if n > 0 {
		if tinc := t.rwin.consume(n, time.Now(), 0); tinc > 0 {
			t.queue(AppendWindow(nil, 0, tinc))
		}
	}
	if inc > 0 && t.streams[id] != nil {
		t.queue(AppendWindow(nil, id, inc))
	}
}

// Open opens a stream to target and waits for the peer's answer: the
// target's connect result. A refusal is a *failure.Error.
func (t *Tunnel) Open(ctx context.Context, cmd byte, target string) (*Stream, error) {
	t.mu.Lock()
	switch {
	case t.err != nil:
		err := t.err
		t.mu.Unlock()
		return nil, err
	case t.goaway || t.draining:
		t.mu.Unlock()
		return nil, ErrGoaway
	case t.nextID > 1<<31:
		t.goaway = true
		t.mu.Unlock()
		return nil, ErrGoaway
	}
	st := newStream(t, t.nextID, cmd, target)
	frame, err := AppendOpen(nil, st.id, cmd, uint32(st.rwin.size), target)
	if err != nil {
		t.mu.Unlock()
		return nil, err
	}
	t.nextID += 2
	t.streams[st.id] = st
	t.stats.OpenedLocal++
	t.queue(frame)
	t.mu.Unlock()
	select {
	case <-st.opened:
	case <-ctx.Done():
		t.mu.Lock()
		st.resetLocked(RstClosed, "open canceled", true)
		t.unlock()
		<-st.opened
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if st.state != stateOpen {
		if ctx.Err() != nil && !errors.As(st.openErr, new(*failure.Error)) {
			return nil, ctx.Err()
		}
		return nil, st.openErr
	}
	return st, nil
}

// Close ends the tunnel: every stream fails, and conn is closed.
func (t *Tunnel) Close() error {
	t.fail(ErrTunnelClosed)
	<-t.done
	return nil
}

// Drain tells the peer to open no more streams here (GOAWAY) and closes
// the tunnel once the streams open now have ended.
func (t *Tunnel) Drain(code uint16, msg string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.draining {
		return
	}
	t.draining = true
	t.queue(AppendRst(nil, TypeGoaway, 0, code, msg))
}

// drained reports whether a draining tunnel has nothing left to do.
// Called with t.mu held.
func (t *Tunnel) drained() bool {
	return t.draining && len(t.streams) == 0 && len(t.ctrl) == 0
}

// fail ends the tunnel with err: every stream fails with it.
func (t *Tunnel) fail(err error) {
	t.mu.Lock()
	if t.err != nil {
		t.mu.Unlock()
		return
	}
	if !errors.Is(err, ErrTunnelClosed) {
		err = fmt.Errorf("%w: %w", ErrTunnelClosed, err)
	}
	t.err = err
	t.ctrl = nil
	for _, st := range t.streams {
		st.failLocked(err)
	}
	signal(t.wake)
	t.unlock()
	t.conn.Close()
}

// finish ends a drained tunnel like a TCP close: a half-close after the
// last frame, so that every byte sent is delivered; the reader goes on
// until the peer closes too. A conn without half-close is closed.
func (t *Tunnel) finish() {
	if cw, ok := t.conn.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
		return
	}
	t.fail(ErrTunnelClosed)
}

func (t *Tunnel) exit() {
	t.mu.Lock()
	t.live--
	last := t.live == 0
	t.mu.Unlock()
	if last {
		close(t.done)
	}
}

// protoError is a peer's breach of the rules; it ends the tunnel.
type protoError struct{ msg string }

func (e *protoError) Error() string { return "mux: protocol error: " + e.msg }

func (t *Tunnel) readLoop() {
	defer t.exit()
	br := bufio.NewReaderSize(t.conn, 16<<10)
	// Large payloads are read into pooled blocks, which go back to the
	// pool as the application reads them.
	var pooled *[]byte
	alloc := func(n int) []byte {
		if n < blockSize/8 {
			pooled = nil
			return make([]byte, n)
		}
		pooled = blockPool.Get().(*[]byte)
		return (*pooled)[:n]
	}
	for {
		f, err := ReadFrame(br, alloc)
		if f.Type == TypeData && err == nil {
			f.block = block{data: f.Data, pool: pooled}
		} else if pooled != nil {
			blockPool.Put(pooled)
		}
		pooled = nil
		if err != nil {
			if errors.Is(err, ErrFrame) {
				err = &protoError{err.Error()}
			}
			t.fail(err)
			return
		}
		if err := t.handle(f); err != nil {
			t.cfg.Logger.Info("tunnel closed", "reason", err)
			t.fail(err)
			return
		}
	}
}

// handle applies one frame from the peer.
func (t *Tunnel) handle(f Frame) error {
	if f.Type == TypeData {
		return t.handleData(f)
	}
	t.mu.Lock()
	defer t.unlock()
	if t.err != nil {
		return nil
	}
	if f.Type == TypeOpen {
		return t.handleOpen(f)
	}
	if f.Stream == 0 {
		switch f.Type {
		case TypeWindow:
			if !t.credit.grant(f.Window) {
				return &protoError{"tunnel window overflow"}
			}
			t.wakeReady()
		case TypeGoaway:
			t.goaway = true
			t.cfg.Logger.Info("peer takes no new streams", "code", f.Code, "reason", f.Msg)
		}
		return nil
	}
	st := t.streams[f.Stream]
	if st == nil {
		// A stream this end has reset or finished: frames in flight
		// when it did are normal. DATA was dealt with in handleData.
		return nil
	}
	switch f.Type {
	case TypeReply:
		if st.id%2 != t.nextID%2 || st.state != stateOpening {
			return &protoError{fmt.Sprintf("REPLY for stream %d, not one this end is opening", f.Stream)}
		}
		if f.Code != 0 {
			st.openErr = &failure.Error{Reason: failure.Reason(f.Code), Msg: f.Msg}
			close(st.opened)
			t.remove(st)
			return nil
		}
		st.state = stateOpen
		st.credit.limit = uint64(f.Window)
		close(st.opened)
		t.opened(st)
	case TypeWindow:
		if !st.credit.grant(f.Window) {
			st.resetLocked(RstProtocol, "window overflow", true)
			return nil
		}
		t.readyLocked(st)
	case TypeFin:
		st.peerFinT = true
		t.deferred = append(t.deferred, func() {
			st.mu.Lock()
			st.peerFin = true
			signal(st.readable)
			st.mu.Unlock()
		})
		t.finishedLocked(st)
	case TypeRst:
		st.resetLocked(f.Code, f.Msg, false)
	}
	return nil
}

// wakeReady queues every stream that waited for tunnel credit. Called with
// t.mu held.
func (t *Tunnel) wakeReady() {
	for _, st := range t.streams {
		t.readyLocked(st)
	}
}

// handleOpen admits or refuses a stream the peer opens. Called with t.mu
// held.
func (t *Tunnel) handleOpen(f Frame) error {
	if f.Stream%2 == t.nextID%2 || f.Stream <= t.peerMax {
		return &protoError{fmt.Sprintf("OPEN of stream %d: not a new ID of the peer's", f.Stream)}
	}
	t.peerMax = f.Stream
	if len(t.ctrl) > maxPendingCtrl {
		// Refusals pile up unread: the peer opens and does not listen.
		return &protoError{"OPENs faster than their replies are read"}
	}
	refuse := func(reason failure.Reason, limit string) {
		t.stats.Refused++
		if now := time.Now(); now.Sub(t.refusedLog) >= time.Second {
			t.cfg.Logger.Warn("stream refused", "limit", limit, "target", f.Target, "more_since_last", t.refusedQuiet)
			t.refusedLog, t.refusedQuiet = now, 0
		} else {
			t.refusedQuiet++
		}
		if t.cfg.Refused != nil {
			t.cfg.Refused(limit)
		}
		t.queue(AppendReply(nil, f.Stream, byte(reason), 0, "limit="+limit))
	}
	switch {
	case t.cfg.Accept == nil:
		t.queue(AppendReply(nil, f.Stream, byte(failure.CmdUnsupported), 0, "this end accepts no streams"))
		return nil
	case t.draining:
		refuse(failure.General, "draining")
		return nil
	case len(t.streams) >= t.cfg.MaxStreams:
		refuse(failure.General, "max_streams")
		return nil
	}
	if t.cfg.Admit != nil {
		if limit := t.cfg.Admit(); limit != "" {
			refuse(failure.General, limit)
			return nil
		}
	}
	st := newStream(t, f.Stream, f.Cmd, f.Target)
	st.credit.limit = uint64(f.Window)
	t.streams[st.id] = st
	t.stats.OpenedRemote++
	accept := t.cfg.Accept
	t.deferred = append(t.deferred, func() { accept(st) })
	return nil
}

// neverOpened reports whether no stream of this ID was ever opened, by
// either end. Called with t.mu held.
func (t *Tunnel) neverOpened(id uint32) bool {
	if id%2 == t.nextID%2 {
		return id >= t.nextID
	}
	return id > t.peerMax
}

// handleData hands a DATA payload to its stream.
func (t *Tunnel) handleData(f Frame) error {
	kept := false
	defer func() {
		if !kept {
			f.block.release()
		}
	}()
	n := len(f.Data)
	t.mu.Lock()
	if !t.rwin.receive(n) {
		t.mu.Unlock()
		return &protoError{"DATA beyond the tunnel window"}
	}
	t.stats.BytesReceived += uint64(n)
	st := t.streams[f.Stream]
	if st == nil || st.state != stateOpen || st.peerFinT {
		var err error
		if st != nil && st.state == stateOpen {
			st.resetLocked(RstProtocol, "DATA after FIN", true)
		} else if st != nil && st.state == stateOpening {
			st.resetLocked(RstProtocol, "DATA before REPLY", true)
		} else if t.neverOpened(f.Stream) {
			err = &protoError{fmt.Sprintf("DATA on stream %d, never opened", f.Stream)}
		}
		t.unlock()
		t.consumed(0, n, 0) // dropped: its tunnel window comes back
		return err
	}
	t.mu.Unlock()
	st.mu.Lock()
	defer st.mu.Unlock()
	switch {
	case st.rerr != nil:
		t.consumed(0, n, 0)
		return nil
	case st.readShut:
		t.consumed(0, n, 0)
		st.mu.Unlock()
		st.Reset(RstClosed, "data after close")
		st.mu.Lock()
		return nil
	case !st.rwin.receive(n):
		t.consumed(0, n, 0)
		st.mu.Unlock()
		st.Reset(RstWindow, "DATA beyond the stream window")
		st.mu.Lock()
		return nil
	}
	st.recvN += uint64(n)
	st.rq.push(f.block)
	kept = true
	signal(st.readable)
	return nil
}

// maxPendingCtrl bounds the control frames waiting for the writer; an
// OPEN that finds more is a protocol error (see handleOpen).
const maxPendingCtrl = 1 << 20

// TunnelSendBuffer bounds what all of a tunnel's streams together hold
// written and not yet taken by the writer, whatever the peer's windows: a
// peer that grants windows and does not read must not make this end hold
// a full send buffer per stream.
const TunnelSendBuffer = 4 << 20

// took counts n bytes the writer took from the streams' send buffers and
// wakes the writers that wait for the tunnel's room. Called with t.mu held.
func (t *Tunnel) took(n int) {
	full := t.queued >= TunnelSendBuffer
	t.queued -= n
	if full && t.queued < TunnelSendBuffer {
		close(t.room)
		t.room = make(chan struct{})
	}
}

// batchSize bounds one write into the session: big enough that the
// session takes large chunks, small enough that control frames and fresh
// streams do not wait long behind it.
const batchSize = 128 << 10

func (t *Tunnel) writeLoop() {
	defer t.exit()
	buf := make([]byte, 0, batchSize+MaxData+HeaderLen)
	for {
		t.mu.Lock()
		for t.err == nil && len(t.ctrl) == 0 && !t.dataReady() && !t.drained() {
			t.mu.Unlock()
			<-t.wake
			t.mu.Lock()
		}
		if t.drained() {
			t.mu.Unlock()
			t.finish()
			return
		}
		if t.err != nil {
			t.mu.Unlock()
			return
		}
		buf = append(buf[:0], t.ctrl...)
		t.ctrl = t.ctrl[:0]
		limit := batchSize
		if r, ok := t.conn.(roomer); ok && t.dataReady() {
			t.mu.Unlock()
			n, err := r.WaitRoom()
			if err != nil {
				t.fail(err)
				return
			}
			limit = min(batchSize, max(n, minBatch))
			t.mu.Lock()
		}
		buf = t.collect(buf, limit)
		t.unlock()
		if _, err := t.conn.Write(buf); err != nil {
			t.fail(err)
			return
		}
	}
}

func (t *Tunnel) dataReady() bool {
	return t.credit.avail() > 0 && (t.sched.fresh.len() > 0 || t.sched.bulk.len() > 0)
}

// roomer is a conn that says how much it takes now without holding it
// (a session, which keeps little queued ahead of its paths).
type roomer interface{ WaitRoom() (int, error) }

// minBatch is the least DATA a write takes when the conn has little room:
// fewer, larger writes.
const minBatch = 16 << 10

// collect appends DATA frames to buf up to limit bytes, the streams in the
// scheduler's order. Called with t.mu held.
func (t *Tunnel) collect(buf []byte, limit int) []byte {
	ok := func(it *schedItem) bool {
		st := it.st
		return st.state == stateOpen && st.sendq.len() > 0 && st.credit.avail() > 0
	}
	for len(buf) < limit && t.credit.avail() > 0 {
		it, turn := t.sched.pop(ok)
		if it == nil {
			break
		}
		st := it.st
		sent := 0
		for turn > 0 && st.sendq.len() > 0 && len(buf) < limit {
			n := min(st.sendq.len(), st.credit.avail(), t.credit.avail(), MaxData, turn, limit-len(buf)+HeaderLen)
			if n == 0 {
				break
			}
			buf = AppendDataHeader(buf, st.id, n)
			for k := n; k > 0; {
				p := st.sendq.peek(k)
				buf = append(buf, p...)
				st.sendq.discard(len(p))
				k -= len(p)
			}
			t.took(n)
			st.credit.sent += uint64(n)
			t.credit.sent += uint64(n)
			st.sentN += uint64(n)
			t.stats.BytesSent += uint64(n)
			turn -= n
			sent += n
		}
		idle := st.sendq.len() == 0
		t.sched.sent(it, sent, idle)
		if sent > 0 {
			signal(st.wdone) // a Write waiting for room
		}
		if idle {
			if st.finReq {
				buf = AppendFin(buf, st.id)
				st.finSent = true
				t.finishedLocked(st)
			}
		} else {
			t.readyLocked(st)
		}
	}
	return buf
}

// StreamInfo describes one open stream.
type StreamInfo struct {
	ID     uint32
	Target string
	// Sent and Received count DATA payload bytes.
	Sent, Received uint64
}

// StreamList describes up to max of the open streams, lowest IDs (the
// oldest) first.
func (t *Tunnel) StreamList(max int) []StreamInfo {
	t.mu.Lock()
	sts := make([]*Stream, 0, len(t.streams))
	for _, st := range t.streams {
		sts = append(sts, st)
	}
	t.mu.Unlock()
	slices.SortFunc(sts, func(a, b *Stream) int { return cmp.Compare(a.id, b.id) })
	sts = sts[:min(len(sts), max)]
	out := make([]StreamInfo, len(sts))
	for i, st := range sts {
		t.mu.Lock()
		sent := st.sentN
		t.mu.Unlock()
		st.mu.Lock()
		out[i] = StreamInfo{ID: st.id, Target: st.target, Sent: sent, Received: st.recvN}
		st.mu.Unlock()
	}
	return out
}
