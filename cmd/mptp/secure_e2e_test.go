package main

import (
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func secureServerConfig(t *testing.T, port int, password string) string {
	return writeFile(t, "server.json", fmt.Sprintf(`{
  "log": {"level": "info"},
  "inbounds": [{"protocol": "mptp", "address": "127.0.0.1", "port": %d,
    "settings": {"password": %q, "handshake_timeout": 2}}],
  "outbounds": [{"protocol": "direct"}]
}`, port, password))
}

func secureClientConfig(t *testing.T, socksPort, serverPort int, password string) string {
	return writeFile(t, "client.json", fmt.Sprintf(`{
  "inbounds": [{"protocol": "socks", "address": "127.0.0.1", "port": %d,
    "settings": {"accounts": [{"username": "user", "password": "socks pw"}]}}],
  "outbounds": [
    {"protocol": "mptp", "settings": {"actors": ["d1", "d2"], "address": "127.0.0.1", "port": %d, "password": %q}},
    {"protocol": "direct", "tag": "d1"},
    {"protocol": "direct", "tag": "d2"}
  ]
}`, socksPort, serverPort, password))
}

// The whole chain with passwords: curl logs in to the SOCKS5 inbound, the
// client reaches the server over two encrypted paths. A client with the
// wrong password gets nothing and the target sees no request; junk sent to
// every listener crashes nothing and the chain serves on.
func TestSecureChain(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl is not installed")
	}
	var requests atomic.Int64
	blob := make([]byte, 8<<20)
	rand.Read(blob)
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.Write(blob)
	}))
	defer target.Close()

	serverPort, socksPort, badPort := freePort(t), freePort(t), freePort(t)
	server := startMptp(t, "server", "-c", secureServerConfig(t, serverPort, "server pw"))
	client := startMptp(t, "client", "-c", secureClientConfig(t, socksPort, serverPort, "server pw"))
	bad := startMptp(t, "bad client", "-c", secureClientConfig(t, badPort, serverPort, "guess"))
	waitForListener(t, server, loopback(serverPort))
	waitForListener(t, client, loopback(socksPort))
	waitForListener(t, bad, loopback(badPort))

	fetch := func(socks int) (int, []byte) {
		out := filepath.Join(t.TempDir(), "blob")
		cmd := exec.Command(curl, "-s", "--fail", "--socks5-hostname", loopback(socks), "--proxy-user", "user:socks pw", target.URL, "-o", out)
		code := exitCode(t, cmd.Run())
		got, _ := os.ReadFile(out) // none when curl failed
		return code, got
	}
	if code, got := fetch(socksPort); code != 0 || string(got) != string(blob) {
		t.Fatalf("curl exit %d, %d bytes", code, len(got))
	}
	before := requests.Load()
	if code, got := fetch(badPort); code == 0 || len(got) != 0 {
		t.Fatalf("wrong password: curl exit %d, %d bytes", code, len(got))
	}
	if requests.Load() != before {
		t.Fatal("the target was reached with the wrong password")
	}
	waitUntil(t, server, "the server logs the refusal", func() bool {
		return strings.Contains(server.stderr.String(), "wrong password")
	})

	// Junk to every listener at once.
	var wg sync.WaitGroup
	for _, port := range []int{serverPort, socksPort} {
		for i := range 200 {
			wg.Go(func() {
				c, err := net.Dial("tcp", loopback(port))
				if err != nil {
					return
				}
				defer c.Close()
				junk := make([]byte, 1+i*13%2000)
				rand.Read(junk)
				junk[0] = byte(i)
				c.Write(junk)
				c.(*net.TCPConn).CloseWrite()
				c.SetReadDeadline(time.Now().Add(time.Minute))
				io.Copy(io.Discard, c)
			})
		}
	}
	wg.Wait()
	for _, p := range []*proc{server, client} {
		select {
		case <-p.done:
			t.Fatalf("%s exited: %v", p.name, p.err)
		default:
		}
	}
	if code, got := fetch(socksPort); code != 0 || string(got) != string(blob) {
		t.Fatalf("after junk: curl exit %d, %d bytes", code, len(got))
	}
}
