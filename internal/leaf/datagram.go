package leaf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/mptp/mptp/internal/socksaddr"
)

// A UDP session (CmdUDP) carries datagrams inside its byte stream as
// LEN u16, then RSV u16, FRAG u8, ATYP, ADDR, PORT u16 and the payload.
// LEN counts everything after itself.

// MaxDatagram is the largest LEN: the header after LEN plus the payload.
const MaxDatagram = 0xffff

var (
	// ErrDatagramTooLarge is returned when LEN would exceed a limit.
	ErrDatagramTooLarge = errors.New("mptp v1: datagram too large")
	// ErrFragment is returned for FRAG != 0, which Leaf never sends. The
	// datagram was read whole, so the stream is still in step.
	ErrFragment = errors.New("mptp v1: fragmented datagram")
)

// AppendDatagram appends one datagram for addr ("host:port") to b.
func AppendDatagram(b []byte, addr string, payload []byte) ([]byte, error) {
	start := len(b)
	b = append(b, 0, 0, 0, 0, 0) // LEN, RSV, FRAG
	b, err := socksaddr.Append(b, addr)
	if err != nil {
		return b[:start], err
	}
	b = append(b, payload...)
	n := len(b) - start - 2
	if n > MaxDatagram {
		return b[:start], fmt.Errorf("%w: %d bytes", ErrDatagramTooLarge, n)
	}
	binary.BigEndian.PutUint16(b[start:], uint16(n))
	return b, nil
}

// ReadDatagram reads one datagram whose LEN is at most maxSize. The payload
// is newly allocated.
func ReadDatagram(r io.Reader, maxSize int) (addr string, payload []byte, err error) {
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return "", nil, err
	}
	n := int(binary.BigEndian.Uint16(h[:]))
	if n > maxSize {
		return "", nil, fmt.Errorf("%w: %d bytes, limit %d", ErrDatagramTooLarge, n, maxSize)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return "", nil, truncated(err)
	}
	if n < 3 {
		return "", nil, fmt.Errorf("mptp v1: datagram header truncated: %w", io.ErrUnexpectedEOF)
	}
	if buf[2] != 0 {
		return "", nil, ErrFragment
	}
	addr, used, err := socksaddr.Parse(buf[3:])
	if err != nil {
		return "", nil, fmt.Errorf("mptp v1: datagram address: %w", err)
	}
	return addr, buf[3+used:], nil
}
