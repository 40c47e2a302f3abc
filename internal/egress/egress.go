// Package egress is a server's outbound access control: it refuses
// targets in loopback, private, link-local and other local ranges. Names
// are resolved first, the addresses checked, and the address checked is
// the one dialed, so a name cannot resolve to a public address for the
// check and to a private one for the dial (DNS rebinding).
package egress

import (
	"context"
	"fmt"
	"net"
	"net/netip"

	"github.com/mptp/mptp/internal/failure"
	"github.com/mptp/mptp/internal/netdial"
)

// Dialer dials through Next only to addresses that are not local.
type Dialer struct {
	Next func(ctx context.Context, network, address string) (net.Conn, error)
	// Resolve looks a host name up; nil uses net.DefaultResolver.
	Resolve func(ctx context.Context, host string) ([]netip.Addr, error)
}

// DialContext resolves address, drops the addresses Denied refuses, and
// dials the others in turn until one connects. When none is left the
// error is a *failure.Error with reason NotAllowed.
func (d *Dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	var ips []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		ips = []netip.Addr{ip}
	} else {
		resolve := d.Resolve
		if resolve == nil {
			resolve = func(ctx context.Context, host string) ([]netip.Addr, error) {
				return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
			}
		}
		if ips, err = resolve(ctx, host); err != nil {
			return nil, err
		}
	}
	var firstErr error
	for _, ip := range ips {
		if Denied(ip) {
			continue
		}
		conn, err := d.Next(ctx, network, net.JoinHostPort(ip.Unmap().WithZone("").String(), port))
		if err == nil {
			return conn, nil
		}
		if firstErr == nil {
			firstErr = err
		}
		if ctx.Err() != nil {
			break
		}
	}
	if firstErr != nil {
		return nil, firstErr
	}
	return nil, &failure.Error{Reason: failure.NotAllowed, Msg: fmt.Sprintf("%s: local address refused (deny_private)", address)}
}

// local lists the ranges Denied refuses besides what netip classifies.
var local = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),     // "this network": 0.x reaches the host itself
	netip.MustParsePrefix("100.64.0.0/10"), // carrier-grade NAT, shared address space
	netip.MustParsePrefix("192.0.0.0/24"),  // IETF protocol assignments
	netip.MustParsePrefix("255.255.255.255/32"),
	netip.MustParsePrefix("fec0::/10"), // deprecated site-local
}

// nat64 prefixes carry an IPv4 address in their last 32 bits.
var nat64 = []netip.Prefix{
	netip.MustParsePrefix("64:ff9b::/96"),
	netip.MustParsePrefix("64:ff9b:1::/48"),
}

// Denied reports whether ip is loopback, private (RFC 1918, RFC 4193),
// link-local, unspecified, multicast, or in another range that reaches
// the server's own host or networks, also when written as IPv4-mapped
// IPv6 or behind a NAT64 prefix.
func Denied(ip netip.Addr) bool {
	ip = ip.Unmap().WithZone("")
	if ip.Is6() {
		for _, p := range nat64 {
			if p.Contains(ip) {
				b := ip.As16()
				if Denied(netip.AddrFrom4([4]byte(b[12:]))) {
					return true
				}
			}
		}
	}
	if ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsInterfaceLocalMulticast() || ip.IsMulticast() || ip.IsUnspecified() || !ip.IsValid() {
		return true
	}
	for _, p := range local {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// ListenPacket wraps next so that its sockets drop datagrams to denied
// addresses: names are resolved here, and the address checked is the one
// written to.
func ListenPacket(next func(context.Context) (net.PacketConn, error)) func(context.Context) (net.PacketConn, error) {
	return func(ctx context.Context) (net.PacketConn, error) {
		pc, err := next(ctx)
		if err != nil {
			return nil, err
		}
		return &packetConn{PacketConn: pc}, nil
	}
}

type packetConn struct {
	net.PacketConn
	names netdial.Names
}

func (c *packetConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	var ap netip.AddrPort
	if ua, ok := addr.(*net.UDPAddr); ok {
		ap = ua.AddrPort()
	} else {
		var err error
		if ap, err = c.names.Resolve(addr.String()); err != nil {
			return 0, err
		}
	}
	if Denied(ap.Addr()) {
		return 0, &failure.Error{Reason: failure.NotAllowed, Msg: fmt.Sprintf("%s is a local address", ap.Addr())}
	}
	return c.PacketConn.WriteTo(p, net.UDPAddrFromAddrPort(ap))
}
