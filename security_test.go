package mptp

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mptp/mptp/internal/failure"
	"github.com/mptp/mptp/internal/leaf"
	"github.com/mptp/mptp/internal/secure"
	"github.com/mptp/mptp/internal/wire"
)

const testPassword = "a long test password, 5 words"

// countingDial is a server Dial that counts target dials.
type countingDial struct{ n atomic.Int64 }

func (c *countingDial) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	c.n.Add(1)
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

func TestPasswordSession(t *testing.T) {
	tg := newTarget(t, 8<<20)
	addr := startServer(t, &Server{Options: Options{Password: testPassword}})
	c := client(t, addr)
	c.Password = testPassword
	conn, err := c.Dial("tcp", tg.addr())
	if err != nil {
		t.Fatal(err)
	}
	transfer(t, conn, tg, 8<<20, nil)
	// Every path joined: the JOINs showed the session's token.
	for _, ps := range c.Stats() {
		if ps.Joins == 0 {
			t.Errorf("path %s never joined", ps.Name)
		}
	}
}

// Who has no password, the wrong one, or speaks Leaf's v1, is refused
// before the server dials anything, and the log says why.
func TestRefusedBeforeDial(t *testing.T) {
	tg := newTarget(t, 1)
	var dials countingDial
	log := &resLog{}
	addr := startServer(t, &Server{Dial: dials.dial, Options: Options{Password: testPassword}, Logger: log.logger()})
	for _, tc := range []struct{ name, password, reason string }{
		{"wrong password", "not the password", "wrong password"},
		{"no password", "", "unauthenticated v2 handshake"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := client(t, addr)
			c.Password = tc.password
			_, err := c.Dial("tcp", tg.addr())
			var fe *failure.Error
			if !errors.As(err, &fe) || fe.Reason != failure.AuthFailed {
				t.Fatalf("got %v", err)
			}
			if !strings.Contains(log.String(), tc.reason) {
				t.Fatalf("log lacks %q:\n%s", tc.reason, log)
			}
		})
	}
	t.Run("v1", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		hs, _ := leaf.AppendHandshake(nil, leaf.Handshake{Cmd: leaf.CmdConnect, Target: tg.addr()})
		c.Write(append(hs, leaf.AppendData(nil, 1, []byte("hello"))...))
		if n, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatalf("v1 client got %d bytes", n)
		}
		if !strings.Contains(log.String(), "Leaf v1 client") {
			t.Fatalf("log:\n%s", log)
		}
	})
	t.Run("v1 client refuses a password", func(t *testing.T) {
		c := client(t, addr)
		c.Version, c.Password = 1, testPassword
		if _, err := c.Dial("tcp", tg.addr()); err == nil {
			t.Fatal("v1 with a password dialed")
		}
	})
	if n := dials.n.Load(); n != 0 {
		t.Fatalf("%d target dials", n)
	}
}

func TestPasswordToServerWithout(t *testing.T) {
	tg := newTarget(t, 1)
	var dials countingDial
	addr := startServer(t, &Server{Dial: dials.dial})
	c := client(t, addr)
	c.Password = testPassword
	_, err := c.Dial("tcp", tg.addr())
	var fe *failure.Error
	if !errors.As(err, &fe) || fe.Reason != failure.AuthFailed || !strings.Contains(fe.Msg, "has none") {
		t.Fatalf("got %v", err)
	}
	if dials.n.Load() != 0 {
		t.Fatal("target dialed")
	}
}

// tap forwards TCP to addr and records every byte in both directions.
type tap struct {
	ln  net.Listener
	mu  sync.Mutex
	rec bytes.Buffer
	wg  sync.WaitGroup
}

