package session

import (
	"errors"
	"io"
	"net"
	"time"

	"github.com/mptp/mptp/internal/reorder"
	"github.com/mptp/mptp/internal/wire"
)

// path is one sub-connection of a session. Its fields are guarded by the
// session's mutex, except conn and wake.
type path struct {
	s       *Session
	conn    net.Conn
	name    string
	ctr     *Counters
	trouble *trouble // shared by the paths of one name
	wake    chan struct{}
	done    chan struct{}
	err     error

	backup  bool
	closing bool // the session is over: flush, then close
	dead    bool
	rstSent bool
	live    int // goroutines of this path still running

	// Send side: DATA payload bytes written here, and how many of them the
	// peer reports it received on this path.
	sent, delivered uint64
	finSent         bool
	cursor          uint64     // redundant scheduler: next offset to send here
	dgrams          []datagram // waiting for the writer
	dgMem           int

	// Receive side.
	rcvd, rcvdAcked uint64
	ackDue          bool
	ackBy           time.Time   // when the oldest unacknowledged bytes must be
	ackTimer        *time.Timer // runs ackTimeout; ackArmed while it is set
	ackArmed        bool
	pongDue         bool
	pongTS          uint64
	lastPing        time.Time
	lastPong        time.Time
	pings           int // PINGs sent
	// An RTT sample in flight: the time of a DATA write, and the path's
	// sent count after it, which the peer's ACK must reach.
	rttAt    time.Time
	rttMark  uint64
	rescueAt time.Time // when a chunk on another path becomes overdue
	checkAt  time.Time // when liveness is due to be checked again
	writing  bool      // the writer is inside a write call
	watchdog *time.Timer

	// Liveness (liveness.go).
	waitingSince time.Time // when the path began to owe something
	lastProgress time.Time
	stale        bool
	staleSince   time.Time

	est estimator
}

// Path is the handle AddPath returns.
type Path struct{ p *path }

// Done is closed when the path has ended.
func (h Path) Done() <-chan struct{} { return h.p.done }

// Err is why the path ended; nil if the session finished cleanly.
func (h Path) Err() error {
	<-h.p.done
	return h.p.err
}

// PathConfig describes a path to AddPath.
type PathConfig struct {
	// Name groups paths in stats and logs: the actor's tag, or the peer.
	Name string
	// RTT, if known (from the handshake), seeds the estimator.
	RTT time.Duration
	// Backup paths carry data only while no other path can.
	Backup bool
}

// Fail ends the path for a reason found outside the session (its local
// address is gone, say); its data goes out on the other paths.
func (h Path) Fail(err error) {
	s := h.p.s
	s.mu.Lock()
	defer s.mu.Unlock()
	h.p.fail(err)
}

// AddPath adds a sub-connection whose handshake is done.
func (s *Session) AddPath(conn net.Conn, pc PathConfig) (Path, error) {
	name := pc.Name
	p := &path{
		s:      s,
		conn:   conn,
		name:   name,
		backup: pc.Backup,
		wake:   make(chan struct{}, 1),
		done:   make(chan struct{}),
		live:   2,
	}
	p.est.init(pc.RTT)
	s.mu.Lock()
	if s.err != nil || s.finished || s.ended {
		s.mu.Unlock()
		return Path{}, errSessionEnded
	}
	ctr := s.counters[name]
	if ctr == nil {
		ctr = &Counters{Name: name}
		s.counters[name] = ctr
	}
	p.ctr = ctr
	ctr.Joins++
	if s.troubles[name] == nil {
		s.troubles[name] = &trouble{}
	}
	p.trouble = s.troubles[name]
	p.cursor = s.send.una
	p.ackDue = true // tell the peer at once where this side stands
	s.paths = append(s.paths, p)
	s.running += 2
	if s.graceTimer != nil {
		s.graceTimer.Stop()
	}
	s.mu.Unlock()
	setLowWater(conn)
	go p.readLoop()
	go p.writeLoop()
	return Path{p}, nil
}

