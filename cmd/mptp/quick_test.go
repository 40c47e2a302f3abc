package main

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestPathSpecs(t *testing.T) {
	for _, tc := range []struct{ spec, want string }{
		{"direct", `{"protocol":"direct","settings":{},"tag":"p"}`},
		{"direct?bind=198.18.2.1&name=lte", `{"protocol":"direct","settings":{"bind":"198.18.2.1"},"tag":"lte"}`},
		{"direct?interface=wlan0&mptcp=1", `{"protocol":"direct","settings":{"interface":"wlan0","mptcp":true},"tag":"p"}`},
		{"socks5://u:p@198.18.0.9:1080", `{"protocol":"socks","settings":{"address":"198.18.0.9","password":"p","port":1080,"username":"u"},"tag":"p"}`},
		{"http://198.18.0.9:8888?bind=198.18.1.1", `{"protocol":"http","settings":{"address":"198.18.0.9","bind":"198.18.1.1","port":8888},"tag":"p"}`},
	} {
		ob, err := pathOutbound(tc.spec, "p")
		if err != nil {
			t.Fatalf("%s: %v", tc.spec, err)
		}
		got, _ := json.Marshal(ob)
		if string(got) != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.spec, got, tc.want)
		}
	}
	for _, bad := range []string{"ftp://x:1", "socks5://relay", "direct?colour=red", "http://relay:99999", "direct?mptcp=maybe"} {
		if _, err := pathOutbound(bad, "p"); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
}

// The printed config of a quick command line is a valid config file.
func TestQuickPrintIsAConfig(t *testing.T) {
	for _, args := range [][]string{
		{"client", "--server", "198.18.0.1:3001", "--path", "direct", "--path", "direct?bind=198.18.2.1", "--print"},
		{"server", "--listen", "127.0.0.1:3001", "--print"},
	} {
		out, stderr, code := runMptp(t, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, stderr)
		}
		file := writeFile(t, "c.json", out)
		if _, stderr, code := runMptp(t, "-c", file, "-T"); code != 0 {
			t.Fatalf("%v: printed config fails -T: %s\n%s", args, stderr, out)
		}
	}
	if _, stderr, code := runMptp(t, "client", "--path", "direct"); code == 0 || !strings.Contains(stderr, "--server is required") {
		t.Fatalf("client without --server: exit %d, %s", code, stderr)
	}
}

// mptp server and mptp client from flags alone carry a download.
func TestQuickCommandsWithCurl(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl is not installed")
	}
	serverPort, socksPort := freePort(t), freePort(t)
	server := startMptp(t, "server", "server", "--listen", loopback(serverPort))
	client := startMptp(t, "client", "client", "--socks", loopback(socksPort), "--server", loopback(serverPort),
		"--path", "direct", "--path", "direct?bind=127.0.0.1&name=second")
	waitForListener(t, server, loopback(serverPort))
	waitForListener(t, client, loopback(socksPort))
	target, want := blobServer(t, 8<<20)
	out := filepath.Join(t.TempDir(), "blob")
	if msg, err := exec.Command(curl, "-s", "--fail", "--socks5-hostname", loopback(socksPort), target.URL+"/blob", "-o", out).CombinedOutput(); err != nil {
		t.Fatalf("curl: %v\n%s", err, msg)
	}
	if fileSum(t, out) != want {
		t.Fatal("bytes differ")
	}
}

// --password (or $MPTP_PASSWORD) and --deny-private reach the config.
func TestQuickPassword(t *testing.T) {
	t.Setenv("MPTP_PASSWORD", "from the environment")
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"server", "--listen", "127.0.0.1:3001", "--password", "pw", "--deny-private", "--print"},
			[]string{`"password": "pw"`, `"deny_private": true`}},
		{[]string{"server", "--listen", "127.0.0.1:3001", "--print"}, []string{`"password": "from the environment"`}},
		{[]string{"client", "--server", "198.18.0.1:3001", "--path", "direct", "--print"}, []string{`"password": "from the environment"`}},
	} {
		out, stderr, code := runMptp(t, tc.args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", tc.args, code, stderr)
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("%v: no %s in\n%s", tc.args, w, out)
			}
		}
		if _, stderr, code := runMptp(t, "-c", writeFile(t, "c.json", out), "-T"); code != 0 || stderr != "" {
			t.Fatalf("%v: -T exit %d: %s", tc.args, code, stderr)
		}
	}
}
