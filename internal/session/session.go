// Package session is mptp's v2 engine: one reliable, ordered byte stream in
// each direction, carried over any number of paths (sub-connections) that
// can join and die at any time. It is a net.Conn on both sides.
package session

import (
	"github.com/mptp/mptp/internal/deadline"

	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/mptp/mptp/internal/reorder"
	"github.com/mptp/mptp/internal/wire"
)

// Config tunes a session. Zero values take the defaults.
type Config struct {
	// RecvWindow caps the bytes held for the application (in order and
	// out of order). Default 4 MiB.
	RecvWindow int
	// SendBuffer caps the bytes written and not yet acknowledged. Default 4 MiB.
	SendBuffer int
	// ChunkSize is the largest DATA payload sent. Default and maximum
	// 65527 bytes, the most a frame holds.
	ChunkSize int
	// PeerWindow is the peer's initial receive window, from the handshake.
	PeerWindow uint32
	// Grace is how long the session waits for a path when it has none.
	// Default 30 s.
	Grace time.Duration
	// Linger bounds how long a closed session waits for the peer to
	// finish. Default 30 s.
	Linger time.Duration
	// PingInterval is how often a path that carries no data of its own
	// measures its RTT while the session is busy. Default 1 s.
	PingInterval time.Duration
	// IdlePing is how often a path pings once the session has carried no
	// data for 3 PingIntervals: a keepalive that costs about 4 packets per
	// interval. Data after such a spell probes every path at once.
	// Default 15 PingIntervals.
	IdlePing time.Duration
	// StaleFloor is the least time a path may owe an answer before it is
	// declared stale (the RTT sets it above this). Default 200 ms.
	StaleFloor time.Duration
	// Redundant sends every chunk on every path (lower latency, no
	// aggregation) instead of each chunk on the path expected to deliver it
	// soonest.
	Redundant bool
	// DatagramCopies sends each datagram on the two best paths instead of
	// the best one; the receiver drops the second copy.
	DatagramCopies bool
	Logger         *slog.Logger
	// LocalAddr and RemoteAddr are what the Conn methods report.
	LocalAddr, RemoteAddr net.Addr
}

// DefaultRecvWindow is the receive window when Config.RecvWindow is 0.
const DefaultRecvWindow = 4 << 20

// DefaultSendBuffer is the send buffer when Config.SendBuffer is 0.
const DefaultSendBuffer = 4 << 20