// fail removes the path; unacknowledged data it carried goes out again on
// the others. Called with s.mu held.
func (p *path) fail(err error) {
	if p.dead {
		return
	}
	p.dead = true
	p.err = err
	s := p.s
	for i, q := range s.paths {
		if q == p {
			s.paths = append(s.paths[:i], s.paths[i+1:]...)
			break
		}
	}
	if s.err == nil && !s.finished {
		p.ctr.Fails++
		p.trouble.add(time.Now())
		if n := s.send.requeue(p); n > 0 {
			p.ctr.Retransmitted += uint64(n)
		}
		s.log.Info("path failed", "path", p.name, "reason", err, "paths_left", len(s.paths))
		if len(s.paths) == 0 {
			s.graceTimer = time.AfterFunc(s.cfg.Grace, s.graceExpired)
		}
		// An ACK or window update may have been lost with the path.
		for _, q := range s.paths {
			q.ackDue = true
		}
		s.wakeAll()
	} else if err != nil {
		p.err = nil // the session was over anyway
	}
	p.conn.Close()
	signal(p.wake)
}

// exit is called by each of the path's two goroutines as it returns.
func (p *path) exit() {
	s := p.s
	s.mu.Lock()
	defer s.mu.Unlock()
	s.running--
	p.live--
	if p.live == 0 {
		p.fail(nil)
		close(p.done)
	}
	s.maybeEnd()
}

// readBufSize is the reader's buffer: big enough for headers and control
// frames, small because DATA payloads are read straight into their own
// buffers, and an idle path should cost little.
const readBufSize = 8 << 10

// ackEvery is how many bytes received on a path call for an ACK at once;
// fewer bytes wait at most ackDelay: the sender's buffer and its liveness
// and rate measurements must not wait for more data. A sender learns of
// room before it runs dry either way: its window is at least 2*ackEvery
// (what older versions of mptp kept as the least window) or holds
// headroom's worth at the path's rate, and an ACK comes within ackDelay.
const (
	ackEvery = 128 << 10
	ackDelay = time.Millisecond
	_        = uint(headroom - 2*ackDelay) // fails to build if headroom < 2*ackDelay
)

func (p *path) readLoop() {
	defer p.exit()
	fr := wire.NewReader(p.conn, readBufSize)
	// Payloads of at least half a pooled buffer go in one, so the buffer
	// pins at most twice the bytes it carries. The reader may use the room
	// past the payload.
	var rb *reorder.Buf
	alloc := func(n int) []byte {
		if n < reorder.BufSize/2 {
			return make([]byte, n)
		}
		rb = reorder.GetBuf()
		return rb.Bytes()[:n]
	}
	for {
		f, err := fr.ReadFrame(alloc)
		s := p.s
		s.mu.Lock()
		if err != nil {
			if errors.Is(err, io.EOF) && (s.finished || s.err != nil) {
				err = nil
			}
			if p.ackTimer != nil {
				p.ackTimer.Stop()
			}
			p.fail(err)
			s.mu.Unlock()
			return
		}
		if herr := p.handle(f, rb); herr != nil {
			s.resetLocked(herr.code, herr.msg, true)
		}
		if rb != nil {
			rb.Release() // the reorder buffer holds its own references
			rb = nil
		}
		s.mu.Unlock()
	}
}

// ackSoon makes sure received bytes are acknowledged: at once if many are
// waiting, else within ackDelay. Called with s.mu held.
func (p *path) ackSoon(n uint64) {
	if p.ackDue {
		return
	}
	unacked := p.rcvd - p.rcvdAcked
	if unacked >= ackEvery {
		p.ackDue = true
		signal(p.wake)
		if p.ackArmed && p.ackTimer.Stop() {
			p.ackArmed = false // the ACK covers every byte so far
		}
		return
	}
	if unacked == n {
		p.ackBy = time.Now().Add(ackDelay)
	}
	if p.ackArmed {
		return
	}
	p.ackArmed = true
	if p.ackTimer == nil {
		p.ackTimer = time.AfterFunc(time.Until(p.ackBy), p.ackTimeout)
	} else {
		p.ackTimer.Reset(time.Until(p.ackBy))
	}
}

func (p *path) ackTimeout() {
	s := p.s
	s.mu.Lock()
	defer s.mu.Unlock()
	p.ackArmed = false
	if p.dead || p.ackDue || p.rcvd == p.rcvdAcked {
		return
	}
	if wait := time.Until(p.ackBy); wait > 0 {
		// An ACK went out since; newer bytes came after it.
		p.ackArmed = true
		p.ackTimer.Reset(wait)
		return
	}
	p.ackDue = true
	signal(p.wake)
}

type protoErr struct {
	code uint16
	msg  string
}

