package socks5

import (
	"errors"

	"github.com/mptp/mptp/internal/socksaddr"
)

// A SOCKS5 UDP datagram (RFC 1928 section 7) is RSV u16, FRAG u8, then the
// address (ATYP, ADDR, PORT) and the payload.

// ErrUDPHeader is returned for a datagram too short for its header.
var ErrUDPHeader = errors.New("socks5: truncated UDP header")

// ParseUDP splits a client's datagram into its fragment number, its
// destination ("host:port") and its payload, which aliases b.
func ParseUDP(b []byte) (frag byte, addr string, payload []byte, err error) {
	if len(b) < 4 {
		return 0, "", nil, ErrUDPHeader
	}
	addr, n, err := socksaddr.Parse(b[3:])
	if err != nil {
		return 0, "", nil, err
	}
	return b[2], addr, b[3+n:], nil
}

// AppendUDP appends a datagram from addr ("host:port") carrying payload.
func AppendUDP(b []byte, addr string, payload []byte) ([]byte, error) {
	b = append(b, 0, 0, 0)
	b, err := socksaddr.Append(b, addr)
	if err != nil {
		return b, err
	}
	return append(b, payload...), nil
}
