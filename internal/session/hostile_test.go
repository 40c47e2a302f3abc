package session

import (
	"io"
	"sync"
	"testing"
	"time"

	"github.com/mptp/mptp/internal/wire"
)

// waitState polls a condition on the session's state; the bound is only a
// safety net.
func waitState(t *testing.T, s *Session, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Millisecond) {
		s.mu.Lock()
		ok := cond()
		s.mu.Unlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			s.mu.Lock()
			defer s.mu.Unlock()
			t.Fatalf("never: %s (readable %d, err %v)", what, s.recv.Readable(), s.err)
		}
	}
}

// A peer that claims a huge window, floods PINGs and never reads: the
// session holds no more than its send buffer, and owes at most one PONG.
func TestPeerThatDoesNotRead(t *testing.T) {
	const sendBuffer = 1 << 20
	s := New(Config{SendBuffer: sendBuffer, PeerWindow: ^uint32(0)})
	left, right := tcpPairs(t, 1)
	s.AddPath(left[0], PathConfig{Name: "p"})
	peer := right[0]
	defer peer.Close()
	var flood []byte
	flood = wire.AppendAck(flood, 0, 0, ^uint32(0), 0)
	for range 50000 {
		flood = wire.AppendPing(flood, wire.TypePing, 1)
	}
	go peer.Write(flood)
	go func() {
		data := make([]byte, 64<<10)
		for {
			if _, err := s.Write(data); err != nil {
				return
			}
		}
	}()
	// The writer fills the socket and the backlog the session keeps ahead
	// of its path, then waits.
	waitState(t, s, "the writer waiting", func() bool { return s.room() == 0 })
	s.mu.Lock()
	buffered := s.send.buffered()
	s.mu.Unlock()
	if buffered > sendBuffer {
		t.Fatalf("%d bytes buffered, send buffer %d", buffered, sendBuffer)
	}
	s.Reset(wire.RstClosed, "test over")
	peer.Close()
	<-s.Done()
}

// DATA beyond the window resets the session; one-byte DATA frames that
// nobody reads are kept in few buffers.
func TestHostileData(t *testing.T) {
	t.Run("beyond window", func(t *testing.T) {
		s := New(Config{RecvWindow: 1 << 20})
		left, right := tcpPairs(t, 1)
		s.AddPath(left[0], PathConfig{Name: "p"})
		defer right[0].Close()
		right[0].Write(append(wire.AppendDataHeader(nil, 1<<40, 1), 'x'))
		<-s.Done()
		rst := readRst(t, right[0])
		if rst.Code != wire.RstWindow {
			t.Fatalf("RST %+v", rst)
		}
	})
	t.Run("tiny frames", func(t *testing.T) {
		const window = 1 << 20
		var frames []byte
		for i := range window {
			frames = append(wire.AppendDataHeader(frames, uint64(i), 1), byte(i))
		}
		s := New(Config{RecvWindow: window})
		left, right := tcpPairs(t, 1)
		defer right[0].Close()
		// The peer answers PINGs, so the path stays live however slowly
		// (race detector, loaded machine) the frames go through.
		var wmu sync.Mutex
		go func() {
			fr := wire.NewReader(right[0], 0)
			for {
				f, err := fr.ReadFrame(alloc)
				if err != nil {
					return
				}
				if f.Type == wire.TypePing {
					wmu.Lock()
					right[0].Write(wire.AppendPing(nil, wire.TypePong, f.TS))
					wmu.Unlock()
				}
			}
		}()
		s.AddPath(left[0], PathConfig{Name: "p"})
		go func() {
			for off := 0; off < len(frames); off += 13 << 10 {
				wmu.Lock()
				_, err := right[0].Write(frames[off:min(len(frames), off+13<<10)])
				wmu.Unlock()
				if err != nil {
					return
				}
			}
		}()
		waitState(t, s, "the window full", func() bool { return s.recv.Readable() == window })
		s.mu.Lock()
		bufs, _ := s.recv.Take(2*window, nil, nil)
		pieces := len(bufs)
		s.mu.Unlock()
		if pieces > window/1024 {
			t.Fatalf("%d bytes in %d pieces", window, pieces)
		}
		s.Reset(wire.RstClosed, "test over")
		<-s.Done()
	})
}

func alloc(n int) []byte { return make([]byte, n) }

// readRst reads frames from a raw peer until an RST.
func readRst(t *testing.T, c io.Reader) wire.Frame {
	t.Helper()
	fr := wire.NewReader(c, 0)
	for {
		f, err := fr.ReadFrame(alloc)
		if err != nil {
			t.Fatalf("no RST: %v", err)
		}
		if f.Type == wire.TypeRst {
			return f
		}
	}
}
