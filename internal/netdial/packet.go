package netdial

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"time"
)

// ListenPacket opens a UDP socket that leaves like the Dialer's
// connections (same local address, same device). Its WriteTo takes any
// net.Addr whose String is "host:port" and resolves names, caching them
// for a while.
func (d *Dialer) ListenPacket(ctx context.Context) (net.PacketConn, error) {
	lc := net.ListenConfig{Control: d.d.Control}
	addr := ":0"
	if a, ok := d.d.LocalAddr.(*net.TCPAddr); ok && a != nil {
		addr = net.JoinHostPort(a.IP.String(), "0")
	}
	pc, err := lc.ListenPacket(ctx, "udp", addr)
	if err != nil {
		return nil, err
	}
	return &resolvingConn{UDPConn: pc.(*net.UDPConn), names: map[string]cached{}}, nil
}

// resolvingConn is a UDP socket whose WriteTo resolves host names.
type resolvingConn struct {
	*net.UDPConn
	mu    sync.Mutex
	names map[string]cached
}

type cached struct {
	ip netip.Addr
	at time.Time
}

const (
	nameTTL   = time.Minute
	nameCache = 256 // entries per socket
)

func (c *resolvingConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	if ua, ok := addr.(*net.UDPAddr); ok {
		return c.UDPConn.WriteTo(p, ua)
	}
	ap, err := c.resolve(addr.String())
	if err != nil {
		return 0, &net.OpError{Op: "write", Net: "udp", Addr: addr, Err: err}
	}
	return c.UDPConn.WriteToUDPAddrPort(p, ap)
}

func (c *resolvingConn) resolve(hostport string) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(hostport); err == nil {
		return ap, nil
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return netip.AddrPort{}, err
	}
	pn, err := net.LookupPort("udp", port)
	if err != nil {
		return netip.AddrPort{}, err
	}
	c.mu.Lock()
	e, ok := c.names[host]
	c.mu.Unlock()
	if ok && time.Since(e.at) < nameTTL {
		return netip.AddrPortFrom(e.ip, uint16(pn)), nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return netip.AddrPort{}, err
	}
	ip := ips[0].Unmap()
	c.mu.Lock()
	if len(c.names) >= nameCache {
		clear(c.names)
	}
	c.names[host] = cached{ip: ip, at: time.Now()}
	c.mu.Unlock()
	return netip.AddrPortFrom(ip, uint16(pn)), nil
}
