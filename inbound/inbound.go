// Package inbound holds the registry of inbound protocols, in the same shape
// as package outbound.
package inbound

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"

	"github.com/mptp/mptp/internal/registry"
)

// Dialer is where an inbound sends the connections it accepts: the default
// outbound.
type Dialer interface {
	DialContext(ctx context.Context, network, address string) (net.Conn, error)
}

// Inbound is a listener-side protocol. Start binds its listener and returns
// at once; Close stops accepting and ends the inbound's goroutines.
type Inbound interface {
	Tag() string
	Start() error
	Addr() net.Addr
	Close() error
}

// Context is what a Factory gets besides its settings.
type Context struct {
	Tag     string
	Path    string // "inbounds[0]", for errors
	Address string
	Port    int
	Dialer  Dialer
	Logger  *slog.Logger
	Warn    func(msg string)
}

// Factory builds an inbound without starting it, so that -T can check a
// config by building everything.
type Factory func(ctx *Context, settings json.RawMessage) (Inbound, error)

var protocols = registry.New[Factory]("inbound")

// Register makes a protocol available by name. It panics on duplicates.
func Register(protocol string, f Factory) { protocols.Register(protocol, f) }

// Lookup returns the factory for protocol.
func Lookup(protocol string) (Factory, bool) { return protocols.Lookup(protocol) }

// Protocols lists registered protocol names, sorted.
func Protocols() []string { return protocols.Names() }
