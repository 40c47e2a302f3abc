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
	return &resolvingConn{UDPConn: pc.(*net.UDPConn)}, nil
}

// resolvingConn is a UDP socket whose WriteTo resolves host names.
type resolvingConn struct {
	*net.UDPConn
	names Names
}

// Names resolves "host:port" for datagrams, keeping answers for a while:
// a UDP association may send to one name many times a second. The zero
// value is ready to use.
type Names struct {
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
	ap, err := c.names.Resolve(addr.String())
	if err != nil {
		return 0, &net.OpError{Op: "write", Net: "udp", Addr: addr, Err: err}
	}
	return c.UDPConn.WriteToUDPAddrPort(p, ap)
}

// Resolve returns hostport's address, looking names up when not cached.
func (c *Names) Resolve(hostport string) (netip.AddrPort, error) {
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
	if c.names == nil || len(c.names) >= nameCache {
		c.names = map[string]cached{}
	}
	c.names[host] = cached{ip: ip, at: time.Now()}
	c.mu.Unlock()
	return netip.AddrPortFrom(ip, uint16(pn)), nil
}
