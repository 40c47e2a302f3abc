package session

import (
	"bytes"
	"testing"

	"github.com/mptp/mptp/internal/wire"
)

// pattern returns n bytes that differ from their neighbours, starting at
// stream offset off, so that misplaced bytes show.
func pattern(off, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte((off + i) * 7)
	}
	return b
}

// checkChunks checks that b's chunks have the given lengths, tile the
// stream from una without gaps, and hold the stream's bytes.
func checkChunks(t *testing.T, b *sendBuf, lens ...int) {
	t.Helper()
	if len(b.chunks) != len(lens) {
		t.Fatalf("%d chunks %v, want lengths %v", len(b.chunks), chunkLens(b.chunks), lens)
	}
	var seq uint64
	if len(b.chunks) > 0 {
		seq = b.chunks[0].seq
	}
	for i, c := range b.chunks {
		if len(c.data) != lens[i] {
			t.Fatalf("chunk lengths %v, want %v", chunkLens(b.chunks), lens)
		}
		if c.seq != seq {
			t.Fatalf("chunk %d at %d, want %d (chunks must be contiguous)", i, c.seq, seq)
		}
		if !bytes.Equal(c.data, pattern(int(c.seq), len(c.data))) {
			t.Fatalf("chunk %d at %d holds the wrong bytes", i, c.seq)
		}
		seq = c.end()
	}
	if len(b.chunks) > 0 && seq != b.end {
		t.Fatalf("chunks end at %d, buffer end %d", seq, b.end)
	}
}

func chunkLens(cs []*chunk) []int {
	var l []int
	for _, c := range cs {
		l = append(l, len(c.data))
	}
	return l
}

// fill appends the lengths in writes to b, as consecutive parts of the
// stream.
func fill(b *sendBuf, chunkSize int, writes ...int) {
	for _, n := range writes {
		b.append(pattern(int(b.end), n), chunkSize)
	}
}

// sendAll marks every unsent chunk sent on p.
func sendAll(b *sendBuf, p *path) {
	for c := b.nextNew(^uint64(0)); c != nil; c = b.nextNew(^uint64(0)) {
		c.sentOn = p
		b.markSent()
	}
}

func TestSendBufAppend(t *testing.T) {
	tests := []struct {
		name      string
		chunkSize int
		writes    []int
		sendFirst int // chunks marked sent after the first write
		lens      []int
	}{
		{"one write cut into chunks", 10, []int{25}, 0, []int{10, 10, 5}},
		{"exact multiple", 10, []int{20}, 0, []int{10, 10}},
		{"small writes fill one chunk", 10, []int{3, 3, 3}, 0, []int{9}},
		{"small writes spill into the next", 10, []int{7, 7}, 0, []int{10, 4}},
		{"many writes", 10, []int{4, 4, 4, 4, 4, 4}, 0, []int{10, 10, 4}},
		{"a sent chunk is not extended", 10, []int{5, 5}, 1, []int{5, 5}},
		{"a sent chunk is not extended, the next is", 10, []int{5, 2, 2}, 1, []int{5, 4}},
		{"empty write", 10, []int{0}, 0, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b sendBuf
			total := 0
			for i, n := range tc.writes {
				fill(&b, tc.chunkSize, n)
				total += n
				if i == 0 {
					for j := 0; j < tc.sendFirst; j++ {
						if b.nextNew(^uint64(0)) == nil {
							t.Fatal("nothing to send")
						}
						b.markSent()
					}
				}
			}
			checkChunks(t, &b, tc.lens...)
			if b.end != uint64(total) || b.buffered() != total {
				t.Fatalf("end %d buffered %d, want %d", b.end, b.buffered(), total)
			}
			for _, c := range b.chunks {
				if len(c.data) > tc.chunkSize {
					t.Fatalf("chunk of %d bytes, more than chunkSize %d", len(c.data), tc.chunkSize)
				}
			}
		})
	}
}

func TestSendBufAppendPooled(t *testing.T) {
	const cs = wire.MaxPayload
	tests := []struct {
		name       string
		writes     []int
		wantPooled []bool
		lens       []int
	}{
		{"full chunk goes into a pooled buffer", []int{cs}, []bool{true}, []int{cs}},
		{"a quarter chunk or more is pooled", []int{cs / 4}, []bool{true}, []int{cs / 4}},
		{"small write is not pooled", []int{100}, []bool{false}, []int{100}},
		{"pooled chunk filled in place", []int{cs / 2, cs / 2}, []bool{true}, []int{cs/2 + cs/2}},
		{"big write over two chunks", []int{cs + 10}, []bool{true, false}, []int{cs, 10}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b sendBuf
			fill(&b, cs, tc.writes...)
			checkChunks(t, &b, tc.lens...)
			for i, c := range b.chunks {
				if (c.pooled != nil) != tc.wantPooled[i] {
					t.Fatalf("chunk %d pooled %v, want %v", i, c.pooled != nil, tc.wantPooled[i])
				}
				if c.pooled != nil && &(*c.pooled)[0] != &c.data[0] {
					t.Fatalf("chunk %d: data does not lie in its pooled buffer", i)
				}
			}
		})
	}
	// Other chunk sizes never use the pool, whose buffers are MaxPayload.
	var b sendBuf
	fill(&b, 1000, 1000)
	if b.chunks[0].pooled != nil {
		t.Fatal("chunk pooled with chunkSize 1000")
	}
}

