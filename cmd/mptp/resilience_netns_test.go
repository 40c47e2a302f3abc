//go:build linux

package main

// Resilience on the multihoming lab (multihome_test.go): the mptp binary,
// a real web target and curl, two network namespaces joined by two shaped
// links, and faults made the way networks make them: a link that stops
// carrying packets (tc), a route that moves to another link while the
// address the old one gave goes away (ip route, ip rule, ip addr). Each
// case checks the download's SHA-256; none asserts on timing.

import (
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const resBlobSize = 24 << 20

// resLab is a lab with the web target, the mptp server and an mptp client
// (actors given as outbounds) running, and a blob to download.
type resLab struct {
	cli, srv       string
	dir            string
	want           [32]byte
	server, client *proc
}

func resNeedLab(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: it builds network namespaces, veth links and tc qdiscs")
	}
	for _, tool := range []string{"ip", "tc", "curl", "python3", "ss"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (iproute2, curl, python3 for the web target): %v", tool, err)
		}
	}
}

// startResLab builds the lab named name, lets setup change cli's routing,
// and starts the processes. actors are the client's actor outbounds, in
// config syntax, tagged; tags lists their tags.
func startResLab(t *testing.T, name string, setup func(cli string), tags []string, actors ...string) *resLab {
	t.Helper()
	l := &resLab{dir: t.TempDir()}
	l.cli, l.srv = newLab(t, name)
	if setup != nil {
		setup(l.cli)
	}
	blob := make([]byte, resBlobSize)
	rand.Read(blob)
	l.want = sha256.Sum256(blob)
	if err := os.WriteFile(filepath.Join(l.dir, "blob"), blob, 0o644); err != nil {
		t.Fatal(err)
	}
	web := startInNetns(t, "web target", l.srv, "python3", "-m", "http.server",
		"--bind", serviceAddr, strconv.Itoa(webPort), "--directory", l.dir)
	l.server = startInNetns(t, "mptp server", l.srv, binary, "-c", writeFile(t, "server.json", fmt.Sprintf(`{
  "log": {"level": "info"},
  "inbounds": [{"protocol": "mptp", "address": %q, "port": %d}],
  "outbounds": [{"protocol": "direct"}]
}`, serviceAddr, mptpPort)))
	quoted := make([]string, len(tags))
	for i, tag := range tags {
		quoted[i] = strconv.Quote(tag)
	}
	l.client = startInNetns(t, "mptp client", l.cli, binary, "-c", writeFile(t, "client.json", fmt.Sprintf(`{
  "log": {"level": "info"},
  "inbounds": [{"protocol": "socks", "address": "127.0.0.1", "port": %d}],
  "outbounds": [
    {"protocol": "mptp", "settings": {"actors": [%s], "address": %q, "port": %d}},
    %s
  ]
}`, socksPort, strings.Join(quoted, ", "), serviceAddr, mptpPort, strings.Join(actors, ",\n    "))))
	waitForListenerIn(t, web, l.srv, webPort)
	waitForListenerIn(t, l.server, l.srv, mptpPort)
	waitForListenerIn(t, l.client, l.cli, socksPort)
	return l
}

// download fetches the blob with curl through the client; once got bytes
// have arrived it calls fault, then it waits for curl and checks the sum.
func (l *resLab) download(t *testing.T, got int64, fault func()) {
	t.Helper()
	out := filepath.Join(l.dir, "download")
	// --max-time only keeps a stuck download from hanging the test run.
	curl := startInNetns(t, "curl", l.cli, "curl", "-s", "-S", "--fail", "--max-time", "60",
		"--socks5-hostname", "127.0.0.1:"+strconv.Itoa(socksPort),
		fmt.Sprintf("http://%s:%d/blob", serviceAddr, webPort), "-o", out)
	waitUntil(t, curl, fmt.Sprintf("%d bytes of the download", got), func() bool {
		fi, err := os.Stat(out)
		return err == nil && fi.Size() >= got
	})
	fault()
	<-curl.done
	if curl.err != nil {
		t.Fatalf("curl: %v\n%s", curl.err, curl.stderr.String())
	}
	if sum := fileSum(t, out); sum != l.want {
		t.Fatalf("sha256 of the download is %x, want %x", sum, l.want)
	}
}

