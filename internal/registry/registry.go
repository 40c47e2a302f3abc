// Package registry maps protocol names to factories, for the inbound and
// outbound registries.
package registry

import (
	"fmt"
	"sort"
	"sync"
)

// Registry holds factories of type F by protocol name.
type Registry[F any] struct {
	kind string
	mu   sync.Mutex
	m    map[string]F
}

// New returns an empty registry; kind names it in panics ("inbound").
func New[F any](kind string) *Registry[F] {
	return &Registry[F]{kind: kind, m: map[string]F{}}
}

// Register makes a protocol available by name. It panics on duplicates.
func (r *Registry[F]) Register(name string, f F) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.m[name]; dup {
		panic(fmt.Sprintf("%s: duplicate protocol %s", r.kind, name))
	}
	r.m[name] = f
}

// Lookup returns the factory for name.
func (r *Registry[F]) Lookup(name string) (F, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f, ok := r.m[name]
	return f, ok
}

// Names lists the registered protocols, sorted.
func (r *Registry[F]) Names() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	names := make([]string, 0, len(r.m))
	for n := range r.m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
