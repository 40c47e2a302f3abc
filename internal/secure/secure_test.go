package secure

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/mptp/mptp/internal/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var testKey = KeyFromPassword("correct horse battery staple")

// tap is a TCP pair whose client side goes through a recorder: every byte
// the client sends is kept.
func tcpPair(t testing.TB) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return c, s
}

// recorder keeps every byte written through it.
type recorder struct {
	net.Conn
	mu  sync.Mutex
	out bytes.Buffer
}

func (r *recorder) Write(b []byte) (int, error) {
	r.mu.Lock()
	r.out.Write(b)
	r.mu.Unlock()
	return r.Conn.Write(b)
}

func (r *recorder) bytes() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]byte(nil), r.out.Bytes()...)
}

// handshake connects a secure pair over raw TCP conns.
func handshake(t testing.TB, cRaw, sRaw net.Conn, ckey, skey *Key) (*Conn, *Conn, error, error) {
	t.Helper()
	var (
		sc   *Conn
		serr error
		wg   sync.WaitGroup
	)
	wg.Go(func() {
		sc, serr = Server(sRaw, bufio.NewReader(sRaw), skey)
		if serr != nil {
			// As mptp's server does: a plain refusal.
			sRaw.Write(wire.AppendReply(nil, &wire.Reply{Status: wire.StatusAuthFailed, Msg: "authentication failed"}))
			sRaw.Close()
		}
	})
	cc, cerr := Client(cRaw, ckey)
	wg.Wait()
	return cc, sc, cerr, serr
}

func TestRoundTrip(t *testing.T) {
	cRaw, sRaw := tcpPair(t)
	c, s, cerr, serr := handshake(t, cRaw, sRaw, testKey, testKey)
	if cerr != nil || serr != nil {
		t.Fatal(cerr, serr)
	}
	data := make([]byte, 3<<20+12345)
	rand.Read(data)
	var wg sync.WaitGroup
	wg.Go(func() {
		// Vectors of odd sizes, as a session writes frames.
		for off := 0; off < len(data); {
			var bufs [][]byte
			for i := 0; i < 7 && off < len(data); i++ {
				n := min(len(data)-off, []int{12, 65527, 1, 20, 300000, 4096, 3}[i])
				bufs = append(bufs, data[off:off+n])
				off += n
			}
			if _, err := c.WriteBuffers(bufs); err != nil {
				t.Error(err)
				return
			}
		}
		c.CloseWrite()
	})
	// A small reader buffer exercises the copy path, a large one the
	// direct open.
	h := sha256.New()
	if _, err := io.CopyBuffer(h, struct{ io.Reader }{s}, make([]byte, 7000)); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if !bytes.Equal(h.Sum(nil), sum(data)) {
		t.Fatal("bytes differ")
	}
	// The other direction still works after the half-close.
	if _, err := s.Write([]byte("back")); err != nil {
		t.Fatal(err)
	}
	s.CloseWrite()
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "back" {
		t.Fatalf("%q %v", got, err)
	}
}

func sum(b []byte) []byte { h := sha256.Sum256(b); return h[:] }

func TestWrongPassword(t *testing.T) {
	cRaw, sRaw := tcpPair(t)
	_, _, cerr, serr := handshake(t, cRaw, sRaw, KeyFromPassword("wrong"), testKey)
	if !errors.Is(serr, ErrAuth) {
		t.Fatalf("server: %v", serr)
	}
	var r *Refusal
	if !errors.As(cerr, &r) || r.Status != wire.StatusAuthFailed {
		t.Fatalf("client: %v", cerr)
	}
}

// A relay that changes a byte, reorders, replays or splices records is
// caught by the receiver.
func TestTamper(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(recs [][]byte, other [][]byte) [][]byte
	}{
		{"flip", func(r, _ [][]byte) [][]byte { r[1] = append([]byte(nil), r[1]...); r[1][5] ^= 1; return r }},
		{"reorder", func(r, _ [][]byte) [][]byte { r[0], r[1] = r[1], r[0]; return r }},
		{"repeat", func(r, _ [][]byte) [][]byte { return [][]byte{r[0], r[0], r[1]} }},
		{"drop", func(r, _ [][]byte) [][]byte { return r[1:] }},
		{"splice", func(r, o [][]byte) [][]byte { return [][]byte{r[0], o[1]} }},
		{"length", func(r, _ [][]byte) [][]byte { r[0] = append([]byte(nil), r[0]...); r[0][1]--; return r }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			recs := sealed(t, "first record", "second record", "third")
			other := sealed(t, "first record", "second record", "third")
			got, err := open(t, recs.key, tc.edit(recs.recs, other.recs))
			if !errors.Is(err, ErrRecord) && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("read %q, err %v", got, err)
			}
			if bytes.Contains(got, []byte("second")) {
				t.Fatalf("tampered bytes delivered: %q", got)
			}
		})
	}
}