// handle applies one frame from the peer; a DATA payload lies in rb if it
// is not nil. Called with s.mu held.
func (p *path) handle(f wire.Frame, rb *reorder.Buf) *protoErr {
	s := p.s
	switch f.Type {
	case wire.TypeData:
		s.active(time.Now())
		n := uint64(len(f.Payload))
		p.rcvd += n
		p.ctr.BytesReceived += n
		if s.peerFin && f.Seq+n > s.peerFinSeq {
			return &protoErr{wire.RstProtocol, "data beyond FIN"}
		}
		if s.readShut && f.Seq+n > s.recv.Next() {
			// New bytes nobody will read; copies of old ones are normal.
			return &protoErr{wire.RstClosed, "data after close"}
		}
		stored := s.recv.Next() + uint64(s.recv.Held())
		got, err := s.recv.Insert(f.Seq, f.Payload, rb)
		if err != nil {
			return &protoErr{wire.RstWindow, err.Error()}
		}
		// Bytes the buffer had already: the second copy of a rescued or
		// re-sent chunk.
		p.ctr.Duplicates += n - (s.recv.Next() + uint64(s.recv.Held()) - stored)
		if got > 0 {
			signal(s.readable)
		}
		p.ackSoon(n)
		if s.peerFin {
			s.checkFinished()
		}
	case wire.TypeAck:
		if f.Ack > s.send.sentEnd() || f.PathRcvd > p.sent {
			return &protoErr{wire.RstProtocol, "ACK of bytes never sent"}
		}
		s.send.ack(f.Ack)
		if lim := f.Ack + uint64(f.Wnd); lim > s.peerLimit {
			s.peerLimit = lim
		}
		if f.PathRcvd > p.delivered {
			now := time.Now()
			p.est.delivered(f.PathRcvd - p.delivered)
			p.delivered = f.PathRcvd
			if !p.rttAt.IsZero() && p.delivered >= p.rttMark {
				p.est.rtt(now.Sub(p.rttAt))
				p.rttAt = time.Time{}
			}
			p.progressed(now)
		}
		if f.Flags&wire.FlagFinAcked != 0 && s.finReq && f.Ack == s.send.end {
			s.finAcked = true
			s.checkFinished()
		}
		s.wakeWriter()
		s.wakeAll()
	case wire.TypeFin:
		if (s.peerFin && f.Seq != s.peerFinSeq) || f.Seq < s.recv.HeldEnd() || f.Seq > s.recv.Limit() {
			return &protoErr{wire.RstProtocol, "inconsistent FIN"}
		}
		s.peerFin, s.peerFinSeq = true, f.Seq
		p.ackDue = true
		signal(p.wake)
		signal(s.readable)
		signal(s.dgReadable)
		s.checkFinished()
	case wire.TypeRst:
		s.resetLocked(f.Code, string(f.Payload), false)
	case wire.TypeDatagram:
		s.active(time.Now())
		p.ctr.DatagramsReceived++
		s.receiveDatagram(uint32(f.Seq), f.Payload)
	case wire.TypePing:
		p.pongDue, p.pongTS = true, f.TS
		signal(p.wake)
	case wire.TypePong:
		now := time.Now()
		if ts := uint64(now.Sub(s.start)); f.TS <= ts {
			p.est.rtt(time.Duration(ts - f.TS))
		}
		p.lastPong = now
		p.progressed(now)
	}
	return nil
}

func (p *path) writeLoop() {
	defer p.exit()
	s := p.s
	ping := time.NewTimer(s.cfg.PingInterval)
	defer ping.Stop()
	var (
		hdr     = make([]byte, 0, 4096)
		bufs    net.Buffers
		writing []*chunk // chunks whose data bufs points into
	)
	for {
		s.mu.Lock()
		hdr, bufs, writing = p.collect(hdr[:0], bufs[:0], writing[:0])
		closing, dead := p.closing, p.dead
		wait := time.Until(p.lastPing.Add(p.pingInterval()))
		for _, at := range []time.Time{p.rescueAt, p.checkAt} {
			if !at.IsZero() {
				wait = min(wait, time.Until(at))
			}
		}
		s.mu.Unlock()
		if len(bufs) > 0 {
			p.watch(true)
			_, err := writeBuffers(p.conn, bufs)
			p.watch(false)
			if len(writing) == 0 {
				// Only control frames: this end mostly receives here.
				quickAck(p.conn)
			}
			s.mu.Lock()
			for i, c := range writing {
				s.send.written(c)
				writing[i] = nil
			}
			if len(writing) > 0 && p.rttAt.IsZero() {
				p.rttAt, p.rttMark = time.Now(), p.sent
			}
			if err != nil {
				p.fail(err)
				s.mu.Unlock()
				return
			}
			s.mu.Unlock()
			continue
		}
		if dead {
			return
		}
		if closing {
			p.shutdown()
			return
		}
		ping.Reset(wait)
		select {
		case <-p.wake:
		case <-ping.C:
		}
	}
}

