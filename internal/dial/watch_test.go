package dial

import (
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/mptp/mptp/internal/session"
)

func TestHostHas(t *testing.T) {
	if !hostHas(netip.MustParseAddr("127.0.0.1")) {
		t.Fatal("127.0.0.1 not found on this host")
	}
	if hostHas(netip.MustParseAddr("198.19.255.254")) {
		t.Skip("this host has 198.19.255.254")
	}
}

// movedConn reports a local address this host does not have, as a
// sub-connection does after its interface's address changed.
type movedConn struct{ net.Conn }

func (movedConn) LocalAddr() net.Addr {
	return &net.TCPAddr{IP: net.ParseIP("198.19.255.254"), Port: 1}
}

// A path whose local address is gone is failed at once, with that reason.
func TestWatchFailsPathWhoseAddressIsGone(t *testing.T) {
	a, b := net.Pipe()
	s1, s2 := session.New(session.Config{}), session.New(session.Config{})
	h, _ := s1.AddPath(movedConn{a}, session.PathConfig{Name: "wifi"})
	s2.AddPath(b, session.PathConfig{Name: "wifi"})
	err := watch(movedConn{a}, h)
	if err == nil || !strings.Contains(err.Error(), "198.19.255.254 is gone") {
		t.Fatalf("path ended with %v", err)
	}
	s1.Reset(0, "done")
	s2.Reset(0, "done")
	<-s1.Done()
	<-s2.Done()
}
