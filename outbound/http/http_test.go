package http_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/mptp/mptp/internal/failure"
	"github.com/mptp/mptp/outbound"
	_ "github.com/mptp/mptp/outbound/http"
	"github.com/mptp/mptp/relaytest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// build makes an http outbound from settings, failing on warnings.
func build(t *testing.T, settings string) outbound.Outbound {
	t.Helper()
	ob, err := relaytest.Build(t, "http", settings)
	if err != nil {
		t.Fatal(err)
	}
	return ob
}

func TestSettings(t *testing.T) {
	for _, tc := range []struct{ settings, err string }{
		{`{"port": 8080}`, `outbounds[1].settings.address: required (the HTTP relay)`},
		{`{"address": "127.0.0.1"}`, `outbounds[1].settings.port: 0 is out of range 1-65535`},
		{`{"address": "127.0.0.1", "port": 8080, "username": "u"}`, `outbounds[1].settings: username and password go together`},
		{`{"address": "127.0.0.1", "port": 8080, "username": "a:b", "password": "p"}`, `outbounds[1].settings.username: cannot contain ":"`},
		{`{"address": "127.0.0.1", "port": 8080, "bind": "lo"}`, `outbounds[1].settings.bind: "lo" is not an IP address`},
	} {
		_, err := relaytest.Build(t, "http", tc.settings)
		if err == nil || err.Error() != tc.err {
			t.Errorf("%s: got %v, want %s", tc.settings, err, tc.err)
		}
	}
	build(t, `{"address": "127.0.0.1", "port": 8080, "username": "u", "password": "p", "interface": "lo", "mptcp": true}`)
}

// fake is an HTTP relay that answers one CONNECT with response, in the
// same write as extra, then echoes if tunnel is set, else hangs up. It
// records the request head.
type fake struct {
	response string
	extra    []byte
	tunnel   bool

	ln      net.Listener
	wg      sync.WaitGroup
	request chan string
	gotFIN  chan struct{}
}

func startFake(t *testing.T, f *fake) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.ln, f.request, f.gotFIN = ln, make(chan string, 1), make(chan struct{})
	f.wg.Go(func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(time.Minute)) // a bug here must not hang the test
		br := bufio.NewReader(c)
		var head strings.Builder
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			head.WriteString(line)
			if line == "\r\n" {
				break
			}
		}
		f.request <- head.String()
		if f.response == "" {
			io.Copy(io.Discard, br) // silent, until the client gives up
			return
		}
		if _, err := c.Write(append([]byte(f.response), f.extra...)); err != nil {
			return
		}
		if !f.tunnel {
			return
		}
		if _, err := io.Copy(c, br); err == nil {
			close(f.gotFIN)
		}
	})
	t.Cleanup(func() { ln.Close(); f.wg.Wait() })
	return ln.Addr().String()
}

// TestBytesAfterResponse: what the relay sends right after its response
// (the target speaking first) comes out of the conn first, intact, and
// the conn still half-closes.
func TestBytesAfterResponse(t *testing.T) {
	extra := bytes.Repeat([]byte("220 target speaks first\r\n"), 1000)
	f := &fake{response: "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 Connection established\r\nProxy-Agent: fake\r\n\r\n", extra: extra, tunnel: true}
	ob := build(t, relaytest.Settings(t, startFake(t, f), "user", "pass"))
	c, err := ob.DialContext(context.Background(), "tcp", "example.com:25")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	want := "CONNECT example.com:25 HTTP/1.1\r\nHost: example.com:25\r\nProxy-Authorization: Basic dXNlcjpwYXNz\r\n\r\n"
	if got := <-f.request; got != want {
		t.Fatalf("request %q, want %q", got, want)
	}
	got := make([]byte, len(extra))
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, extra) {
		t.Fatalf("first bytes %q..., %v; want %q...", got[:25], err, extra[:25])
	}
	relaytest.RoundTrip(t, c, 1<<20)
	cw, ok := c.(interface{ CloseWrite() error })
	if !ok {
		t.Fatalf("%T cannot half-close", c)
	}
	if err := cw.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	<-f.gotFIN
}