func newTap(t *testing.T, addr string) *tap {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tp := &tap{ln: ln}
	tp.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", addr)
			if err != nil {
				c.Close()
				continue
			}
			pipe := func(dst, src net.Conn) {
				buf := make([]byte, 32<<10)
				for {
					n, err := src.Read(buf)
					if n > 0 {
						tp.mu.Lock()
						tp.rec.Write(buf[:n])
						tp.mu.Unlock()
						if _, err := dst.Write(buf[:n]); err != nil {
							break
						}
					}
					if err != nil {
						break
					}
				}
				dst.(*net.TCPConn).CloseWrite()
			}
			tp.wg.Go(func() {
				var inner sync.WaitGroup
				inner.Go(func() { pipe(s, c) })
				pipe(c, s)
				inner.Wait()
				c.Close()
				s.Close()
			})
		}
	})
	t.Cleanup(func() { ln.Close(); tp.wg.Wait() })
	return tp
}

func (tp *tap) recorded() []byte {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return append([]byte(nil), tp.rec.Bytes()...)
}

// A relay between client and server sees none of the plaintext: not the
// target's address, not the bytes either way. Without a password the same
// tap sees them, which shows the tap works.
func TestTapSeesNoPlaintext(t *testing.T) {
	marker := []byte("PLAINTEXT-MARKER-0123456789")
	for _, password := range []string{"", testPassword} {
		echo := echoServer(t)
		addr := startServer(t, &Server{Options: Options{Password: password}})
		tp := newTap(t, addr)
		c := client(t, tp.ln.Addr().String())
		c.Password = password
		conn, err := c.Dial("tcp", echo)
		if err != nil {
			t.Fatal(err)
		}
		data := bytes.Repeat(marker, 40000) // 1 MiB
		go func() {
			conn.Write(data)
			conn.(interface{ CloseWrite() error }).CloseWrite()
		}()
		got, err := io.ReadAll(conn)
		conn.Close()
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("echo: %d bytes, %v", len(got), err)
		}
		rec := tp.recorded()
		// The target as the OPEN encodes it: ATYP, IPv4, port.
		ap := net.TCPAddrFromAddrPort(mustAddrPort(t, echo))
		target := append([]byte{0x01}, ap.IP.To4()...)
		target = append(target, byte(ap.Port>>8), byte(ap.Port))
		seen := bytes.Contains(rec, marker[:16]) || bytes.Contains(rec, target)
		if password == "" && !seen {
			t.Fatalf("the tap saw no plaintext without a password (%d bytes): it does not work", len(rec))
		}
		if password != "" && seen {
			t.Fatalf("the tap saw plaintext through the secure channel")
		}
		if len(rec) < len(data) {
			t.Fatalf("the tap recorded %d bytes", len(rec))
		}
	}
}

// A thousand connections that never speak hold little memory while they
// wait, and the handshake timeout closes every one; the server serves on.
func TestSilentConnections(t *testing.T) {
	const n = 1000
	srv := &Server{Options: Options{HandshakeTimeout: 3 * time.Second}, Limits: Limits{MaxHandshakes: 2 * n}}
	addr := startServer(t, srv)
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	conns := make([]net.Conn, 0, n)
	for range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	waitFor(t, func() bool { return srv.handshaking() == n }, "every connection in its handshake")
	var during runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&during)
	grown := int64(during.HeapInuse+during.StackInuse) - int64(before.HeapInuse+before.StackInuse)
	t.Logf("%d silent connections: %d KiB more heap and stacks (%d bytes each)", n, grown>>10, grown/n)
	if grown > n*32<<10 {
		t.Fatalf("%d silent connections cost %d KiB", n, grown>>10)
	}
	// The timeout closes each; a read sees the end (no deadline here: the
	// test waits for the state, not a time).
	var wg sync.WaitGroup
	var open atomic.Int64
	for _, c := range conns {
		wg.Go(func() {
			if _, err := c.Read(make([]byte, 1)); err == nil {
				open.Add(1)
			}
		})
	}
	wg.Wait()
	if open.Load() != 0 || srv.handshaking() != 0 {
		t.Fatalf("%d got data, %d still in handshake", open.Load(), srv.handshaking())
	}
	tg := newTarget(t, 1<<20)
	conn, err := client(t, addr).Dial("tcp", tg.addr())
	if err != nil {
		t.Fatal(err)
	}
	transfer(t, conn, tg, 1<<20, nil)
}