// shutdown ends the path once the session is over by half-closing and
// letting the reader see the peer do the same, so that no byte in flight,
// the RST frame of a reset least of all, is cut by a TCP reset (closing a
// socket with unread bytes sends one, and the peer loses what it has not
// read yet). A peer that never closes is cut by cutPathsAfter.
func (p *path) shutdown() {
	s := p.s
	if cw, ok := p.conn.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
		return
	}
	s.mu.Lock()
	p.fail(nil)
	s.mu.Unlock()
}

// collect gathers the frames this path should write now. Called with s.mu
// held; payloads are not copied.
func (p *path) collect(hdr []byte, bufs net.Buffers, writing []*chunk) ([]byte, net.Buffers, []*chunk) {
	s := p.s
	if p.dead {
		return hdr, bufs, writing
	}
	add := func(start int) {
		bufs = append(bufs, hdr[start:len(hdr):len(hdr)])
	}
	if s.err != nil {
		if s.sendRst && !p.rstSent {
			start := len(hdr)
			hdr = wire.AppendRst(hdr, s.rstCode, s.rstMsg)
			add(start)
			p.rstSent = true
		}
		return hdr, bufs, writing
	}
	if p.pongDue {
		start := len(hdr)
		hdr = wire.AppendPing(hdr, wire.TypePong, p.pongTS)
		add(start)
		p.pongDue = false
	}
	if now := time.Now(); now.Sub(p.lastPing) >= p.pingInterval() {
		start := len(hdr)
		hdr = wire.AppendPing(hdr, wire.TypePing, uint64(now.Sub(s.start)))
		add(start)
		p.lastPing = now
		p.pings++
	}
	if p.ackDue {
		var flags byte
		if s.peerFin && s.recv.Next() == s.peerFinSeq {
			flags |= wire.FlagFinAcked
		}
		start := len(hdr)
		hdr = wire.AppendAck(hdr, flags, s.recv.Next(), s.recv.Window(), p.rcvd)
		add(start)
		p.ackDue = false
		p.rcvdAcked = p.rcvd
		s.advLimit = s.recv.Limit()
	}
	if p.closing {
		return hdr, bufs, writing
	}
	if p.checkAt = p.checkLiveness(time.Now()); p.dead {
		return hdr, bufs, writing
	}
	// Datagrams go ahead of stream data.
	for i, d := range p.dgrams {
		start := len(hdr)
		hdr = wire.AppendDatagramHeader(hdr, d.id, len(d.body))
		add(start)
		bufs = append(bufs, d.body)
		p.dgrams[i] = datagram{}
		p.ctr.DatagramsSent++
	}
	p.dgrams, p.dgMem = p.dgrams[:0], 0
	batch := 0
	for batch < maxBatch {
		c := s.nextChunk(p)
		if c == nil {
			break
		}
		start := len(hdr)
		hdr = wire.AppendDataHeader(hdr, c.seq, len(c.data))
		add(start)
		bufs = append(bufs, c.data)
		c.writers++
		writing = append(writing, c)
		n := uint64(len(c.data))
		p.sent += n
		p.ctr.BytesSent += n
		batch += len(c.data)
	}
	if s.finReq && !p.finSent && s.send.allSent() && !s.finAcked {
		start := len(hdr)
		hdr = wire.AppendFin(hdr, s.send.end)
		add(start)
		p.finSent = true
	}
	return hdr, bufs, writing
}

// pingInterval is short while the path is stale, so that its revival is
// seen at once, and while it carries data with no RTT measured yet. Once
// measured, the ACKs of its DATA give RTT samples (rttMark), and a PING
// per round trip on every busy path would cost a write and a PONG each.
// A path of an idle session only keeps its connection alive.
func (p *path) pingInterval() time.Duration {
	if !p.stale && (p.est.measured || p.sent == p.delivered) {
		if p.s.idle(time.Now()) {
			return p.s.cfg.IdlePing
		}
		return p.s.cfg.PingInterval
	}
	return max(10*time.Millisecond, min(p.s.cfg.PingInterval, p.est.srtt, p.s.cfg.StaleFloor/2))
}

// maxBatch bounds the bytes one write call carries, so control frames are
// not stuck behind a long burst.
const maxBatch = 256 << 10
