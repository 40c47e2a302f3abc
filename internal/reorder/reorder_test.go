package reorder

import (
	"bytes"
	"crypto/sha256"
	"math/rand/v2"
	"testing"
)

type chunk struct {
	seq  uint64
	data []byte
}

func split(r *rand.Rand, data []byte, maxLen int) []chunk {
	var cs []chunk
	for off := 0; off < len(data); {
		n := 1 + r.IntN(maxLen)
		if off+n > len(data) {
			n = len(data) - off
		}
		cs = append(cs, chunk{uint64(off), data[off : off+n]})
		off += n
	}
	return cs
}

// copyOf gives the buffer its own slice, as the network reader does.
func copyOf(p []byte) []byte { return append([]byte(nil), p...) }

func TestPermutationsAndDuplicates(t *testing.T) {
	for seed := uint64(0); seed < 200; seed++ {
		r := rand.New(rand.NewPCG(seed, 7))
		data := make([]byte, 1+r.IntN(64<<10))
		for i := range data {
			data[i] = byte(r.Uint32())
		}
		chunks := split(r, data, 1+r.IntN(4096))
		// Duplicates, some re-cut at other boundaries (overlaps).
		for _, c := range append([]chunk(nil), chunks...) {
			if r.IntN(3) == 0 {
				chunks = append(chunks, c)
			}
		}
		recut := split(r, data, 3000)
		chunks = append(chunks, recut[:r.IntN(len(recut)+1)]...)
		r.Shuffle(len(chunks), func(i, j int) { chunks[i], chunks[j] = chunks[j], chunks[i] })

		b := New(len(data)+r.IntN(100), len(data))
		var out []byte
		buf := make([]byte, 1+r.IntN(5000))
		for _, c := range chunks {
			if _, err := b.Insert(c.seq, copyOf(c.data), nil); err != nil {
				t.Fatalf("seed %d: %v", seed, err)
			}
			if r.IntN(2) == 0 {
				n := b.Read(buf)
				out = append(out, buf[:n]...)
			}
		}
		for b.Readable() > 0 {
			n := b.Read(buf)
			out = append(out, buf[:n]...)
		}
		if sha256.Sum256(out) != sha256.Sum256(data) {
			t.Fatalf("seed %d: got %d bytes, want %d, not equal", seed, len(out), len(data))
		}
		if b.Held() != 0 || b.Next() != uint64(len(data)) || b.ReadOffset() != uint64(len(data)) {
			t.Fatalf("seed %d: held %d next %d read %d", seed, b.Held(), b.Next(), b.ReadOffset())
		}
	}
}

func TestWindow(t *testing.T) {
	b := New(10, 0)
	if _, err := b.Insert(5, make([]byte, 6), nil); err != ErrWindow {
		t.Fatalf("beyond window: %v", err)
	}
	if _, err := b.Insert(0, []byte("0123456789"), nil); err != nil {
		t.Fatal(err)
	}
	if b.Window() != 0 {
		t.Fatalf("window %d, want 0", b.Window())
	}
	if _, err := b.Insert(10, []byte("a"), nil); err != ErrWindow {
		t.Fatalf("full buffer accepted more: %v", err)
	}
	p := make([]byte, 4)
	b.Read(p)
	if !bytes.Equal(p, []byte("0123")) || b.Window() != 4 || b.Limit() != 14 {
		t.Fatalf("after read: %q window %d", p, b.Window())
	}
	if _, err := b.Insert(10, []byte("abcd"), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Insert(^uint64(0)-1, []byte("xyz"), nil); err != ErrWindow {
		t.Fatalf("wrapping offset: %v", err)
	}
}

func TestFragmentsBounded(t *testing.T) {
	b := New(1<<20, 0)
	var err error
	for i := uint64(0); err == nil; i++ {
		_, err = b.Insert(2*i+1, []byte{1}, nil)
		if i > 1<<20 {
			t.Fatal("no bound on fragments")
		}
	}
	if err != ErrFragments {
		t.Fatalf("got %v", err)
	}
}

func FuzzInsert(f *testing.F) {
	f.Add([]byte{0, 5, 3, 2, 9, 9, 1, 1})
	f.Fuzz(func(t *testing.T, ops []byte) {
		data := make([]byte, 256)
		for i := range data {
			data[i] = byte(i)
		}
		b := New(200, 0)
		var out []byte
		for i := 0; i+1 < len(ops); i += 2 {
			seq, n := int(ops[i]), int(ops[i+1]%64)+1
			if seq+n > len(data) {
				n = len(data) - seq
			}
			if _, err := b.Insert(uint64(seq), copyOf(data[seq:seq+n]), nil); err != nil {
				continue
			}
			buf := make([]byte, 1+int(ops[i+1]%7))
			k := b.Read(buf)
			out = append(out, buf[:k]...)
		}
		if !bytes.Equal(out, data[:len(out)]) {
			t.Fatalf("out of order output %v", out)
		}
	})
}

// Frames that each bring one new byte must not pin their whole buffers.
func TestSlivers(t *testing.T) {
	b := New(1<<20, 0)
	var pinned int
	for i := 0; i < 2000; i++ {
		frame := make([]byte, 64<<10)
		b.Insert(uint64(i), frame, nil)
		pinned += cap(frame)
	}
	kept := 0
	for _, p := range b.ready {
		kept += cap(p.data)
	}
	if kept > 256<<10 {
		t.Fatalf("%d bytes readable pin %d bytes of buffers", b.Readable(), kept)
	}
}

// A flood of one-byte frames that nobody reads costs about the bytes it
// carries: they share buffers and entries.
func TestTinyFramesShareMemory(t *testing.T) {
	const n = 1 << 20
	b := New(n, 0)
	for i := 0; i < n; i++ {
		// Every other byte arrives out of order first, then its gap.
		if i%2 == 0 && i+1 < n {
			if _, err := b.Insert(uint64(i+1), []byte{byte(i + 1)}, nil); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := b.Insert(uint64(i), []byte{byte(i)}, nil); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			i++
		}
	}
	if b.Readable() != n {
		t.Fatalf("readable %d", b.Readable())
	}
	if len(b.ready) > n/tailSize+1 || len(b.ready)*24+n > 2*n {
		t.Fatalf("%d bytes in %d entries", n, len(b.ready))
	}
	out := make([]byte, 0, n)
	bufs, _ := b.Take(2*n, nil, nil)
	for _, p := range bufs {
		out = append(out, p...)
	}
	for i, c := range out {
		if c != byte(i) {
			t.Fatalf("byte %d is %d", i, c)
		}
	}
}
