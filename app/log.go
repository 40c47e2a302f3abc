package app

import (
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/mptp/mptp/config"
)

// Logger makes the process logger from the config's "log" section: level
// debug, info (default), warn, error or off; output "console", "stderr" or
// empty for standard error, "stdout", else a file path, appended to.
func Logger(c config.Log) (*slog.Logger, io.Closer, error) {
	level := slog.LevelInfo
	switch c.Level {
	case "debug":
		level = slog.LevelDebug
	case "warn":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	case "off":
		return slog.New(slog.DiscardHandler), io.NopCloser(nil), nil
	}
	var out io.Writer = os.Stderr
	var closer io.Closer = io.NopCloser(nil)
	switch c.Output {
	case "", "console", "stderr":
	case "stdout":
		out = os.Stdout
	default:
		f, err := os.OpenFile(c.Output, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return nil, nil, fmt.Errorf("log.output: %w", err)
		}
		out, closer = f, f
	}
	return slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: level})), closer, nil
}
