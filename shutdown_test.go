package mptp

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
)

// TestShutdown checks that Shutdown stops accepting at once, lets a live
// session finish, and returns nil once it has.
func TestShutdown(t *testing.T) {
	srv := &Server{}
	addr := startServer(t, srv)
	tg := newTarget(t, 1<<20)
	conn, err := client(t, addr).Dial("tcp", tg.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	done := make(chan error, 1)
	go func() { done <- srv.Shutdown(context.Background()) }()
	resWaitFor(t, "the listener closed", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned %v with a session live", err)
	default:
	}
	transfer(t, conn, tg, 1<<20, nil)
	conn.Close()
	if err := <-done; err != nil {
		t.Errorf("Shutdown after the session finished: %v, want nil", err)
	}
}

// TestShutdownCuts checks that Shutdown resets the sessions still live
// when its context ends.
func TestShutdownCuts(t *testing.T) {
	srv := &Server{}
	addr := startServer(t, srv)
	held, err := net.Listen("tcp", "127.0.0.1:0") // accepts, never answers
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	conn, err := client(t, addr).Dial("tcp", held.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Shutdown(ctx) }()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Shutdown: %v, want context.Canceled", err)
	}
	if _, err := io.ReadAll(conn); err == nil {
		t.Error("the session ended cleanly, want a reset")
	}
}
