package leaf

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

const transferSize = 8 << 20

func randomBytes(n int, seed byte) []byte {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{seed}).Read(b)
	return b
}

func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	return client, server
}

func newPair(t *testing.T, tcp bool) (net.Conn, net.Conn) {
	if tcp {
		return tcpPair(t)
	}
	return net.Pipe()
}

// connect joins a client Conn a and a server Conn b by n sub-connections,
// each opened with a v1 handshake. It also returns the sub-connections.
func connect(t *testing.T, n int, tcp bool, opts Options) (a, b *Conn, as, bs []net.Conn) {
	t.Helper()
	a, b = NewConn(opts), NewConn(opts)
	for range n {
		x, y := newPair(t, tcp)
		hs, err := AppendHandshake(nil, Handshake{CID: testCID, Cmd: CmdConnect, Target: "example.com:443"})
		if err != nil {
			t.Fatal(err)
		}
		go x.Write(hs) // net.Pipe blocks until read
		h, err := ReadHandshake(y)
		if err != nil || h.CID != testCID {
			t.Fatalf("handshake: %+v %v", h, err)
		}
		a.AddPath(x)
		b.AddPath(y)
		as, bs = append(as, x), append(bs, y)
	}
	return a, b, as, bs
}

func forEachNet(t *testing.T, f func(t *testing.T, tcp bool)) {
	t.Run("pipe", func(t *testing.T) { f(t, false) })
	t.Run("tcp", func(t *testing.T) { f(t, true) })
}

// writeChunks writes data in random-sized pieces.
func writeChunks(c *Conn, data []byte, seed uint64) error {
	rng := rand.New(rand.NewPCG(seed, 1))
	for len(data) > 0 {
		n := min(len(data), 1+rng.IntN(100<<10))
		if _, err := c.Write(data[:n]); err != nil {
			return err
		}
		data = data[n:]
	}
	return nil
}

func sendAll(c *Conn, data []byte, seed uint64) error {
	if err := writeChunks(c, data, seed); err != nil {
		return err
	}
	return c.CloseWrite()
}

// readSum reads c to EOF and returns the sha256 of what it read.
func readSum(c *Conn) ([32]byte, error) {
	h := sha256.New()
	_, err := io.Copy(h, c)
	return [32]byte(h.Sum(nil)), err
}

func numPaths(c *Conn) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.paths)
}

// waitPaths waits until c has noticed that paths died.
func waitPaths(t *testing.T, c *Conn, n int) {
	t.Helper()
	for numPaths(c) != n {
		time.Sleep(time.Millisecond)
	}
}

func closeBoth(t *testing.T, a, b *Conn) {
	t.Helper()
	if err := a.Close(); err != nil {
		t.Error(err)
	}
	if err := b.Close(); err != nil {
		t.Error(err)
	}
}

func TestTransferBothWays(t *testing.T) {
	defer goleak.VerifyNone(t)
	forEachNet(t, func(t *testing.T, tcp bool) {
		a, b, _, _ := connect(t, 3, tcp, Options{})
		dataA, dataB := randomBytes(transferSize, 1), randomBytes(transferSize, 2)
		var wg sync.WaitGroup
		var errA, errB, rerrA, rerrB error
		var sumA, sumB [32]byte
		wg.Go(func() { errA = sendAll(a, dataA, 1) })
		wg.Go(func() { errB = sendAll(b, dataB, 2) })
		wg.Go(func() { sumA, rerrA = readSum(a) })
		wg.Go(func() { sumB, rerrB = readSum(b) })
		wg.Wait()
		if err := errors.Join(errA, errB, rerrA, rerrB); err != nil {
			t.Fatal(err)
		}
		if sumB != sha256.Sum256(dataA) || sumA != sha256.Sum256(dataB) {
			t.Fatal("checksum mismatch")
		}
		closeBoth(t, a, b)
	})
}

