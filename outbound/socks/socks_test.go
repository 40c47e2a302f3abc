package socks_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/mptp/mptp/internal/failure"
	"github.com/mptp/mptp/outbound"
	_ "github.com/mptp/mptp/outbound/socks"
	"github.com/mptp/mptp/relaytest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// build makes a socks outbound from settings, failing on warnings.
func build(t *testing.T, settings string) outbound.Outbound {
	t.Helper()
	ob, err := relaytest.Build(t, "socks", settings)
	if err != nil {
		t.Fatal(err)
	}
	return ob
}

func TestSettings(t *testing.T) {
	for _, tc := range []struct{ settings, err string }{
		{`{"port": 1080}`, `outbounds[1].settings.address: required (the SOCKS5 relay)`},
		{`{"address": "127.0.0.1"}`, `outbounds[1].settings.port: 0 is out of range 1-65535`},
		{`{"address": "127.0.0.1", "port": 65536}`, `outbounds[1].settings.port: 65536 is out of range 1-65535`},
		{`{"address": "127.0.0.1", "port": 1080, "username": "u"}`, `outbounds[1].settings: username and password go together`},
		{`{"address": "127.0.0.1", "port": 1080, "password": "p"}`, `outbounds[1].settings: username and password go together`},
		{`{"address": "127.0.0.1", "port": 1080, "username": "` + strings.Repeat("u", 256) + `", "password": "p"}`, `outbounds[1].settings: username and password are at most 255 bytes`},
		{`{"address": "127.0.0.1", "port": 1080, "bind": "eth0"}`, `outbounds[1].settings.bind: "eth0" is not an IP address`},
		{`{"address": "127.0.0.1", "port": "1080"}`, `outbounds[1].settings.port: want number, got string`},
		{`{"address": "127.0.0.1", "port": 1080, "mptcp": "yes"}`, `outbounds[1].settings.mptcp: want boolean, got string`},
	} {
		_, err := relaytest.Build(t, "socks", tc.settings)
		if err == nil || err.Error() != tc.err {
			t.Errorf("%s: got %v, want %s", tc.settings, err, tc.err)
		}
	}
	build(t, `{"address": "127.0.0.1", "port": 1080, "username": "u", "password": "p", "bind": "127.0.0.1", "mptcp": true}`)
}

// fake is a SOCKS5 relay written from RFC 1928/1929 for the cases a real
// one will not produce on cue. It accepts one client.
type fake struct {
	user, pass string
	rep        byte   // the CONNECT reply code
	extra      []byte // sent in the same write as a successful reply
	silent     bool   // never answers the greeting

	ln      net.Listener
	wg      sync.WaitGroup
	target  chan string // the CONNECT target it got
	gotFIN  chan struct{}
	failure chan error
}

func startFake(t *testing.T, f *fake) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.ln, f.target, f.gotFIN, f.failure = ln, make(chan string, 1), make(chan struct{}), make(chan error, 1)
	f.wg.Go(func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		if err := f.serve(c); err != nil {
			f.failure <- err
		}
	})
	t.Cleanup(func() {
		ln.Close()
		f.wg.Wait()
		select {
		case err := <-f.failure:
			t.Errorf("fake relay: %v", err)
		default:
		}
	})
	return ln.Addr().String()
}

func (f *fake) serve(c net.Conn) error {
	c.SetDeadline(time.Now().Add(time.Minute)) // a bug here must not hang the test
	hdr := make([]byte, 2)
	if _, err := io.ReadFull(c, hdr); err != nil {
		return err
	}
	methods := make([]byte, hdr[1])
	if _, err := io.ReadFull(c, methods); err != nil {
		return err
	}
	if f.silent {
		io.Copy(io.Discard, c) // until the client gives up
		return nil
	}
	want := byte(0)
	if f.user != "" {
		want = 2
	}
	if !bytes.Contains(methods, []byte{want}) {
		c.Write([]byte{5, 0xff})
		return nil
	}
	c.Write([]byte{5, want})
	if want == 2 {
		user, pass, err := readLogin(c)
		if err != nil {
			return err
		}
		if user != f.user || pass != f.pass {
			c.Write([]byte{1, 1})
			return nil
		}
		c.Write([]byte{1, 0})
	}
	target, err := readRequest(c)
	if err != nil {
		return err
	}
	f.target <- target
	reply := []byte{5, f.rep, 0, 1, 127, 0, 0, 1, 0x12, 0x34}
	if f.rep != 0 {
		c.Write(reply)
		return nil
	}
	if _, err := c.Write(append(reply, f.extra...)); err != nil {
		return err
	}
	// Echo the rest; report the client's half-close.
	if _, err := io.Copy(c, c); err != nil {
		return err
	}
	close(f.gotFIN)
	return nil
}

