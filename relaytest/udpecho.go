package relaytest

import (
	"crypto/sha256"
	"encoding/hex"
	"net"
	"testing"
)

// UDPEcho starts a UDP server on ip (loopback) that sends every datagram
// back to its sender, until the end of the test, and returns its address.
// It skips the test where ip cannot be used (no IPv6, say).
func UDPEcho(t testing.TB, ip net.IP) *net.UDPAddr {
	t.Helper()
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: ip})
	if err != nil {
		t.Skipf("no UDP on %s here: %v", ip, err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65536)
		for {
			n, from, err := pc.ReadFromUDP(buf)
			if err != nil {
				return
			}
			pc.WriteToUDP(buf[:n], from)
		}
	}()
	t.Cleanup(func() { pc.Close(); <-done })
	return pc.LocalAddr().(*net.UDPAddr)
}

// Datagram is the i-th test datagram of n bytes: its bytes depend on i,
// so a datagram delivered in place of another is caught.
func Datagram(i, n int) []byte {
	b := make([]byte, n)
	for j := range b {
		b[j] = byte(i*7 + j*13)
	}
	return b
}

// DatagramSize is the size of the i-th datagram of a run: 1 byte to 8 KiB.
// testdata/udp_echo.py (PySocks) sends the same.
func DatagramSize(i int) int { return 1 + (i*997)%(8<<10) }

// DatagramsSum is the hex SHA-256 over the first n datagrams of a run, as
// testdata/udp_echo.py prints it over the echoes it got.
func DatagramsSum(n int) string {
	h := sha256.New()
	for i := range n {
		h.Write(Datagram(i, DatagramSize(i)))
	}
	return hex.EncodeToString(h.Sum(nil))
}