// Sub-connections die half way. Every frame is on every path unless that
// path was over its limit, so the kill waits until the first half has been
// read: then no frame can exist only on a dying path.
func TestPathsDie(t *testing.T) {
	defer goleak.VerifyNone(t)
	for _, kill := range []int{1, 2} {
		t.Run(fmt.Sprint(kill), func(t *testing.T) {
			forEachNet(t, func(t *testing.T, tcp bool) {
				a, b, as, bs := connect(t, 3, tcp, Options{})
				data := randomBytes(transferSize, 3)
				half := len(data) / 2
				proceed := make(chan struct{})
				errc := make(chan error, 1)
				go func() {
					if err := writeChunks(a, data[:half], 3); err != nil {
						errc <- err
						return
					}
					<-proceed
					errc <- sendAll(a, data[half:], 4)
				}()

				got := make([]byte, half)
				if _, err := io.ReadFull(b, got); err != nil || !bytes.Equal(got, data[:half]) {
					t.Fatalf("first half: %v", err)
				}
				as[0].Close() // the sender's end
				if kill == 2 {
					bs[1].Close() // the receiver's end
				}
				waitPaths(t, a, 3-kill)
				waitPaths(t, b, 3-kill)
				close(proceed)

				sum, err := readSum(b)
				if err != nil || sum != sha256.Sum256(data[half:]) {
					t.Fatalf("second half: %v, checksum ok %v", err, sum == sha256.Sum256(data[half:]))
				}
				if err := <-errc; err != nil {
					t.Fatal(err)
				}
				// The other direction still works over what is left.
				if err := sendAll(b, []byte("pong"), 5); err != nil {
					t.Fatal(err)
				}
				if back, err := io.ReadAll(a); err != nil || string(back) != "pong" {
					t.Fatalf("reply %q, %v", back, err)
				}
				closeBoth(t, a, b)
			})
		})
	}
}

func TestHalfClose(t *testing.T) {
	defer goleak.VerifyNone(t)
	for _, first := range []string{"client", "server"} {
		t.Run(first, func(t *testing.T) {
			forEachNet(t, func(t *testing.T, tcp bool) {
				a, b, _, _ := connect(t, 3, tcp, Options{})
				x, y := a, b
				if first == "server" {
					x, y = b, a
				}
				req, resp := randomBytes(1<<20, 6), randomBytes(2<<20, 7)
				errc := make(chan error, 1)
				go func() { errc <- sendAll(x, req, 6) }()
				// y sees EOF, then answers over the same paths.
				if sum, err := readSum(y); err != nil || sum != sha256.Sum256(req) {
					t.Fatalf("request: %v", err)
				}
				if err := <-errc; err != nil {
					t.Fatal(err)
				}
				if _, err := y.Read(make([]byte, 1)); err != io.EOF {
					t.Fatalf("read after EOF: %v", err)
				}
				go func() { errc <- sendAll(y, resp, 7) }()
				if sum, err := readSum(x); err != nil || sum != sha256.Sum256(resp) {
					t.Fatalf("response: %v", err)
				}
				if err := <-errc; err != nil {
					t.Fatal(err)
				}
				if _, err := x.Write([]byte("late")); !errors.Is(err, ErrWriteClosed) {
					t.Fatalf("write after CloseWrite: %v", err)
				}
				closeBoth(t, a, b)
			})
		})
	}
}

// rawPeer gives c n sub-connections whose far ends the test drives with
// hand-made frames.
func rawPeer(c *Conn, n int) []net.Conn {
	var ends []net.Conn
	for range n {
		x, y := net.Pipe()
		c.AddPath(x)
		ends = append(ends, y)
	}
	return ends
}

// drain discards what c sends on ends until they close.
func drain(wg *sync.WaitGroup, ends ...net.Conn) {
	for _, e := range ends {
		wg.Go(func() { io.Copy(io.Discard, e) })
	}
}

func closeRaw(t *testing.T, c *Conn, wg *sync.WaitGroup, ends []net.Conn) {
	t.Helper()
	if err := c.Close(); err != nil {
		t.Error(err)
	}
	for _, e := range ends {
		e.Close()
	}
	wg.Wait()
}

// A v1 peer may stripe frames over paths instead of copying them.
func TestStripedPeer(t *testing.T) {
	defer goleak.VerifyNone(t)
	for _, mode := range []string{"second-path-first", "concurrent"} {
		t.Run(mode, func(t *testing.T) {
			c := NewConn(Options{})
			ends := rawPeer(c, 2)
			var wg sync.WaitGroup
			drain(&wg, ends...)

			data := randomBytes(300<<10, 8)
			var stripes [2][]byte
			rng := rand.New(rand.NewPCG(8, 8))
			for pn, rest := uint64(1), data; len(rest) > 0; pn++ {
				n := min(len(rest), 1+rng.IntN(4096))
				stripes[pn%2] = AppendData(stripes[pn%2], pn, rest[:n])
				rest = rest[n:]
			}
			for i := range stripes {
				stripes[i] = append(stripes[i], TypeFin)
			}
			// stripes[0] holds the even PNs, so sending it first makes the
			// receiver hold every frame until PN 1 arrives.
			go func() {
				if mode == "concurrent" {
					go ends[1].Write(stripes[1])
				}
				ends[0].Write(stripes[0])
				if mode != "concurrent" {
					ends[1].Write(stripes[1])
				}
			}()
			got, err := io.ReadAll(c)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("read %d of %d bytes, %v", len(got), len(data), err)
			}
			closeRaw(t, c, &wg, ends)
		})
	}
}

