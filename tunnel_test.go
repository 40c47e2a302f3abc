package mptp

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/mptp/mptp/internal/failure"
	"github.com/mptp/mptp/relaytest"
)

// exchange sends size random bytes through conn, calling during (if set)
// after each 256 KiB written with the offset of that piece, half-closes,
// reads to EOF, closes, and returns the hashes of what it sent and what
// it read.
func exchange(conn net.Conn, size int, during func(off int)) ([2][32]byte, error) {
	defer conn.Close()
	data := make([]byte, size)
	rand.Read(data)
	var got [32]byte
	var readErr error
	done := make(chan struct{})
	go func() {
		h := sha256.New()
		_, readErr = io.Copy(h, conn)
		copy(got[:], h.Sum(nil))
		close(done)
	}()
	for off := 0; off < size; off += 256 << 10 {
		if _, err := conn.Write(data[off:min(size, off+256<<10)]); err != nil {
			return [2][32]byte{}, fmt.Errorf("write: %w", err)
		}
		if during != nil {
			during(off)
		}
	}
	conn.(interface{ CloseWrite() error }).CloseWrite()
	<-done
	if readErr != nil {
		return [2][32]byte{}, fmt.Errorf("read: %w", readErr)
	}
	return [2][32]byte{sha256.Sum256(data), got}, nil
}

// checkSums compares what n exchanges saw with what the target saw, in
// any order.
func checkSums(t *testing.T, tg *target, mine [][2][32]byte) {
	t.Helper()
	want := map[[2][32]byte]int{}
	for _, s := range mine {
		want[s]++
	}
	for range mine {
		s := <-tg.sums // what the target read, what it wrote: as the client's
		if want[s] == 0 {
			t.Fatal("a stream's bytes differ between client and target")
		}
		want[s]--
	}
}

// 100 busy streams in one tunnel while one of its three paths is cut
// mid-transfer: every stream's bytes arrive intact both ways, the tunnel
// lives on, and the cut path rejoins it.
func TestTunnelManyStreamsPathCut(t *testing.T) {
	const streams, size = 100, 1 << 20
	tg := newTarget(t, size)
	addr := startServer(t, &Server{})
	var rb recorder
	c := client(t, addr, Path{Name: "a"}, Path{Name: "b", Dial: rb.dial}, Path{Name: "c"})
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	var sent atomic.Int64
	var once sync.Once
	cut := make(chan struct{})
	go func() {
		<-cut
		rb.cut()
	}()
	var mu sync.Mutex
	var sums [][2][32]byte
	var wg sync.WaitGroup
	errs := make(chan error, streams)
	for range streams {
		wg.Go(func() {
			conn, err := c.Dial("tcp", tg.addr())
			if err != nil {
				errs <- err
				return
			}
			s, err := exchange(conn, size, func(off int) { sent.Add(int64(min(size-off, 256<<10))) })
			if sent.Load() > streams*size/3 {
				once.Do(func() { close(cut) })
			}
			if err != nil {
				errs <- err
				return
			}
			mu.Lock()
			sums = append(sums, s)
			mu.Unlock()
		})
	}
	wg.Wait()
	once.Do(func() { close(cut) })
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	checkSums(t, tg, sums)
	st := c.Status()
	if st.SessionsTotal != 1 || st.Streams.Total != streams {
		t.Fatalf("%d tunnels, %d streams; want 1 tunnel carrying %d streams", st.SessionsTotal, st.Streams.Total, streams)
	}
	b := st.Paths[1]
	if b.Name != "b" || b.Fails < 1 || b.Joins < 2 {
		t.Fatalf("path b: %+v, want it failed and rejoined", b)
	}
	rb.mu.Lock()
	n := len(rb.conns)
	rb.mu.Unlock()
	if n > 5 {
		t.Fatalf("path b dialed %d sub-connections for %d streams: streams must not dial paths", n, streams)
	}
}

