// Package reorder puts a byte stream that arrives in chunks, in any order
// and with duplicates, back in order, within a fixed memory bound.
package reorder

import (
	"errors"
	"sort"
	"sync"
)

// ErrWindow means a chunk reaches beyond the window that was advertised:
// a sender that honours the window never does that.
var ErrWindow = errors.New("reorder: data beyond the receive window")

// ErrFragments means too many separate out-of-order pieces are held.
var ErrFragments = errors.New("reorder: too many out-of-order fragments")

type segment struct {
	seq uint64
	piece
}

// piece is bytes the buffer holds, and the pooled buffer they lie in, if
// any, of which the piece holds one reference.
type piece struct {
	data []byte
	buf  *Buf
}

func (p piece) release() {
	if p.buf != nil {
		p.buf.Release()
	}
}

// BufSize is the size of a pooled buffer: a whole DATA payload, and room
// past it for the network reader to take the next frame's start in the
// same read.
const BufSize = 72 << 10

// Buf is a pooled receive buffer. Every piece of it a Buffer holds counts
// as a reference, and so does the network reader's until it has inserted
// it: it goes back to the pool only once nothing refers to it. The count
// is guarded by the lock that guards the Buffers holding it.
type Buf struct {
	b    []byte
	refs int
}

var pool = sync.Pool{New: func() any { return &Buf{b: make([]byte, BufSize)} }}

// GetBuf returns a buffer of BufSize bytes with one reference, the caller's.
func GetBuf() *Buf {
	rb := pool.Get().(*Buf)
	if rb.refs != 0 {
		panic("reorder: pooled buffer still referenced")
	}
	rb.refs = 1
	return rb
}

// Bytes is the whole buffer.
func (rb *Buf) Bytes() []byte { return rb.b }

// Release drops a reference; the last one returns the buffer to the pool.
func (rb *Buf) Release() {
	rb.refs--
	switch {
	case rb.refs < 0:
		panic("reorder: buffer released more often than referenced")
	case rb.refs == 0:
		if poison {
			for i := range rb.b {
				rb.b[i] = 0xdb
			}
		}
		pool.Put(rb)
	}
}

func (rb *Buf) ref() {
	if rb.refs <= 0 {
		panic("reorder: reference to a free buffer")
	}
	rb.refs++
}

// size is the memory a piece of data in owner pins.
func size(data []byte, owner *Buf) int {
	if owner != nil {
		return len(owner.b)
	}
	return len(data)
}

// Buffer holds bytes received but not yet read. Offsets below Next have all
// arrived; the reader consumes from ReadOffset. Memory is bounded by
// capacity: no byte at or beyond ReadOffset+capacity is accepted.
type Buffer struct {
	capacity     int
	maxFragments int
	next         uint64    // first byte not yet received in order
	readOff      uint64    // first byte not yet read
	ready        []piece   // contiguous bytes [readOff, next)
	held         []segment // sorted, disjoint, all above next
	heldBytes    int
	// tail collects small readable pieces (appendReady); tailLast says
	// the last entry of ready ends where tail does, so it can grow.
	tail     []byte
	tailLast bool
}

// New returns a buffer that holds at most capacity bytes in at most
// maxFragments out-of-order pieces (0: one per 256 bytes of capacity), so
// that floods of tiny chunks cannot cost more than the bytes they carry.
func New(capacity, maxFragments int) *Buffer {
	if maxFragments <= 0 {
		maxFragments = max(64, capacity/256)
	}
	return &Buffer{capacity: capacity, maxFragments: maxFragments}
}

// HeldEnd is the end of the highest byte received: Next, or beyond it when
// out-of-order bytes are held. A stream cannot end below it.
func (b *Buffer) HeldEnd() uint64 {
	if n := len(b.held); n > 0 {
		last := b.held[n-1]
		return last.seq + uint64(len(last.data))
	}
	return b.next
}

// keep returns p as a piece to hold, referring to owner, or a copy of p
// when it would pin a much larger buffer of whole bytes, so that memory
// follows the bytes held, not the frames they came in (a peer could send
// 64 KiB frames each one byte apart).
func keep(p []byte, whole int, owner *Buf) piece {
	if len(p) < whole && (len(p) < smallPiece || 2*len(p)+512 < whole) {
		return piece{data: append([]byte(nil), p...)}
	}
	if owner != nil {
		owner.ref()
	}
	return piece{p, owner}
}

// Next is the cumulative acknowledgement: every byte below it has arrived.
func (b *Buffer) Next() uint64 { return b.next }

// ReadOffset is the offset of the next byte Read returns.
func (b *Buffer) ReadOffset() uint64 { return b.readOff }

// Limit is the first offset the sender may not send yet.
func (b *Buffer) Limit() uint64 { return b.readOff + uint64(b.capacity) }

// Window is how many bytes beyond Next the sender may send.
func (b *Buffer) Window() uint32 { return uint32(b.Limit() - b.next) }

// Readable is the number of in-order bytes waiting for Read.
func (b *Buffer) Readable() int { return int(b.next - b.readOff) }

// Held is the number of out-of-order bytes held.
func (b *Buffer) Held() int { return b.heldBytes }