func (c *Config) defaults() {
	if c.RecvWindow <= 0 {
		c.RecvWindow = DefaultRecvWindow
	}
	if c.SendBuffer <= 0 {
		c.SendBuffer = DefaultSendBuffer
	}
	if c.ChunkSize <= 0 || c.ChunkSize > wire.MaxPayload {
		c.ChunkSize = wire.MaxPayload
	}
	if c.PeerWindow == 0 {
		c.PeerWindow = 64 << 10
	}
	if c.Grace <= 0 {
		c.Grace = 30 * time.Second
	}
	if c.Linger <= 0 {
		c.Linger = 30 * time.Second
	}
	if c.PingInterval <= 0 {
		c.PingInterval = time.Second
	}
	if c.IdlePing <= 0 {
		c.IdlePing = 15 * c.PingInterval
	}
	if c.StaleFloor <= 0 {
		c.StaleFloor = 200 * time.Millisecond
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// ErrReset is wrapped by the errors of a session that was reset.
var ErrReset = syscall.ECONNRESET

// Session is one multipath connection.
type Session struct {
	cfg   Config
	log   *slog.Logger
	start time.Time

	mu sync.Mutex
	// paths are the live paths; counters keeps per-name totals.
	paths    []*path
	counters map[string]*Counters
	troubles map[string]*trouble
	running  int // path goroutines alive

	send       sendBuf
	peerLimit  uint64    // the peer accepts bytes below this offset
	lastActive time.Time // data last written or received (active)
	finReq     bool      // CloseWrite was called
	finAcked   bool      // the peer has every byte up to send.end
	writeShut  bool

	recv       *reorder.Buffer
	peerFin    bool
	peerFinSeq uint64
	readShut   bool   // Close was called: incoming data is an error
	advLimit   uint64 // recv.Limit() when it was last advertised

	finished bool  // both directions done: paths end gracefully
	err      error // terminal error, if any
	sendRst  bool  // the reset is ours: tell the peer
	rstCode  uint16
	rstMsg   string
	ended    bool
	done     chan struct{}

	graceTimer  *time.Timer
	lingerTimer *time.Timer
	cutTimer    *time.Timer // closes paths that did not end by themselves

	readable chan struct{}
	writable chan struct{}
	rdl, wdl *deadline.Deadline

	// Datagrams (datagram.go).
	dgNext     uint32
	dgSeen     dedup
	dgIn       [][]byte
	dgInMem    int
	dgReadable chan struct{}
	dgStats    DatagramStats
}

// New returns a session with no paths yet.
func New(cfg Config) *Session {
	cfg.defaults()
	s := &Session{
		cfg:        cfg,
		log:        cfg.Logger,
		start:      time.Now(),
		counters:   map[string]*Counters{},
		troubles:   map[string]*trouble{},
		peerLimit:  uint64(cfg.PeerWindow),
		recv:       reorder.New(cfg.RecvWindow, 0),
		done:       make(chan struct{}),
		readable:   make(chan struct{}, 1),
		writable:   make(chan struct{}, 1),
		dgReadable: make(chan struct{}, 1),
		rdl:        deadline.New(),
		wdl:        deadline.New(),
	}
	s.advLimit = s.recv.Limit()
	// A session is created for a first path; until it comes, the grace
	// period applies as if every path had gone.
	s.graceTimer = time.AfterFunc(cfg.Grace, s.graceExpired)
	return s
}

// Window is the receive window to announce in a handshake.
func (s *Session) Window() uint32 { return uint32(s.cfg.RecvWindow) }

// Done is closed when the session has ended and its goroutines are gone.
func (s *Session) Done() <-chan struct{} { return s.done }

// Err is why the session ended, nil after a clean finish.
func (s *Session) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func (s *Session) wakeAll() {
	for _, p := range s.paths {
		signal(p.wake)
	}
}

// wakeSenders wakes the writers that may take new data. One whose window
// is full waits for an ACK, which wakes it: waking it now would only cost a
// futile round of its loop, for every chunk written.
func (s *Session) wakeSenders() {
	for _, p := range s.paths {
		if p.sent-p.delivered < p.est.cwnd() {
			signal(p.wake)
		}
	}
}

// Read reads the next bytes of the peer's stream.
func (s *Session) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	for {
		s.mu.Lock()
		if n := s.recv.Read(b); n > 0 {
			s.maybeUpdateWindow()
			s.mu.Unlock()
			return n, nil
		}
		var err error
		switch {
		case s.readShut:
			err = net.ErrClosed
		case s.peerFin && s.recv.Next() == s.peerFinSeq:
			err = io.EOF
		case s.err != nil:
			err = s.err
		}
		s.mu.Unlock()
		if err != nil {
			return 0, err
		}
		select {
		case <-s.readable:
		case <-s.done:
		case <-s.rdl.Done():
			return 0, os.ErrDeadlineExceeded
		}
	}
}

// maybeUpdateWindow sends a window update once reading has freed a quarter
// of the window, so a sender that waits for room learns of it.
func (s *Session) maybeUpdateWindow() {
	if s.recv.Limit()-s.advLimit < uint64(s.cfg.RecvWindow/4) {
		return
	}
	// On every path: the one that looks fastest may have gone silent, and
	// a sender waiting at the limit sends nothing that would call for an
	// ACK on another.
	for _, p := range s.paths {
		if !p.closing {
			p.ackDue = true
			signal(p.wake)
		}
	}
}

// Write queues b to be sent; it blocks while the send buffer is full.
func (s *Session) Write(b []byte) (int, error) {
	total := 0
	for len(b) > 0 {
		s.mu.Lock()
		switch {
		case s.err != nil:
			err := s.err
			s.mu.Unlock()
			return total, err
		case s.finReq:
			s.mu.Unlock()
			return total, fmt.Errorf("mptp: write after close: %w", syscall.EPIPE)
		}
		if space := s.room(); space > 0 {
			n := min(space, len(b))
			s.send.append(b[:n], s.cfg.ChunkSize)
			s.active(time.Now())
			b = b[n:]
			total += n
			s.wakeSenders()
			s.mu.Unlock()
			continue
		}
		s.mu.Unlock()
		select {
		case <-s.writable:
		case <-s.done:
		case <-s.wdl.Done():
			return total, os.ErrDeadlineExceeded
		}
	}
	return total, nil
}

// active records that the session carries data now. After an idle spell
// every path is probed at once: one that died while nothing was sent
// would otherwise be found only once data waits on it. Called with s.mu
// held.
func (s *Session) active(now time.Time) {
	if s.idle(now) {
		for _, p := range s.paths {
			p.lastPing = time.Time{}
			signal(p.wake)
		}
	}
	s.lastActive = now
}

// idle reports whether the session has carried no data for a while: its
// paths then ping at the IdlePing interval. Called with s.mu held.
func (s *Session) idle(now time.Time) bool {
	return now.Sub(s.lastActive) > 3*s.cfg.PingInterval
}

// room is how many bytes a writer may queue now: what the send buffer
// has left, and no more than keeps the unsent backlog at pace. Called with
// s.mu held.
func (s *Session) room() int {
	r, _ := s.roomPace()
	return r
}

func (s *Session) roomPace() (room int, pace uint64) {
	space := s.cfg.SendBuffer - s.send.buffered()
	backlog, pace := s.send.backlog(), s.pace()
	if backlog >= pace {
		return 0, pace
	}
	return min(space, int(pace-backlog)), pace
}

// pace is how many unsent bytes the session keeps ahead of its paths:
// enough that every path stays busy while the slowest one delivers a full
// window (the earliest-completion rule needs that depth before it gives a
// slow path anything), and little more, so that what is written next (a
// tunnel's new stream) waits behind little. Called with s.mu held.
func (s *Session) pace() uint64 {
	var rate float64
	var longest time.Duration
	for _, p := range s.paths {
		if p.usable() {
			rate += p.est.speed()
			longest = max(longest, p.est.arrival(p.est.cwnd()))
		}
	}
	return max(minPace, uint64(2*rate*longest.Seconds()))
}

// minPace is the least backlog a writer may queue, also while no path is
// up: two full chunks.
const minPace = 128 << 10

// wakeWriter wakes a writer waiting for room once there is a fair amount,
// not for every ACK or chunk sent: it then queues several chunks at once.
// Called with s.mu held.
func (s *Session) wakeWriter() {
	if room, pace := s.roomPace(); room >= min(s.cfg.SendBuffer/8, int(pace/4)) {
		signal(s.writable)
	}
}

// waitWritable blocks until the send buffer has room, and returns an error
// if the session cannot take more.
func (s *Session) waitWritable() error {
	_, err := s.WaitRoom()
	return err
}

// WaitRoom blocks until a writer may queue bytes and returns how many (see
// room), or the error that keeps the session from taking more. A tunnel's
// writer takes no more than that from its streams, so that what it holds
// back stays in the streams' queues, where a new stream can pass it.
func (s *Session) WaitRoom() (int, error) {
	for {
		s.mu.Lock()
		switch {
		case s.err != nil:
			err := s.err
			s.mu.Unlock()
			return 0, err
		case s.finReq:
			s.mu.Unlock()
			return 0, fmt.Errorf("mptp: write after close: %w", syscall.EPIPE)
		}
		if n := s.room(); n > 0 {
			s.mu.Unlock()
			return n, nil
		}
		s.mu.Unlock()
		select {
		case <-s.writable:
		case <-s.done:
		case <-s.wdl.Done():
			return 0, os.ErrDeadlineExceeded
		}
	}
}

// ReadFrom sends what r yields until EOF, reading it straight into chunks
// (io.Copy uses it, which saves a copy of every byte).
func (s *Session) ReadFrom(r io.Reader) (int64, error) {
	var total int64
	var buf *[]byte
	defer func() {
		if buf != nil {
			chunkPool.Put(buf)
		}
	}()
	for {
		if err := s.waitWritable(); err != nil {
			return total, err
		}
		if buf == nil {
			buf = chunkPool.Get().(*[]byte)
		}
		n, err := r.Read((*buf)[:s.cfg.ChunkSize])
		if n > 0 {
			s.mu.Lock()
			if s.err != nil || s.finReq {
				s.mu.Unlock()
				return total, s.waitWritable()
			}
			if s.send.push(buf, n, s.cfg.ChunkSize) {
				buf = nil // the chunk owns it now
			}
			s.active(time.Now())
			s.wakeSenders()
			s.mu.Unlock()
			total += int64(n)
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// WriteTo writes the peer's stream to w until EOF, handing w the received
// chunks themselves (io.Copy uses it, which saves a copy of every byte).
func (s *Session) WriteTo(w io.Writer) (int64, error) {
	var (
		total  int64
		bufs   [][]byte
		owners []*reorder.Buf // the pooled buffers bufs lie in
	)
	// release gives back the buffers of the last write. Called with s.mu held.
	release := func() {
		for _, o := range owners {
			o.Release()
		}
		clear(owners)
		owners = owners[:0]
	}
	defer func() {
		s.mu.Lock()
		release()
		s.mu.Unlock()
	}()
	for {
		s.mu.Lock()
		release()
		bufs, owners = s.recv.Take(1<<20, bufs[:0], owners)
		if len(bufs) > 0 {
			s.maybeUpdateWindow()
			s.mu.Unlock()
			nb := net.Buffers(bufs)
			n, err := nb.WriteTo(w)
			clear(bufs)
			total += n
			if err != nil {
				return total, err
			}
			continue
		}
		var err error
		switch {
		case s.readShut:
			err = net.ErrClosed
		case s.peerFin && s.recv.Next() == s.peerFinSeq:
			s.mu.Unlock()
			return total, nil
		case s.err != nil:
			err = s.err
		}
		s.mu.Unlock()
		if err != nil {
			return total, err
		}
		select {
		case <-s.readable:
		case <-s.done:
		case <-s.rdl.Done():
			return total, os.ErrDeadlineExceeded
		}
	}
}

// CloseWrite sends FIN after every written byte: the peer reads EOF once it
// has them all. Reading goes on.
func (s *Session) CloseWrite() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	if !s.finReq {
		s.finReq = true
		s.wakeAll()
		signal(s.writable) // a blocked Write fails now
	}
	return nil
}

// Close ends the application's use of the session, like closing a TCP
// socket: written bytes are still delivered, but unread or further incoming
// bytes reset the session.
func (s *Session) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.readShut {
		return nil
	}
	s.readShut = true
	s.finReq = true
	signal(s.readable)
	signal(s.writable)
	signal(s.dgReadable)
	if s.err != nil || s.ended || s.finished {
		s.recv.Discard()
		return nil
	}
	if s.recv.Readable() > 0 || s.recv.Held() > 0 {
		s.resetLocked(wire.RstClosed, "closed with unread data", true)
		return nil
	}
	s.wakeAll()
	s.checkFinished()
	if !s.finished {
		s.lingerTimer = time.AfterFunc(s.cfg.Linger, func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.resetLocked(wire.RstLinger, "peer did not finish in time", true)
		})
	}
	return nil
}

// Reset aborts the session: the peer's reads and writes fail.
func (s *Session) Reset(code uint16, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.resetLocked(code, msg, true)
}

// Forgotten is called when the peer refuses a JOIN because it no longer
// knows the session. With no path left to hear the peer's own RST, the
// session ends here at once instead of waiting out its grace period.
func (s *Session) Forgotten() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.paths) == 0 {
		s.resetLocked(wire.RstGrace, "the peer no longer knows the session", false)
	}
}

