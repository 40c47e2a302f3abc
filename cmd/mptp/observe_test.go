package main

// The binary's operations: mptp status against a running mptp, and a clean
// stop on SIGTERM or SIGINT that lets live sessions finish for the drain
// time.

import (
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/mptp/mptp"
	"github.com/mptp/mptp/internal/socks5"
)

// heldTarget is a TCP server that sends each connection first random
// bytes, waits until release, then sends rest more and closes.
type heldTarget struct {
	ln          net.Listener
	first, rest int
	released    chan struct{}
	once        sync.Once
	mu          sync.Mutex
	sums        [][32]byte // of what each connection was sent
	wg          sync.WaitGroup
}

func newHeldTarget(t *testing.T, first, rest int) *heldTarget {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &heldTarget{ln: ln, first: first, rest: rest, released: make(chan struct{})}
	h.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			h.wg.Go(func() { h.serve(c) })
		}
	})
	t.Cleanup(func() {
		h.release()
		ln.Close()
		h.wg.Wait()
	})
	return h
}

func (h *heldTarget) serve(c net.Conn) {
	defer c.Close()
	sum := sha256.New()
	if send(c, sum, h.first) != nil {
		return
	}
	<-h.released
	if send(c, sum, h.rest) != nil {
		return
	}
	h.mu.Lock()
	h.sums = append(h.sums, [32]byte(sum.Sum(nil)))
	h.mu.Unlock()
}

func send(w io.Writer, sum hash.Hash, n int) error {
	b := make([]byte, n)
	rand.Read(b)
	sum.Write(b)
	_, err := w.Write(b)
	return err
}

func (h *heldTarget) release() { h.once.Do(func() { close(h.released) }) }

func (h *heldTarget) addr() string { return h.ln.Addr().String() }

// sent reports whether a connection was sent everything, with sum.
func (h *heldTarget) sent(sum [32]byte) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, s := range h.sums {
		if s == sum {
			return true
		}
	}
	return false
}

// socksConnect connects to target through the SOCKS5 inbound on port; the
// connection is closed at the end of the test.
func socksConnect(t *testing.T, port int, target string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", loopback(port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := socks5.Connect(conn, target, "", ""); err != nil {
		t.Fatal(err)
	}
	return conn
}

// withAPI adds an "api" section on port to a config's text.
func withAPI(t *testing.T, text string, port int) string {
	t.Helper()
	if !strings.HasPrefix(text, "{\n") {
		t.Fatalf("config does not start with {: %q", text[:20])
	}
	return fmt.Sprintf("{\n  \"api\": {\"address\": \"127.0.0.1\", \"port\": %d},\n", port) + text[2:]
}

