package session

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/mptp/mptp/internal/faultnet"
	"github.com/mptp/mptp/internal/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// tcpPairs returns n connected loopback TCP pairs.
func tcpPairs(t *testing.T, n int) (left, right []net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for i := 0; i < n; i++ {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		d, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		left, right = append(left, c), append(right, d)
	}
	return left, right
}

func connected(t *testing.T, n int, cfg Config) (a, b *Session, left, right []net.Conn) {
	t.Helper()
	a, b = New(cfg), New(cfg)
	left, right = tcpPairs(t, n)
	for i := range left {
		if _, err := a.AddPath(left[i], PathConfig{Name: fmt.Sprint("p", i)}); err != nil {
			t.Fatal(err)
		}
		if _, err := b.AddPath(right[i], PathConfig{Name: fmt.Sprint("p", i)}); err != nil {
			t.Fatal(err)
		}
	}
	return a, b, left, right
}

func randomBytes(t *testing.T, n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// exchange sends data each way at once, half-closes, and checks that each
// side reads exactly what the other wrote.
func exchange(t *testing.T, a, b *Session, ab, ba []byte, during func()) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	send := func(s *Session, data []byte) {
		defer wg.Done()
		for off := 0; off < len(data); {
			n := min(len(data)-off, 100<<10)
			if _, err := s.Write(data[off : off+n]); err != nil {
				errs <- err
				return
			}
			off += n
		}
		if err := s.CloseWrite(); err != nil {
			errs <- err
		}
	}
	sums := make([][32]byte, 2)
	recv := func(s *Session, i int) {
		defer wg.Done()
		h := sha256.New()
		if _, err := io.Copy(h, s); err != nil {
			errs <- err
			return
		}
		copy(sums[i][:], h.Sum(nil))
	}
	wg.Add(4)
	go send(a, ab)
	go send(b, ba)
	go recv(b, 0)
	go recv(a, 1)
	if during != nil {
		during()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if sums[0] != sha256.Sum256(ab) {
		t.Fatal("a to b: bytes differ")
	}
	if sums[1] != sha256.Sum256(ba) {
		t.Fatal("b to a: bytes differ")
	}
}

func closeBoth(t *testing.T, a, b *Session) {
	t.Helper()
	a.Close()
	b.Close()
	<-a.Done()
	<-b.Done()
	if err := a.Err(); err != nil {
		t.Fatalf("a ended with %v", err)
	}
	if err := b.Err(); err != nil {
		t.Fatalf("b ended with %v", err)
	}
}

func TestThreePathsBothWays(t *testing.T) {
	a, b, _, _ := connected(t, 3, Config{})
	exchange(t, a, b, randomBytes(t, 16<<20), randomBytes(t, 16<<20), nil)
	closeBoth(t, a, b)
	// Every path carried part of the stream.
	for _, c := range a.Stats() {
		if c.BytesSent == 0 {
			t.Errorf("path %s carried nothing", c.Name)
		}
	}
}

func TestRedundant(t *testing.T) {
	a, b, _, _ := connected(t, 3, Config{Redundant: true})
	exchange(t, a, b, randomBytes(t, 4<<20), randomBytes(t, 1<<20), nil)
	closeBoth(t, a, b)
	// Copies went out on several paths; the receiver dropped them.
	if sent := waitSent(a); sent < 6<<20 {
		t.Errorf("paths carried %d bytes in all, want copies of 4 MiB", sent)
	}
}

func TestPathsDieMidTransfer(t *testing.T) {
	for _, kill := range []int{1, 2} {
		a, b, left, right := connected(t, 3, Config{})
		data := randomBytes(t, 32<<20)
		exchange(t, a, b, data, data[:8<<20], func() {
			// Wait until bytes flow, then cut paths on alternating sides.
			for waitSent(a) < 2<<20 {
				time.Sleep(time.Millisecond)
			}
			for i := 0; i < kill; i++ {
				if i%2 == 0 {
					left[i].Close()
				} else {
					right[i].Close()
				}
			}
		})
		closeBoth(t, a, b)
		if a.PathCount() != 0 {
			t.Fatalf("paths left after close: %d", a.PathCount())
		}
	}
}

func waitSent(s *Session) uint64 {
	var n uint64
	for _, c := range s.Stats() {
		n += c.BytesSent
	}
	return n
}

func TestHalfClose(t *testing.T) {
	a, b, _, _ := connected(t, 2, Config{})
	// a says something and closes its side; b reads EOF, then answers.
	if _, err := a.Write([]byte("request")); err != nil {
		t.Fatal(err)
	}
	a.CloseWrite()
	got, err := io.ReadAll(b)
	if err != nil || string(got) != "request" {
		t.Fatalf("b read %q, %v", got, err)
	}
	if _, err := a.Write([]byte("more")); err == nil {
		t.Fatal("write after CloseWrite succeeded")
	}
	reply := randomBytes(t, 3<<20)
	go func() {
		b.Write(reply)
		b.CloseWrite()
	}()
	back, err := io.ReadAll(a)
	if err != nil || sha256.Sum256(back) != sha256.Sum256(reply) {
		t.Fatalf("a read %d bytes, %v", len(back), err)
	}
	closeBoth(t, a, b)
}

func TestResetReachesPeer(t *testing.T) {
	a, b, _, _ := connected(t, 2, Config{})
	a.Write([]byte("x"))
	buf := make([]byte, 1)
	if _, err := io.ReadFull(b, buf); err != nil {
		t.Fatal(err)
	}
	a.Reset(0, "test")
	_, err := b.Read(buf)
	if !errors.Is(err, ErrReset) {
		t.Fatalf("read after peer reset: %v", err)
	}
	<-a.Done()
	<-b.Done()
}

// A reset reaches a peer whose bytes this end has not read yet: closing
// a socket on unread bytes makes the kernel answer with a TCP reset, and
// the peer could lose the RST frame. So the path half-closes after the RST
// and the peer reads it, then a clean EOF.
func TestResetReachesPeerWithUnreadBytes(t *testing.T) {
	left, right := tcpPairs(t, 1)
	gate := make(chan struct{})
	a := New(Config{})
	if _, err := a.AddPath(gatedConn{left[0], gate}, PathConfig{Name: "p"}); err != nil {
		t.Fatal(err)
	}
	var pings []byte
	for i := range 100 {
		pings = wire.AppendPing(pings, wire.TypePing, uint64(i))
	}
	if _, err := right[0].Write(pings); err != nil { // a reads none of them yet
		t.Fatal(err)
	}
	a.Reset(7, "bye")
	fr := wire.NewReader(right[0], 4096)
	for {
		f, err := fr.ReadFrame(func(n int) []byte { return make([]byte, n) })
		if err != nil {
			t.Fatalf("peer read %v before the RST", err)
		}
		if f.Type == wire.TypeRst {
			if f.Code != 7 || string(f.Payload) != "bye" {
				t.Fatalf("RST %d %q", f.Code, f.Payload)
			}
			break
		}
	}
	if _, err := fr.ReadFrame(nil); err != io.EOF {
		t.Fatalf("after the RST the peer read %v, want EOF", err)
	}
	right[0].Close()
	close(gate)
	<-a.Done()
}

// gatedConn holds every Read until gate is closed.
type gatedConn struct {
	net.Conn
	gate chan struct{}
}

func (c gatedConn) Read(p []byte) (int, error) {
	<-c.gate
	return c.Conn.Read(p)
}

func (c gatedConn) CloseWrite() error { return c.Conn.(*net.TCPConn).CloseWrite() }

func TestCloseWithUnreadDataResets(t *testing.T) {
	a, b, _, _ := connected(t, 1, Config{})
	a.Write([]byte("unread"))
	a.CloseWrite()
	for {
		b.mu.Lock()
		n := b.recv.Readable()
		b.mu.Unlock()
		if n > 0 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	b.Close()
	if _, err := io.ReadAll(a); !errors.Is(err, ErrReset) {
		t.Fatalf("peer read %v, want reset", err)
	}
	<-a.Done()
	<-b.Done()
}

// A busy path learns its RTT from the ACKs of its DATA, not from a PING
// per round trip: a bulk transfer takes many samples with few PINGs.
func TestRTTFromAcks(t *testing.T) {
	a, b, _, _ := connected(t, 1, Config{})
	data := randomBytes(t, 32<<20)
	go a.Write(data)
	got := make([]byte, len(data))
	if _, err := io.ReadFull(b, got); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read: %v (or the bytes differ)", err)
	}
	a.mu.Lock()
	p := a.paths[0]
	pings, samples := p.pings, p.est.rttSamples
	a.mu.Unlock()
	if pings > 5 || samples < 2*pings+10 {
		t.Fatalf("%d PINGs sent and %d RTT samples taken over 32 MiB", pings, samples)
	}
	closeBoth(t, a, b)
}

func TestDeadline(t *testing.T) {
	a, b, _, _ := connected(t, 1, Config{})
	b.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if _, err := b.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
	b.SetReadDeadline(time.Time{})
	a.Write([]byte("y"))
	if _, err := io.ReadFull(b, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	a.Reset(0, "done")
	<-a.Done()
	<-b.Done()
}

func TestGraceResume(t *testing.T) {
	a, b, left, _ := connected(t, 1, Config{})
	data := randomBytes(t, 8<<20)
	exchange(t, a, b, data, nil, func() {
		for waitSent(a) < 1<<20 {
			time.Sleep(time.Millisecond)
		}
		left[0].Close()
		for a.PathCount() != 0 || b.PathCount() != 0 {
			time.Sleep(time.Millisecond)
		}
		// A new sub-connection resumes the session: nothing is lost.
		l2, r2 := tcpPairs(t, 1)
		a.AddPath(l2[0], PathConfig{Name: "again"})
		b.AddPath(r2[0], PathConfig{Name: "again"})
	})
	closeBoth(t, a, b)
}

func TestGraceExpires(t *testing.T) {
	a, b, left, _ := connected(t, 1, Config{Grace: 50 * time.Millisecond})
	left[0].Close()
	if _, err := a.Read(make([]byte, 1)); !errors.Is(err, ErrReset) {
		t.Fatalf("a: %v", err)
	}
	if _, err := b.Write([]byte("z")); err == nil {
		<-b.Done()
	}
	if _, err := b.Read(make([]byte, 1)); !errors.Is(err, ErrReset) {
		t.Fatalf("b: %v", err)
	}
}

// A path that goes silent mid-transfer (no error, packets just vanish) is
// found stale, and what it carried goes out on the others: nothing is lost
// and the transfer does not wait for TCP to give up.
func TestSilentPath(t *testing.T) {
	a, b := New(Config{}), New(Config{})
	left, right := tcpPairs(t, 3)
	var silent *faultnet.Conn
	for i := range left {
		l := left[i]
		if i == 1 {
			silent = faultnet.Wrap(l)
			l = silent
		}
		a.AddPath(l, PathConfig{Name: fmt.Sprint("p", i)})
		b.AddPath(right[i], PathConfig{Name: fmt.Sprint("p", i)})
	}
	stalled := func() bool {
		for _, c := range append(a.Stats(), b.Stats()...) {
			if c.Stalls > 0 {
				return true
			}
		}
		return false
	}
	// The second half is written only once the silence has been noticed:
	// rescue copies alone could otherwise finish the transfer first.
	data := randomBytes(t, 32<<20)
	sent := make(chan error, 1)
	go func() {
		if _, err := a.Write(data[:16<<20]); err != nil {
			sent <- err
			return
		}
		silent.Silence()
		for deadline := time.Now().Add(20 * time.Second); !stalled(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				sent <- errors.New("no path was found stale")
				return
			}
		}
		_, err := a.Write(data[16<<20:])
		if err == nil {
			err = a.CloseWrite()
		}
		sent <- err
	}()
	h := sha256.New()
	if _, err := io.Copy(h, b); err != nil {
		t.Fatal(err)
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	if [32]byte(h.Sum(nil)) != sha256.Sum256(data) {
		t.Fatal("bytes differ")
	}
	b.CloseWrite()
	silent.Close() // a silent link never closes by itself
	closeBoth(t, a, b)
}

// randReads yields data in reads of random sizes, from one byte to more
// than a slab.
type randReads struct {
	data []byte
	r    *mrand.Rand
}

func (x *randReads) Read(p []byte) (int, error) {
	if len(x.data) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), len(x.data), []int{1, 100, 5000, 20000, 70000, 1 << 20}[x.r.IntN(6)])
	copy(p, x.data[:n])
	x.data = x.data[n:]
	return n, nil
}