func TestDuplicatesDropped(t *testing.T) {
	defer goleak.VerifyNone(t)
	c := NewConn(Options{})
	ends := rawPeer(c, 2)
	var wg sync.WaitGroup
	drain(&wg, ends...)
	frames := func(pns ...uint64) []byte {
		var b []byte
		for _, pn := range pns {
			b = AppendData(b, pn, []byte{'a' - 1 + byte(pn)})
		}
		return append(b, TypeFin)
	}
	go ends[0].Write(frames(1, 2, 2, 1, 3, 0))
	go ends[1].Write(frames(1, 2, 3, 3, 2))
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "abc" {
		t.Fatalf("got %q, %v", got, err)
	}
	closeRaw(t, c, &wg, ends)
}

func TestRstResets(t *testing.T) {
	defer goleak.VerifyNone(t)
	c := NewConn(Options{})
	ends := rawPeer(c, 2)
	var wg sync.WaitGroup
	drain(&wg, ends...)
	go ends[1].Write(append(AppendData(nil, 1, []byte("abc")), TypeRst))
	var err error
	for err == nil {
		_, err = c.Read(make([]byte, 10))
	}
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read: %v", err)
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("write: %v", err)
	}
	closeRaw(t, c, &wg, ends)
}

func TestPingPong(t *testing.T) {
	defer goleak.VerifyNone(t)
	c := NewConn(Options{})
	ends := rawPeer(c, 1)
	go ends[0].Write([]byte{TypePong, TypePing})
	var b [1]byte
	if _, err := io.ReadFull(ends[0], b[:]); err != nil || b[0] != TypePong {
		t.Fatalf("got % x, %v", b, err)
	}
	var wg sync.WaitGroup
	drain(&wg, ends...)
	closeRaw(t, c, &wg, ends)
}

// expectRst reads what c sends on end and checks that it is an RST.
func expectRst(t *testing.T, end net.Conn) {
	t.Helper()
	var b [1]byte
	if _, err := io.ReadFull(end, b[:]); err != nil || b[0] != TypeRst {
		t.Fatalf("peer got % x, %v; want RST", b, err)
	}
}

func TestTooManyHeld(t *testing.T) {
	defer goleak.VerifyNone(t)
	c := NewConn(Options{MaxHeld: 4})
	ends := rawPeer(c, 1)
	var frames []byte
	for pn := uint64(2); pn <= 6; pn++ {
		frames = AppendData(frames, pn, []byte("x"))
	}
	go ends[0].Write(frames)
	expectRst(t, ends[0])
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, ErrProtocol) {
		t.Fatalf("read: %v", err)
	}
	var wg sync.WaitGroup
	drain(&wg, ends...)
	closeRaw(t, c, &wg, ends)
}

func TestOversizeFrame(t *testing.T) {
	defer goleak.VerifyNone(t)
	c := NewConn(Options{MaxPayload: 10})
	ends := rawPeer(c, 1)
	go ends[0].Write(AppendData(nil, 1, make([]byte, 11)))
	expectRst(t, ends[0])
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("read: %v", err)
	}
	var wg sync.WaitGroup
	drain(&wg, ends...)
	closeRaw(t, c, &wg, ends)
}

// A FIN on every live path with a gap still open means the missing frame
// went only on a path that died.
func TestDataLost(t *testing.T) {
	defer goleak.VerifyNone(t)
	c := NewConn(Options{})
	ends := rawPeer(c, 1)
	var wg sync.WaitGroup
	drain(&wg, ends...)
	go ends[0].Write(append(AppendData(AppendData(nil, 1, []byte("a")), 3, []byte("c")), TypeFin))
	got, err := io.ReadAll(c)
	if string(got) != "a" || !errors.Is(err, ErrDataLost) {
		t.Fatalf("got %q, %v", got, err)
	}
	closeRaw(t, c, &wg, ends)
}