func TestStatusCommand(t *testing.T) {
	serverPort, socksPort, cliAPI, srvAPI := freePort(t), freePort(t), freePort(t), freePort(t)
	srvText := withAPI(t, rewrite(t, "leaf-server.json", `"port": 3001`, fmt.Sprintf(`"port": %d`, serverPort)), srvAPI)
	cliFile := writeFile(t, "client.json", withAPI(t, rewrite(t, "leaf-client.json",
		`"port": 1086`, fmt.Sprintf(`"port": %d`, socksPort),
		`"port": 3001`, fmt.Sprintf(`"port": %d`, serverPort)), cliAPI))
	server := startMptp(t, "server", "-c", writeFile(t, "server.json", srvText))
	client := startMptp(t, "client", "-c", cliFile)
	waitForListener(t, server, loopback(serverPort))
	waitForListener(t, client, loopback(socksPort))
	waitForListener(t, client, loopback(cliAPI))

	target := newHeldTarget(t, 1<<20, 1<<20)
	conn := socksConnect(t, socksPort, target.addr())
	sum := sha256.New()
	if _, err := io.CopyN(sum, conn, 1<<20); err != nil {
		t.Fatal(err)
	}

	// While the connection lives: both paths up, and the tunnel listing
	// its stream to the target with the 1 MiB it carried so far.
	var out string
	waitUntil(t, client, "mptp status showing both paths up", func() bool {
		stdout, stderr, code := runMptp(t, "status", "-c", cliFile)
		if code != 0 {
			t.Fatalf("mptp status exited %d\n%s", code, stderr)
		}
		out = stdout
		return pathState(out, "direct1") == "up" && pathState(out, "direct2") == "up"
	})
	t.Logf("mptp status during the download:\n%s", out)
	if !strings.Contains(out, "client mptp: sessions open 1, total 1; streams open 1, total 1") {
		t.Errorf("mptp status does not show one tunnel with one stream:\n%s", out)
	}
	if f := streamRow(out, target.addr()); f == nil || f[4] != "1.0MiB" {
		t.Errorf("mptp status does not show the stream to %s with 1.0MiB received:\n%s", target.addr(), out)
	}
	stdout, _, code := runMptp(t, "status", "--api", loopback(srvAPI))
	t.Logf("mptp status of the server:\n%s", stdout)
	if code != 0 || !strings.Contains(stdout, "server mptp: sessions open 1, total 1; streams open 1, total 1") ||
		pathState(stdout, "127.0.0.1") != "up" {
		t.Errorf("mptp status of the server (exit %d):\n%s", code, stdout)
	}
	if f := streamRow(stdout, target.addr()); f == nil || f[3] != "1.0MiB" {
		t.Errorf("mptp status of the server does not show the stream to %s with 1.0MiB sent:\n%s", target.addr(), stdout)
	}

	target.release()
	if _, err := io.Copy(sum, conn); err != nil {
		t.Fatal(err)
	}
	if !target.sent([32]byte(sum.Sum(nil))) {
		t.Fatal("the download's sha256 is not that of what the target sent")
	}
	conn.Close()
	// The stream ends with the connection; the tunnel stays up for the
	// next one.
	waitUntil(t, client, "mptp status showing the stream over", func() bool {
		out, _, _ = runMptp(t, "status", "-c", cliFile)
		return strings.Contains(out, "streams open 0, total 1")
	})
	if !strings.Contains(out, "sessions open 1, total 1") || pathState(out, "direct1") != "up" ||
		streamRow(out, target.addr()) != nil {
		t.Errorf("mptp status once the connection closed: want the tunnel up with no stream\n%s", out)
	}

	// Without a running API: a message and exit code 1.
	_, stderr, code := runMptp(t, "status", "--api", loopback(freePort(t)))
	if code != 1 || !strings.Contains(stderr, `"api"`) {
		t.Errorf("mptp status with nothing listening: exit %d, stderr %q", code, stderr)
	}
}

// streamRow is the line for target in mptp status's streams table
// (SESSION STREAM TARGET SENT RECEIVED), split into fields, or nil.
func streamRow(out, target string) []string {
	for line := range strings.Lines(out) {
		if f := strings.Fields(line); len(f) == 5 && f[2] == target {
			return f
		}
	}
	return nil
}

// pathState is the STATE column of the line for path in mptp status's
// output, or "".
func pathState(out, path string) string {
	for line := range strings.Lines(out) {
		if f := strings.Fields(line); len(f) > 1 && f[0] == path {
			return f[1]
		}
	}
	return ""
}