// smallWrites takes what it is given in small writes.
type smallWrites struct{ w io.Writer }

func (x smallWrites) Write(p []byte) (int, error) {
	for off := 0; off < len(p); off += 3000 {
		x.w.Write(p[off:min(len(p), off+3000)])
	}
	return len(p), nil
}

// ReadFrom and WriteTo, which hand chunks over without copying them, move
// the bytes intact; under -race, pooled buffers are overwritten when freed,
// so one freed too soon shows here.
func TestReadFromWriteTo(t *testing.T) {
	for _, paths := range []int{1, 3} {
		t.Run(fmt.Sprint(paths, "paths"), func(t *testing.T) {
			a, b, _, _ := connected(t, paths, Config{})
			data := randomBytes(t, 24<<20)
			errs := make(chan error, 1)
			go func() {
				_, err := a.ReadFrom(&randReads{data, mrand.New(mrand.NewPCG(1, uint64(paths)))})
				if err == nil {
					err = a.CloseWrite()
				}
				errs <- err
			}()
			h := sha256.New()
			var w io.Writer = h
			if paths == 3 {
				w = smallWrites{h}
			}
			if _, err := b.WriteTo(w); err != nil {
				t.Fatal(err)
			}
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
			if [32]byte(h.Sum(nil)) != sha256.Sum256(data) {
				t.Fatal("bytes differ")
			}
			b.CloseWrite()
			closeBoth(t, a, b)
		})
	}
}
