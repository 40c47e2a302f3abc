package main

// End-to-end tests of the mptp binary: it is built once, then run as a
// subprocess with the configs under testdata/, the way a user runs it.

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binary is the mptp built by TestMain.
var binary string

func TestMain(m *testing.M) {
	os.Exit(buildAndRun(m))
}

func buildAndRun(m *testing.M) int {
	dir, err := os.MkdirTemp("", "mptp-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binary = filepath.Join(dir, "mptp")
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	out, err := exec.Command(goTool, "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building mptp: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// syncBuffer collects a subprocess's output while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// proc is a running mptp.
type proc struct {
	name   string
	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan struct{} // closed when it exited; err is then set
	err    error
}

// startMptp runs mptp with args until the test ends. Its stderr goes to the
// test log if the test fails.
func startMptp(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, cmd: exec.Command(binary, args...), stderr: &syncBuffer{}, done: make(chan struct{})}
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("%s stderr:\n%s", name, p.stderr.String())
		}
	})
	return p
}

// stop asks p to stop with SIGTERM, as a service manager does, and waits
// until it exited 0. An mptp client's tunnel ends as it stops.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(t); code != 0 {
		t.Fatalf("%s: exit code after SIGTERM is %d, want 0", p.name, code)
	}
}

// wait waits for p to exit and returns its exit code.
func (p *proc) wait(t *testing.T) int {
	t.Helper()
	<-p.done
	return exitCode(t, p.err)
}

func exitCode(t *testing.T, err error) int {
	t.Helper()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitCode()
	}
	t.Fatal(err)
	return -1
}

// runMptp runs mptp to the end.
func runMptp(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := exec.Command(binary, args...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	code = exitCode(t, cmd.Run())
	return out.String(), errOut.String(), code
}

// waitUntil polls cond until it holds. It fails the test if p exits first,
// or after a minute, which only a broken build takes.
func waitUntil(t *testing.T, p *proc, what string, cond func() bool) {
	t.Helper()
	for range 3000 {
		if cond() {
			return
		}
		select {
		case <-p.done:
			t.Fatalf("%s exited (%v) before %s", p.name, p.err, what)
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("gave up waiting for %s", what)
}

func waitForListener(t *testing.T, p *proc, addr string) {
	t.Helper()
	waitUntil(t, p, addr+" accepts connections", func() bool {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
}

// freePort returns a loopback port that nothing listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func loopback(port int) string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}

// rewrite returns a testdata file's text with each old string replaced by
// its new one; each old string must occur exactly once.
func rewrite(t *testing.T, file string, pairs ...string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	for i := 0; i < len(pairs); i += 2 {
		if n := strings.Count(text, pairs[i]); n != 1 {
			t.Fatalf("testdata/%s: %q occurs %d times, want 1", file, pairs[i], n)
		}
		text = strings.Replace(text, pairs[i], pairs[i+1], 1)
	}
	return text
}

func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// clientConfig is the seed's client.json on the given ports.
func clientConfig(t *testing.T, socksPort, serverPort int) string {
	t.Helper()
	return writeFile(t, "client.json", rewrite(t, "leaf-client.json",
		`"port": 1086`, fmt.Sprintf(`"port": %d`, socksPort),
		`"port": 3001`, fmt.Sprintf(`"port": %d`, serverPort)))
}

// serverConfig is the seed's server.json on the given port, logging at
// level info.
func serverConfig(t *testing.T, port int) string {
	t.Helper()
	return writeFile(t, "server.json", rewrite(t, "leaf-server.json",
		"{\n  \"inbounds\"", "{\n  \"log\": {\"level\": \"info\"},\n  \"inbounds\"",
		`"port": 3001`, fmt.Sprintf(`"port": %d`, port)))
}

// blobServer serves size random bytes at /blob and returns their sha256.
func blobServer(t *testing.T, size int) (*httptest.Server, [32]byte) {
	t.Helper()
	blob := make([]byte, size)
	rand.Read(blob)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/blob" {
			http.NotFound(w, r)
			return
		}
		http.ServeContent(w, r, "blob", time.Time{}, bytes.NewReader(blob))
	}))
	t.Cleanup(srv.Close)
	return srv, sha256.Sum256(blob)
}

func fileSum(t *testing.T, path string) [32]byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(data)
}