func (s *Session) resetLocked(code uint16, msg string, local bool) {
	if s.err != nil || s.ended {
		return
	}
	if local {
		s.err = fmt.Errorf("mptp: session reset (%s): %w", msg, ErrReset)
		s.sendRst, s.rstCode, s.rstMsg = true, code, msg
	} else {
		s.err = fmt.Errorf("mptp: session reset by peer (code %d %s): %w", code, msg, ErrReset)
	}
	s.log.Debug("session reset", "local", local, "code", code, "reason", msg)
	s.stopTimers()
	signal(s.readable)
	signal(s.writable)
	signal(s.dgReadable)
	for _, p := range s.paths {
		p.closing = true
		signal(p.wake)
	}
	s.cutPathsAfter(time.Second)
	s.maybeEnd()
}

// cutPathsAfter closes whatever paths are left after d: their writers may
// be gone (a finished path waits for the peer's half-close) or stuck.
func (s *Session) cutPathsAfter(d time.Duration) {
	if s.cutTimer != nil {
		s.cutTimer.Stop()
	}
	s.cutTimer = time.AfterFunc(d, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, p := range s.paths {
			p.conn.Close()
		}
	})
}

func (s *Session) graceExpired() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.paths) == 0 {
		s.resetLocked(wire.RstGrace, fmt.Sprintf("no path for %s", s.cfg.Grace), true)
	}
}