// Past the handshake limit, new connections are closed at once.
func TestHandshakeLimit(t *testing.T) {
	const limit, n = 10, 50
	log := &resLog{}
	srv := &Server{Options: Options{HandshakeTimeout: time.Hour}, Limits: Limits{MaxHandshakes: limit}, Logger: log.logger()}
	addr := startServer(t, srv)
	var closed atomic.Int64
	var wg sync.WaitGroup
	for range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		wg.Go(func() {
			if _, err := c.Read(make([]byte, 1)); err != nil {
				closed.Add(1)
			}
		})
	}
	waitFor(t, func() bool { return closed.Load() == n-limit }, "the connections beyond the limit closed")
	if h := srv.handshaking(); h != limit {
		t.Fatalf("%d in handshake", h)
	}
	if !strings.Contains(log.String(), "handshake limit reached") {
		t.Fatalf("log:\n%s", log)
	}
	srv.Close()
	wg.Wait()
}

func TestSessionLimits(t *testing.T) {
	echo := echoServer(t)
	// Each client has one tunnel: two fit, the third is refused.
	opts := Options{RecvWindow: 1 << 20, SendBuffer: 1 << 20}
	for _, lim := range []Limits{{MaxSessions: 2}, {MaxMemory: 2 * opts.TunnelMemory()}} {
		addr := startServer(t, &Server{Options: opts, Limits: lim})
		var open []net.Conn
		for i := range 3 {
			conn, err := client(t, addr).Dial("tcp", echo)
			if i < 2 {
				if err != nil {
					t.Fatalf("%+v: session %d: %v", lim, i, err)
				}
				open = append(open, conn)
				continue
			}
			var fe *failure.Error
			if !errors.As(err, &fe) || fe.Reason != wire.StatusBusy {
				t.Fatalf("%+v: third session: %v", lim, err)
			}
		}
		for _, c := range open {
			c.Close()
		}
	}
}

// Junk of every kind to a server, with and without a password, never
// crashes it, and it serves a real client after.
func TestJunk(t *testing.T) {
	for _, password := range []string{"", testPassword} {
		// Junk may parse as a handshake to anywhere: only loopback is dialed.
		loopbackOnly := func(ctx context.Context, network, target string) (net.Conn, error) {
			if ap, err := netip.ParseAddrPort(target); err != nil || !ap.Addr().IsLoopback() {
				return nil, errors.New("not a test address")
			}
			var d net.Dialer
			return d.DialContext(ctx, network, target)
		}
		addr := startServer(t, &Server{Dial: loopbackOnly, Options: Options{Password: password, HandshakeTimeout: time.Second}})
		start := time.Now()
		var wg sync.WaitGroup
		for i := range 300 {
			junk := make([]byte, 3+i*7%3000)
			rand.Read(junk)
			// Every first byte, and well-formed starts with junk after.
			junk[0] = byte(i)
			if i%5 == 0 {
				junk[0], junk[1], junk[2] = secure.Version, 0, 48
			}
			if i%7 == 0 {
				junk[0] = wire.Version
			}
			wg.Go(func() {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					t.Error(err)
					return
				}
				defer c.Close()
				c.Write(junk)
				c.(*net.TCPConn).CloseWrite()
				io.Copy(io.Discard, bufio.NewReader(c))
			})
		}
		wg.Wait()
		t.Logf("password %v: junk answered in %v", password != "", time.Since(start))
		tg := newTarget(t, 1<<20)
		c := client(t, addr)
		c.Password = password
		conn, err := c.Dial("tcp", tg.addr())
		if err != nil {
			t.Fatal(err)
		}
		transfer(t, conn, tg, 1<<20, nil)
	}
}

// waitFor polls a state until it holds; the bound is only a safety net.
func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Minute); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
	}
}

func mustAddrPort(t *testing.T, addr string) netip.AddrPort {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return ap
}