// A stream whose reader stops holds only its own window: another
// stream's large transfer in the same tunnel completes intact.
func TestTunnelStalledStream(t *testing.T) {
	const size = 16 << 20
	stall := newTarget(t, 64<<20)
	tg := newTarget(t, size)
	addr := startServer(t, &Server{})
	c := client(t, addr)
	stalled, err := c.Dial("tcp", stall.addr())
	if err != nil {
		t.Fatal(err)
	}
	conn, err := c.Dial("tcp", tg.addr())
	if err != nil {
		t.Fatal(err)
	}
	transfer(t, conn, tg, size, nil)
	stalled.Close()
	<-stall.sums // the target saw the stream end
}

// Opening a stream makes no sub-connection: many dials, one tunnel.
func TestTunnelDialsNoPaths(t *testing.T) {
	tg := newTarget(t, 1000)
	addr := startServer(t, &Server{Options: Options{Password: testPassword}})
	var ra, rb recorder
	c := client(t, addr, Path{Name: "a", Dial: ra.dial}, Path{Name: "b", Dial: rb.dial})
	c.Password = testPassword
	for range 50 {
		conn, err := c.Dial("tcp", tg.addr())
		if err != nil {
			t.Fatal(err)
		}
		transfer(t, conn, tg, 1000, nil)
	}
	if len(ra.conns) != 1 || len(rb.conns) != 1 {
		t.Fatalf("paths dialed %d and %d sub-connections for 50 streams, want 1 each", len(ra.conns), len(rb.conns))
	}
}

// A refusal by the target reaches the application as the target's
// answer, and the tunnel lives on.
func TestTunnelTargetRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	tg := newTarget(t, 1000)
	addr := startServer(t, &Server{})
	c := client(t, addr)
	_, err = c.Dial("tcp", closed)
	var fe *failure.Error
	if !errors.As(err, &fe) || fe.Reason != failure.Refused {
		t.Fatalf("dial to a closed port: %v, want connection refused", err)
	}
	conn, err := c.Dial("tcp", tg.addr())
	if err != nil {
		t.Fatal(err)
	}
	transfer(t, conn, tg, 1000, nil)
	if st := c.Status(); st.SessionsTotal != 1 {
		t.Fatalf("%d tunnels, want 1", st.SessionsTotal)
	}
}

// A server older than tunnels refuses CMD 0x05 as an unknown command: the
// client then gives each connection a session of its own, as before.
func TestTunnelFallbackToSessions(t *testing.T) {
	tg := newTarget(t, 1<<20)
	srv := &Server{noTunnels: true}
	addr := startServer(t, srv)
	c := client(t, addr)
	for range 2 {
		conn, err := c.Dial("tcp", tg.addr())
		if err != nil {
			t.Fatal(err)
		}
		transfer(t, conn, tg, 1<<20, nil)
	}
	if st := srv.Status(); st.SessionsTotal != 2 || st.Streams.Total != 0 {
		t.Fatalf("server saw %d sessions, %d streams; want 2 sessions", st.SessionsTotal, st.Streams.Total)
	}
	// UDP too: an association is a session of its own.
	echo := relaytest.UDPEcho(t, net.IPv4(127, 0, 0, 1))
	pc, err := c.ListenPacket(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	echoDatagrams(t, pc, echo, 3)
}

// Close ends every tunnel the client runs, also one that a draining server
// told to take no more streams while one of its streams still runs.
func TestTunnelCloseEndsDrainedTunnels(t *testing.T) {
	tg := newTarget(t, 1<<20)
	srv := &Server{}
	addr := startServer(t, srv)
	c := client(t, addr)
	conn, err := c.Dial("tcp", tg.addr())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go srv.Shutdown(ctx)
	resWaitFor(t, "the GOAWAY", func() bool {
		c.mu.Lock()
		ct := c.tun
		c.mu.Unlock()
		return ct != nil && ct.t != nil && !ct.t.Usable()
	})
	// A new dial drops the drained tunnel and finds no server to open
	// another: the old one, still carrying conn, is the client's no more.
	if _, err := c.Dial("tcp", tg.addr()); err == nil {
		t.Fatal("a dial to a server that stopped listening succeeded")
	}
	c.Close() // returns: the drained tunnel is closed too
	if _, err := io.ReadAll(conn); err == nil {
		t.Fatal("the stream of a closed client read to EOF")
	}
	<-tg.sums
}
