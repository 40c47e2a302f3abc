package secure

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"testing"

	"github.com/flynn/noise"
)

// FuzzReadMessage: the handshake framing reads no more than its LEN and
// never more than MaxHandshake.
func FuzzReadMessage(f *testing.F) {
	hs, _ := handshakeState(testKey, true)
	msg, _, _, _ := hs.WriteMessage(nil, nil)
	f.Add(appendMessage(nil, msg))
	f.Add([]byte{Version, 0xff, 0xff})
	f.Add([]byte{0x02, 0x13, 0, 1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		m, err := ReadMessage(r)
		if err != nil {
			return
		}
		if len(m) > MaxHandshake || len(b)-r.Len() != 3+len(m) {
			t.Fatalf("message of %d bytes from %d, %d left", len(m), len(b), r.Len())
		}
	})
}

// FuzzServer: whatever a client sends, the server's handshake fails
// cleanly or, for a real first message, answers; it never panics.
func FuzzServer(f *testing.F) {
	hs, _ := handshakeState(testKey, true)
	msg, _, _, _ := hs.WriteMessage(nil, nil)
	f.Add(appendMessage(nil, msg))
	f.Add(append(appendMessage(nil, msg), 0, 17))
	f.Add([]byte{Version, 0, 48})
	f.Fuzz(func(t *testing.T, b []byte) {
		// The client's bytes come from b, then end; answers are dropped.
		sc, err := Server(sink{}, bufio.NewReader(bytes.NewReader(b)), testKey)
		if err == nil && sc == nil {
			t.Fatal("no conn and no error")
		}
	})
}

// sink is a conn that takes every write and has nothing to read.
type sink struct{ net.Conn }

func (sink) Write(b []byte) (int, error) { return len(b), nil }

// FuzzRecords feeds bytes as records to a Conn that holds a known key:
// only what was sealed under it comes out, whatever the framing does.
func FuzzRecords(f *testing.F) {
	var key [32]byte
	seal := noise.UnsafeNewCipherState(suite, key, 0)
	var stream []byte
	for _, m := range []string{"hello", "", "a longer record of plaintext"} {
		ct, _ := seal.Encrypt(nil, nil, []byte(m))
		stream = append(stream, byte(len(ct)>>8), byte(len(ct)))
		stream = append(stream, ct...)
	}
	f.Add(stream)
	f.Add([]byte{0, 15})
	f.Add([]byte{0xff, 0xff, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		a, c := net.Pipe()
		defer a.Close()
		go func() {
			c.Write(b)
			c.Close()
		}()
		conn := newConn(a, nil, noise.UnsafeNewCipherState(suite, key, 0))
		got, err := io.ReadAll(conn)
		if err != nil && !errors.Is(err, ErrRecord) && !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("error %v", err)
		}
		if len(got) > len(b) {
			t.Fatalf("%d bytes out of %d", len(got), len(b))
		}
		if !bytes.HasPrefix([]byte("helloa longer record of plaintext"), got) && bytes.HasPrefix(b, stream[:2]) {
			t.Fatalf("forged plaintext %q", got)
		}
	})
}
