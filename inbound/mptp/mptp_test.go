package mptp_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/mptp/mptp"
	"github.com/mptp/mptp/inbound"
	_ "github.com/mptp/mptp/inbound/mptp"
	"github.com/mptp/mptp/internal/netdial"
	"github.com/mptp/mptp/relaytest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

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

type dialFunc func(ctx context.Context, network, address string) (net.Conn, error)

func (f dialFunc) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	return f(ctx, network, address)
}

// start builds and starts an mptp inbound on loopback with settings.
func start(t *testing.T, settings string, log *logBuffer) string {
	t.Helper()
	factory, _ := inbound.Lookup("mptp")
	var d net.Dialer
	in, err := factory(&inbound.Context{Tag: "in", Path: "inbounds[0]", Address: "127.0.0.1",
		Dialer: dialFunc(d.DialContext), Logger: slog.New(slog.NewTextHandler(log, nil)),
		Warn: func(msg string) { t.Errorf("unexpected warning: %s", msg) }}, json.RawMessage(settings))
	if err != nil {
		t.Fatal(err)
	}
	if err := in.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close() })
	return in.Addr().String()
}

// session runs a session of two MPTCP paths to server, to an echo target.
func session(t *testing.T, server string) {
	t.Helper()
	d, err := netdial.New("x", netdial.Options{MPTCP: true}, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	c := &mptp.Client{Server: server, Paths: []mptp.Path{{Name: "a", Dial: d.DialContext}, {Name: "b", Dial: d.DialContext}}}
	conn, err := c.Dial("tcp", relaytest.Echo(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	relaytest.RoundTrip(t, conn, 4<<20)
}

// TestMPTCP: with "mptcp" the inbound says, once, whether its clients'
// sub-connections use kernel MPTCP.
func TestMPTCP(t *testing.T) {
	var log logBuffer
	server := start(t, `{"mptcp": true}`, &log)
	session(t, server)
	session(t, server)
	want := "kernel MPTCP not available, using plain TCP"
	if b, _ := os.ReadFile("/proc/sys/net/mptcp/enabled"); strings.TrimSpace(string(b)) == "1" {
		want = "kernel MPTCP in use"
	}
	if n := strings.Count(log.String(), "MPTCP"); n != 1 || !strings.Contains(log.String(), `msg="`+want+`"`) {
		t.Fatalf("want one %q line, got:\n%s", want, log.String())
	}
}

func TestNoMPTCPNoLog(t *testing.T) {
	var log logBuffer
	session(t, start(t, `{}`, &log))
	if strings.Contains(log.String(), "MPTCP") {
		t.Fatalf("log:\n%s", log.String())
	}
}