// TestSigtermDrains stops a server with SIGTERM during a download: it
// stops accepting, the live session finishes with every byte, and the
// server exits 0.
func TestSigtermDrains(t *testing.T) {
	port := freePort(t)
	server := startMptp(t, "server", "-c", serverConfig(t, port), "-drain", "10m")
	waitForListener(t, server, loopback(port))
	target := newHeldTarget(t, 1<<20, 4<<20)
	c := &mptp.Client{Server: loopback(port), Paths: []mptp.Path{{Name: "one"}, {Name: "two"}}}
	conn, err := c.Dial("tcp", target.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	sum := sha256.New()
	if _, err := io.CopyN(sum, conn, 1<<20); err != nil {
		t.Fatal(err)
	}

	if err := server.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, server, "the server to stop accepting", func() bool {
		c, err := net.Dial("tcp", loopback(port))
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	target.release()
	if _, err := io.Copy(sum, conn); err != nil {
		t.Fatalf("the session after SIGTERM: %v", err)
	}
	if !target.sent([32]byte(sum.Sum(nil))) {
		t.Fatal("the download's sha256 is not that of what the target sent")
	}
	conn.Close()
	if code := server.wait(t); code != 0 {
		t.Errorf("exit code after SIGTERM is %d, want 0", code)
	}
	if log := server.stderr.String(); !strings.Contains(log, `msg=stopped sessions="all finished"`) {
		t.Errorf("the server's log has no line saying all sessions finished:\n%s", log)
	}
}

// TestSigintCutsAfterDrain stops a client with SIGINT while a session
// waits for its target forever: after the drain time the session is cut
// and the client exits 0.
func TestSigintCutsAfterDrain(t *testing.T) {
	var d net.Dialer
	srv := &mptp.Server{Dial: d.DialContext}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		srv.Serve(ln)
	}()
	t.Cleanup(func() {
		srv.Close()
		<-served
	})
	serverPort := ln.Addr().(*net.TCPAddr).Port
	socksPort := freePort(t)
	client := startMptp(t, "client", "-c", clientConfig(t, socksPort, serverPort), "-drain", "1s")
	waitForListener(t, client, loopback(socksPort))

	target := newHeldTarget(t, 64<<10, 64<<10)
	conn := socksConnect(t, socksPort, target.addr())
	if _, err := io.CopyN(io.Discard, conn, 64<<10); err != nil {
		t.Fatal(err)
	}
	if err := client.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code := client.wait(t); code != 0 {
		t.Errorf("exit code after SIGINT is %d, want 0", code)
	}
	// The target never sent the rest: the session was cut, not finished.
	n, _ := io.Copy(io.Discard, conn)
	if n != 0 {
		t.Errorf("got %d more bytes after the cut, want none", n)
	}
	if log := client.stderr.String(); !strings.Contains(log, `msg=stopped sessions="some cut"`) {
		t.Errorf("the client's log has no line saying sessions were cut:\n%s", log)
	}
}

// TestCheckAPIConfig checks that -T names the api section's bad fields.
func TestCheckAPIConfig(t *testing.T) {
	for api, want := range map[string]string{
		`{"address": "127.0.0.1", "port": 70000}`: "api.port: 70000 is out of range 1-65535",
		`{"port": 9090}`: "api.address: required",
		`{"address": "127.0.0.1:1", "port": 9090}`: `api.address: "127.0.0.1:1" must not include a port`,
	} {
		text := strings.Replace(rewrite(t, "leaf-server.json"),
			"{\n", "{\n  \"api\": "+api+",\n", 1)
		_, stderr, code := runMptp(t, "-c", writeFile(t, "server.json", text), "-T")
		if code != 1 || !strings.Contains(stderr, want) {
			t.Errorf("api %s: exit %d, stderr %q; want 1 and %q", api, code, stderr, want)
		}
	}
	port := freePort(t)
	stdout, stderr, code := runMptp(t, "-c", writeFile(t, "server.json", withAPI(t, rewrite(t, "leaf-server.json"), port)), "-T")
	if code != 0 || !strings.Contains(stdout, ": ok") {
		t.Errorf("a valid api section: exit %d\n%s%s", code, stdout, stderr)
	}
	// -T starts nothing: the port is still free.
	ln, err := net.Listen("tcp", loopback(port))
	if err != nil {
		t.Errorf("after -T, the api port: %v", err)
	} else {
		ln.Close()
	}
}
