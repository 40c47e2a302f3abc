package session

import (
	"errors"
	"io"
	"net"
	"os"
	"time"

	"github.com/mptp/mptp/internal/wire"
)

// Datagrams (UDP) travel beside the byte stream, as DATAGRAM frames: each
// goes out at once on the path that would deliver it soonest (or on the two
// best, with Config.DatagramCopies), ahead of any stream data that path has
// not written yet. Nothing is acknowledged or sent again; what cannot be
// carried or held is dropped and counted, as a UDP network would.

// ErrDatagramTooLarge is returned for a datagram that no frame can hold.
var ErrDatagramTooLarge = errors.New("mptp: datagram too large")

// Bounds on datagrams held in memory: per path waiting to be written, and
// per session waiting to be read.
const (
	pathDatagrams   = 256
	pathDatagramMem = 1 << 20
	recvDatagrams   = 512
	recvDatagramMem = 1 << 20
	dedupWindow     = 1024
	dedupWords      = dedupWindow / 64
)

type datagram struct {
	id   uint32
	body []byte
}

// DatagramStats are a session's datagram totals.
type DatagramStats struct {
	Sent, Received uint64
	// Dropped counts datagrams lost here: no path could take them, a queue
	// was full, or they were too large.
	Dropped uint64
}

// SendDatagram sends one datagram body (the caller's address and payload;
// the session does not look inside). It does not block: a datagram that
// cannot go out now is dropped and counted. b may be reused on return.
func (s *Session) SendDatagram(b []byte) error {
	if len(b) > wire.MaxDatagram {
		s.mu.Lock()
		s.dgStats.Dropped++
		s.mu.Unlock()
		return ErrDatagramTooLarge
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	if s.readShut || s.ended {
		return net.ErrClosed
	}
	s.active(time.Now())
	first, second := s.datagramPaths()
	if first == nil {
		s.dgStats.Dropped++
		return nil
	}
	d := datagram{id: s.dgNext, body: append([]byte(nil), b...)}
	s.dgNext++
	s.dgStats.Sent++
	first.queueDatagram(d)
	if second != nil && s.cfg.DatagramCopies {
		second.queueDatagram(d)
	}
	return nil
}

// datagramPaths returns the usable paths that would deliver a datagram
// soonest and second soonest. Called with s.mu held.
func (s *Session) datagramPaths() (first, second *path) {
	now := time.Now()
	var d1, d2 time.Duration
	for _, p := range s.paths {
		if !p.usable() {
			continue
		}
		d := p.weight(p.datagramDelay(), now)
		switch {
		case first == nil || d < d1:
			second, d2 = first, d1
			first, d1 = p, d
		case second == nil || d < d2:
			second, d2 = p, d
		}
	}
	return first, second
}

// datagramDelay is when a datagram queued on p now should arrive. A path
// that has not shown its rate yet is taken to drain its initial window per
// round trip, so that datagrams spread over fresh paths by their queues.
func (p *path) datagramDelay() time.Duration {
	queued := float64(p.sent - p.delivered + uint64(p.dgMem))
	rate := p.est.rate
	if rate == 0 {
		rate = float64(p.est.cwnd()) / max(p.est.srtt, time.Millisecond).Seconds()
	}
	return p.est.minRTT/2 + time.Duration(queued/rate*float64(time.Second))
}

// queueDatagram hands d to the path's writer. A full queue drops its
// oldest datagram: for calls and games, the newest matters most.
func (p *path) queueDatagram(d datagram) {
	for len(p.dgrams) > 0 && (len(p.dgrams) >= pathDatagrams || p.dgMem+len(d.body) > pathDatagramMem) {
		p.dgMem -= len(p.dgrams[0].body)
		p.dgrams[0] = datagram{}
		p.dgrams = p.dgrams[1:]
		p.s.dgStats.Dropped++
	}
	p.dgrams = append(p.dgrams, d)
	p.dgMem += len(d.body)
	signal(p.wake)
}

// receiveDatagram takes a DATAGRAM frame's body. Called with s.mu held.
func (s *Session) receiveDatagram(id uint32, body []byte) {
	if !s.dgSeen.fresh(id) {
		return // the copy from another path
	}
	if s.readShut || s.err != nil || len(s.dgIn) >= recvDatagrams || s.dgInMem+len(body) > recvDatagramMem {
		s.dgStats.Dropped++
		return
	}
	s.dgStats.Received++
	s.dgIn = append(s.dgIn, body)
	s.dgInMem += len(body)
	signal(s.dgReadable)
}

// ReadDatagram returns the next datagram body from the peer. It blocks
// until one comes, the read deadline passes (os.ErrDeadlineExceeded), or
// the peer ends its side (io.EOF: closing a UDP association ends its
// stream) or the session fails (its error).
func (s *Session) ReadDatagram() ([]byte, error) {
	for {
		s.mu.Lock()
		if len(s.dgIn) > 0 {
			b := s.dgIn[0]
			s.dgIn[0] = nil
			s.dgIn = s.dgIn[1:]
			s.dgInMem -= len(b)
			s.mu.Unlock()
			return b, nil
		}
		var err error
		switch {
		case s.readShut:
			err = net.ErrClosed
		case s.err != nil:
			err = s.err
		case s.ended || s.peerFin:
			err = io.EOF
		}
		s.mu.Unlock()
		if err != nil {
			return nil, err
		}
		select {
		case <-s.dgReadable:
		case <-s.done:
		case <-s.rdl.Done():
			return nil, os.ErrDeadlineExceeded
		}
	}
}

// DatagramStats returns the session's datagram totals.
func (s *Session) DatagramStats() DatagramStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dgStats
}

// dedup remembers which of the last dedupWindow datagram IDs arrived, so
// that the second copy of a datagram sent on two paths is dropped. IDs
// count up and wrap; one older than the window is taken as a copy.
type dedup struct {
	top  uint32 // highest ID seen
	any  bool
	bits [dedupWords]uint64 // bit i%dedupWindow: ID i arrived
}

func (d *dedup) fresh(id uint32) bool {
	if !d.any {
		d.any, d.top = true, id
		d.set(id)
		return true
	}
	ahead := int32(id - d.top)
	switch {
	case ahead > 0:
		// Forget the IDs that slide out of the window.
		for n := min(int(ahead), dedupWindow); n > 0; n-- {
			d.top++
			d.clear(d.top)
		}
		d.top = id
		d.set(id)
		return true
	case -ahead >= dedupWindow:
		return false
	case d.has(id):
		return false
	}
	d.set(id)
	return true
}

func (d *dedup) set(id uint32)      { d.bits[id/64%dedupWords] |= 1 << (id % 64) }
func (d *dedup) clear(id uint32)    { d.bits[id/64%dedupWords] &^= 1 << (id % 64) }
func (d *dedup) has(id uint32) bool { return d.bits[id/64%dedupWords]&(1<<(id%64)) != 0 }
