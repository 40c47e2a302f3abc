package mptp

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/mptp/mptp/internal/failure"
	"github.com/mptp/mptp/internal/faultnet"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// target is a TCP server that, per connection, hashes what it reads and
// sends back size random bytes, reporting both hashes.
type target struct {
	ln    net.Listener
	sums  chan [2][32]byte // what it read, what it wrote
	size  int
	wg    sync.WaitGroup
	conns sync.Map
}

func newTarget(t *testing.T, size int) *target {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tg := &target{ln: ln, sums: make(chan [2][32]byte, 1000), size: size}
	tg.wg.Add(1)
	go func() {
		defer tg.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			tg.wg.Add(1)
			go func() {
				defer tg.wg.Done()
				defer c.Close()
				out := make([]byte, tg.size)
				rand.Read(out)
				var got [32]byte
				done := make(chan struct{})
				go func() {
					h := sha256.New()
					io.Copy(h, c)
					copy(got[:], h.Sum(nil))
					close(done)
				}()
				c.Write(out)
				c.(*net.TCPConn).CloseWrite()
				<-done
				tg.sums <- [2][32]byte{got, sha256.Sum256(out)}
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); tg.wg.Wait() })
	return tg
}

func (tg *target) addr() string { return tg.ln.Addr().String() }

func startServer(t testing.TB, s *Server) string {
	t.Helper()
	if s.Dial == nil {
		var d net.Dialer
		s.Dial = d.DialContext
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { s.Serve(ln); close(done) }()
	t.Cleanup(func() { s.Close(); <-done })
	return ln.Addr().String()
}

// recorder is a path dialer that remembers its sub-connections, so tests
// can cut them.
type recorder struct {
	mu    sync.Mutex
	conns []net.Conn
}

func (r *recorder) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err == nil {
		r.mu.Lock()
		r.conns = append(r.conns, c)
		r.mu.Unlock()
	}
	return c, err
}

func (r *recorder) cut() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.conns {
		c.Close()
	}
}

func client(t testing.TB, server string, paths ...Path) *Client {
	if len(paths) == 0 {
		paths = []Path{{Name: "a"}, {Name: "b"}, {Name: "c"}}
	}
	c := &Client{Server: server, Paths: paths}
	t.Cleanup(func() { c.Close() })
	return c
}

// transfer sends size random bytes to the target through conn while
// reading what the target sends, and checks both ways (exchange,
// checkSums: tunnel_test.go).
func transfer(t *testing.T, conn net.Conn, tg *target, size int, during func(off int)) {
	t.Helper()
	s, err := exchange(conn, size, during)
	if err != nil {
		t.Fatal(err)
	}
	checkSums(t, tg, [][2][32]byte{s})
}

func TestSixtyFourMiBBothWays(t *testing.T) {
	tg := newTarget(t, 64<<20)
	addr := startServer(t, &Server{})
	conn, err := client(t, addr).Dial("tcp", tg.addr())
	if err != nil {
		t.Fatal(err)
	}
	transfer(t, conn, tg, 64<<20, nil)
}

func TestSubConnectionsCutMidTransfer(t *testing.T) {
	for _, cut := range []int{1, 2} {
		t.Run(fmt.Sprint(cut), func(t *testing.T) {
			tg := newTarget(t, 16<<20)
			addr := startServer(t, &Server{})
			recs := []*recorder{{}, {}, {}}
			var paths []Path
			for i, r := range recs {
				paths = append(paths, Path{Name: fmt.Sprint("p", i), Dial: r.dial})
			}
			conn, err := client(t, addr, paths...).Dial("tcp", tg.addr())
			if err != nil {
				t.Fatal(err)
			}
			transfer(t, conn, tg, 16<<20, func(sent int) {
				if sent == 4<<20 {
					for _, r := range recs[:cut] {
						r.cut()
					}
				}
			})
		})
	}
}

func TestRefusedTarget(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := ln.Addr().String()
	ln.Close()
	addr := startServer(t, &Server{})
	_, err := client(t, addr).Dial("tcp", dead)
	var fe *failure.Error
	if !errors.As(err, &fe) || fe.Reason != failure.Refused {
		t.Fatalf("got %v, want a refusal", err)
	}
}

func TestServerDown(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := ln.Addr().String()
	ln.Close()
	if _, err := client(t, dead).Dial("tcp", "127.0.0.1:1"); err == nil {
		t.Fatal("dial through a dead server succeeded")
	}
}

