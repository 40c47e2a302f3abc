// Package socks5 reads and writes the messages of SOCKS version 5 (RFC 1928)
// and of its username/password sub-negotiation (RFC 1929). The functions work
// on plain readers and writers and keep no state, so that both a server and
// a client can use them.
package socks5

import (
	"errors"
	"io"

	"github.com/mptp/mptp/internal/failure"
	"github.com/mptp/mptp/internal/socksaddr"
)

// Version is the first byte of every SOCKS5 message but the RFC 1929 ones.
const Version = 0x05

// Authentication methods.
const (
	MethodNoAuth       = 0x00
	MethodUserPass     = 0x02
	MethodNoAcceptable = 0xFF
)

// Commands of a request.
const (
	CmdConnect      = 0x01
	CmdBind         = 0x02
	CmdUDPAssociate = 0x03
)

// Reply codes. They are the failure.Reason values, so byte(failure.Of(err))
// is a reply code too.
const (
	RepSucceeded       = byte(failure.OK)
	RepGeneralFailure  = byte(failure.General)
	RepNotAllowed      = byte(failure.NotAllowed)
	RepNetUnreachable  = byte(failure.NetUnreachable)
	RepHostUnreachable = byte(failure.HostUnreachable)
	RepRefused         = byte(failure.Refused)
	RepTTLExpired      = byte(failure.TimedOut)
	RepCmdUnsupported  = byte(failure.CmdUnsupported)
	RepAddrUnsupported = byte(failure.AddrUnsupported)
)

// RFC 1929 sub-negotiation version and status codes. Any status other than
// AuthSuccess is a failure.
const (
	UserPassVersion = 0x01
	AuthSuccess     = 0x00
	AuthFailure     = 0x01
)

var (
	// ErrVersion is returned for a message with an unexpected version byte.
	ErrVersion = errors.New("socks5: unsupported version")
	// ErrAddrType is returned for a request with an unknown ATYP; a server
	// answers it with RepAddrUnsupported.
	ErrAddrType = socksaddr.ErrAddrType
)

// truncated reports an EOF in the middle of a message as
// io.ErrUnexpectedEOF; io.EOF is kept for a peer that sent nothing at all.
func truncated(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