func readLogin(c net.Conn) (user, pass string, err error) {
	b := make([]byte, 2)
	if _, err := io.ReadFull(c, b); err != nil {
		return "", "", err
	}
	u := make([]byte, b[1]+1) // the username and the password's length
	if _, err := io.ReadFull(c, u); err != nil {
		return "", "", err
	}
	p := make([]byte, u[len(u)-1])
	if _, err := io.ReadFull(c, p); err != nil {
		return "", "", err
	}
	return string(u[:len(u)-1]), string(p), nil
}

func readRequest(c net.Conn) (string, error) {
	b := make([]byte, 4)
	if _, err := io.ReadFull(c, b); err != nil {
		return "", err
	}
	var host string
	switch b[3] {
	case 1:
		ip := make([]byte, 4)
		if _, err := io.ReadFull(c, ip); err != nil {
			return "", err
		}
		host = net.IP(ip).String()
	case 3:
		n := make([]byte, 1)
		if _, err := io.ReadFull(c, n); err != nil {
			return "", err
		}
		name := make([]byte, n[0])
		if _, err := io.ReadFull(c, name); err != nil {
			return "", err
		}
		host = string(name)
	default:
		return "", errors.New("unexpected address type")
	}
	port := make([]byte, 2)
	if _, err := io.ReadFull(c, port); err != nil {
		return "", err
	}
	return net.JoinHostPort(host, strconv.Itoa(int(binary.BigEndian.Uint16(port)))), nil
}

// TestBytesAfterReply: what the relay sends with its reply (the target
// speaking first) comes out of the conn first, intact.
func TestBytesAfterReply(t *testing.T) {
	extra := []byte("220 target speaks first\r\n")
	f := &fake{user: "user", pass: "pass", extra: extra}
	ob := build(t, relaytest.Settings(t, startFake(t, f), "user", "pass"))
	c, err := ob.DialContext(context.Background(), "tcp", "example.com:25")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := <-f.target; got != "example.com:25" {
		t.Fatalf("relay was asked for %s", got)
	}
	got := make([]byte, len(extra))
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, extra) {
		t.Fatalf("first bytes %q, %v; want %q", got, err, extra)
	}
	relaytest.RoundTrip(t, c, 1<<20)
	// The conn is the relay's own: it half-closes.
	if err := c.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	<-f.gotFIN
}

func TestBadCredentials(t *testing.T) {
	f := &fake{user: "user", pass: "pass"}
	addr := startFake(t, f)
	ob := build(t, relaytest.Settings(t, addr, "user", "wrong"))
	_, err := ob.DialContext(context.Background(), "tcp", "example.com:80")
	want := "socks relay " + addr + ": not allowed: socks5: bad username or password"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %s", err, want)
	}
	if failure.Of(err) != failure.NotAllowed {
		t.Fatalf("reason %v", failure.Of(err))
	}
}

func TestNoAcceptableMethod(t *testing.T) {
	f := &fake{user: "user", pass: "pass"}
	addr := startFake(t, f)
	ob := build(t, relaytest.Settings(t, addr, "", ""))
	_, err := ob.DialContext(context.Background(), "tcp", "example.com:80")
	want := "socks relay " + addr + ": socks5: server refused the authentication method"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %s", err, want)
	}
}

func TestConnectRefused(t *testing.T) {
	f := &fake{rep: byte(failure.Refused)}
	addr := startFake(t, f)
	ob := build(t, relaytest.Settings(t, addr, "", ""))
	_, err := ob.DialContext(context.Background(), "tcp", "192.0.2.1:443")
	want := "socks relay " + addr + ": connection refused: socks5 server refused 192.0.2.1:443"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %s", err, want)
	}
	if failure.Of(err) != failure.Refused {
		t.Fatalf("reason %v", failure.Of(err))
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
	want := "socks relay " + addr + ": dial relay: connect: connection refused"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %s", err, want)
	}
	if failure.Of(err) != failure.Refused {
		t.Fatalf("reason %v", failure.Of(err))
	}
}

// TestSilentRelay: a relay that never answers is given up on when the
// dial's context ends.
func TestSilentRelay(t *testing.T) {
	f := &fake{silent: true}
	addr := startFake(t, f)
	ob := build(t, relaytest.Settings(t, addr, "", ""))
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := ob.DialContext(ctx, "tcp", "example.com:80")
	if !errors.Is(err, context.DeadlineExceeded) || !strings.HasPrefix(err.Error(), "socks relay "+addr+": ") {
		t.Fatalf("got %v", err)
	}
	if failure.Of(err) != failure.TimedOut {
		t.Fatalf("reason %v", failure.Of(err))
	}
}
