package socks_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"sync/atomic"
	"testing"
)

const curlPath = "/usr/bin/curl"

// curl runs curl with args and returns its stdout and exit code.
func curl(t *testing.T, args ...string) ([]byte, int) {
	t.Helper()
	if _, err := exec.LookPath(curlPath); err != nil {
		t.Skip("no curl")
	}
	// -q skips ~/.curlrc; the empty environment keeps *_proxy and
	// NO_PROXY out of the test.
	cmd := exec.Command(curlPath, append([]string{"-q", "-s", "--max-time", "60"}, args...)...)
	cmd.Env = []string{}
	out, err := cmd.Output()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return out, exit.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return out, 0
}

func fileServer(t *testing.T, body []byte) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/file"
}

func TestCurl(t *testing.T) {
	noLeaks(t)
	body := random(t, 1<<20)
	url := fileServer(t, body)
	p := startSocks(t, "", &net.Dialer{})

	out, code := curl(t, "--socks5-hostname", p.addr, url)
	if code != 0 || sha256.Sum256(out) != sha256.Sum256(body) {
		t.Fatalf("curl exit %d, got %d bytes, want %d", code, len(out), len(body))
	}

	out, code = curl(t, "--socks5-hostname", p.addr, "http://"+closedPort(t)+"/file")
	if code == 0 || len(out) != 0 {
		t.Fatalf("refused target: curl exit %d, stdout %q", code, out)
	}
}

func TestCurlUserPass(t *testing.T) {
	noLeaks(t)
	body := random(t, 1<<20)
	url := fileServer(t, body)
	var dials atomic.Int64
	var d net.Dialer
	p := startSocks(t, `{"accounts": [{"username": "user", "password": "pass"}]}`,
		dialFunc(func(ctx context.Context, network, address string) (net.Conn, error) {
			dials.Add(1)
			return d.DialContext(ctx, network, address)
		}))

	for _, args := range [][]string{
		{"--proxy", "socks5h://user:pass@" + p.addr},
		{"--socks5-hostname", p.addr, "--proxy-user", "user:pass"},
	} {
		out, code := curl(t, append(args, url)...)
		if code != 0 || !bytes.Equal(out, body) {
			t.Fatalf("%v: curl exit %d, got %d bytes, want %d", args, code, len(out), len(body))
		}
	}
	before := dials.Load()
	for _, args := range [][]string{
		{"--proxy", "socks5h://user:wrong@" + p.addr},
		{"--socks5-hostname", p.addr, "--proxy-user", "nobody:pass"},
		{"--socks5-hostname", p.addr}, // no credentials at all
	} {
		out, code := curl(t, append(args, url)...)
		// 97: curl's "proxy handshake error"; 7 from older versions.
		if code == 0 || len(out) != 0 {
			t.Fatalf("%v: curl exit %d, stdout %q", args, code, out)
		}
		t.Logf("%v: curl exit %d", args, code)
	}
	if n := dials.Load() - before; n != 0 {
		t.Fatalf("%d dials after failed logins", n)
	}
	if r := p.logs.record(t, "socks auth failed"); r == nil || r["user"] == nil {
		t.Fatalf("log %v", r)
	}
}