func TestSendBufPush(t *testing.T) {
	const cs = 100
	buf := func(off, n int) *[]byte {
		b := make([]byte, cs)
		copy(b, pattern(off, n))
		return &b
	}
	tests := []struct {
		name  string
		first int // bytes appended before the push
		push  int
		kept  bool
		lens  []int
	}{
		{"large piece is its own chunk", 0, 50, true, []int{50}},
		{"full chunk", 0, cs, true, []int{cs}},
		{"quarter chunk is kept", 0, cs / 4, true, []int{cs / 4}},
		{"small piece is copied", 0, cs/4 - 1, false, []int{cs/4 - 1}},
		{"small piece joins the last chunk", 30, 10, false, []int{40}},
		{"large piece does not join the last chunk", 30, 40, true, []int{30, 40}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b sendBuf
			fill(&b, cs, tc.first)
			pb := buf(tc.first, tc.push)
			if got := b.push(pb, tc.push, cs); got != tc.kept {
				t.Fatalf("push kept %v, want %v", got, tc.kept)
			}
			checkChunks(t, &b, tc.lens...)
			if b.buffered() != tc.first+tc.push {
				t.Fatalf("buffered %d, want %d", b.buffered(), tc.first+tc.push)
			}
			last := b.chunks[len(b.chunks)-1]
			if tc.kept {
				if last.pooled != pb || &last.data[0] != &(*pb)[0] || cap(last.data) != tc.push {
					t.Fatal("kept buffer: the chunk must own it, uncopied, capped at its length")
				}
			} else if last.pooled == pb {
				t.Fatal("buffer not kept, yet the chunk owns it")
			}
		})
	}
}

func TestSendBufNextNew(t *testing.T) {
	tests := []struct {
		name     string
		writes   []int // chunkSize 10
		sent     int   // chunks marked sent first
		limit    uint64
		want     [2]uint64 // seq, end of the chunk returned; zero: nil
		wantNil  bool
		lensThen []int
	}{
		{"empty buffer", nil, 0, 100, [2]uint64{}, true, nil},
		{"limit at the start", []int{10}, 0, 0, [2]uint64{}, true, []int{10}},
		{"limit at the end", []int{10}, 0, 10, [2]uint64{0, 10}, false, []int{10}},
		{"limit beyond", []int{25}, 0, 1000, [2]uint64{0, 10}, false, []int{10, 10, 5}},
		{"limit inside: split", []int{10}, 0, 4, [2]uint64{0, 4}, false, []int{4, 6}},
		{"split in the middle of the buffer", []int{30}, 1, 15, [2]uint64{10, 15}, false, []int{10, 5, 5, 10}},
		{"all sent", []int{20}, 2, 1000, [2]uint64{}, true, []int{10, 10}},
		{"next unsent chunk beyond the limit", []int{20}, 1, 10, [2]uint64{}, true, []int{10, 10}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b sendBuf
			fill(&b, 10, tc.writes...)
			for i := 0; i < tc.sent; i++ {
				b.nextNew(^uint64(0))
				b.markSent()
			}
			backlog := b.backlog()
			c := b.nextNew(tc.limit)
			if (c == nil) != tc.wantNil {
				t.Fatalf("got chunk %v, want nil %v", c, tc.wantNil)
			}
			if c != nil {
				if c.seq != tc.want[0] || c.end() != tc.want[1] {
					t.Fatalf("chunk [%d, %d), want [%d, %d)", c.seq, c.end(), tc.want[0], tc.want[1])
				}
				if c.end() > tc.limit {
					t.Fatalf("chunk ends at %d, beyond the limit %d", c.end(), tc.limit)
				}
				if b.chunks[b.unsent] != c {
					t.Fatal("nextNew did not return the first unsent chunk")
				}
			}
			checkChunks(t, &b, tc.lensThen...)
			if b.backlog() != backlog {
				t.Fatalf("backlog %d after nextNew, was %d: a split must not change it", b.backlog(), backlog)
			}
			// nextNew does not mark anything sent: asking again gives the same.
			if c != nil && b.nextNew(tc.limit) != c {
				t.Fatal("nextNew twice gave different chunks")
			}
		})
	}
}