func TestConcurrentSessions(t *testing.T) {
	tg := newTarget(t, 64<<10)
	addr := startServer(t, &Server{})
	c := client(t, addr)
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := c.Dial("tcp", tg.addr())
			if err != nil {
				errs <- err
				return
			}
			defer conn.Close()
			msg := make([]byte, 32<<10)
			rand.Read(msg)
			conn.Write(msg)
			conn.(interface{ CloseWrite() error }).CloseWrite()
			n, err := io.Copy(io.Discard, conn)
			if err != nil || n != 64<<10 {
				errs <- fmt.Errorf("read %d bytes, %v", n, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for i := 0; i < 200; i++ {
		sums := <-tg.sums
		_ = sums
	}
}

func TestLeafV1Client(t *testing.T) {
	tg := newTarget(t, 4<<20)
	addr := startServer(t, &Server{})
	c := client(t, addr)
	c.Version = 1
	conn, err := c.Dial("tcp", tg.addr())
	if err != nil {
		t.Fatal(err)
	}
	transfer(t, conn, tg, 4<<20, nil)
}

func TestAccept(t *testing.T) {
	srv := &Server{}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	srv.Dial = nil
	go srv.Serve(ln)
	defer srv.Close()
	go func() {
		c, err := srv.Accept()
		if err != nil {
			return
		}
		io.Copy(c, c) // echo
		c.CloseWrite()
		c.Close()
	}()
	conn, err := client(t, ln.Addr().String()).Dial("tcp", "echo.invalid:7")
	if err != nil {
		t.Fatal(err)
	}
	conn.Write([]byte("ping"))
	conn.(interface{ CloseWrite() error }).CloseWrite()
	got, err := io.ReadAll(conn)
	conn.Close()
	if err != nil || string(got) != "ping" {
		t.Fatalf("echo: %q %v", got, err)
	}
}

// Every sub-connection is cut at once: the client dials its actors again,
// the new sub-connections join the session by CID within the grace
// period, and nothing is lost.
func TestAllPathsCutResume(t *testing.T) {
	tg := newTarget(t, 16<<20)
	addr := startServer(t, &Server{})
	recs := []*recorder{{}, {}, {}}
	var paths []Path
	for i, r := range recs {
		paths = append(paths, Path{Name: fmt.Sprint("p", i), Dial: r.dial})
	}
	c := client(t, addr, paths...)
	conn, err := c.Dial("tcp", tg.addr())
	if err != nil {
		t.Fatal(err)
	}
	transfer(t, conn, tg, 16<<20, func(sent int) {
		if sent == 4<<20 || sent == 10<<20 {
			for _, r := range recs {
				r.cut()
			}
		}
	})
	var joins uint64
	for _, ps := range c.Stats() {
		joins += ps.Joins
	}
	if joins <= 3 {
		t.Fatalf("paths joined %d times, want rejoins after the cuts", joins)
	}
}

// When every path is gone and none comes back within the grace period,
// both ends see a reset, not a hang.
func TestGraceExpiry(t *testing.T) {
	tg := newTarget(t, 1<<20)
	srv := &Server{Options: Options{Grace: 100 * time.Millisecond}}
	addr := startServer(t, srv)
	rec := &recorder{}
	var down atomic.Bool
	dial := func(ctx context.Context, network, a string) (net.Conn, error) {
		if down.Load() {
			return nil, syscall.ENETUNREACH
		}
		return rec.dial(ctx, network, a)
	}
	c := &Client{Server: addr, Paths: []Path{{Name: "only", Dial: dial}}, Options: Options{Grace: 100 * time.Millisecond}}
	defer c.Close()
	conn, err := c.Dial("tcp", tg.addr())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(conn, make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	down.Store(true)
	rec.cut()
	_, err = io.Copy(io.Discard, conn)
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read after the grace period: %v, want a reset", err)
	}
	conn.Close()
	// The server ended its side too: its target connection was closed.
	sums := <-tg.sums
	_ = sums
}

// A sub-connection that never sends its handshake is closed by the
// handshake timeout.
func TestHandshakeTimeout(t *testing.T) {
	addr := startServer(t, &Server{Options: Options{HandshakeTimeout: 50 * time.Millisecond}})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if n, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatalf("read %d bytes from a silent handshake", n)
	}
}

// Leaf's client, byte for byte: the same handshake on two sub-connections,
// every DATA frame on both, FIN on both. The target gets each byte once
// and the reply comes back.
func TestLeafWireBytes(t *testing.T) {
	got := make(chan string, 1)
	echo, _ := net.Listen("tcp", "127.0.0.1:0")
	defer echo.Close()
	go func() {
		c, err := echo.Accept()
		if err != nil {
			return
		}
		b, _ := io.ReadAll(c)
		got <- string(b)
		c.Write([]byte("world"))
		c.Close()
	}()
	addr := startServer(t, &Server{})
	port := echo.Addr().(*net.TCPAddr).Port
	hs := []byte{0x01}
	hs = append(hs, bytes.Repeat([]byte{0xab}, 16)...)
	hs = append(hs, 0x01, 0x01, 127, 0, 0, 1, byte(port>>8), byte(port))
	hello := []byte{0x01, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 5, 'h', 'e', 'l', 'l', 'o'}
	var subs []net.Conn
	for i := 0; i < 2; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write(hs)
		subs = append(subs, c)
	}
	for _, c := range subs {
		c.Write(hello)
		c.Write([]byte{0x04}) // FIN
	}
	if s := <-got; s != "hello" {
		t.Fatalf("target got %q, want one copy of hello", s)
	}
	// The reply is a DATA frame with PN 1 and "world" on some sub-connection.
	want := []byte{0x01, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 5, 'w', 'o', 'r', 'l', 'd'}
	reply := make([]byte, len(want))
	if _, err := io.ReadFull(subs[0], reply); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(reply, want) {
		t.Fatalf("reply % x, want % x", reply, want)
	}
}