// tunnelAttr marks the server's log lines about a tunnel.
const tunnelAttr = "tunnel=true"

// sessionPaths returns the bytes each path of the server's "session end"
// line with attr (such as tunnelAttr) sent, by peer, and whether there is
// such a line. slog writes them as
// paths="[127.0.0.1:1(sent=5,rcvd=0) 127.0.0.1:2(sent=7,rcvd=0)]".
func sessionPaths(log, attr string) (map[string]int64, bool) {
	list := regexp.MustCompile(`paths="?\[([^\]]*)\]"?`)
	entry := regexp.MustCompile(`^(.+)\(sent=(\d+),rcvd=\d+\)$`)
	for line := range strings.Lines(log) {
		if !strings.Contains(line, `msg="session end"`) || !strings.Contains(line, " "+attr+" ") {
			continue
		}
		sent := map[string]int64{}
		m := list.FindStringSubmatch(line)
		if m == nil {
			return sent, true
		}
		for _, f := range strings.Fields(m[1]) {
			if e := entry.FindStringSubmatch(f); e != nil {
				n, _ := strconv.ParseInt(e[2], 10, 64)
				sent[e[1]] += n
			}
		}
		return sent, true
	}
	return nil, false
}

func TestLeafConfigsWithCurl(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl is not installed")
	}
	serverPort, socksPort := freePort(t), freePort(t)
	server := startMptp(t, "server", "-c", serverConfig(t, serverPort))
	client := startMptp(t, "client", "-c", clientConfig(t, socksPort, serverPort))
	waitForListener(t, server, loopback(serverPort))
	waitForListener(t, client, loopback(socksPort))
	socks := loopback(socksPort)

	target, want := blobServer(t, 32<<20)
	out := filepath.Join(t.TempDir(), "blob")
	cmd := exec.Command(curl, "-s", "--fail", "--socks5-hostname", socks, target.URL+"/blob", "-o", out)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("curl: %v\n%s", err, msg)
	}
	if got := fileSum(t, out); got != want {
		t.Errorf("sha256 of the download is %x, want %x", got, want)
	}

	closed := freePort(t)
	var stdout bytes.Buffer
	cmd = exec.Command(curl, "-s", "--socks5-hostname", socks, "http://"+loopback(closed)+"/")
	cmd.Stdout = &stdout
	code := exitCode(t, cmd.Run())
	if code == 0 {
		t.Errorf("curl to a closed port through the proxy exited 0, want non-zero (97: the proxy refused)")
	}
	if stdout.Len() > 0 {
		t.Errorf("curl to a closed port through the proxy printed %q, want nothing", stdout.String())
	}
	t.Logf("curl to a closed port exited %d", code)

	// The tunnel carried both connections, and ends as the client stops.
	// Its bytes spread over all actors: the server's "session end" line
	// names the peer of each path the tunnel had.
	client.stop(t)
	var sent map[string]int64
	waitUntil(t, server, `the server's "session end" line of the tunnel`, func() bool {
		var ok bool
		sent, ok = sessionPaths(server.stderr.String(), tunnelAttr)
		return ok
	})
	t.Logf("bytes the tunnel's paths carried, by peer: %v", sent)
	// On loopback one path keeps up with curl, and the session keeps
	// little backlog ahead of its paths, so the earliest-completion rule
	// may give the other path only a few chunks: each must carry data (a
	// full chunk), not how much.
	busy := 0
	for _, n := range sent {
		if n >= 64<<10 {
			busy++
		}
	}
	if busy < 2 {
		t.Errorf("paths carried %v, want at least 64 KiB (a chunk) on each of two peers (actors direct1 and direct2)", sent)
	}
}

