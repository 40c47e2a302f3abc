package mux

import (
	"bytes"
	"crypto/rand"
	"testing"
)

// Bytes written in pieces of every size come out the same, in reads of
// every size, and an emptied queue holds no blocks.
func TestByteQueueRoundTrip(t *testing.T) {
	data := make([]byte, 3*blockSize+12345)
	rand.Read(data)
	for _, wsize := range []int{1, 1000, blockSize - 1, blockSize, blockSize + 1, len(data)} {
		for _, rsize := range []int{1, 777, blockSize, 2 * blockSize} {
			var q byteQueue
			for off := 0; off < len(data); off += wsize {
				q.write(data[off:min(len(data), off+wsize)])
			}
			if q.len() != len(data) {
				t.Fatalf("write %d: len %d, want %d", wsize, q.len(), len(data))
			}
			var got []byte
			buf := make([]byte, rsize)
			for q.len() > 0 {
				n := q.read(buf)
				got = append(got, buf[:n]...)
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("write %d, read %d: bytes differ", wsize, rsize)
			}
			if q.blocks != nil {
				t.Fatalf("write %d, read %d: an empty queue holds %d blocks", wsize, rsize, len(q.blocks))
			}
		}
	}
}

// Writes fill the last block before taking another: small writes do not
// take a block each.
func TestByteQueueFillsBlocks(t *testing.T) {
	var q byteQueue
	for range 100 {
		q.write(make([]byte, 100))
	}
	if len(q.blocks) != 1 {
		t.Fatalf("100 writes of 100 bytes took %d blocks, want 1", len(q.blocks))
	}
	q.write(make([]byte, blockSize))
	if len(q.blocks) != 2 || q.len() != 100*100+blockSize {
		t.Fatalf("%d blocks, %d bytes", len(q.blocks), q.len())
	}
}

// peek and discard take the front in pieces no larger than a block; a
// pushed block is kept as it is.
func TestByteQueuePeekPush(t *testing.T) {
	var q byteQueue
	q.push(block{data: []byte("hello ")})
	q.push(block{data: []byte("world")})
	if p := q.peek(100); string(p) != "hello " {
		t.Fatalf("peek %q", p)
	}
	q.discard(3)
	if p := q.peek(2); string(p) != "lo" {
		t.Fatalf("peek %q", p)
	}
	buf := make([]byte, 100)
	if n := q.read(buf); string(buf[:n]) != "lo world" {
		t.Fatalf("read %q", buf[:n])
	}
	q.write([]byte("x"))
	q.reset()
	if q.len() != 0 || q.blocks != nil {
		t.Fatal("reset left bytes")
	}
}
