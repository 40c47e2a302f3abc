package leaf

import (
	"testing"
	"time"
)

// A peer that floods PINGs and never reads, or floods one-byte frames that
// nobody reads, cannot grow the Conn's memory: PONGs coalesce and readers
// pause after a bounded number of frames.
func TestHostilePeerBounded(t *testing.T) {
	peer, sub := tcpPair(t)
	defer peer.Close()
	c := NewConn(Options{})
	c.AddPath(sub)
	var flood []byte
	for range 200000 {
		flood = append(flood, TypePing)
	}
	for pn := uint64(1); pn <= 3*maxBufferedFrames; pn++ {
		flood = AppendData(flood, pn, []byte{byte(pn)})
	}
	go peer.Write(flood) // never reads
	// The Conn reads until its readers pause: wait for that state.
	deadline := time.Now().Add(time.Minute)
	for {
		c.mu.Lock()
		frames := len(c.rbuf)
		queued := 0
		for p := range c.paths {
			queued += len(p.queue)
		}
		c.mu.Unlock()
		if frames > maxBufferedFrames || queued > 2 {
			t.Fatalf("%d payloads buffered, %d frames queued", frames, queued)
		}
		if frames == maxBufferedFrames {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("readers never paused: %d payloads", frames)
		}
		time.Sleep(time.Millisecond)
	}
	buf := make([]byte, 100)
	n, err := c.Read(buf)
	if err != nil || n != 100 || buf[0] != 1 || buf[99] != 100 {
		t.Fatalf("read %d %v % x", n, err, buf[:n])
	}
	peer.Close()
	c.Close()
}