// The caller's context bounds the dial only: once the session is open,
// paths that die are dialed again even if that context was canceled.
func TestRedialAfterDialContextCanceled(t *testing.T) {
	tg := newTarget(t, 8<<20)
	addr := startServer(t, &Server{})
	rec := &recorder{}
	c := client(t, addr, Path{Name: "a", Dial: rec.dial})
	ctx, cancel := context.WithCancel(context.Background())
	conn, err := c.DialContext(ctx, "tcp", tg.addr())
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	transfer(t, conn, tg, 8<<20, func(sent int) {
		if sent == 2<<20 {
			rec.cut()
		}
	})
}

// An actor whose relay refuses (its own failure.Error) fails only its own
// path: the session opens over the others.
func TestRefusingActorDoesNotFailSession(t *testing.T) {
	tg := newTarget(t, 1024)
	addr := startServer(t, &Server{})
	refusing := func(context.Context, string, string) (net.Conn, error) {
		return nil, &failure.Error{Reason: failure.NotAllowed, Msg: "407 Proxy Authentication Required"}
	}
	c := client(t, addr, Path{Name: "relay", Dial: refusing}, Path{Name: "direct"})
	for i := 0; i < 20; i++ {
		conn, err := c.Dial("tcp", tg.addr())
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		io.Copy(io.Discard, conn)
		conn.Close()
		<-tg.sums
	}
}

// The path that sent OPEN dies and stays down: another path that came up
// meanwhile takes over the opening.
func TestOpenerDiesAnotherOpens(t *testing.T) {
	tg := newTarget(t, 1024)
	addr := startServer(t, &Server{})
	// The first path connects, then its link swallows everything.
	blackhole := func(ctx context.Context, network, a string) (net.Conn, error) {
		c1, c2 := net.Pipe()
		go io.Copy(io.Discard, c2)
		return c1, nil
	}
	slow := func(ctx context.Context, network, a string) (net.Conn, error) {
		time.Sleep(20 * time.Millisecond) // connects after the first
		var d net.Dialer
		return d.DialContext(ctx, network, a)
	}
	c := client(t, addr, Path{Name: "dead", Dial: blackhole}, Path{Name: "good", Dial: slow})
	c.HandshakeTimeout = 200 * time.Millisecond
	conn, err := c.Dial("tcp", tg.addr())
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, conn)
	conn.Close()
	<-tg.sums
}

// Closing a server while a session waits for Accept neither panics nor
// hangs; the client sees the session reset.
func TestCloseWithSessionWaitingForAccept(t *testing.T) {
	srv := &Server{}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	done := make(chan struct{})
	go func() { srv.Serve(ln); close(done) }()
	conn, err := client(t, ln.Addr().String()).Dial("tcp", "nobody.invalid:1")
	if err != nil {
		t.Fatal(err)
	}
	srv.Close()
	<-done
	if _, err := io.Copy(io.Discard, conn); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read: %v, want a reset", err)
	}
	conn.Close()
	if _, err := srv.Accept(); err != ErrServerClosed {
		t.Fatalf("Accept after Close: %v", err)
	}
}

