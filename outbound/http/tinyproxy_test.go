package http_test

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/mptp/mptp/relaytest"
)

// Tests against tinyproxy, an HTTP proxy written by others.

func port(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestTinyproxy(t *testing.T) {
	target := relaytest.Echo(t)
	relay := relaytest.Tinyproxy(t, "", "", port(t, target))
	ob := build(t, relaytest.Settings(t, relay.Addr, "", ""))
	c, err := ob.DialContext(context.Background(), "tcp", target)
	if err != nil {
		t.Fatalf("%v (tinyproxy log: %s)", err, relay.Log)
	}
	defer c.Close()
	relaytest.RoundTrip(t, c, 8<<20)
}

func TestTinyproxyBasicAuth(t *testing.T) {
	target := relaytest.Echo(t)
	relay := relaytest.Tinyproxy(t, "user", "s3cret", port(t, target))

	ob := build(t, relaytest.Settings(t, relay.Addr, "user", "s3cret"))
	c, err := ob.DialContext(context.Background(), "tcp", target)
	if err != nil {
		t.Fatalf("%v (tinyproxy log: %s)", err, relay.Log)
	}
	defer c.Close()
	relaytest.RoundTrip(t, c, 8<<20)

	// No credentials get 407; wrong ones get 401 from tinyproxy (1.11),
	// though RFC 9110 would have 407 again.
	for settings, code := range map[string]string{
		relaytest.Settings(t, relay.Addr, "", ""):          "407 Proxy Authentication Required",
		relaytest.Settings(t, relay.Addr, "user", "wrong"): "401 Unauthorized",
	} {
		ob = build(t, settings)
		_, err = ob.DialContext(context.Background(), "tcp", target)
		if want := "http relay " + relay.Addr + ": not allowed: " + code; err == nil || err.Error() != want {
			t.Fatalf("%s: got %v, want %s", settings, err, want)
		}
	}
}

// TestTinyproxyPortNotAllowed: tinyproxy refuses CONNECT to a port not in
// its ConnectPort list, and says so.
func TestTinyproxyPortNotAllowed(t *testing.T) {
	target := relaytest.Echo(t)
	relay := relaytest.Tinyproxy(t, "", "", port(t, target)+1)
	ob := build(t, relaytest.Settings(t, relay.Addr, "", ""))
	_, err := ob.DialContext(context.Background(), "tcp", target)
	// tinyproxy 1.11 says "403 Access violation".
	if want := "http relay " + relay.Addr + ": not allowed: 403 "; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("got %v, want %s...", err, want)
	}
}

func TestTinyproxyStopped(t *testing.T) {
	target := relaytest.Echo(t)
	relay := relaytest.Tinyproxy(t, "", "", port(t, target))
	ob := build(t, relaytest.Settings(t, relay.Addr, "", ""))
	relay.Stop(t)
	_, err := ob.DialContext(context.Background(), "tcp", target)
	if err == nil || !strings.Contains(err.Error(), "http relay "+relay.Addr+": dial relay: ") || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("got %v", err)
	}
}
