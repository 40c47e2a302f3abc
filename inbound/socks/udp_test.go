package socks_test

import (
	"bytes"
	"crypto/sha256"
	"log/slog"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mptp/mptp/internal/socks5"
	"github.com/mptp/mptp/outbound"
	_ "github.com/mptp/mptp/outbound/direct"
	"github.com/mptp/mptp/relaytest"
)

// direct is the real direct outbound, which carries UDP too.
func direct(t *testing.T) outbound.Outbound {
	t.Helper()
	factory, _ := outbound.Lookup("direct")
	ob, err := factory(&outbound.Context{Tag: "direct", Path: "outbounds[0]", Logger: slog.New(slog.DiscardHandler)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return ob
}

// associate opens an association and returns its control connection and
// the relay's UDP address.
func associate(t *testing.T, p *proxy, from string) (*net.TCPConn, *net.UDPAddr) {
	t.Helper()
	c := dialProxy(t, p)
	greet(t, c, 0)
	rep, bound := request(t, c, socks5.CmdUDPAssociate, from)
	if rep != 0 {
		t.Fatalf("UDP ASSOCIATE: reply 0x%02x", rep)
	}
	ua, err := net.ResolveUDPAddr("udp", bound)
	if err != nil {
		t.Fatal(err)
	}
	if !ua.IP.Equal(net.IPv4(127, 0, 0, 1)) {
		t.Fatalf("bound to %s, not to the address the control connection came in on", ua)
	}
	return c, ua
}

// roundTrip sends payload to target through relay from uc and checks the
// reply: same bytes, from target.
func roundTrip(t *testing.T, uc *net.UDPConn, relay *net.UDPAddr, target string, payload []byte) {
	t.Helper()
	msg, err := socks5.AppendUDP(nil, target, payload)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := uc.WriteToUDP(msg, relay); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 65536)
	uc.SetReadDeadline(time.Now().Add(20 * time.Second))
	n, _, err := uc.ReadFromUDP(buf)
	if err != nil {
		t.Fatalf("%d bytes to %s: %v", len(payload), target, err)
	}
	frag, from, got, err := socks5.ParseUDP(buf[:n])
	if err != nil || frag != 0 {
		t.Fatalf("reply header: frag %d, %v", frag, err)
	}
	if sha256.Sum256(got) != sha256.Sum256(payload) {
		t.Fatalf("%d bytes sent, %d different ones came back", len(payload), len(got))
	}
	if ap, err := net.ResolveUDPAddr("udp", from); err != nil || !ap.IP.IsLoopback() || strings.Contains(target, ":") && ap.Port != portOf(t, target) {
		t.Fatalf("reply from %q", from)
	}
}

func portOf(t *testing.T, hostport string) int {
	_, p, err := net.SplitHostPort(hostport)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(p)
	return n
}

func TestUDPAssociate(t *testing.T) {
	noLeaks(t)
	echo := relaytest.UDPEcho(t, net.IPv4(127, 0, 0, 1))
	p := startSocks(t, "", direct(t))
	c, relay := associate(t, p, "0.0.0.0:0")
	uc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	for i := range 2000 {
		roundTrip(t, uc, relay, echo.String(), relaytest.Datagram(i, relaytest.DatagramSize(i)))
	}
	// A host name is resolved on the way out.
	roundTrip(t, uc, relay, net.JoinHostPort("localhost", strconv.Itoa(echo.Port)), []byte("by name"))

	// Datagrams from another port, and fragments, are dropped; the
	// association carries on.
	other, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	msg, _ := socks5.AppendUDP(nil, echo.String(), []byte("stranger"))
	other.WriteToUDP(msg, relay)
	frag := append([]byte{}, msg...)
	frag[2] = 1
	uc.WriteToUDP(frag, relay)
	roundTrip(t, uc, relay, echo.String(), []byte("still here"))

	// Closing the control connection ends the association.
	c.Close()
	waitLog(t, p, "socks udp association end", func(r map[string]any) {
		if r["dropped"] != float64(2) {
			t.Errorf("dropped %v, want 2 (the stranger and the fragment)", r["dropped"])
		}
	})
}

// The request names the port the client will send from: only that port
// is accepted, even when another sends first.
func TestUDPAssociateNamedPort(t *testing.T) {
	noLeaks(t)
	echo := relaytest.UDPEcho(t, net.IPv4(127, 0, 0, 1))
	p := startSocks(t, "", direct(t))
	uc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	other, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	c, relay := associate(t, p, uc.LocalAddr().String())
	msg, _ := socks5.AppendUDP(nil, echo.String(), []byte("first, but not named"))
	other.WriteToUDP(msg, relay)
	roundTrip(t, uc, relay, echo.String(), []byte("named"))
	c.Close()
	waitLog(t, p, "socks udp association end", func(r map[string]any) {
		if r["dropped"] != float64(1) {
			t.Errorf("dropped %v, want 1", r["dropped"])
		}
	})
}

func TestUDPAssociateIdleAndLimits(t *testing.T) {
	noLeaks(t)
	p := startSocks(t, `{"udp_timeout": 0.2, "udp_max_per_client": 1}`, direct(t))
	c, _ := associate(t, p, "0.0.0.0:0")
	// One association per client IP: the second is refused.
	c2 := dialProxy(t, p)
	greet(t, c2, 0)
	if rep, _ := request(t, c2, socks5.CmdUDPAssociate, "0.0.0.0:0"); rep != socks5.RepGeneralFailure {
		t.Fatalf("second association: reply 0x%02x", rep)
	}
	expectClosed(t, c2)
	// Idle: the relay closes the control connection.
	expectClosed(t, c)
	waitLog(t, p, "socks udp association end", nil)
	// Its place is free again.
	c3, _ := associate(t, p, "0.0.0.0:0")
	c3.Close()
}

func TestUDPAssociateOff(t *testing.T) {
	noLeaks(t)
	p := startSocks(t, `{"udp": false}`, direct(t))
	c := dialProxy(t, p)
	greet(t, c, 0)
	if rep, _ := request(t, c, socks5.CmdUDPAssociate, "0.0.0.0:0"); rep != socks5.RepCmdUnsupported {
		t.Fatalf("reply 0x%02x", rep)
	}
	expectClosed(t, c)
}

// Debian's python3-socks (PySocks), a real SOCKS5 UDP client, echoes
// datagrams of 1 byte to 8 KiB through the inbound.
func TestUDPPySocks(t *testing.T) {
	noLeaks(t)
	py := "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import socks").Run(); err != nil {
		t.Skip("needs Debian's python3-socks (apt-get install python3-socks)")
	}
	echo := relaytest.UDPEcho(t, net.IPv4(127, 0, 0, 1))
	p := startSocks(t, "", direct(t))
	host, port, _ := net.SplitHostPort(p.addr)
	out, err := exec.Command(py, "testdata/udp_echo.py", host, port, echo.IP.String(), strconv.Itoa(echo.Port), "1000").CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	// The script prints a SHA-256 over every echo it got; the same over
	// what it sent must match.
	if want := relaytest.DatagramsSum(1000); !bytes.Contains(out, []byte(want)) {
		t.Fatalf("echoes differ: script said %q, want %s", out, want)
	}
}

// waitLog waits for the inbound to log msg and checks the record.
func waitLog(t *testing.T, p *proxy, msg string, check func(map[string]any)) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if r := p.logs.record(t, msg); r != nil {
			if check != nil {
				check(r)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the log", msg)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// IPv6 targets, by address, through an association.
func TestUDPAssociateIPv6Target(t *testing.T) {
	noLeaks(t)
	echo := relaytest.UDPEcho(t, net.IPv6loopback)
	p := startSocks(t, "", direct(t))
	c, relay := associate(t, p, "0.0.0.0:0")
	defer c.Close()
	uc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	roundTrip(t, uc, relay, echo.String(), relaytest.Datagram(1, 1200))
}