func TestNoAuthRequest(t *testing.T) {
	f := &fake{response: "HTTP/1.0 200 OK\r\n\r\n", tunnel: true}
	ob := build(t, relaytest.Settings(t, startFake(t, f), "", ""))
	c, err := ob.DialContext(context.Background(), "tcp", "[2001:db8::1]:443")
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	want := "CONNECT [2001:db8::1]:443 HTTP/1.1\r\nHost: [2001:db8::1]:443\r\n\r\n"
	if got := <-f.request; got != want {
		t.Fatalf("request %q, want %q", got, want)
	}
}

func TestRefusals(t *testing.T) {
	for _, tc := range []struct {
		response, err string
		reason        failure.Reason
	}{
		{"HTTP/1.1 403 Forbidden\r\n\r\n", "not allowed: 403 Forbidden", failure.NotAllowed},
		{"HTTP/1.1 401 Unauthorized\r\n\r\n", "not allowed: 401 Unauthorized", failure.NotAllowed},
		{"HTTP/1.0 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"x\"\r\nContent-Length: 3\r\n\r\nno\n", "not allowed: 407 Proxy Authentication Required", failure.NotAllowed},
		{"HTTP/1.1 502 Bad Gateway\r\n\r\n", "host unreachable: 502 Bad Gateway", failure.HostUnreachable},
		{"HTTP/1.1 504 Gateway Timeout\r\n\r\n", "host unreachable: 504 Gateway Timeout", failure.HostUnreachable},
		{"HTTP/1.1 500 Internal Server Error\r\n\r\n", "500 Internal Server Error", failure.General},
		{"HTTP/1.1 301\r\nLocation: /\r\n\r\n", "301", failure.General},
		{"SSH-2.0-OpenSSH_9.2\r\n", `not an HTTP response: SSH-2.0-OpenSSH_9.2`, failure.General},
		{"HTTP/1.1 418 \x1b[31mteapot\r\n\r\n", `"418 \x1b[31mteapot"`, failure.General},
		{"HTTP/1.1 200 OK\r\n", "reading response header: unexpected EOF", failure.General},
		{"HTTP/1.1 200 OK\r\n" + strings.Repeat("X-Padding: yes\r\n", 2000) + "\r\n", "response head longer than 16384 bytes", failure.General},
	} {
		f := &fake{response: tc.response}
		addr := startFake(t, f)
		ob := build(t, relaytest.Settings(t, addr, "", ""))
		_, err := ob.DialContext(context.Background(), "tcp", "example.com:80")
		if want := "http relay " + addr + ": " + tc.err; err == nil || err.Error() != want {
			t.Errorf("got %v, want %s", err, want)
			continue
		}
		if failure.Of(err) != tc.reason {
			t.Errorf("%s: reason %v, want %v", tc.err, failure.Of(err), tc.reason)
		}
	}
}

// TestBadTarget: a target that would put its own lines in the request
// is refused before anything is sent.
func TestBadTarget(t *testing.T) {
	ob := build(t, `{"address": "127.0.0.1", "port": 9}`)
	for _, target := range []string{"example.com:80\r\nX-Evil: 1", "exa mple.com:80", ":80", "example.com"} {
		if _, err := ob.DialContext(context.Background(), "tcp", target); err == nil || !strings.HasPrefix(err.Error(), "http relay 127.0.0.1:9: ") || strings.Contains(err.Error(), "dial relay") {
			t.Errorf("%q: got %v", target, err)
		}
	}
}

func TestRelayDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ob := build(t, relaytest.Settings(t, addr, "", ""))
	_, err = ob.DialContext(context.Background(), "tcp", "example.com:80")
	if want := "http relay " + addr + ": dial relay: connect: connection refused"; err == nil || err.Error() != want {
		t.Fatalf("got %v, want %s", err, want)
	}
	if failure.Of(err) != failure.Refused {
		t.Fatalf("reason %v", failure.Of(err))
	}
}

// TestSilentRelay: a relay that never answers is given up on when the
// dial's context ends.
func TestSilentRelay(t *testing.T) {
	f := &fake{}
	addr := startFake(t, f)
	ob := build(t, relaytest.Settings(t, addr, "", ""))
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := ob.DialContext(ctx, "tcp", "example.com:80")
	if !errors.Is(err, context.DeadlineExceeded) || !strings.HasPrefix(err.Error(), "http relay "+addr+": ") {
		t.Fatalf("got %v", err)
	}
}
