package netdial_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/mptp/mptp/internal/netdial"
	"github.com/mptp/mptp/relaytest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// logBuffer is a slog destination that tests can read while others write.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *logBuffer) logger() *slog.Logger { return slog.New(slog.NewTextHandler(b, nil)) }

// echo accepts on ln until it is closed and sends every connection's bytes
// back; the returned func closes ln and waits for the handlers.
func echo(ln net.Listener) func() {
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				io.Copy(c, c)
			})
		}
	})
	return func() { ln.Close(); wg.Wait() }
}

func TestNewRejectsBadBind(t *testing.T) {
	_, err := netdial.New("outbounds[1].settings", netdial.Options{Bind: "eth0"}, nil, nil)
	if err == nil || err.Error() != `outbounds[1].settings.bind: "eth0" is not an IP address` {
		t.Fatalf("got %v", err)
	}
}

func TestNewWarnsOfMissingInterface(t *testing.T) {
	var warnings []string
	d, err := netdial.New("outbounds[0].settings", netdial.Options{Interface: "nosuchif0"},
		func(msg string) { warnings = append(warnings, msg) }, nil)
	if err != nil || d == nil {
		t.Fatal(err)
	}
	if len(warnings) != 1 || !strings.HasPrefix(warnings[0], `outbounds[0].settings.interface: "nosuchif0" is not on this machine now`) {
		t.Fatalf("warnings %q", warnings)
	}
	if _, err := d.DialContext(context.Background(), "tcp", "127.0.0.1:9"); err == nil {
		t.Fatal("dial through a missing interface succeeded")
	}
}

func TestBind(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("binding 127.0.0.2 needs Linux's loopback /8")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Addr, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c.RemoteAddr()
			c.Close()
		}
		close(accepted)
	}()
	defer ln.Close()
	d, err := netdial.New("x", netdial.Options{Bind: "127.0.0.2"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := d.DialContext(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if from := (<-accepted).(*net.TCPAddr); !from.IP.Equal(net.IPv4(127, 0, 0, 2)) {
		t.Fatalf("connection came from %v, want 127.0.0.2", from)
	}
}

func TestInterface(t *testing.T) {
	if runtime.GOOS != "linux" || os.Geteuid() != 0 {
		t.Skip("SO_BINDTODEVICE needs Linux and root (CAP_NET_RAW)")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo(ln)()
	d, err := netdial.New("x", netdial.Options{Interface: "lo"}, func(msg string) { t.Error(msg) }, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := d.DialContext(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	relaytest.RoundTrip(t, c, 1<<20)
}

// mptcpEnabled reports whether this Linux kernel does MPTCP.
func mptcpEnabled() bool {
	b, err := os.ReadFile("/proc/sys/net/mptcp/enabled")
	return err == nil && strings.TrimSpace(string(b)) == "1"
}

// TestMPTCP dials a listener that accepts MPTCP with a dialer that asks
// for it: both ends log, once each, what they got, and bytes go through.
func TestMPTCP(t *testing.T) {
	var serverLog, clientLog logBuffer
	ln, err := netdial.Listen("127.0.0.1:0", true, serverLog.logger())
	if err != nil {
		t.Fatal(err)
	}
	defer echo(ln)()
	d, err := netdial.New("outbounds[0].settings", netdial.Options{MPTCP: true}, nil, clientLog.logger())
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		c, err := d.DialContext(context.Background(), "tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		relaytest.RoundTrip(t, c, 1<<20)
		c.Close()
	}
	want := "kernel MPTCP not available, using plain TCP"
	if mptcpEnabled() {
		want = "kernel MPTCP in use"
	}
	for side, log := range map[string]*logBuffer{"client": &clientLog, "server": &serverLog} {
		if lines := strings.Split(strings.TrimSpace(log.String()), "\n"); len(lines) != 1 || !strings.Contains(lines[0], `msg="`+want+`"`) {
			t.Errorf("%s log: want one line %q, got:\n%s", side, want, log.String())
		}
	}
	if !strings.Contains(clientLog.String(), "config=outbounds[0].settings") {
		t.Errorf("client log does not say which settings: %s", clientLog.String())
	}
}

// TestMPTCPFallback dials a plain TCP listener with MPTCP asked for: Go
// falls back to TCP, and the log says so.
func TestMPTCPFallback(t *testing.T) {
	var clientLog logBuffer
	// Since Go 1.24 listeners take MPTCP by default: opt out.
	var lc net.ListenConfig
	lc.SetMultipathTCP(false)
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo(ln)()
	d, err := netdial.New("x", netdial.Options{MPTCP: true}, nil, clientLog.logger())
	if err != nil {
		t.Fatal(err)
	}
	c, err := d.DialContext(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	relaytest.RoundTrip(t, c, 1<<20)
	c.Close()
	if !strings.Contains(clientLog.String(), `msg="kernel MPTCP not available, using plain TCP"`) {
		t.Fatalf("log: %s", clientLog.String())
	}
}

// TestNoMPTCPNoLog: without the option nothing is logged.
func TestNoMPTCPNoLog(t *testing.T) {
	var serverLog, clientLog logBuffer
	ln, err := netdial.Listen("127.0.0.1:0", false, serverLog.logger())
	if err != nil {
		t.Fatal(err)
	}
	defer echo(ln)()
	d, err := netdial.New("x", netdial.Options{}, nil, clientLog.logger())
	if err != nil {
		t.Fatal(err)
	}
	c, err := d.DialContext(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	relaytest.RoundTrip(t, c, 1<<20)
	c.Close()
	if serverLog.String() != "" || clientLog.String() != "" {
		t.Fatalf("logs: %q %q", serverLog.String(), clientLog.String())
	}
}

// pair returns both ends of a loopback TCP connection.
func pair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

func TestHandshakeCanceled(t *testing.T) {
	a, _ := pair(t)
	ctx, cancel := context.WithCancel(context.Background())
	err := netdial.Handshake(ctx, a, func() error {
		cancel() // the peer never answers: only canceling ends the read
		_, err := a.Read(make([]byte, 1))
		return err
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

func TestHandshakeDeadline(t *testing.T) {
	a, _ := pair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 1) // already over
	defer cancel()
	err := netdial.Handshake(ctx, a, func() error {
		_, err := a.Read(make([]byte, 1))
		return err
	})
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("got %v, want the deadline", err)
	}
}

// TestHandshakeClearsDeadline: once the handshake is done, the conn
// outlives ctx's deadline.
func TestHandshakeClearsDeadline(t *testing.T) {
	a, b := pair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 1<<40)
	err := netdial.Handshake(ctx, a, func() error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	<-ctx.Done()
	b.Write([]byte("x"))
	if _, err := a.Read(make([]byte, 1)); err != nil {
		t.Fatalf("read after the handshake: %v", err)
	}
}
