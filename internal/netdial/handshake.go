package netdial

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"time"
)

// Handshake runs fn, a protocol exchange on conn (a relay's greeting and
// reply), bounded by ctx: ctx's deadline becomes conn's, and ending ctx
// interrupts fn. conn's deadline is cleared afterwards. On error the caller
// closes conn.
func Handshake(ctx context.Context, conn net.Conn, fn func() error) error {
	if d, ok := ctx.Deadline(); ok {
		conn.SetDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	err := fn()
	if !stop() || ctx.Err() != nil {
		// ctx ended, and may yet poison conn's deadline: give up on conn.
		if err == nil {
			return ctx.Err()
		}
		return fmt.Errorf("%w: %w", ctx.Err(), err)
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		// conn's deadline is ctx's, whose own timer has not fired yet.
		return fmt.Errorf("%w: %w", context.DeadlineExceeded, err)
	}
	conn.SetDeadline(time.Time{})
	return err
}
