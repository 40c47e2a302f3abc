package socks_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"net/netip"
	"syscall"
	"testing"

	"github.com/mptp/mptp/internal/failure"
)

func random(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// exchange sends data on c, half-closes, and returns everything c reads
// until EOF.
func exchange(t *testing.T, c *net.TCPConn, data []byte) []byte {
	t.Helper()
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(data)
		if err == nil {
			err = c.CloseWrite()
		}
		werr <- err
	}()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-werr; err != nil {
		t.Fatal(err)
	}
	return got
}

func TestConnect(t *testing.T) {
	for _, tc := range []struct {
		name   string
		listen string
		host   string // target host; the listener's when empty
	}{
		{"ipv4", "127.0.0.1:0", ""},
		{"ipv6", "[::1]:0", ""},
		{"domain", "127.0.0.1:0", "localhost"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			noLeaks(t)
			if tc.name == "ipv6" {
				ln, err := net.Listen("tcp", tc.listen)
				if err != nil {
					t.Skipf("no IPv6 loopback: %v", err)
				}
				ln.Close()
			}
			target := echoServer(t, tc.listen)
			if tc.host != "" {
				_, port, _ := net.SplitHostPort(target)
				target = net.JoinHostPort(tc.host, port)
			}
			p := startSocks(t, "", &net.Dialer{})

			c, bound := connect(t, p, target)
			ap, err := netip.ParseAddrPort(bound)
			if err != nil || !ap.Addr().IsLoopback() || ap.Port() == 0 {
				t.Errorf("bound address %q: want the outbound conn's loopback address", bound)
			}
			data := random(t, 4<<20)
			got := exchange(t, c, data)
			if sha256.Sum256(got) != sha256.Sum256(data) {
				t.Fatalf("echo differs: sent %d bytes, got %d", len(data), len(got))
			}

			// Close waits for the session's goroutines, so its log is complete.
			p.in.Close()
			r := p.logs.record(t, "socks session end")
			if r == nil || r["target"] != target || r["up"] != float64(len(data)) || r["down"] != float64(len(data)) {
				t.Fatalf("session log %v", r)
			}
		})
	}
}

// TestHalfClose checks that the client's EOF reaches the target while the
// target's answer still flows back: the target answers only after EOF.
func TestHalfClose(t *testing.T) {
	noLeaks(t)
	payload := random(t, 1<<20)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveTCP(t, ln, func(c *net.TCPConn) {
		h := sha256.New()
		if _, err := io.Copy(h, c); err != nil {
			return
		}
		c.Write(h.Sum(nil))
		c.Write(payload)
	})
	p := startSocks(t, "", &net.Dialer{})

	c, _ := connect(t, p, ln.Addr().String())
	data := random(t, 1<<20)
	got := exchange(t, c, data)
	sum := sha256.Sum256(data)
	want := append(sum[:], payload...)
	if !bytes.Equal(got, want) {
		t.Fatalf("got %d bytes, want the digest of the upload and %d bytes", len(got), len(payload))
	}
}

func TestConnectErrors(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	for _, tc := range []struct {
		name   string
		dialer dialFunc
		rep    byte
	}{
		{"refused", (&net.Dialer{}).DialContext, 0x05},
		{"refused fake", func(context.Context, string, string) (net.Conn, error) { return nil, refused }, 0x05},
		{"host unreachable", func(context.Context, string, string) (net.Conn, error) {
			return nil, &failure.Error{Reason: failure.HostUnreachable}
		}, 0x04},
	} {
		t.Run(tc.name, func(t *testing.T) {
			noLeaks(t)
			p := startSocks(t, "", tc.dialer)
			c := dialProxy(t, p)
			greet(t, c, 0)
			target := closedPort(t)
			if rep, _ := request(t, c, 1, target); rep != tc.rep {
				t.Fatalf("reply 0x%02x, want 0x%02x", rep, tc.rep)
			}
			expectClosed(t, c)
			r := p.logs.record(t, "socks connect failed")
			if r == nil || r["target"] != target || r["reason"] != failure.Reason(tc.rep).String() {
				t.Fatalf("log %v", r)
			}
		})
	}
}

func TestUserPass(t *testing.T) {
	noLeaks(t)
	target := echoServer(t, "127.0.0.1:0")
	p := startSocks(t, `{"accounts": [{"username": "alice", "password": "s3cret"}, {"username": "bob", "password": "pw"}]}`, &net.Dialer{})

	t.Run("success", func(t *testing.T) {
		c := dialProxy(t, p)
		if m := greet(t, c, 0x00, 0x02); m != 0x02 {
			t.Fatalf("method 0x%02x, want 0x02", m)
		}
		if st := login(t, c, "bob", "pw"); st != 0 {
			t.Fatalf("status 0x%02x", st)
		}
		if rep, _ := request(t, c, 1, target); rep != 0 {
			t.Fatalf("reply 0x%02x", rep)
		}
		if got := exchange(t, c, []byte("hello")); string(got) != "hello" {
			t.Fatalf("echo %q", got)
		}
	})
	for _, tc := range []struct{ name, user, pass string }{
		{"wrong password", "alice", "s3cre"},
		{"unknown user", "carol", "s3cret"},
		{"other user's password", "bob", "s3cret"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialProxy(t, p)
			greet(t, c, 0x02)
			if st := login(t, c, tc.user, tc.pass); st != 0x01 {
				t.Fatalf("status 0x%02x, want 0x01", st)
			}
			expectClosed(t, c)
		})
	}
	if r := p.logs.record(t, "socks auth failed"); r == nil || r["user"] != "alice" || r["client"] == nil {
		t.Fatalf("log %v", r)
	}
	t.Run("no auth offered", func(t *testing.T) {
		c := dialProxy(t, p)
		if m := greet(t, c, 0x00); m != 0xFF {
			t.Fatalf("method 0x%02x, want 0xFF", m)
		}
		expectClosed(t, c)
	})
}

func TestNoAuthRequiresMethodZero(t *testing.T) {
	noLeaks(t)
	p := startSocks(t, "", &net.Dialer{})
	c := dialProxy(t, p)
	if m := greet(t, c, 0x02); m != 0xFF {
		t.Fatalf("method 0x%02x, want 0xFF", m)
	}
	expectClosed(t, c)
}

func TestUnsupported(t *testing.T) {
	noLeaks(t)
	p := startSocks(t, `{"udp": true}`, dialFunc(func(context.Context, string, string) (net.Conn, error) {
		t.Error("unexpected dial")
		return nil, errors.New("unexpected dial")
	}))
	for _, tc := range []struct {
		name string
		cmd  byte
		rep  byte
	}{
		{"bind", 2, 0x07},
		{"udp associate", 3, 0x07},
		{"unknown command", 9, 0x07},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialProxy(t, p)
			greet(t, c, 0)
			if rep, _ := request(t, c, tc.cmd, "127.0.0.1:53"); rep != tc.rep {
				t.Fatalf("reply 0x%02x, want 0x%02x", rep, tc.rep)
			}
			expectClosed(t, c)
		})
	}
	t.Run("address type", func(t *testing.T) {
		c := dialProxy(t, p)
		greet(t, c, 0)
		write(t, c, []byte{5, 1, 0, 0x02, 1, 2, 3, 4, 0, 80})
		if rep, _ := readReply(t, c); rep != 0x08 {
			t.Fatalf("reply 0x%02x, want 0x08", rep)
		}
		expectClosed(t, c)
	})
}