type sealedRecs struct {
	key  [2]noiseKey
	recs [][]byte
}

type noiseKey = [32]byte

// sealed runs a handshake and returns the records the client wrote for
// each message, and the server's receive key to open them with.
func sealed(t *testing.T, msgs ...string) sealedRecs {
	cRaw, sRaw := tcpPair(t)
	rec := &recorder{Conn: cRaw}
	c, s, cerr, serr := handshake(t, rec, sRaw, testKey, testKey)
	if cerr != nil || serr != nil {
		t.Fatal(cerr, serr)
	}
	start := len(rec.bytes())
	var out sealedRecs
	for _, m := range msgs {
		c.Write([]byte(m))
		all := rec.bytes()
		out.recs = append(out.recs, all[start:])
		start = len(all)
	}
	out.key[0] = s.recv.UnsafeKey()
	return out
}

// open feeds records to a Conn holding key and reads what it accepts.
func open(t *testing.T, key [2]noiseKey, recs [][]byte) ([]byte, error) {
	a, b := net.Pipe()
	defer a.Close()
	go func() {
		for _, r := range recs {
			b.Write(r)
		}
		b.Close()
	}()
	c := newConn(a, nil, noiseCipher(key[0]))
	var got []byte
	buf := make([]byte, 100)
	for {
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			if err == io.EOF {
				return got, nil
			}
			return got, err
		}
	}
}

// A recorded sub-connection played again to the server is refused: the
// server's fresh ephemeral key makes the recorded records worthless.
func TestReplay(t *testing.T) {
	cRaw, sRaw := tcpPair(t)
	rec := &recorder{Conn: cRaw}
	c, s, cerr, serr := handshake(t, rec, sRaw, testKey, testKey)
	if cerr != nil || serr != nil {
		t.Fatal(cerr, serr)
	}
	c.Write([]byte("OPEN secret target"))
	buf := make([]byte, 100)
	if n, err := s.Read(buf); err != nil || string(buf[:n]) != "OPEN secret target" {
		t.Fatalf("%q %v", buf[:n], err)
	}
	recorded := rec.bytes()

	attacker, victim := tcpPair(t)
	var (
		sc    *Conn
		serr2 error
		wg    sync.WaitGroup
	)
	wg.Go(func() { sc, serr2 = Server(victim, bufio.NewReader(victim), testKey) })
	// The first message alone: the server answers it, as it must.
	msgLen := 3 + int(recorded[1])<<8 + int(recorded[2])
	attacker.Write(recorded[:msgLen])
	wg.Wait()
	if serr2 != nil {
		t.Fatal(serr2)
	}
	attacker.Write(recorded[msgLen:])
	attacker.(*net.TCPConn).CloseWrite()
	n, err := sc.Read(buf)
	if !errors.Is(err, ErrRecord) {
		t.Fatalf("replayed record read as %q, %v", buf[:n], err)
	}
}

func TestDataBeforeReply(t *testing.T) {
	cRaw, sRaw := tcpPair(t)
	hs, _ := handshakeState(testKey, true)
	msg, _, _, _ := hs.WriteMessage(nil, nil)
	cRaw.Write(append(appendMessage(nil, msg), 1, 2, 3))
	br := bufio.NewReader(sRaw)
	br.Peek(len(msg) + 6) // as if it had arrived together
	if _, err := Server(sRaw, br, testKey); !errors.Is(err, ErrMalformed) {
		t.Fatalf("got %v", err)
	}
}

func TestRecordBounds(t *testing.T) {
	for name, raw := range map[string][]byte{
		"short":  {0, 15},
		"cut":    {0, 40, 1, 2, 3},
		"random": append([]byte{0, 20}, make([]byte, 20)...),
	} {
		_, err := open(t, [2]noiseKey{}, [][]byte{raw})
		if !errors.Is(err, ErrRecord) && !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestKeyFromPassword(t *testing.T) {
	if *KeyFromPassword("a") == *KeyFromPassword("b") || *KeyFromPassword("a") != *KeyFromPassword("a") {
		t.Fatal("keys")
	}
}

// The handshake messages are as docs/PROTOCOL.md (4.8) gives them: VER,
// LEN 48, an ephemeral key and a tag.
func TestHandshakeBytes(t *testing.T) {
	cRaw, sRaw := tcpPair(t)
	crec, srec := &recorder{Conn: cRaw}, &recorder{Conn: sRaw}
	if _, _, cerr, serr := handshake(t, crec, srec, testKey, testKey); cerr != nil || serr != nil {
		t.Fatal(cerr, serr)
	}
	for name, b := range map[string][]byte{"client": crec.bytes(), "server": srec.bytes()} {
		if len(b) != 51 || b[0] != Version || b[1] != 0 || b[2] != 48 {
			t.Errorf("%s sent % x", name, b)
		}
	}
}
