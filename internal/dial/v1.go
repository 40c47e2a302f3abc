package dial

import (
	"context"
	"errors"
	"log/slog"
	"net"

	"github.com/mptp/mptp/internal/leaf"
)

// V1 opens a Leaf v1 session to server over paths: every path sends the
// same handshake and the server never answers, so the session is usable at
// once. v1's CMD values are v2's: 0x01 CONNECT, 0x03 UDP.
func V1(ctx context.Context, server string, paths []Path, cmd byte, target string, opts leaf.Options) (*leaf.Conn, error) {
	if len(paths) == 0 {
		return nil, errors.New("mptp: client has no paths")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	hs, err := leaf.AppendHandshake(nil, leaf.Handshake{CID: NewCID(), Cmd: cmd, Target: target})
	if err != nil {
		return nil, err
	}
	conn := leaf.NewConn(opts)
	type result struct {
		sub net.Conn
		err error
	}
	results := make(chan result, len(paths))
	for _, p := range paths {
		go func() {
			sub, err := p.dial(ctx, server)
			if err == nil {
				if _, err = sub.Write(hs); err != nil {
					sub.Close()
				}
			}
			results <- result{sub, err}
		}()
	}
	var firstErr error
	added := 0
	for range paths {
		r := <-results
		if r.err != nil {
			opts.Logger.Info("path down", "path", "v1", "reason", r.err)
			if firstErr == nil {
				firstErr = r.err
			}
			continue
		}
		conn.AddPath(r.sub)
		added++
	}
	if added == 0 {
		conn.Close()
		return nil, firstErr
	}
	return conn, nil
}