func (s *Session) stopTimers() {
	if s.graceTimer != nil {
		s.graceTimer.Stop()
	}
	if s.lingerTimer != nil {
		s.lingerTimer.Stop()
	}
}

// checkFinished notices when both directions are complete; the paths then
// flush their last frames and close gracefully.
func (s *Session) checkFinished() {
	if s.finished || s.err != nil {
		return
	}
	recvDone := s.peerFin && s.recv.Next() == s.peerFinSeq
	if !(s.finAcked && recvDone) {
		return
	}
	s.finished = true
	s.stopTimers()
	// A final ACK on every path, before its half-close, tells the peer on
	// each path that this end is done, so no path's EOF looks like a failure.
	for _, p := range s.paths {
		p.ackDue = true
		p.closing = true
		signal(p.wake)
	}
	s.cutPathsAfter(5 * time.Second)
	s.maybeEnd()
}

// maybeEnd closes done once the session is over and its goroutines gone.
func (s *Session) maybeEnd() {
	if s.ended || s.running > 0 || !(s.finished || s.err != nil) {
		return
	}
	s.ended = true
	s.stopTimers()
	if s.cutTimer != nil {
		s.cutTimer.Stop()
	}
	signal(s.readable)
	signal(s.writable)
	signal(s.dgReadable)
	close(s.done)
}

