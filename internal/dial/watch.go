package dial

import (
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/mptp/mptp/internal/session"
)

// When the client's network changes, a sub-connection whose local address
// is gone will never deliver again, and no error may come for minutes.
// watch notices at once and fails the path, so that its actor dials again
// from whatever address the host has now and rejoins the session.

// watch waits for the path to end, checking every second that conn's local
// address is still on this host. It returns the path's error.
func watch(conn net.Conn, h session.Path) error {
	local, ok := conn.LocalAddr().(*net.TCPAddr)
	if !ok {
		<-h.Done()
		return h.Err()
	}
	ip, _ := netip.AddrFromSlice(local.IP)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-h.Done():
			return h.Err()
		case <-tick.C:
			if !hostHas(ip.Unmap()) {
				h.Fail(fmt.Errorf("local address %s is gone", ip.Unmap()))
			}
		}
	}
}

// hostAddrs caches the host's addresses for a second, so that many paths
// cost one look-up a second.
var hostAddrs struct {
	sync.Mutex
	at       time.Time
	set      map[netip.Addr]bool
	loopback []netip.Prefix
}

func hostHas(ip netip.Addr) bool {
	hostAddrs.Lock()
	defer hostAddrs.Unlock()
	if time.Since(hostAddrs.at) > time.Second {
		ifaces, err := net.Interfaces()
		if err != nil {
			return true // cannot tell: assume nothing moved
		}
		set := map[netip.Addr]bool{}
		var loopback []netip.Prefix
		for _, ifc := range ifaces {
			addrs, err := ifc.Addrs()
			if err != nil {
				continue
			}
			for _, a := range addrs {
				pfx, err := netip.ParsePrefix(a.String())
				if err != nil {
					continue
				}
				set[pfx.Addr().Unmap()] = true
				// A loopback prefix is local as a whole: 127.0.0.2 is
				// this host though only 127.0.0.1/8 is listed.
				if ifc.Flags&net.FlagLoopback != 0 {
					loopback = append(loopback, pfx.Masked())
				}
			}
		}
		hostAddrs.at, hostAddrs.set, hostAddrs.loopback = time.Now(), set, loopback
	}
	if hostAddrs.set[ip] || ip.IsUnspecified() {
		return true
	}
	for _, pfx := range hostAddrs.loopback {
		if pfx.Contains(ip) {
			return true
		}
	}
	return false
}
