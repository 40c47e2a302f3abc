// Package inbound holds the registry of inbound protocols, in the same shape
// as package outbound.
package inbound

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"sort"
	"sync"
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

var (
	mu        sync.Mutex
	factories = map[string]Factory{}
)

// Register makes a protocol available by name. It panics on duplicates.
func Register(protocol string, f Factory) {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := factories[protocol]; dup {
		panic("inbound: duplicate protocol " + protocol)
	}
	factories[protocol] = f
}

// Lookup returns the factory for protocol.
func Lookup(protocol string) (Factory, bool) {
	mu.Lock()
	defer mu.Unlock()
	f, ok := factories[protocol]
	return f, ok
}

// Protocols lists registered protocol names, sorted.
func Protocols() []string {
	mu.Lock()
	defer mu.Unlock()
	names := make([]string, 0, len(factories))
	for n := range factories {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