func TestCheckConfig(t *testing.T) {
	tests := []struct {
		file    string
		code    int
		stdout  []string // substrings
		stderr  []string // substrings
		warning string   // a "warning:" line contains it
		quiet   bool     // stderr must be empty
	}{
		{file: "leaf-client.json", code: 0, stdout: []string{"testdata/leaf-client.json: ok"}, quiet: true},
		{file: "leaf-server.json", code: 0, stdout: []string{"testdata/leaf-server.json: ok"},
			warning: "inbounds[0].settings.password: none, and 0.0.0.0:3001 is not a loopback address: this server is an OPEN RELAY"},
		{file: "secure-server.json", code: 0, stdout: []string{"testdata/secure-server.json: ok"}, quiet: true},
		{file: "negative-limit.json", code: 1, stderr: []string{"inbounds[0].settings.max_sessions: cannot be negative"}},
		{file: "bad-syntax.json", code: 1,
			stderr: []string{"testdata/bad-syntax.json: line 6, column 7"}},
		{file: "unknown-protocol.json", code: 1,
			stderr: []string{"outbounds[1].protocol", `unknown protocol "drect"`}},
		{file: "missing-actor.json", code: 1,
			stderr: []string{"outbounds[0].settings.actors[1]", `"direct3"`}},
		{file: "no-actors.json", code: 1,
			stderr: []string{"outbounds[0].settings.actors", "at least one actor"}},
		{file: "port-out-of-range.json", code: 1,
			stderr: []string{"inbounds[0].port", "70000", "out of range"}},
		{file: "duplicate-tag.json", code: 1,
			stderr: []string{"outbounds[2].tag", `duplicate tag "direct1"`}},
		{file: "typo-adress.json", code: 1,
			warning: `inbounds[0]: unknown key "adress"`,
			stderr:  []string{"testdata/typo-adress.json: inbounds[0].address: required"}},
		{file: "unknown-settings-key.json", code: 0,
			stdout:  []string{"testdata/unknown-settings-key.json: ok"},
			warning: `outbounds[0].settings: unknown key "bnd"`},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			stdout, stderr, code := runMptp(t, "-c", filepath.Join("testdata", tt.file), "-T")
			if code != tt.code {
				t.Errorf("exit code %d, want %d", code, tt.code)
			}
			for _, s := range tt.stdout {
				if !strings.Contains(stdout, s) {
					t.Errorf("stdout does not contain %q", s)
				}
			}
			for _, s := range tt.stderr {
				if !strings.Contains(stderr, s) {
					t.Errorf("stderr does not contain %q", s)
				}
			}
			if tt.warning != "" && !hasWarning(stderr, tt.warning) {
				t.Errorf("stderr has no warning line containing %q", tt.warning)
			}
			if tt.quiet && stderr != "" {
				t.Errorf("stderr is not empty")
			}
			if t.Failed() {
				t.Logf("stdout:\n%s\nstderr:\n%s", stdout, stderr)
			}
		})
	}
}

func hasWarning(stderr, s string) bool {
	for line := range strings.Lines(stderr) {
		if strings.HasPrefix(line, "warning: ") && strings.Contains(line, s) {
			return true
		}
	}
	return false
}

func TestDemo(t *testing.T) {
	stdout, stderr, code := runMptp(t, "demo", "-size", "8")
	if code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
	if !strings.Contains(stdout, "sha256 matches") {
		t.Errorf(`stdout does not contain "sha256 matches"`)
	}
	for _, path := range []string{"direct1", "direct2", "direct3"} {
		if !hasLineFor(stdout, path) {
			t.Errorf("stdout has no line for path %s", path)
		}
	}
	if t.Failed() {
		t.Logf("stdout:\n%s\nstderr:\n%s", stdout, stderr)
	}
}

// hasLineFor says whether a line of out starts with the word name.
func hasLineFor(out, name string) bool {
	for line := range strings.Lines(out) {
		if f := strings.Fields(line); len(f) > 0 && f[0] == name {
			return true
		}
	}
	return false
}

func TestSigterm(t *testing.T) {
	socksPort := freePort(t)
	client := startMptp(t, "client", "-c", clientConfig(t, socksPort, freePort(t)))
	waitForListener(t, client, loopback(socksPort))
	if err := client.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := client.wait(t); code != 0 {
		t.Errorf("exit code after SIGTERM is %d, want 0", code)
	}
}
