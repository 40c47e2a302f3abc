package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/mptp/mptp/internal/socks5"
	"github.com/mptp/mptp/relaytest"
)

// UDP end to end, through the binaries run with the seed's configs: the
// client's socks inbound takes UDP ASSOCIATE, the mptp outbound carries
// the datagrams to the server (v2 DATAGRAM frames, or v1 as Leaf frames
// them), and the server's direct outbound sends them on.

// dnsName and dnsAnswer are what the test's DNS responder knows.
const dnsName = "svc.mptp.test."

var dnsAnswer = [4]byte{198, 18, 0, 53}

// dnsResponder answers A queries for dnsName on a loopback UDP port.
func dnsResponder(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFromUDP(buf)
			if err != nil {
				return
			}
			var p dnsmessage.Parser
			h, err := p.Start(buf[:n])
			if err != nil {
				continue
			}
			q, err := p.Question()
			if err != nil {
				continue
			}
			reply := dnsmessage.Message{
				Header:    dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true},
				Questions: []dnsmessage.Question{q},
			}
			if q.Name.String() == dnsName && q.Type == dnsmessage.TypeA {
				reply.Answers = []dnsmessage.Resource{{
					Header: dnsmessage.ResourceHeader{Name: q.Name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET, TTL: 60},
					Body:   &dnsmessage.AResource{A: dnsAnswer},
				}}
			} else {
				reply.Header.RCode = dnsmessage.RCodeNameError
			}
			if b, err := reply.Pack(); err == nil {
				pc.WriteToUDP(b, from)
			}
		}
	}()
	t.Cleanup(func() { pc.Close(); <-done })
	return pc.LocalAddr().String()
}

// socksUDP is a SOCKS5 UDP association seen as a connected datagram
// socket to one target: each Write is one datagram, each Read one reply.
type socksUDP struct {
	ctrl   net.Conn
	uc     *net.UDPConn
	relay  *net.UDPAddr
	target string
}

func associateVia(t *testing.T, socks, target string) *socksUDP {
	t.Helper()
	ctrl, err := net.Dial("tcp", socks)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ctrl.Close() })
	ctrl.SetDeadline(time.Now().Add(20 * time.Second))
	ctrl.Write([]byte{5, 1, 0})
	var m [2]byte
	if _, err := ctrl.Read(m[:]); err != nil || m != [2]byte{5, 0} {
		t.Fatalf("greeting: % x %v", m, err)
	}
	ctrl.Write([]byte{5, socks5.CmdUDPAssociate, 0, 1, 0, 0, 0, 0, 0, 0})
	var rep [10]byte
	if _, err := ctrl.Read(rep[:]); err != nil || rep[1] != 0 || rep[3] != 1 {
		t.Fatalf("UDP ASSOCIATE reply % x %v", rep, err)
	}
	ctrl.SetDeadline(time.Time{})
	relay := net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.AddrFrom4([4]byte(rep[4:8])), uint16(rep[8])<<8|uint16(rep[9])))
	uc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { uc.Close() })
	return &socksUDP{ctrl: ctrl, uc: uc, relay: relay, target: target}
}

func (s *socksUDP) Write(b []byte) (int, error) {
	msg, err := socks5.AppendUDP(nil, s.target, b)
	if err != nil {
		return 0, err
	}
	if _, err := s.uc.WriteToUDP(msg, s.relay); err != nil {
		return 0, err
	}
	return len(b), nil
}

func (s *socksUDP) Read(b []byte) (int, error) {
	buf := make([]byte, 65536)
	for {
		n, _, err := s.uc.ReadFromUDP(buf)
		if err != nil {
			return 0, err
		}
		_, from, payload, err := socks5.ParseUDP(buf[:n])
		if err != nil || from != s.target {
			continue
		}
		return copy(b, payload), nil
	}
}

// ReadFrom and WriteTo make it a net.PacketConn, which is how Go's
// resolver knows to frame DNS as UDP rather than TCP.
func (s *socksUDP) ReadFrom(b []byte) (int, net.Addr, error) {
	n, err := s.Read(b)
	return n, s.relay, err
}

func (s *socksUDP) WriteTo(b []byte, _ net.Addr) (int, error) { return s.Write(b) }

func (s *socksUDP) Close() error                       { return nil } // the test's cleanup closes
func (s *socksUDP) LocalAddr() net.Addr                { return s.uc.LocalAddr() }
func (s *socksUDP) RemoteAddr() net.Addr               { return s.relay }
func (s *socksUDP) SetDeadline(t time.Time) error      { return s.uc.SetDeadline(t) }
func (s *socksUDP) SetReadDeadline(t time.Time) error  { return s.uc.SetReadDeadline(t) }
func (s *socksUDP) SetWriteDeadline(t time.Time) error { return s.uc.SetWriteDeadline(t) }

func TestUDPThroughTunnel(t *testing.T) {
	for _, version := range []int{2, 1} {
		t.Run(fmt.Sprint("v", version), func(t *testing.T) {
			serverPort, socksPort := freePort(t), freePort(t)
			server := startMptp(t, "server", "-c", serverConfig(t, serverPort))
			cfg := writeFile(t, "client.json", rewrite(t, "leaf-client.json",
				`"port": 1086`, fmt.Sprintf(`"port": %d`, socksPort),
				`"port": 3001`, fmt.Sprintf(`"port": %d, "version": %d`, serverPort, version)))
			client := startMptp(t, "client", "-c", cfg)
			waitForListener(t, server, loopback(serverPort))
			waitForListener(t, client, loopback(socksPort))
			socks := loopback(socksPort)

			// Go's own DNS client asks the test's responder through the
			// tunnel.
			dns := dnsResponder(t)
			r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
				return associateVia(t, socks, dns), nil
			}}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			addrs, err := r.LookupNetIP(ctx, "ip4", strings.TrimSuffix(dnsName, "."))
			if err != nil || len(addrs) != 1 || addrs[0] != netip.AddrFrom4(dnsAnswer) {
				t.Fatalf("DNS through the tunnel: %v %v", addrs, err)
			}

			// PySocks echoes datagrams of 1 byte to 8 KiB.
			py := "/usr/bin/python3"
			if err := exec.Command(py, "-c", "import socks").Run(); err != nil {
				t.Skip("needs Debian's python3-socks for the echo part")
			}
			echo := relaytest.UDPEcho(t, net.IPv4(127, 0, 0, 1)).String()
			host, port, _ := net.SplitHostPort(socks)
			ehost, eport, _ := net.SplitHostPort(echo)
			const n = 500
			out, err := exec.Command(py, "../../inbound/socks/testdata/udp_echo.py", host, port, ehost, eport, strconv.Itoa(n)).CombinedOutput()
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if want := relaytest.DatagramsSum(n); !bytes.Contains(out, []byte(want)) {
				t.Fatalf("echoes differ: script said %q, want %s", out, want)
			}
			// The server saw the associations the way this version carries
			// them: v2 as streams in the tunnel, v1 as sessions.
			waitUntil(t, server, "a UDP association on the server", func() bool {
				for line := range strings.Lines(server.stderr.String()) {
					if !strings.Contains(line, "udp=true") {
						continue
					}
					if (version == 2 && strings.Contains(line, " "+tunnelAttr+" ")) ||
						(version == 1 && strings.Contains(line, `msg="session start"`) && strings.Contains(line, "version=1")) {
						return true
					}
				}
				return false
			})
		})
	}
}