// A link goes silent mid-download: both its ends' qdiscs let nothing
// through any more (tbf at 8 bit/s with a 1 kbit bucket), as when a radio
// link fades with no error. The session finds the path stale and carries
// the rest over the other link.
func TestResilienceNetnsSilentLink(t *testing.T) {
	resNeedLab(t)
	settings := func(l labLink) string { return fmt.Sprintf(`{"bind": %q}`, l.cliAddr) }
	l := startResLab(t, "silent", nil, []string{"linkA", "linkB"},
		fmt.Sprintf(`{"protocol": "direct", "tag": "linkA", "settings": %s}`, settings(labLinks[0])),
		fmt.Sprintf(`{"protocol": "direct", "tag": "linkB", "settings": %s}`, settings(labLinks[1])))
	dev := labLinks[0].dev
	before := rxBytes(t, l.cli)
	var atFault []int64
	l.download(t, resBlobSize/4, func() {
		atFault = rxBytes(t, l.cli)
		trickle := []string{"rate", "8bit", "burst", "1kbit", "latency", "1ms"}
		nsExec(t, l.srv, append([]string{"tc", "qdisc", "change", "dev", dev, "root", "tbf"}, trickle...)...)
		nsExec(t, l.cli, append([]string{"tc", "qdisc", "add", "dev", dev, "root", "tbf"}, trickle...)...)
	})
	after := rxBytes(t, l.cli)
	for i, ll := range labLinks {
		t.Logf("%s received %d bytes before the fault and %d after", ll.dev, atFault[i]-before[i], after[i]-atFault[i])
	}
	// The fault was seen: some end found the path stale.
	logs := l.server.stderr.String() + l.client.stderr.String()
	if !strings.Contains(logs, `msg="path stale"`) {
		t.Errorf("no path was found stale after %s went silent\nserver:\n%s\nclient:\n%s", dev, l.server.stderr.String(), l.client.stderr.String())
	}
}

// The client's actor binds nothing: its sub-connection follows cli's main
// route to the server, over link A. Mid-download the route moves to link B
// and link A's address is deleted, as when a laptop leaves one network for
// another. The old sub-connection can never deliver again; the session
// carries on over a new one dialed over the new route.
func TestResilienceNetnsRouteMoves(t *testing.T) {
	resNeedLab(t)
	a, b := labLinks[0], labLinks[1]
	l := startResLab(t, "route", func(cli string) {
		nsExec(t, cli, "ip", "route", "add", serviceAddr, "via", a.srvAddr, "dev", a.dev)
	}, []string{"wan"}, `{"protocol": "direct", "tag": "wan"}`)
	l.download(t, resBlobSize/4, func() {
		nsExec(t, l.cli, "ip", "route", "replace", serviceAddr, "via", b.srvAddr, "dev", b.dev)
		nsExec(t, l.cli, "ip", "rule", "del", "from", a.cliAddr, "table", strconv.Itoa(a.table))
		nsExec(t, l.cli, "ip", "rule", "del", "oif", a.dev, "table", strconv.Itoa(a.table))
		nsExec(t, l.cli, "ip", "addr", "del", a.cliAddr+"/24", "dev", a.dev)
	})
	// The tunnel that carried the download ends as the client stops; the
	// server's session had paths from both of cli's addresses.
	l.client.stop(t)
	var sent map[string]int64
	waitUntil(t, l.server, `the server's "session end" line of the tunnel`, func() bool {
		var ok bool
		sent, ok = sessionPaths(l.server.stderr.String(), tunnelAttr)
		return ok
	})
	t.Logf("server's paths (peer: bytes sent): %v", sent)
	for _, addr := range []string{a.cliAddr, b.cliAddr} {
		found := false
		for peer := range sent {
			found = found || strings.HasPrefix(peer, addr+":")
		}
		if !found {
			t.Errorf("the tunnel had no path from %s: %v\nclient log:\n%s", addr, sent, l.client.stderr.String())
		}
	}
}
