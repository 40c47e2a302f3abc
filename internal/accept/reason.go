package accept

import (
	"fmt"

	"github.com/mptp/mptp/internal/failure"
	"github.com/mptp/mptp/internal/wire"
)

// Reason names a handshake status for metrics and logs.
func Reason(status byte) string {
	switch status {
	case wire.StatusUnknownSession:
		return "unknown_session"
	case wire.StatusTooManyPaths:
		return "too_many_paths"
	case wire.StatusSessionExists:
		return "session_exists"
	case wire.StatusAuthFailed:
		return "auth_failed"
	case wire.StatusBusy:
		return "busy"
	case wire.StatusBadRequest:
		return "bad_request"
	}
	if failure.Reason(status) <= failure.AddrUnsupported {
		return snake(failure.Reason(status).String())
	}
	return fmt.Sprintf("status_0x%02x", status)
}

func snake(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c == ' ' {
			b[i] = '_'
		}
	}
	return string(b)
}
