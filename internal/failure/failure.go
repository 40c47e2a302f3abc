// Package failure classifies why a connection attempt failed, in one set of
// codes shared by the SOCKS5 inbound (reply codes) and the MPTP v2 handshake
// (status codes): the values are SOCKS5's, so they map one to one.
package failure

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
)

// Reason is a SOCKS5-compatible failure code.
type Reason uint8

const (
	OK              Reason = 0x00
	General         Reason = 0x01
	NotAllowed      Reason = 0x02
	NetUnreachable  Reason = 0x03
	HostUnreachable Reason = 0x04
	Refused         Reason = 0x05
	TimedOut        Reason = 0x06
	CmdUnsupported  Reason = 0x07
	AddrUnsupported Reason = 0x08
	// AuthFailed is MPTP's own: no password, the wrong one, or a JOIN
	// without its session's token.
	AuthFailed Reason = 0x13
)

func (r Reason) String() string {
	switch r {
	case OK:
		return "ok"
	case General:
		return "general failure"
	case NotAllowed:
		return "not allowed"
	case NetUnreachable:
		return "network unreachable"
	case HostUnreachable:
		return "host unreachable"
	case Refused:
		return "connection refused"
	case TimedOut:
		return "timed out"
	case CmdUnsupported:
		return "command not supported"
	case AddrUnsupported:
		return "address type not supported"
	case AuthFailed:
		return "authentication failed"
	}
	return fmt.Sprintf("reason 0x%02x", uint8(r))
}

// Error is a failure with a known reason, for example a refusal reported by
// an MPTP server about its target.
type Error struct {
	Reason Reason
	Msg    string
}

func (e *Error) Error() string {
	if e.Msg == "" {
		return e.Reason.String()
	}
	return e.Reason.String() + ": " + e.Msg
}

// Of maps an error from a dial to the closest Reason.
func Of(err error) Reason {
	if err == nil {
		return OK
	}
	var fe *Error
	if errors.As(err, &fe) {
		if fe.Reason > AddrUnsupported {
			// Codes beyond SOCKS5's (an upstream MPTP server's own) mean
			// nothing to whoever gets this one.
			return General
		}
		return fe.Reason
	}
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return Refused
	case errors.Is(err, syscall.ENETUNREACH):
		return NetUnreachable
	case errors.Is(err, syscall.EHOSTUNREACH), errors.As(err, &dnsErr):
		return HostUnreachable
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, syscall.ETIMEDOUT):
		return TimedOut
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return NotAllowed
	}
	return General
}
