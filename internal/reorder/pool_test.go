package reorder

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// pooled copies p into a pooled buffer, as the network reader does.
func pooled(p []byte) ([]byte, *Buf) {
	rb := GetBuf()
	return rb.b[:copy(rb.b, p):len(p)], rb
}

func TestDuplicateReleasesCopy(t *testing.T) {
	b := New(1<<20, 0)
	data := bytes.Repeat([]byte{7}, 60000)
	p1, b1 := pooled(data)
	p2, b2 := pooled(data)
	b.Insert(0, p1, b1)
	b.Insert(0, p2, b2)
	b1.Release()
	b2.Release()
	if b1.refs != 1 || b2.refs != 0 {
		t.Fatalf("refs %d and %d, want 1 (held) and 0 (dropped copy)", b1.refs, b2.refs)
	}
	out := make([]byte, len(data))
	b.Read(out[:100])
	if b1.refs != 1 {
		t.Fatalf("released while partly unread: refs %d", b1.refs)
	}
	b.Read(out[100:])
	if b1.refs != 0 || !bytes.Equal(out, data) {
		t.Fatalf("refs %d after reading all", b1.refs)
	}
}

// A chunk held around a segment already held is kept in two pieces, each
// a reference to its buffer; small pieces are copied instead.
func TestPiecesShareBuffer(t *testing.T) {
	// Pieces just long enough to be kept, either side of a 10-byte gap.
	piece := BufSize/2 - 200
	gap := 1 + piece
	end := gap + 10 + piece
	data := make([]byte, end)
	for i := range data {
		data[i] = byte(i * 13)
	}
	b := New(1<<20, 0)
	small, rbSmall := pooled(data[gap : gap+10])
	b.Insert(uint64(gap), small, rbSmall)
	rbSmall.Release()
	if rbSmall.refs != 0 {
		t.Fatalf("10 bytes pin a pooled buffer: refs %d", rbSmall.refs)
	}
	p, rb := pooled(data[1:end])
	b.Insert(1, p, rb)
	if rb.refs != 3 {
		t.Fatalf("refs %d, want the reader's and two pieces'", rb.refs)
	}
	rb.Release()
	b.Insert(0, data[:1], nil)
	if rb.refs != 2 {
		t.Fatalf("refs %d after the pieces became readable", rb.refs)
	}
	bufs, owners := b.Take(1<<20, nil, nil)
	var got []byte
	for _, q := range bufs {
		got = append(got, q...)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("bytes differ")
	}
	if len(owners) != 2 || rb.refs != 2 {
		t.Fatalf("%d owners, refs %d", len(owners), rb.refs)
	}
	for _, o := range owners {
		o.Release()
	}
	if rb.refs != 0 {
		t.Fatalf("refs %d after release", rb.refs)
	}
}

func TestDiscardReleases(t *testing.T) {
	b := New(1<<20, 0)
	p, rb := pooled(make([]byte, 50000))
	b.Insert(0, p, rb)
	rb.Release()
	b.Discard()
	if rb.refs != 0 {
		t.Fatalf("refs %d", rb.refs)
	}
}

func TestRefusedInsertKeepsNoReference(t *testing.T) {
	b := New(1<<20, 1)
	b.Insert(100000, make([]byte, 1000), nil)
	p, rb := pooled(make([]byte, 40000))
	if _, err := b.Insert(200000, p, rb); err != ErrFragments {
		t.Fatalf("got %v", err)
	}
	p2, rb2 := pooled(make([]byte, 40000))
	if _, err := b.Insert(2<<20, p2, rb2); err != ErrWindow {
		t.Fatalf("got %v", err)
	}
	rb.Release()
	rb2.Release()
	if rb.refs != 0 || rb2.refs != 0 {
		t.Fatalf("refs %d %d", rb.refs, rb2.refs)
	}
}

// A stream of large pooled chunks, shuffled, duplicated and re-cut, read
// by Read and by Take with the release of taken buffers put off: every
// buffer is back in the pool at the end, and none was reused while its
// bytes were still to be read (a reused buffer would be overwritten by the
// chunks inserted after it).
func TestPooledStream(t *testing.T) {
	for seed := uint64(0); seed < 20; seed++ {
		r := rand.New(rand.NewPCG(seed, 9))
		data := make([]byte, 1<<20+r.IntN(1<<20))
		for i := range data {
			data[i] = byte(r.Uint32())
		}
		chunks := split(r, data, BufSize)
		for _, c := range append([]chunk(nil), chunks...) {
			if r.IntN(4) == 0 {
				chunks = append(chunks, c)
			}
		}
		recut := split(r, data, BufSize)
		chunks = append(chunks, recut[:r.IntN(len(recut)+1)]...)
		// Shuffle locally, so that the window holds what comes.
		for i := range chunks {
			j := min(len(chunks)-1, i+r.IntN(8))
			chunks[i], chunks[j] = chunks[j], chunks[i]
		}
		b := New(len(data), 0)
		seen := map[*Buf]bool{}
		var out []byte
		type lent struct {
			bufs   [][]byte
			owners []*Buf
		}
		var pending []lent
		check := func(l lent) {
			for _, q := range l.bufs {
				if !bytes.Equal(q, data[len(out):len(out)+len(q)]) {
					t.Fatalf("seed %d: taken bytes at %d changed before release", seed, len(out))
				}
				out = append(out, q...)
			}
			for _, o := range l.owners {
				o.Release()
			}
		}
		for _, c := range chunks {
			var p []byte
			var rb *Buf
			if len(c.data) >= BufSize/2 {
				p, rb = pooled(c.data)
				seen[rb] = true
			} else {
				p = copyOf(c.data)
			}
			if _, err := b.Insert(c.seq, p, rb); err != nil {
				t.Fatalf("seed %d: %v", seed, err)
			}
			if rb != nil {
				rb.Release()
			}
			switch r.IntN(4) {
			case 0:
				if len(pending) == 0 {
					buf := make([]byte, 1+r.IntN(100000))
					n := b.Read(buf)
					out = append(out, buf[:n]...)
				}
			case 1:
				if b.Readable() > 0 {
					bufs, owners := b.Take(1+r.IntN(300000), nil, nil)
					pending = append(pending, lent{bufs, owners})
				}
			case 2:
				if len(pending) > 0 {
					check(pending[0])
					pending = pending[1:]
				}
			}
		}
		for _, l := range pending {
			check(l)
		}
		rest := make([]byte, b.Readable())
		out = append(out, rest[:b.Read(rest)]...)
		if !bytes.Equal(out, data) {
			t.Fatalf("seed %d: got %d bytes, want %d, not equal", seed, len(out), len(data))
		}
		for rb := range seen {
			if rb.refs != 0 {
				t.Fatalf("seed %d: a buffer has %d references left", seed, rb.refs)
			}
		}
	}
}

func TestReleaseTwicePanics(t *testing.T) {
	rb := GetBuf()
	rb.Release()
	defer func() {
		rb.refs = 0 // as it was in the pool
		if recover() == nil {
			t.Fatal("no panic")
		}
	}()
	rb.Release()
}
