package mptp

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/mptp/mptp/internal/failure"
	"github.com/mptp/mptp/relaytest"
)

// echoDatagrams sends count datagrams of sizes 1 to 8 KiB to echo through
// pc, one at a time, and checks that each comes back whole, from echo.
func echoDatagrams(t *testing.T, pc net.PacketConn, echo net.Addr, count int) {
	t.Helper()
	buf := make([]byte, 65536)
	for i := range count {
		want := relaytest.Datagram(i, relaytest.DatagramSize(i))
		if _, err := pc.WriteTo(want, echo); err != nil {
			t.Fatalf("datagram %d: %v", i, err)
		}
		pc.SetReadDeadline(time.Now().Add(20 * time.Second))
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			t.Fatalf("datagram %d (%d bytes): %v", i, len(want), err)
		}
		if sha256.Sum256(buf[:n]) != sha256.Sum256(want) {
			t.Fatalf("datagram %d: %d bytes came back for %d sent, or different ones", i, n, len(want))
		}
		if from.String() != echo.String() {
			t.Fatalf("datagram %d came from %s, want %s", i, from, echo)
		}
	}
}

func TestUDPEcho(t *testing.T) {
	echo := relaytest.UDPEcho(t, net.IPv4(127, 0, 0, 1))
	addr := startServer(t, &Server{})
	secureAddr := startServer(t, &Server{Options: Options{Password: testPassword}})
	for _, tc := range []struct {
		name    string
		version int
		copies  bool
		secure  bool
	}{{"v2", 2, false, false}, {"v2-copies", 2, true, false}, {"v1", 1, false, false}, {"v2-secure", 2, true, true}} {
		t.Run(tc.name, func(t *testing.T) {
			c := client(t, addr)
			if tc.secure {
				c = client(t, secureAddr)
				c.Password = testPassword
			}
			c.Version, c.DatagramCopies = tc.version, tc.copies
			pc, err := c.ListenPacket(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			defer pc.Close()
			const n = 2000
			echoDatagrams(t, pc, echo, n)
			if tc.version == 1 {
				return
			}
			var sent, rcvd uint64
			for _, ps := range c.Stats() {
				sent, rcvd = sent+ps.DatagramsSent, rcvd+ps.DatagramsReceived
			}
			// Copies go out while two paths are up: all but the first few.
			if !tc.copies && (sent != n || rcvd != n) || tc.copies && (sent < n*3/2 || rcvd < n*3/2) {
				t.Fatalf("copies=%v: %d frames sent, %d received for %d datagrams each way", tc.copies, sent, rcvd, n)
			}
		})
	}
}

// A host name is resolved by the server; replies carry the real source.
func TestUDPHostName(t *testing.T) {
	echo := relaytest.UDPEcho(t, net.IPv4(127, 0, 0, 1))
	addr := startServer(t, &Server{})
	pc, err := client(t, addr).ListenPacket(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	port := strconv.Itoa(echo.Port)
	if _, err := pc.WriteTo([]byte("by name"), Addr(net.JoinHostPort("localhost", port))); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	pc.SetReadDeadline(time.Now().Add(20 * time.Second))
	n, from, err := pc.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "by name" {
		t.Fatalf("got %q %v", buf[:n], err)
	}
	if ua, ok := from.(*net.UDPAddr); !ok || !ua.IP.IsLoopback() || ua.Port != echo.Port {
		t.Fatalf("reply from %v (%T)", from, from)
	}
}

func TestUDPManyAssociations(t *testing.T) {
	echo := relaytest.UDPEcho(t, net.IPv4(127, 0, 0, 1))
	addr := startServer(t, &Server{})
	c := client(t, addr)
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			pc, err := c.ListenPacket(context.Background())
			if err != nil {
				t.Error(err)
				return
			}
			defer pc.Close()
			echoDatagrams(t, pc, echo, 100)
		})
	}
	wg.Wait()
}

// Closing either end ends the association on both: the server forgets it
// and frees its socket and its place in the client's quota.
func TestUDPAssociationEnds(t *testing.T) {
	echo := relaytest.UDPEcho(t, net.IPv4(127, 0, 0, 1))
	srv := &Server{UDPOptions: UDPOptions{MaxUDPPerClient: 1}}
	addr := startServer(t, srv)
	c := client(t, addr)
	for i := range 3 {
		pc, err := c.ListenPacket(context.Background())
		if err != nil {
			t.Fatalf("association %d: %v", i, err)
		}
		echoDatagrams(t, pc, echo, 3)
		// The quota is one: a second association is refused while this
		// one lives.
		_, err = c.ListenPacket(context.Background())
		var fe *failure.Error
		if !errors.As(err, &fe) || fe.Reason != failure.General || fe.Msg != "limit=udp_max_per_client" {
			t.Fatalf("second association: got %v, want a refusal naming the limit", err)
		}
		pc.Close()
		resWaitFor(t, "the server to end the association", func() bool {
			srv.mu.Lock()
			defer srv.mu.Unlock()
			return len(srv.udpByIP) == 0 && srv.Status().UDPAssociations == 0
		})
	}
}

// An association that carries nothing is ended by the server; the client
// reads EOF.
func TestUDPIdle(t *testing.T) {
	for _, version := range []int{2, 1} {
		t.Run(fmt.Sprint("v", version), func(t *testing.T) {
			echo := relaytest.UDPEcho(t, net.IPv4(127, 0, 0, 1))
			addr := startServer(t, &Server{UDPOptions: UDPOptions{UDPIdle: 300 * time.Millisecond}})
			c := client(t, addr)
			c.Version = version
			pc, err := c.ListenPacket(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			defer pc.Close()
			echoDatagrams(t, pc, echo, 1)
			pc.SetReadDeadline(time.Now().Add(30 * time.Second))
			if _, _, err := pc.ReadFrom(make([]byte, 10)); err != io.EOF {
				t.Fatalf("got %v, want EOF", err)
			}
		})
	}
}

func TestUDPTooLarge(t *testing.T) {
	echo := relaytest.UDPEcho(t, net.IPv4(127, 0, 0, 1))
	addr := startServer(t, &Server{})
	pc, err := client(t, addr).ListenPacket(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if _, err := pc.WriteTo(make([]byte, maxUDP+1), echo); err == nil {
		t.Fatal("a datagram larger than UDP allows was taken")
	}
	// The largest there is crosses whole.
	want := relaytest.Datagram(1, maxUDP)
	if _, err := pc.WriteTo(want, echo); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 65536)
	pc.SetReadDeadline(time.Now().Add(20 * time.Second))
	n, _, err := pc.ReadFrom(buf)
	if err != nil || !bytes.Equal(buf[:n], want) {
		t.Fatalf("got %d bytes, %v", n, err)
	}
}
