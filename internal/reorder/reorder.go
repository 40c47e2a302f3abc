// Package reorder puts a byte stream that arrives in chunks, in any order
// and with duplicates, back in order, within a fixed memory bound.
package reorder

import (
	"errors"
	"sort"
)

// ErrWindow means a chunk reaches beyond the window that was advertised:
// a sender that honours the window never does that.
var ErrWindow = errors.New("reorder: data beyond the receive window")

// ErrFragments means too many separate out-of-order pieces are held.
var ErrFragments = errors.New("reorder: too many out-of-order fragments")

type segment struct {
	seq  uint64
	data []byte
}

// Buffer holds bytes received but not yet read. Offsets below Next have all
// arrived; the reader consumes from ReadOffset. Memory is bounded by
// capacity: no byte at or beyond ReadOffset+capacity is accepted.
type Buffer struct {
	capacity     int
	maxFragments int
	next         uint64    // first byte not yet received in order
	readOff      uint64    // first byte not yet read
	ready        [][]byte  // contiguous bytes [readOff, next)
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

// compact copies a piece of a chunk of whole bytes when it would pin a
// much larger buffer, so that memory follows the bytes held, not the
// frames they came in (a peer could send 64 KiB frames each one byte apart).
func compact(piece []byte, whole int) []byte {
	if len(piece) < whole && (len(piece) < smallPiece || 2*len(piece)+512 < whole) {
		return append([]byte(nil), piece...)
	}
	return piece
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
// parts of it); the caller must not reuse it. Duplicate bytes are dropped.
// It reports how many bytes became readable.
func (b *Buffer) Insert(seq uint64, p []byte) (int, error) {
	whole := len(p)
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
		return 0, b.hold(seq, p, whole)
	}
	before := b.next
	b.appendReady(p, whole)
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
		if sEnd <= b.next {
			continue
		}
		b.appendReady(s.data[b.next-s.seq:], len(s.data))
		b.next = sEnd
	}
	b.held = append(b.held[:0], b.held[i:]...)
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
func (b *Buffer) appendReady(p []byte, whole int) {
	if len(p) >= smallPiece {
		b.ready = append(b.ready, compact(p, whole))
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
		b.ready[n-1] = b.ready[n-1][:len(b.ready[n-1])+len(p)]
		return
	}
	b.ready = append(b.ready, b.tail[start:])
	b.tailLast = true
}

// hold stores the parts of [seq, seq+len(p)) that no held segment covers.
func (b *Buffer) hold(seq uint64, p []byte, whole int) error {
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
		pieces = append(pieces, segment{cur, compact(p[cur-seq:stop-seq], whole)})
		cur = stop
	}
	if len(pieces) == 0 {
		return nil
	}
	if len(b.held)+len(pieces) > b.maxFragments {
		return ErrFragments
	}
	for _, s := range pieces {
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
		c := copy(p[n:], b.ready[0])
		n += c
		if c == len(b.ready[0]) {
			b.ready[0] = nil
			b.ready = b.ready[1:]
		} else {
			b.ready[0] = b.ready[0][c:]
		}
	}
	b.readOff += uint64(n)
	return n
}

// Take removes and returns in-order chunks, about max bytes at most (at
// least one chunk), so a caller can write them out without copying.
func (b *Buffer) Take(max int) [][]byte {
	var out [][]byte
	n := 0
	for len(b.ready) > 0 && (n == 0 || n+len(b.ready[0]) <= max) {
		r := b.ready[0]
		out = append(out, r[:len(r):len(r)]) // the tail may grow past r
		n += len(b.ready[0])
		b.ready[0] = nil
		b.ready = b.ready[1:]
	}
	b.readOff += uint64(n)
	return out
}

// Discard drops every readable byte, as Read would, and reports how many.
func (b *Buffer) Discard() int {
	n := b.Readable()
	b.ready = nil
	b.tailLast = false
	b.readOff = b.next
	return n
}