// Counters are the totals of the paths of one name (an actor's tag).
type Counters struct {
	Name          string
	BytesSent     uint64 // DATA payload bytes, retransmissions included
	BytesReceived uint64
	// Retransmitted counts DATA payload sent again: Rescued (copies of
	// chunks another path still held, section 6.6) and re-sends of what a
	// failed or stale path carried.
	Retransmitted, Rescued uint64
	// Duplicates counts DATA payload received that was here already (the
	// second copy of a rescued or re-sent chunk), dropped.
	Duplicates   uint64
	Joins, Fails uint64
	Stalls       uint64 // times the path was found stale
	// DatagramsSent and DatagramsReceived count DATAGRAM frames, copies
	// included.
	DatagramsSent, DatagramsReceived uint64
	SRTT                             time.Duration
	Live                             bool
}

// Stats returns per-name path counters.
func (s *Session) Stats() []Counters {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Counters, 0, len(s.counters))
	for _, c := range s.counters {
		cc := *c
		cc.Live = false
		for _, p := range s.paths {
			if p.name == c.Name {
				cc.Live, cc.SRTT = true, p.est.srtt
			}
		}
		out = append(out, cc)
	}
	return out
}

// PathCount is the number of live paths.
func (s *Session) PathCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.paths)
}

func (s *Session) LocalAddr() net.Addr  { return s.cfg.LocalAddr }
func (s *Session) RemoteAddr() net.Addr { return s.cfg.RemoteAddr }

func (s *Session) SetDeadline(t time.Time) error {
	s.rdl.Set(t)
	s.wdl.Set(t)
	return nil
}
func (s *Session) SetReadDeadline(t time.Time) error  { s.rdl.Set(t); return nil }
func (s *Session) SetWriteDeadline(t time.Time) error { s.wdl.Set(t); return nil }

var errSessionEnded = errors.New("mptp: session has ended")
