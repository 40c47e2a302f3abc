package socks_test

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/mptp/mptp/internal/failure"
	"github.com/mptp/mptp/relaytest"
)

// Tests against Dante's SOCKS5 server (Debian's dante-server), a relay
// written by others.

func TestDanted(t *testing.T) {
	target := relaytest.Echo(t)
	relay := relaytest.Danted(t, "")
	ob := build(t, relaytest.Settings(t, relay.Addr, "", ""))
	c, err := ob.DialContext(context.Background(), "tcp", target)
	if err != nil {
		t.Fatalf("%v (danted log: %s)", err, relay.Log)
	}
	defer c.Close()
	relaytest.RoundTrip(t, c, 8<<20)
}

// TestDantedUsername logs in with RFC 1929, which Dante checks against the
// system's users: the test makes a throwaway one (root only).
func TestDantedUsername(t *testing.T) {
	target := relaytest.Echo(t)
	user, pass := relaytest.SystemUser(t)
	relay := relaytest.Danted(t, user)

	ob := build(t, relaytest.Settings(t, relay.Addr, user, pass))
	c, err := ob.DialContext(context.Background(), "tcp", target)
	if err != nil {
		t.Fatalf("%v (danted log: %s)", err, relay.Log)
	}
	defer c.Close()
	relaytest.RoundTrip(t, c, 8<<20)

	ob = build(t, relaytest.Settings(t, relay.Addr, user, pass+"x"))
	_, err = ob.DialContext(context.Background(), "tcp", target)
	if err == nil || !strings.HasPrefix(err.Error(), "socks relay "+relay.Addr+": ") || failure.Of(err) != failure.NotAllowed {
		t.Fatalf("wrong password: got %v (reason %v)", err, failure.Of(err))
	}

	ob = build(t, relaytest.Settings(t, relay.Addr, "", ""))
	_, err = ob.DialContext(context.Background(), "tcp", target)
	if want := "socks relay " + relay.Addr + ": socks5: server refused the authentication method"; err == nil || err.Error() != want {
		t.Fatalf("no login: got %v, want %s", err, want)
	}
}

// TestDantedTargetRefused: Dante's refusal carries its reason.
func TestDantedTargetRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	relay := relaytest.Danted(t, "")
	ob := build(t, relaytest.Settings(t, relay.Addr, "", ""))
	_, err = ob.DialContext(context.Background(), "tcp", closed)
	want := "socks relay " + relay.Addr + ": connection refused: socks5 server refused " + closed
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %s", err, want)
	}
}

func TestDantedStopped(t *testing.T) {
	target := relaytest.Echo(t)
	relay := relaytest.Danted(t, "")
	ob := build(t, relaytest.Settings(t, relay.Addr, "", ""))
	relay.Stop(t)
	_, err := ob.DialContext(context.Background(), "tcp", target)
	if err == nil || !strings.Contains(err.Error(), "socks relay "+relay.Addr+": dial relay: ") || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("got %v", err)
	}
}