// Insert adds the chunk that starts at offset seq. The buffer keeps p (or
// parts of it): if owner is nil, the caller must not reuse p; otherwise p
// lies in owner, and the buffer takes references to it for what it keeps
// (the caller's own reference is the caller's to release). Duplicate bytes
// are dropped. It reports how many bytes became readable.
func (b *Buffer) Insert(seq uint64, p []byte, owner *Buf) (int, error) {
	whole := size(p, owner)
	end := seq + uint64(len(p))
	if end < seq || end > b.Limit() {
		return 0, ErrWindow
	}
	if end <= b.next {
		return 0, nil
	}
	if seq < b.next {
		p = p[b.next-seq:]
		seq = b.next
	}
	if seq > b.next {
		return 0, b.hold(seq, p, whole, owner)
	}
	before := b.next
	b.appendReady(p, whole, owner)
	b.next = end
	// Pull held segments that are now contiguous.
	i := 0
	for ; i < len(b.held); i++ {
		s := b.held[i]
		if s.seq > b.next {
			break
		}
		b.heldBytes -= len(s.data)
		sEnd := s.seq + uint64(len(s.data))
		if sEnd > b.next {
			b.appendReady(s.data[b.next-s.seq:], size(s.data, s.buf), s.buf)
			b.next = sEnd
		}
		s.release() // appendReady took its own reference
	}
	n := copy(b.held, b.held[i:])
	clear(b.held[n:])
	b.held = b.held[:n]
	return int(b.next - before), nil
}

// smallPiece: readable pieces shorter than this are copied together into
// a shared buffer of tailSize, so that a flood of tiny frames costs about
// the bytes it carries, not an allocation and a slice header per frame.
const (
	smallPiece = 1024
	tailSize   = 4096
)

// appendReady adds an in-order piece to what Read returns.
func (b *Buffer) appendReady(p []byte, whole int, owner *Buf) {
	if len(p) >= smallPiece {
		b.ready = append(b.ready, keep(p, whole, owner))
		b.tailLast = false
		return
	}
	if cap(b.tail)-len(b.tail) < len(p) {
		b.tail = make([]byte, 0, tailSize)
		b.tailLast = false
	}
	start := len(b.tail)
	b.tail = append(b.tail, p...)
	if n := len(b.ready); b.tailLast && n > 0 {
		last := b.ready[n-1].data
		b.ready[n-1].data = last[:len(last)+len(p)]
		return
	}
	b.ready = append(b.ready, piece{data: b.tail[start:]})
	b.tailLast = true
}

// hold stores the parts of [seq, seq+len(p)) that no held segment covers.
func (b *Buffer) hold(seq uint64, p []byte, whole int, owner *Buf) error {
	end := seq + uint64(len(p))
	i := sort.Search(len(b.held), func(i int) bool {
		s := b.held[i]
		return s.seq+uint64(len(s.data)) > seq
	})
	var pieces []segment
	for cur := seq; cur < end; {
		if i < len(b.held) && b.held[i].seq <= cur {
			cur = b.held[i].seq + uint64(len(b.held[i].data))
			i++
			continue
		}
		stop := end
		if i < len(b.held) && b.held[i].seq < end {
			stop = b.held[i].seq
		}
		pieces = append(pieces, segment{cur, piece{data: p[cur-seq : stop-seq]}})
		cur = stop
	}
	if len(pieces) == 0 {
		return nil
	}
	if len(b.held)+len(pieces) > b.maxFragments {
		return ErrFragments
	}
	for _, s := range pieces {
		s.piece = keep(s.data, whole, owner)
		j := sort.Search(len(b.held), func(j int) bool { return b.held[j].seq > s.seq })
		b.held = append(b.held, segment{})
		copy(b.held[j+1:], b.held[j:])
		b.held[j] = s
		b.heldBytes += len(s.data)
	}
	return nil
}

// Read copies in-order bytes into p.
func (b *Buffer) Read(p []byte) int {
	n := 0
	for n < len(p) && len(b.ready) > 0 {
		r := &b.ready[0]
		c := copy(p[n:], r.data)
		n += c
		if c == len(r.data) {
			r.release()
			*r = piece{}
			b.ready = b.ready[1:]
		} else {
			r.data = r.data[c:]
		}
	}
	b.readOff += uint64(n)
	return n
}

// Take removes in-order chunks, about max bytes at most (at least one
// chunk), and appends them to bufs, so a caller can write them out without
// copying. The pooled buffers they lie in are appended to owners: the
// caller holds a reference to each, to Release once done with the bytes.
func (b *Buffer) Take(max int, bufs [][]byte, owners []*Buf) ([][]byte, []*Buf) {
	n := 0
	for len(b.ready) > 0 && (n == 0 || n+len(b.ready[0].data) <= max) {
		r := b.ready[0]
		bufs = append(bufs, r.data[:len(r.data):len(r.data)]) // the tail may grow past r
		if r.buf != nil {
			owners = append(owners, r.buf)
		}
		n += len(r.data)
		b.ready[0] = piece{}
		b.ready = b.ready[1:]
	}
	b.readOff += uint64(n)
	return bufs, owners
}

// Discard drops every readable byte, as Read would, and reports how many.
func (b *Buffer) Discard() int {
	n := b.Readable()
	for _, r := range b.ready {
		r.release()
	}
	b.ready = nil
	b.tailLast = false
	b.readOff = b.next
	return n
}