func TestAllLost(t *testing.T) {
	defer goleak.VerifyNone(t)
	a, b, as, _ := connect(t, 2, false, Options{})
	if _, err := a.Write([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(b, make([]byte, 2)); err != nil {
		t.Fatal(err)
	}
	for _, s := range as {
		s.Close()
	}
	for _, c := range []*Conn{a, b} {
		if _, err := c.Read(make([]byte, 1)); !errors.Is(err, ErrAllLost) || !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("read: %v", err)
		}
		if _, err := c.Write([]byte("x")); !errors.Is(err, ErrAllLost) {
			t.Fatalf("write: %v", err)
		}
	}
	closeBoth(t, a, b)
}

func TestGrace(t *testing.T) {
	defer goleak.VerifyNone(t)
	t.Run("rejoin", func(t *testing.T) {
		a, b, as, _ := connect(t, 1, false, Options{Grace: time.Hour})
		a.Write([]byte("one "))
		if _, err := io.ReadFull(b, make([]byte, 4)); err != nil {
			t.Fatal(err)
		}
		as[0].Close()
		waitPaths(t, a, 0)
		waitPaths(t, b, 0)
		x, y := net.Pipe()
		a.AddPath(x)
		b.AddPath(y)
		if err := sendAll(a, []byte("two"), 1); err != nil {
			t.Fatal(err)
		}
		if got, err := io.ReadAll(b); err != nil || string(got) != "two" {
			t.Fatalf("got %q, %v", got, err)
		}
		closeBoth(t, a, b)
	})
	t.Run("expire", func(t *testing.T) {
		a, b, as, _ := connect(t, 1, false, Options{Grace: time.Millisecond})
		as[0].Close()
		if _, err := b.Read(make([]byte, 1)); !errors.Is(err, ErrAllLost) {
			t.Fatalf("read: %v", err)
		}
		closeBoth(t, a, b)
	})
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) && errors.As(err, &ne) && ne.Timeout()
}

func TestReadDeadline(t *testing.T) {
	defer goleak.VerifyNone(t)
	a, b, _, _ := connect(t, 2, false, Options{})
	a.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
	if _, err := a.Read(make([]byte, 1)); !isTimeout(err) {
		t.Fatalf("expired deadline: %v", err)
	}
	// Moving the deadline into the past wakes a pending Read.
	a.SetReadDeadline(time.Time{})
	errc := make(chan error, 1)
	go func() {
		_, err := a.Read(make([]byte, 1))
		errc <- err
	}()
	a.SetReadDeadline(time.Now().Add(-time.Second))
	if err := <-errc; !isTimeout(err) {
		t.Fatalf("pending read: %v", err)
	}
	a.SetDeadline(time.Time{})
	b.Write([]byte("x"))
	if _, err := io.ReadFull(a, make([]byte, 1)); err != nil {
		t.Fatalf("after clearing: %v", err)
	}
	closeBoth(t, a, b)
}

func TestWriteDeadline(t *testing.T) {
	defer goleak.VerifyNone(t)
	c := NewConn(Options{})
	ends := rawPeer(c, 2) // nobody reads: every path fills up
	c.SetWriteDeadline(time.Now().Add(20 * time.Millisecond))
	data := make([]byte, 1<<20)
	n, err := c.Write(data)
	if !isTimeout(err) || n >= len(data) {
		t.Fatalf("wrote %d, %v", n, err)
	}
	c.SetWriteDeadline(time.Time{})
	var wg sync.WaitGroup
	drain(&wg, ends...)
	if _, err := c.Write([]byte("more")); err != nil {
		t.Fatalf("after clearing: %v", err)
	}
	closeRaw(t, c, &wg, ends)
}

func TestClose(t *testing.T) {
	defer goleak.VerifyNone(t)
	a, b, _, _ := connect(t, 2, true, Options{})
	errc := make(chan error, 1)
	go func() {
		_, err := a.Read(make([]byte, 1))
		errc <- err
	}()
	time.Sleep(5 * time.Millisecond) // let the Read block (either way is fine)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("pending read: %v", err)
	}
	if _, err := a.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read after close: %v", err)
	}
	if _, err := a.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after close: %v", err)
	}
	if err := a.Close(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("second close: %v", err)
	}
	// The peer got FIN from a's Close.
	if _, err := b.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("peer read: %v", err)
	}
	b.Close()
	// A path added after Close is closed at once.
	x, y := net.Pipe()
	a.AddPath(x)
	if _, err := y.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("late path: %v", err)
	}
}
