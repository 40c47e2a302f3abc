// Package relaytest runs real third-party relays for tests: Dante's SOCKS5
// server (danted) and tinyproxy (HTTP CONNECT), each as a subprocess on a
// free loopback port, configured and logging in the test's temp dir.
package relaytest

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	dantedPath    = "/usr/sbin/danted"
	tinyproxyPath = "/usr/bin/tinyproxy"
)

// Relay is a running relay process.
type Relay struct {
	Addr   string // "127.0.0.1:port"
	Log    string // path of its log file
	cmd    *exec.Cmd
	exited chan struct{} // closed once cmd has been waited for
	ready  bool          // it accepted a connection
	once   sync.Once
}

// Danted starts Dante's SOCKS5 server. With user set it requires RFC 1929
// login ("socksmethod: username"), which Dante checks against the system's
// users (see SystemUser). It skips the test when danted is not installed.
func Danted(t testing.TB, user string) *Relay {
	t.Helper()
	need(t, dantedPath, "dante-server")
	method := "none"
	if user != "" {
		method = "username"
	}
	return start(t, "danted", func(dir string, port int) []string {
		conf := fmt.Sprintf("logoutput: stderr\ninternal: 127.0.0.1 port = %d\nexternal: 127.0.0.1\n", port)
		conf += "clientmethod: none\nsocksmethod: " + method + "\n"
		if os.Geteuid() == 0 {
			// Password checks read the shadow file; the rest runs as nobody.
			conf += "user.privileged: root\nuser.unprivileged: nobody\n"
		}
		// Rules come after the settings.
		conf += "client pass { from: 127.0.0.1/32 to: 0.0.0.0/0 }\n"
		conf += "socks pass { from: 127.0.0.1/32 to: 0.0.0.0/0 command: connect }\n"
		file := write(t, dir, "danted.conf", conf)
		// Foreground; one set of child processes; the pid file out of /run.
		return []string{dantedPath, "-f", file, "-N", "1", "-p", filepath.Join(dir, "danted.pid")}
	})
}

// Tinyproxy starts tinyproxy allowing CONNECT to connectPorts only, with
// Basic authentication when user is set. It skips the test when tinyproxy
// is not installed.
func Tinyproxy(t testing.TB, user, pass string, connectPorts ...int) *Relay {
	t.Helper()
	need(t, tinyproxyPath, "tinyproxy")
	return start(t, "tinyproxy", func(dir string, port int) []string {
		conf := fmt.Sprintf("Port %d\nListen 127.0.0.1\nAllow 127.0.0.1\nTimeout 600\nMaxClients 100\nLogLevel Info\n", port)
		for _, p := range connectPorts {
			conf += fmt.Sprintf("ConnectPort %d\n", p)
		}
		if user != "" {
			conf += fmt.Sprintf("BasicAuth %s %s\n", user, pass)
		}
		file := write(t, dir, "tinyproxy.conf", conf)
		return []string{tinyproxyPath, "-d", "-c", file}
	})
}

// Stop kills the relay and returns once its port refuses connections.
func (r *Relay) Stop(t testing.TB) {
	t.Helper()
	r.once.Do(func() {
		killGroup(r.cmd.Process)
		<-r.exited
		if !r.ready {
			return // the port may be someone else's
		}
		// danted's helpers may outlive the leader for a moment.
		for i := 0; ; i++ {
			c, err := net.Dial("tcp", r.Addr)
			if err != nil {
				return
			}
			c.Close()
			if i == 1000 {
				t.Errorf("%s still accepts connections after being killed", r.Addr)
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

func need(t testing.TB, path, pkg string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		t.Skipf("%s not installed (apt-get install %s): %v", path, pkg, err)
	}
}

func write(t testing.TB, dir, name, content string) string {
	t.Helper()
	file := filepath.Join(dir, name)
	if err := os.WriteFile(file, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

// start runs the command args(dir, port) makes, on a free port, until it
// accepts connections. A port taken between choosing and binding it makes
// the relay exit: it is retried on another.
func start(t testing.TB, name string, args func(dir string, port int) []string) *Relay {
	t.Helper()
	dir := t.TempDir()
	// The relays drop privileges: let them read their config.
	os.Chmod(dir, 0o755)
	var lastErr error
	for attempt := range 3 {
		port := freePort(t)
		argv := args(dir, port)
		logFile := filepath.Join(dir, fmt.Sprintf("%s-%d.log", name, attempt))
		out, err := os.Create(logFile)
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Stdout, cmd.Stderr = out, out
		cmd.SysProcAttr = sysProcAttr()
		err = cmd.Start()
		out.Close()
		if err != nil {
			t.Fatalf("start %s: %v", name, err)
		}
		r := &Relay{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Log: logFile, cmd: cmd,
			exited: make(chan struct{})}
		go func() {
			cmd.Wait()
			close(r.exited)
		}()
		t.Cleanup(func() { r.Stop(t) })
		if lastErr = r.waitReady(); lastErr == nil {
			r.ready = true
			return r
		}
		r.Stop(t)
		log, _ := os.ReadFile(logFile)
		t.Logf("%s did not start (%v); its log:\n%s", name, lastErr, log)
	}
	t.Fatalf("%s did not start: %v", name, lastErr)
	return nil
}

// waitReady waits until the relay accepts a connection or exits.
func (r *Relay) waitReady() error {
	for i := 0; i < 1000; i++ {
		c, err := net.Dial("tcp", r.Addr)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-r.exited:
			return fmt.Errorf("exited: %v", r.cmd.ProcessState)
		case <-time.After(10 * time.Millisecond):
		}
	}
	return errors.New("not listening after 10 s")
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// SystemUser creates a throwaway system user with a random password, for
// Dante's username method, which checks logins against the system's users;
// the user is deleted at the end of the test. It skips the test unless it
// runs as root with useradd at hand.
func SystemUser(t testing.TB) (user, pass string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("creating a system user for danted's username method needs root")
	}
	for _, tool := range []string{"useradd", "userdel", "chpasswd"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("no %s to create a system user for danted's username method", tool)
		}
	}
	var b [12]byte
	rand.Read(b[:])
	user, pass = "mptp-"+hex.EncodeToString(b[:4]), hex.EncodeToString(b[4:])
	// No home, no group of its own, no shell.
	if out, err := exec.Command("useradd", "-M", "-N", "-s", "/usr/sbin/nologin", user).CombinedOutput(); err != nil {
		t.Fatalf("useradd %s: %v: %s", user, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("userdel", user).CombinedOutput(); err != nil {
			t.Errorf("userdel %s: %v: %s", user, err, out)
		}
	})
	cmd := exec.Command("chpasswd")
	cmd.Stdin = strings.NewReader(user + ":" + pass + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("chpasswd: %v: %s", err, out)
	}
	return user, pass
}
