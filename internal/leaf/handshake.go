// Package leaf speaks Leaf's MPTP wire format ("v1"): the sub-connection
// handshake, the frames, the UDP datagram framing, and Conn, the multipath
// connection built on them.
package leaf

import (
	"errors"
	"fmt"
	"io"

	"github.com/mptp/mptp/internal/socksaddr"
)

// Version is the only VER Leaf accepts.
const Version = 0x01

// Handshake commands. Leaf treats any CMD other than CmdUDP as CmdConnect.
const (
	CmdConnect = 0x01
	CmdUDP     = 0x03
)

// ErrVersion is returned by ReadHandshake for a VER other than Version.
var ErrVersion = errors.New("mptp v1: unsupported version")

// Handshake opens every sub-connection of a session; sub-connections of one
// session share the CID.
type Handshake struct {
	CID    [16]byte
	Cmd    byte
	Target string // "host:port"
}

// AppendHandshake appends the encoding of h, VER first, to b.
func AppendHandshake(b []byte, h Handshake) ([]byte, error) {
	n := len(b)
	b = append(b, Version)
	b = append(b, h.CID[:]...)
	b = append(b, h.Cmd)
	b, err := socksaddr.Append(b, h.Target)
	if err != nil {
		return b[:n], err
	}
	return b, nil
}

// ReadHandshake reads one handshake. It reads exactly the handshake's bytes,
// so frames that follow stay in r.
func ReadHandshake(r io.Reader) (Handshake, error) {
	var buf [1 + 16 + 1]byte
	if _, err := io.ReadFull(r, buf[:1]); err != nil {
		return Handshake{}, err
	}
	// Reject a wrong version before waiting for more bytes.
	if buf[0] != Version {
		return Handshake{}, fmt.Errorf("%w 0x%02x", ErrVersion, buf[0])
	}
	if _, err := io.ReadFull(r, buf[1:]); err != nil {
		return Handshake{}, truncated(err)
	}
	target, err := socksaddr.Read(r)
	if err != nil {
		return Handshake{}, truncated(err)
	}
	h := Handshake{Cmd: buf[17], Target: target}
	copy(h.CID[:], buf[1:17])
	return h, nil
}

// truncated turns an EOF inside a message into io.ErrUnexpectedEOF.
func truncated(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
