// Package outbound holds the registry of outbound protocols. Each protocol
// lives in its own folder and registers a Factory by name in init; adding a
// protocol touches only that folder (and the import list in app).
package outbound

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"

	"github.com/mptp/mptp/internal/registry"
)

// Outbound dials connections. The mptp outbound uses other outbounds as its
// actors: each actor dials one path to the MPTP server.
type Outbound interface {
	Tag() string
	DialContext(ctx context.Context, network, address string) (net.Conn, error)
}

// Starter is an outbound with work to do before the first connection (an
// mptp client opens its tunnel). Start must not block; the app calls it
// once, as it starts, and Close as it stops.
type Starter interface {
	Start()
	Close() error
}

// PacketListener is an outbound that carries UDP. Each association gets
// its own socket, whose WriteTo takes any net.Addr whose String is
// "host:port" (host names included) and whose ReadFrom reports the real
// source of each reply.
type PacketListener interface {
	ListenPacket(ctx context.Context) (net.PacketConn, error)
}

// Context is what a Factory gets besides its settings.
type Context struct {
	Tag string
	// Path names the outbound in the config, for errors: "outbounds[2]".
	Path string
	// Lookup returns another outbound by tag (building it if needed). It
	// fails for unknown tags and for cycles.
	Lookup func(tag string) (Outbound, error)
	// Warn records a non-fatal problem, such as an unknown key.
	Warn func(msg string)
	// Logger is the process logger, named for this outbound.
	Logger *slog.Logger
}

// Factory builds an outbound from its settings (nil when absent).
type Factory func(ctx *Context, settings json.RawMessage) (Outbound, error)

var protocols = registry.New[Factory]("outbound")

// Register makes a protocol available by name. It panics on duplicates.
func Register(protocol string, f Factory) { protocols.Register(protocol, f) }

// Lookup returns the factory for protocol.
func Lookup(protocol string) (Factory, bool) { return protocols.Lookup(protocol) }

// Protocols lists registered protocol names, sorted.
func Protocols() []string { return protocols.Names() }

// Unknown is the error for a protocol nobody registered.
func Unknown(protocol string) error {
	return fmt.Errorf("unknown protocol %q (known: %v)", protocol, Protocols())
}