func TestSendBufMarkSentAllSent(t *testing.T) {
	var b sendBuf
	if !b.allSent() || b.sentEnd() != 0 {
		t.Fatalf("empty buffer: allSent %v sentEnd %d, want true 0", b.allSent(), b.sentEnd())
	}
	fill(&b, 10, 25)
	wantEnds := []uint64{10, 20, 25}
	for i, want := range wantEnds {
		if b.allSent() {
			t.Fatalf("allSent with %d of 3 chunks sent", i)
		}
		if b.sentEnd() != uint64(i*10) {
			t.Fatalf("sentEnd %d, want %d", b.sentEnd(), i*10)
		}
		c := b.nextNew(^uint64(0))
		b.markSent()
		if c.end() != want || b.unsent != i+1 {
			t.Fatalf("sent [%d, %d) unsent %d, want end %d unsent %d", c.seq, c.end(), b.unsent, want, i+1)
		}
	}
	if !b.allSent() || b.sentEnd() != 25 || b.backlog() != 0 {
		t.Fatalf("all sent: allSent %v sentEnd %d backlog %d, want true 25 0", b.allSent(), b.sentEnd(), b.backlog())
	}
	// Bytes waiting to be sent again: not all sent.
	p := &path{}
	b.chunks[1].sentOn = p
	b.requeue(p)
	if b.allSent() {
		t.Fatal("allSent with a chunk waiting for retransmission")
	}
	b.popRetrans()
	if !b.allSent() {
		t.Fatal("not allSent once the retransmission was taken")
	}
}

func TestSendBufAck(t *testing.T) {
	type step struct {
		ack          uint64
		una          uint64
		lens         []int
		unsent       int
		buffered     int
		backlog      uint64
		retransFirst uint64 // seq of retrans[0]; ^0 when empty
	}
	none := ^uint64(0)
	tests := []struct {
		name  string
		sent  int   // of the chunks [0,10) [10,20) [20,30) [30,40)
		lost  []int // sent chunks requeued as lost
		steps []step
	}{
		{
			name: "whole chunks freed, partial acks keep the chunk",
			sent: 3,
			steps: []step{
				{ack: 5, una: 5, lens: []int{10, 10, 10, 10}, unsent: 3, buffered: 35, backlog: 10, retransFirst: none},
				{ack: 10, una: 10, lens: []int{10, 10, 10}, unsent: 2, buffered: 30, backlog: 10, retransFirst: none},
				{ack: 3, una: 10, lens: []int{10, 10, 10}, unsent: 2, buffered: 30, backlog: 10, retransFirst: none}, // old ack
				{ack: 25, una: 25, lens: []int{10, 10}, unsent: 1, buffered: 15, backlog: 10, retransFirst: none},
				{ack: 30, una: 30, lens: []int{10}, unsent: 0, buffered: 10, backlog: 10, retransFirst: none},
			},
		},
		{
			name: "acks free chunks waiting for retransmission",
			sent: 4,
			lost: []int{1, 3},
			steps: []step{
				{ack: 10, una: 10, lens: []int{10, 10, 10}, unsent: 3, buffered: 30, backlog: 20, retransFirst: 10},
				{ack: 15, una: 15, lens: []int{10, 10, 10}, unsent: 3, buffered: 25, backlog: 20, retransFirst: 10},
				{ack: 20, una: 20, lens: []int{10, 10}, unsent: 2, buffered: 20, backlog: 10, retransFirst: 30},
				{ack: 40, una: 40, lens: nil, unsent: 0, buffered: 0, backlog: 0, retransFirst: none},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b sendBuf
			fill(&b, 10, 40)
			lost, ok := &path{}, &path{}
			for i := 0; i < tc.sent; i++ {
				c := b.nextNew(^uint64(0))
				c.sentOn = ok
				b.markSent()
			}
			for _, i := range tc.lost {
				b.chunks[i].sentOn = lost
			}
			b.requeue(lost)
			for i, st := range tc.steps {
				b.ack(st.ack)
				if b.una != st.una {
					t.Fatalf("step %d ack(%d): una %d, want %d", i, st.ack, b.una, st.una)
				}
				checkChunks(t, &b, st.lens...)
				if b.unsent != st.unsent || b.buffered() != st.buffered || b.backlog() != st.backlog {
					t.Fatalf("step %d ack(%d): unsent %d buffered %d backlog %d, want %d %d %d",
						i, st.ack, b.unsent, b.buffered(), b.backlog(), st.unsent, st.buffered, st.backlog)
				}
				first := none
				if len(b.retrans) > 0 {
					first = b.retrans[0].seq
				}
				if first != st.retransFirst {
					t.Fatalf("step %d ack(%d): first retransmission at %d, want %d", i, st.ack, first, st.retransFirst)
				}
			}
		})
	}
}

