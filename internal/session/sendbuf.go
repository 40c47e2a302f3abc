package session

import (
	"sort"
	"sync"
	"time"

	"github.com/mptp/mptp/internal/wire"
)

// chunk is a piece of the outgoing byte stream. It keeps its boundaries
// when it is sent again, so a receiver sees the same pieces on every path.
type chunk struct {
	seq    uint64
	data   []byte
	sentOn *path // nil when never sent, or queued to be sent again
	sentAt time.Time
	resent bool
	copied bool // a copy went out on a faster path (rescue)
	// pooled is the buffer from chunkPool that data lies in, if any. It
	// goes back once the chunk is acknowledged and no write holds it:
	// writers counts the writes in progress, acked marks the first.
	pooled  *[]byte
	writers int
	acked   bool
}

// chunkPool recycles the buffers ReadFrom reads into.
var chunkPool = sync.Pool{New: func() any {
	b := make([]byte, wire.MaxPayload)
	return &b
}}

func (c *chunk) end() uint64 { return c.seq + uint64(len(c.data)) }

// sendBuf holds written bytes until the peer acknowledges them.
type sendBuf struct {
	chunks  []*chunk // in order of seq; the first one holds the oldest unacked byte
	unsent  int      // index in chunks of the first chunk never sent
	end     uint64   // offset after the last written byte
	retrans []*chunk // sent on a path that died; sorted by seq
	una     uint64   // every byte below it is acknowledged
}

// buffered is the number of bytes written and not yet acknowledged.
func (b *sendBuf) buffered() int { return int(b.end - b.una) }

// append copies up to n bytes of p into the buffer, filling a last chunk
// that was never sent before starting a new one.
func (b *sendBuf) append(p []byte, chunkSize int) {
	for len(p) > 0 {
		if last := len(b.chunks) - 1; last >= b.unsent && last >= 0 && len(b.chunks[last].data) < chunkSize {
			c := b.chunks[last]
			n := min(chunkSize-len(c.data), len(p))
			c.data = append(c.data, p[:n]...)
			p = p[n:]
			b.end += uint64(n)
			continue
		}
		n := min(chunkSize, len(p))
		c := &chunk{seq: b.end}
		if n >= chunkSize/4 && chunkSize == wire.MaxPayload {
			// Large writes go into pooled buffers: a busy session would
			// otherwise leave a chunk of garbage per write.
			c.pooled = chunkPool.Get().(*[]byte)
			c.data = (*c.pooled)[:n]
		} else {
			c.data = make([]byte, n, max(n, min(chunkSize, 4096)))
		}
		copy(c.data, p)
		b.chunks = append(b.chunks, c)
		b.end += uint64(n)
		p = p[n:]
	}
}

// push adds the first n bytes of buf, a buffer from chunkPool, as a chunk
// of its own, without copying. Small pieces are copied into the last chunk
// instead, so that chunks stay large; push reports whether it kept buf.
func (b *sendBuf) push(buf *[]byte, n, chunkSize int) bool {
	if n < chunkSize/4 {
		b.append((*buf)[:n], chunkSize)
		return false
	}
	b.chunks = append(b.chunks, &chunk{seq: b.end, data: (*buf)[:n:n], pooled: buf})
	b.end += uint64(n)
	return true
}

// nextNew returns the first chunk never sent, cut so that it ends at or
// below limit, or nil.
func (b *sendBuf) nextNew(limit uint64) *chunk {
	if b.unsent >= len(b.chunks) {
		return nil
	}
	c := b.chunks[b.unsent]
	if c.seq >= limit {
		return nil
	}
	if c.end() > limit {
		// The window ends inside the chunk: split it.
		n := limit - c.seq
		rest := &chunk{seq: limit, data: append([]byte(nil), c.data[n:]...)}
		c.data = c.data[:n:n]
		b.chunks = append(b.chunks, nil)
		copy(b.chunks[b.unsent+2:], b.chunks[b.unsent+1:])
		b.chunks[b.unsent+1] = rest
	}
	return c
}

// sentEnd is the offset below which every byte was sent at least once:
// a peer cannot acknowledge more.
func (b *sendBuf) sentEnd() uint64 {
	if b.unsent < len(b.chunks) {
		return b.chunks[b.unsent].seq
	}
	return b.end
}

// markSent records that the chunk nextNew returned went out.
func (b *sendBuf) markSent() { b.unsent++ }

// allSent reports whether every written byte went out at least once and
// nothing waits to be sent again.
func (b *sendBuf) allSent() bool { return b.unsent >= len(b.chunks) && len(b.retrans) == 0 }

// ack frees every chunk wholly below upto.
func (b *sendBuf) ack(upto uint64) {
	if upto <= b.una {
		return
	}
	b.una = upto
	i := 0
	for i < len(b.chunks) && b.chunks[i].end() <= upto {
		c := b.chunks[i]
		// A peer may acknowledge bytes a write still holds (a hostile one
		// even before they went out): the buffer waits for that write.
		c.acked = true
		b.recycle(c)
		b.chunks[i] = nil
		i++
	}
	if i > 0 {
		b.chunks = b.chunks[i:]
		b.unsent = max(0, b.unsent-i)
	}
	j := 0
	for j < len(b.retrans) && b.retrans[j].end() <= upto {
		j++
	}
	clear(b.retrans[:j]) // the backing array must not keep freed chunks alive
	b.retrans = b.retrans[j:]
}

// written is called when a write that held c has returned.
func (b *sendBuf) written(c *chunk) {
	c.writers--
	b.recycle(c)
}

func (b *sendBuf) recycle(c *chunk) {
	if c.acked && c.writers == 0 && c.pooled != nil {
		chunkPool.Put(c.pooled)
		c.pooled, c.data = nil, nil
	}
}

// requeue queues again every unacknowledged chunk last sent on p.
func (b *sendBuf) requeue(p *path) int {
	n := 0
	for _, c := range b.chunks[:b.unsent] {
		if c.sentOn == p {
			c.sentOn = nil
			b.retrans = append(b.retrans, c)
			n += len(c.data)
		}
	}
	sort.Slice(b.retrans, func(i, j int) bool { return b.retrans[i].seq < b.retrans[j].seq })
	return n
}

// backlog is the number of bytes waiting to be sent, for the first time
// or again.
func (b *sendBuf) backlog() uint64 {
	var n uint64
	if b.unsent < len(b.chunks) {
		n = b.end - b.chunks[b.unsent].seq
	}
	for _, c := range b.retrans {
		n += uint64(len(c.data))
	}
	return n
}

// popRetrans takes the oldest chunk waiting to be sent again.
func (b *sendBuf) popRetrans() *chunk {
	if len(b.retrans) == 0 {
		return nil
	}
	c := b.retrans[0]
	b.retrans[0] = nil
	b.retrans = b.retrans[1:]
	return c
}

// from returns the chunks that start at or after seq, for the redundant
// scheduler, which walks the buffer with a cursor per path.
func (b *sendBuf) from(seq uint64) []*chunk {
	i := sort.Search(len(b.chunks), func(i int) bool { return b.chunks[i].end() > seq })
	return b.chunks[i:]
}
