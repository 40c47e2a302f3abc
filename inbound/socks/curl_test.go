package socks_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
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
	p := startSocks(t, `{"accounts": [{"username": "user", "password": "pass"}]}`, &net.Dialer{})

	out, code := curl(t, "--proxy", "socks5h://user:pass@"+p.addr, url)
	if code != 0 || !bytes.Equal(out, body) {
		t.Fatalf("curl exit %d, got %d bytes, want %d", code, len(out), len(body))
	}
	out, code = curl(t, "--proxy", "socks5h://user:wrong@"+p.addr, url)
	if code == 0 || len(out) != 0 {
		t.Fatalf("wrong password: curl exit %d, stdout %q", code, out)
	}
}
