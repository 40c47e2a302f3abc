package socks_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"github.com/mptp/mptp/relaytest"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/mptp/mptp/inbound"
	_ "github.com/mptp/mptp/inbound/socks"
)

// noLeaks checks, after every other cleanup of the test, that the test left
// no goroutines behind. Call it first.
func noLeaks(t *testing.T) {
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
}

type dialFunc func(ctx context.Context, network, address string) (net.Conn, error)

func (f dialFunc) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	return f(ctx, network, address)
}

// logBuffer collects the inbound's JSON log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// record returns the first log record with message msg, or nil.
func (b *logBuffer) record(t *testing.T, msg string) map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	s := bufio.NewScanner(bytes.NewReader(b.buf.Bytes()))
	for s.Scan() {
		var r map[string]any
		if err := json.Unmarshal(s.Bytes(), &r); err != nil {
			t.Fatalf("log line %q: %v", s.Text(), err)
		}
		if r["msg"] == msg {
			return r
		}
	}
	return nil
}

type proxy struct {
	addr string
	in   inbound.Inbound
	logs *logBuffer
}

// startSocks builds and starts a socks inbound on loopback, closed at the
// end of the test.
func startSocks(t *testing.T, settings string, d inbound.Dialer) *proxy {
	t.Helper()
	factory, ok := inbound.Lookup("socks")
	if !ok {
		t.Fatal("socks not registered")
	}
	logs := &logBuffer{}
	ctx := &inbound.Context{
		Tag:     "socks-in",
		Path:    "inbounds[0]",
		Address: "127.0.0.1",
		Dialer:  d,
		Logger:  slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Warn:    func(msg string) { t.Errorf("unexpected warning: %s", msg) },
	}
	var raw json.RawMessage
	if settings != "" {
		raw = json.RawMessage(settings)
	}
	in, err := factory(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := in.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := in.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return &proxy{addr: in.Addr().String(), in: in, logs: logs}
}

// serveTCP runs handle for every connection accepted on ln until the end of
// the test.
func serveTCP(t *testing.T, ln net.Listener, handle func(*net.TCPConn)) {
	relaytest.Serve(t, ln, handle)
}

// echoServer listens on address and sends every connection's bytes back,
// half-closing after the client's EOF.
func echoServer(t *testing.T, address string) string {
	t.Helper()
	ln, err := net.Listen("tcp", address)
	if err != nil {
		t.Fatal(err)
	}
	serveTCP(t, ln, func(c *net.TCPConn) {
		if _, err := io.Copy(c, c); err == nil {
			c.CloseWrite()
		}
	})
	return ln.Addr().String()
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// The rest is a minimal SOCKS5 client, written from RFC 1928/1929 and
// independent of the code under test.

func dialProxy(t *testing.T, p *proxy) *net.TCPConn {
	t.Helper()
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

// greet offers methods and returns the server's choice.
func greet(t *testing.T, c net.Conn, methods ...byte) byte {
	t.Helper()
	write(t, c, append([]byte{5, byte(len(methods))}, methods...))
	b := read(t, c, 2)
	if b[0] != 5 {
		t.Fatalf("method reply version %d", b[0])
	}
	return b[1]
}

// login sends RFC 1929 credentials and returns the status.
func login(t *testing.T, c net.Conn, user, pass string) byte {
	t.Helper()
	msg := append([]byte{1, byte(len(user))}, user...)
	msg = append(append(msg, byte(len(pass))), pass...)
	write(t, c, msg)
	b := read(t, c, 2)
	if b[0] != 1 {
		t.Fatalf("auth reply version %d", b[0])
	}
	return b[1]
}

// request sends a request and returns the reply code and bound address.
func request(t *testing.T, c net.Conn, cmd byte, target string) (rep byte, bound string) {
	t.Helper()
	host, portStr, err := net.SplitHostPort(target)
	if err != nil {
		t.Fatal(err)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte{5, cmd, 0}
	if ip, err := netip.ParseAddr(host); err == nil && ip.Is4() {
		msg = append(append(msg, 1), ip.AsSlice()...)
	} else if err == nil {
		msg = append(append(msg, 4), ip.AsSlice()...)
	} else {
		msg = append(append(msg, 3, byte(len(host))), host...)
	}
	write(t, c, binary.BigEndian.AppendUint16(msg, uint16(port)))
	return readReply(t, c)
}

func readReply(t *testing.T, c net.Conn) (rep byte, bound string) {
	t.Helper()
	b := read(t, c, 4)
	if b[0] != 5 || b[2] != 0 {
		t.Fatalf("reply header % x", b)
	}
	var host string
	switch b[3] {
	case 1:
		host = netip.AddrFrom4([4]byte(read(t, c, 4))).String()
	case 4:
		host = netip.AddrFrom16([16]byte(read(t, c, 16))).String()
	case 3:
		host = string(read(t, c, int(read(t, c, 1)[0])))
	default:
		t.Fatalf("reply ATYP %d", b[3])
	}
	port := binary.BigEndian.Uint16(read(t, c, 2))
	return b[1], net.JoinHostPort(host, strconv.Itoa(int(port)))
}

// connect opens a CONNECT session to target through p, without
// authentication.
func connect(t *testing.T, p *proxy, target string) (c *net.TCPConn, bound string) {
	t.Helper()
	c = dialProxy(t, p)
	if m := greet(t, c, 0); m != 0 {
		t.Fatalf("method 0x%02x", m)
	}
	rep, bound := request(t, c, 1, target)
	if rep != 0 {
		t.Fatalf("CONNECT %s: reply 0x%02x", target, rep)
	}
	return c, bound
}

func write(t *testing.T, c net.Conn, b []byte) {
	t.Helper()
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, c net.Conn, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatal(err)
	}
	return b
}

// expectClosed checks that the server closed c without sending more.
func expectClosed(t *testing.T, c net.Conn) {
	t.Helper()
	if b, err := io.ReadAll(c); len(b) != 0 {
		t.Fatalf("got % x, %v after the end of the exchange", b, err)
	}
}
