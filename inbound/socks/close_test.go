package socks_test

import (
	"context"
	"io"
	"net"
	"testing"
)

// TestCloseEndsIdleSession closes the inbound while a session is half
// closed and idle: nothing would wake its goroutines but Close.
func TestCloseEndsIdleSession(t *testing.T) {
	noLeaks(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	p := startSocks(t, "", &net.Dialer{})

	c, _ := connect(t, p, ln.Addr().String())
	tc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(tc); err != nil || len(b) != 0 {
		t.Fatalf("target read %q, %v; want EOF", b, err)
	}
	if err := p.in.Close(); err != nil {
		t.Fatal(err)
	}
	io.ReadAll(c) // returns: the session's conns are closed
}

// TestCloseCancelsDial closes the inbound while a dial is in progress.
func TestCloseCancelsDial(t *testing.T) {
	noLeaks(t)
	dialing := make(chan struct{})
	p := startSocks(t, "", dialFunc(func(ctx context.Context, _, _ string) (net.Conn, error) {
		close(dialing)
		<-ctx.Done()
		return nil, ctx.Err()
	}))
	c := dialProxy(t, p)
	greet(t, c, 0)
	write(t, c, []byte{5, 1, 0, 1, 127, 0, 0, 1, 0, 80})
	<-dialing
	if err := p.in.Close(); err != nil {
		t.Fatal(err)
	}
	expectClosed(t, c)
}

// TestBoundNonTCP uses an outbound conn that is not TCP: the reply carries
// 0.0.0.0:0, and data still flows.
func TestBoundNonTCP(t *testing.T) {
	noLeaks(t)
	done := make(chan struct{})
	defer func() { <-done }()
	p := startSocks(t, "", dialFunc(func(context.Context, string, string) (net.Conn, error) {
		client, server := net.Pipe()
		go func() {
			defer close(done)
			defer server.Close()
			b := make([]byte, 4)
			if _, err := io.ReadFull(server, b); err == nil && string(b) == "ping" {
				server.Write([]byte("pong"))
			}
		}()
		return client, nil
	}))
	c, bound := connect(t, p, "example.test:80")
	if bound != "0.0.0.0:0" {
		t.Errorf("bound %q, want 0.0.0.0:0", bound)
	}
	write(t, c, []byte("ping"))
	if got := read(t, c, 4); string(got) != "pong" {
		t.Fatalf("got %q", got)
	}
	expectClosed(t, c)
}
