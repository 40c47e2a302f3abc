package socks_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"testing"
)

type shutdowner interface {
	Shutdown(ctx context.Context) error
}

// TestShutdownDrains checks that Shutdown stops accepting at once, lets a
// live session finish, and returns nil once it has.
func TestShutdownDrains(t *testing.T) {
	noLeaks(t)
	p := startSocks(t, "", &net.Dialer{})
	c, _ := connect(t, p, echoServer(t, "127.0.0.1:0"))
	defer c.Close()
	done := make(chan error, 1)
	go func() { done <- p.in.(shutdowner).Shutdown(context.Background()) }()
	for { // until the listener is closed; a broken build never gets there
		c2, err := net.Dial("tcp", p.addr)
		if err != nil {
			break
		}
		c2.Close()
	}
	data := random(t, 1<<20)
	if got := exchange(t, c, data); sha256.Sum256(got) != sha256.Sum256(data) {
		t.Fatalf("echo through a draining inbound differs: sent %d bytes, got %d", len(data), len(got))
	}
	c.Close()
	if err := <-done; err != nil {
		t.Errorf("Shutdown after the session ended: %v, want nil", err)
	}
}

// TestShutdownCuts checks that the sessions still live when Shutdown's
// context ends are cut.
func TestShutdownCuts(t *testing.T) {
	noLeaks(t)
	p := startSocks(t, "", &net.Dialer{})
	c, _ := connect(t, p, echoServer(t, "127.0.0.1:0"))
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.in.(shutdowner).Shutdown(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Shutdown: %v, want context.Canceled", err)
	}
	if n, _ := io.Copy(io.Discard, c); n != 0 {
		t.Errorf("read %d bytes from a cut session", n)
	}
}
