package mux

import "sync"

// blockSize is the size of the pooled blocks that stream bytes wait in,
// on both sides: a DATA payload fits one.
const blockSize = 64 << 10

var blockPool = sync.Pool{New: func() any {
	b := make([]byte, blockSize)
	return &b
}}

// block is a piece of a byte queue: data, and the pooled block it lies in
// (nil for a small piece of its own).
type block struct {
	data []byte
	pool *[]byte
}

func (b *block) release() {
	if b.pool != nil {
		blockPool.Put(b.pool)
	}
	*b = block{}
}

// byteQueue holds bytes in blocks. An empty queue holds no memory, so an
// idle stream costs none: blocks go back to the pool as they empty.
type byteQueue struct {
	blocks []block
	n      int
}

func (q *byteQueue) len() int { return q.n }

// write copies p in, filling the last block before taking a new one.
func (q *byteQueue) write(p []byte) {
	q.n += len(p)
	for len(p) > 0 {
		if last := len(q.blocks) - 1; last >= 0 && q.blocks[last].pool != nil {
			b := &q.blocks[last]
			if free := cap(b.data) - len(b.data); free > 0 {
				k := min(free, len(p))
				b.data = append(b.data, p[:k]...)
				p = p[k:]
				continue
			}
		}
		pb := blockPool.Get().(*[]byte)
		k := min(blockSize, len(p))
		data := append((*pb)[:0], p[:k]...)
		q.blocks = append(q.blocks, block{data: data, pool: pb})
		p = p[k:]
	}
}

// push adds a received payload as a block of its own, without a copy.
func (q *byteQueue) push(b block) {
	q.n += len(b.data)
	q.blocks = append(q.blocks, b)
}

// peek returns up to n bytes from the front, in one piece (they may be
// fewer than n and than len: one block's worth).
func (q *byteQueue) peek(n int) []byte {
	if len(q.blocks) == 0 {
		return nil
	}
	d := q.blocks[0].data
	return d[:min(n, len(d))]
}

// discard drops n bytes from the front (at most what peek returned, or
// the whole queue), releasing emptied blocks.
func (q *byteQueue) discard(n int) {
	q.n -= n
	for n > 0 {
		b := &q.blocks[0]
		k := min(n, len(b.data))
		b.data = b.data[k:]
		n -= k
		if len(b.data) == 0 {
			b.release()
			q.blocks = q.blocks[1:]
		}
	}
	if len(q.blocks) == 0 {
		q.blocks = nil // let the backing array go
	}
}

// read copies bytes from the front into p.
func (q *byteQueue) read(p []byte) int {
	n := 0
	for n < len(p) && q.n > 0 {
		c := copy(p[n:], q.peek(len(p)-n))
		q.discard(c)
		n += c
	}
	return n
}

// reset drops everything.
func (q *byteQueue) reset() {
	for i := range q.blocks {
		q.blocks[i].release()
	}
	q.blocks, q.n = nil, 0
}

// pop takes the front block out whole; its bytes are the caller's, who
// releases it.
func (q *byteQueue) pop() block {
	b := q.blocks[0]
	q.blocks[0] = block{}
	q.blocks = q.blocks[1:]
	if len(q.blocks) == 0 {
		q.blocks = nil
	}
	q.n -= len(b.data)
	return b
}