func TestSendBufAckRecyclesAfterWrite(t *testing.T) {
	var b sendBuf
	fill(&b, wire.MaxPayload, wire.MaxPayload, wire.MaxPayload)
	c0, c1 := b.chunks[0], b.chunks[1]
	if c0.pooled == nil || c1.pooled == nil {
		t.Fatal("chunks not pooled")
	}
	sendAll(&b, &path{})
	c0.writers = 1 // a write still holds c0
	b.ack(b.end)
	if !c0.acked || c0.pooled == nil || c0.data == nil {
		t.Fatal("a chunk a write holds was recycled on ack")
	}
	if !c1.acked || c1.pooled != nil || c1.data != nil {
		t.Fatal("an acked chunk no write holds was not recycled")
	}
	b.written(c0)
	if c0.writers != 0 || c0.pooled != nil || c0.data != nil {
		t.Fatal("the chunk was not recycled when its write returned")
	}
	// A write returning for a chunk not yet acked keeps it.
	fill(&b, wire.MaxPayload, wire.MaxPayload)
	c2 := b.chunks[0]
	c2.writers = 1
	b.written(c2)
	if c2.pooled == nil || c2.data == nil {
		t.Fatal("an unacked chunk was recycled")
	}
}

func TestSendBufRequeuePopRetrans(t *testing.T) {
	var b sendBuf
	fill(&b, 10, 60) // [0,10) ... [50,60)
	p1, p2, p3 := &path{}, &path{}, &path{}
	on := []*path{p1, p2, p1, p3, p2} // chunk 5 stays unsent
	for _, p := range on {
		c := b.nextNew(^uint64(0))
		c.sentOn = p
		b.markSent()
	}
	steps := []struct {
		requeue  *path
		n        int
		retrans  []uint64
		backlog  uint64
		sentOnP1 int
	}{
		{p1, 20, []uint64{0, 20}, 30, 0},
		{p1, 0, []uint64{0, 20}, 30, 0}, // nothing left on p1
		{p2, 20, []uint64{0, 10, 20, 40}, 50, 0},
	}
	for i, st := range steps {
		if n := b.requeue(st.requeue); n != st.n {
			t.Fatalf("step %d: requeue gave %d bytes, want %d", i, n, st.n)
		}
		var seqs []uint64
		for _, c := range b.retrans {
			seqs = append(seqs, c.seq)
			if c.sentOn != nil {
				t.Fatalf("step %d: chunk %d queued again still marks a path", i, c.seq)
			}
		}
		if !equalU64(seqs, st.retrans) {
			t.Fatalf("step %d: retrans %v, want %v (sorted by seq)", i, seqs, st.retrans)
		}
		if b.backlog() != st.backlog {
			t.Fatalf("step %d: backlog %d, want %d", i, b.backlog(), st.backlog)
		}
	}
	if b.chunks[3].sentOn != p3 {
		t.Fatal("a chunk on another path was queued again")
	}
	if b.unsent != 5 {
		t.Fatalf("requeue moved unsent to %d", b.unsent)
	}
	// popRetrans takes the oldest first, then nil.
	for _, want := range []uint64{0, 10, 20, 40} {
		c := b.popRetrans()
		if c == nil || c.seq != want {
			t.Fatalf("popRetrans %v, want chunk %d", c, want)
		}
	}
	if c := b.popRetrans(); c != nil {
		t.Fatalf("popRetrans %d from an empty queue", c.seq)
	}
	if b.backlog() != 10 {
		t.Fatalf("backlog %d after popping all, want the 10 unsent bytes", b.backlog())
	}
}

func equalU64(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestSendBufFrom(t *testing.T) {
	tests := []struct {
		name  string
		acked uint64
		seq   uint64
		want  []uint64 // seqs of the chunks returned
	}{
		{"from the start", 0, 0, []uint64{0, 10, 20}},
		{"inside the first chunk: it counts", 0, 9, []uint64{0, 10, 20}},
		{"at a boundary", 0, 10, []uint64{10, 20}},
		{"inside the last", 0, 25, []uint64{20}},
		{"at the end", 0, 30, nil},
		{"beyond the end", 0, 100, nil},
		{"below una after an ack", 10, 0, []uint64{10, 20}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b sendBuf
			fill(&b, 10, 30)
			sendAll(&b, &path{})
			b.ack(tc.acked)
			var got []uint64
			for _, c := range b.from(tc.seq) {
				got = append(got, c.seq)
			}
			if !equalU64(got, tc.want) {
				t.Fatalf("from(%d) %v, want %v", tc.seq, got, tc.want)
			}
		})
	}
}
