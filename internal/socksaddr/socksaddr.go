// Package socksaddr encodes the SOCKS5 address form (ATYP, address, port)
// that SOCKS5 requests, SOCKS5 UDP headers, Leaf's v1 handshake and mptp's
// v2 handshake all share.
package socksaddr

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

const (
	IPv4   = 0x01
	Domain = 0x03
	IPv6   = 0x04
)

// ErrAddrType is returned for an ATYP other than IPv4, domain or IPv6.
var ErrAddrType = errors.New("socksaddr: unsupported address type")

// Append appends the encoding of address ("host:port") to b. A host that is
// an IP literal is written as IPv4 or IPv6, anything else as a domain.
func Append(b []byte, address string) ([]byte, error) {
	host, portStr, err := net.SplitHostPort(address)
	if err != nil {
		return b, err
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return b, fmt.Errorf("socksaddr: bad port %q", portStr)
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.Zone() == "" {
		if ip.Is4() || ip.Is4In6() {
			a := ip.Unmap().As4()
			b = append(b, IPv4)
			b = append(b, a[:]...)
		} else {
			a := ip.As16()
			b = append(b, IPv6)
			b = append(b, a[:]...)
		}
	} else {
		if len(host) == 0 || len(host) > 255 {
			return b, fmt.Errorf("socksaddr: domain %q must be 1 to 255 bytes", host)
		}
		b = append(b, Domain, byte(len(host)))
		b = append(b, host...)
	}
	return binary.BigEndian.AppendUint16(b, uint16(port)), nil
}

// Read reads one encoded address and returns it as "host:port".
func Read(r io.Reader) (string, error) {
	var buf [1 + 255 + 2]byte
	if _, err := io.ReadFull(r, buf[:1]); err != nil {
		return "", err
	}
	var host string
	switch buf[0] {
	case IPv4:
		if _, err := io.ReadFull(r, buf[:4+2]); err != nil {
			return "", err
		}
		host = netip.AddrFrom4([4]byte(buf[:4])).String()
		return net.JoinHostPort(host, strconv.Itoa(int(binary.BigEndian.Uint16(buf[4:])))), nil
	case IPv6:
		if _, err := io.ReadFull(r, buf[:16+2]); err != nil {
			return "", err
		}
		host = netip.AddrFrom16([16]byte(buf[:16])).String()
		return net.JoinHostPort(host, strconv.Itoa(int(binary.BigEndian.Uint16(buf[16:])))), nil
	case Domain:
		if _, err := io.ReadFull(r, buf[:1]); err != nil {
			return "", err
		}
		n := int(buf[0])
		if n == 0 {
			return "", errors.New("socksaddr: empty domain")
		}
		if _, err := io.ReadFull(r, buf[:n+2]); err != nil {
			return "", err
		}
		host = string(buf[:n])
		if strings.ContainsAny(host, "[]") {
			// "host:port" could not be split back: brackets mark IPv6.
			return "", fmt.Errorf("socksaddr: domain %q has brackets", host)
		}
		return net.JoinHostPort(host, strconv.Itoa(int(binary.BigEndian.Uint16(buf[n:])))), nil
	}
	return "", fmt.Errorf("%w 0x%02x", ErrAddrType, buf[0])
}

// Parse decodes one address from the front of b and returns it with the
// number of bytes used.
func Parse(b []byte) (string, int, error) {
	r := &sliceReader{b: b}
	a, err := Read(r)
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return a, r.n, err
}

type sliceReader struct {
	b []byte
	n int
}

func (r *sliceReader) Read(p []byte) (int, error) {
	if r.n >= len(r.b) {
		return 0, io.EOF
	}
	n := copy(p, r.b[r.n:])
	r.n += n
	return n, nil
}

// Addr is a "host:port" as a net.Addr, for writing a datagram to a host
// name (see outbound.PacketListener).
type Addr string

func (Addr) Network() string  { return "udp" }
func (a Addr) String() string { return string(a) }
