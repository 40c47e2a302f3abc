package mptp_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/mptp/mptp"
	"github.com/mptp/mptp/app"
	"github.com/mptp/mptp/config"
	mptpout "github.com/mptp/mptp/outbound/mptp"
	"github.com/mptp/mptp/relaytest"
)

// Sessions whose paths go through real relays: direct, Dante (SOCKS5) and
// tinyproxy (HTTP CONNECT), to an in-process mptp.Server, built from a
// config as the command would.

// syncBuffer collects log lines written from several goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startServer runs an mptp.Server on loopback until the end of the test.
func startServer(t *testing.T) *net.TCPAddr {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var d net.Dialer
	srv := &mptp.Server{Dial: d.DialContext}
	done := make(chan struct{})
	go func() { srv.Serve(ln); close(done) }()
	t.Cleanup(func() { srv.Close(); <-done })
	return ln.Addr().(*net.TCPAddr)
}

// buildClient builds config's outbounds and returns the mptp client of
// the one tagged "multi", logging to log.
func buildClient(t *testing.T, cfgJSON string, log *syncBuffer) *mptp.Client {
	t.Helper()
	cfg, warnings, err := config.Parse([]byte(cfgJSON))
	if err != nil || len(warnings) > 0 {
		t.Fatalf("config: %v %q", err, warnings)
	}
	a, warnings, err := app.Build(cfg, slog.New(slog.DiscardHandler))
	if err != nil || len(warnings) > 0 {
		t.Fatalf("build: %v %q", err, warnings)
	}
	c := a.Outbound("multi").(*mptpout.Outbound).Client()
	c.Logger = slog.New(slog.NewTextHandler(log, nil))
	return c
}

// waitJoined waits until each named path has joined a session.
func waitJoined(t *testing.T, c *mptp.Client, names ...string) {
	t.Helper()
	for i := 0; ; i++ {
		joined := map[string]bool{}
		for _, ps := range c.Stats() {
			joined[ps.Name] = ps.Joins > 0
		}
		missing := ""
		for _, n := range names {
			if !joined[n] {
				missing += " " + n
			}
		}
		if missing == "" {
			return
		}
		if i == 3000 {
			t.Fatalf("paths not joined after 30 s:%s", missing)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func relayConfig(server *net.TCPAddr, dead string, relays ...*relaytest.Relay) string {
	actors := `"direct", "socks", "http"`
	extra := ""
	if dead != "" {
		actors += `, "dead"`
		host, port, _ := net.SplitHostPort(dead)
		extra = fmt.Sprintf(`,
		{"protocol": "socks", "tag": "dead", "settings": {"address": %q, "port": %s}}`, host, port)
	}
	socksHost, socksPort, _ := net.SplitHostPort(relays[0].Addr)
	httpHost, httpPort, _ := net.SplitHostPort(relays[1].Addr)
	// The inbound is required by the config, and not started: the test
	// dials through the mptp outbound's client itself.
	return fmt.Sprintf(`{"inbounds": [{"protocol": "socks", "address": "127.0.0.1", "port": 1086}],
	"outbounds": [
		{"protocol": "mptp", "tag": "multi", "settings": {"actors": [%s], "address": "127.0.0.1", "port": %d}},
		{"protocol": "direct", "tag": "direct"},
		{"protocol": "socks", "tag": "socks", "settings": {"address": %q, "port": %s}},
		{"protocol": "http", "tag": "http", "settings": {"address": %q, "port": %s}}%s
	]}`, actors, server.Port, socksHost, socksPort, httpHost, httpPort, extra)
}

// TestRelayActors: a session over a direct path and paths through Dante
// and tinyproxy carries 32 MiB both ways intact, and both relays carry
// part of it.
func TestRelayActors(t *testing.T) {
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
	target := relaytest.Echo(t)
	server := startServer(t)
	danted := relaytest.Danted(t, "")
	tinyproxy := relaytest.Tinyproxy(t, "", "", server.Port)
	var log syncBuffer
	c := buildClient(t, relayConfig(server, "", danted, tinyproxy), &log)

	conn, err := c.DialContext(context.Background(), "tcp", target)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	waitJoined(t, c, "direct", "socks", "http")
	relaytest.RoundTrip(t, conn, 32<<20)

	for _, ps := range c.Stats() {
		t.Logf("%s: sent %d, received %d, retransmitted %d", ps.Name, ps.BytesSent, ps.BytesReceived, ps.Retransmitted)
		if ps.BytesSent == 0 || ps.BytesReceived == 0 {
			t.Errorf("path %s carried nothing one way: sent %d, received %d\nclient log:\n%s", ps.Name, ps.BytesSent, ps.BytesReceived, log.String())
		}
	}
}

// TestDeadRelayActor: an actor whose relay is down does not stop the
// session, and the client log says which actor and why.
func TestDeadRelayActor(t *testing.T) {
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
	target := relaytest.Echo(t)
	server := startServer(t)
	danted := relaytest.Danted(t, "")
	tinyproxy := relaytest.Tinyproxy(t, "", "", server.Port)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	var log syncBuffer
	c := buildClient(t, relayConfig(server, dead, danted, tinyproxy), &log)

	conn, err := c.DialContext(context.Background(), "tcp", target)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	waitJoined(t, c, "direct", "socks", "http")
	relaytest.RoundTrip(t, conn, 8<<20)

	for i := 0; !hasLine(log.String(), "path=dead", "socks relay "+dead, "connection refused"); i++ {
		if i == 3000 {
			t.Fatalf("no log line about the dead actor in 30 s:\n%s", log.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, ps := range c.Stats() {
		if ps.Name == "dead" && (ps.Joins != 0 || ps.BytesSent != 0) {
			t.Errorf("dead actor joined %d times, sent %d", ps.Joins, ps.BytesSent)
		}
	}
}

// hasLine reports whether some line of log contains all of parts.
func hasLine(log string, parts ...string) bool {
	for line := range strings.Lines(log) {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			return true
		}
	}
	return false
}
