package mux

import "time"

// recvWindow is a receiver's side of flow control, for one stream or for
// the whole tunnel: the peer may send bytes up to limit, and the limit
// moves on as the application reads. Memory is taken only by bytes
// received and not yet read; the window is permission, not a reservation.
type recvWindow struct {
	size     uint64 // the window the receiver aims to keep open
	max      uint64 // how far auto-tuning may grow size
	limit    uint64 // the peer may send bytes below this count
	received uint64
	consumed uint64 // read by the application, or dropped
	granted  time.Time
}

func newRecvWindow(size, maxSize uint32) recvWindow {
	return recvWindow{size: uint64(size), max: uint64(max(size, maxSize)), limit: uint64(size)}
}

// receive counts n bytes from the peer; false if they pass the limit.
func (w *recvWindow) receive(n int) bool {
	w.received += uint64(n)
	return w.received <= w.limit
}

// buffered is what was received and not consumed.
func (w *recvWindow) buffered() uint64 { return w.received - w.consumed }

// consume counts n bytes read (or dropped) and returns the increment to
// grant the peer, or 0 while less than half the window is free to announce:
// one WINDOW frame per half window keeps the sender busy without a frame
// per read.
//
// Auto-tuning: when the reader went through half a window in less than
// two round trips since the last grant, the window is what limits the
// sender, so it doubles (up to max). A reader that stops never grows it.
func (w *recvWindow) consume(n int, now time.Time, rtt time.Duration) uint32 {
	w.consumed += uint64(n)
	room := w.consumed + w.size - w.limit
	if room < w.size/2 {
		return 0
	}
	if rtt > 0 && !w.granted.IsZero() && now.Sub(w.granted) < 2*rtt && w.size < w.max {
		grow := min(w.size, w.max-w.size)
		w.size += grow
		room += grow
	}
	w.granted = now
	w.limit += room
	return uint32(room)
}

// sendCredit is a sender's side: bytes sent, and the limit the peer set.
type sendCredit struct {
	sent, limit uint64
}

func (c *sendCredit) avail() int {
	if c.sent >= c.limit {
		return 0
	}
	return int(min(c.limit-c.sent, 1<<30))
}

// grant adds inc from a WINDOW frame; false if the limit would overflow.
func (c *sendCredit) grant(inc uint32) bool {
	if c.limit+uint64(inc) < c.limit {
		return false
	}
	c.limit += uint64(inc)
	return true
}