// A backup path carries nothing while the primary works, in either
// direction, and everything once the primary goes silent.
func TestBackupPath(t *testing.T) {
	var log resLog
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(log.String())
		}
	})
	echo := echoServer(t)
	// A loaded machine (CI) can hold a working primary up for longer than
	// the default stale floor, and then the backup carries data, as it
	// should: a floor of seconds keeps that from happening here.
	patient := Options{StaleFloor: 2 * time.Second}
	addr := startServer(t, &Server{Options: patient, Logger: log.logger().With("side", "server")})
	var primary *faultnet.Conn
	var mu sync.Mutex
	dialPrimary := func(ctx context.Context, network, a string) (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(ctx, network, a)
		if err != nil {
			return nil, err
		}
		mu.Lock()
		defer mu.Unlock()
		primary = faultnet.Wrap(c)
		return primary, nil
	}
	c := client(t, addr, Path{Name: "primary", Dial: dialPrimary}, Path{Name: "backup", Backup: true})
	c.Logger = log.logger().With("side", "client")
	c.Options = patient
	conn, err := c.Dial("tcp", echo)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Each half goes out and comes back before the next: the first while
	// the primary works, the second after it went silent.
	for half := 0; half < 2; half++ {
		data := make([]byte, 4<<20)
		rand.Read(data)
		go conn.Write(data)
		got := make([]byte, len(data))
		if _, err := io.ReadFull(conn, got); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("half %d: echo differs", half)
		}
		backup := c.Stats()[1]
		if half == 0 {
			if backup.BytesSent != 0 || backup.BytesReceived != 0 {
				t.Fatalf("backup carried %d bytes up and %d down while the primary worked (primary stalls %d)", backup.BytesSent, backup.BytesReceived, c.Stats()[0].Stalls)
			}
			mu.Lock()
			primary.Silence()
			mu.Unlock()
		} else if backup.BytesSent == 0 || backup.BytesReceived == 0 {
			t.Fatalf("backup carried %d up and %d down after the primary went silent", backup.BytesSent, backup.BytesReceived)
		}
	}
	mu.Lock()
	primary.Close()
	mu.Unlock()
}

// A backup path that connects before the primary leaves the OPEN to it:
// the path that opens carries the first data, and a backup should carry
// none while a primary works.
func TestBackupLeavesOpenToPrimary(t *testing.T) {
	tg := newTarget(t, 1<<20)
	addr := startServer(t, &Server{})
	late := func(ctx context.Context, network, a string) (net.Conn, error) {
		time.Sleep(100 * time.Millisecond)
		var d net.Dialer
		return d.DialContext(ctx, network, a)
	}
	c := client(t, addr, Path{Name: "primary", Dial: late}, Path{Name: "backup", Backup: true})
	conn, err := c.Dial("tcp", tg.addr())
	if err != nil {
		t.Fatal(err)
	}
	transfer(t, conn, tg, 1<<20, nil)
	if b := c.Stats()[1]; b.BytesSent != 0 || b.BytesReceived != 0 {
		t.Fatalf("backup carried %d bytes up and %d down while the primary worked", b.BytesSent, b.BytesReceived)
	}
}

// A primary that never connects holds a backup back only briefly: the
// backup opens the session and carries it.
func TestBackupOpensWhenPrimaryHangs(t *testing.T) {
	tg := newTarget(t, 1<<20)
	addr := startServer(t, &Server{})
	hang := func(ctx context.Context, network, a string) (net.Conn, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	c := client(t, addr, Path{Name: "primary", Dial: hang}, Path{Name: "backup", Backup: true})
	conn, err := c.Dial("tcp", tg.addr())
	if err != nil {
		t.Fatal(err)
	}
	transfer(t, conn, tg, 1<<20, nil)
	if b := c.Stats()[1]; b.BytesSent == 0 || b.BytesReceived == 0 {
		t.Fatalf("backup carried %d bytes up and %d down with no primary", b.BytesSent, b.BytesReceived)
	}
}

// echoServer echoes each connection until EOF.
func echoServer(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				io.Copy(c, c)
				c.Close()
			})
		}
	})
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return ln.Addr().String()
}
