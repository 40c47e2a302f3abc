// Package mptp dials and serves MPTP, the multipath transport: a
// connection's bytes spread over several sub-connections ("paths") to an
// MPTP server, which puts them back in order and talks to the target.
//
// A Client keeps one tunnel to its server: a session over all its paths,
// each with its own dialer (a different interface, a relay, ...). Every
// connection it dials is a stream in that tunnel, with no handshake of its
// own, spread over every path; the tunnel survives the loss of any path
// while at least one remains, or comes back within the grace period. A
// Server accepts sub-connections, joins them into sessions, and connects
// each stream (or each session of an older client) to its target, or hands
// it to Accept. Leaf's v1 has no streams: with Version 1, each connection
// is a session of its own.
//
// The wire protocol is specified in docs/PROTOCOL.md.
package mptp

import (
	"context"
	"net"
	"time"

	"github.com/mptp/mptp/internal/session"
)

// DialFunc dials a network address, like net.Dialer.DialContext.
type DialFunc func(ctx context.Context, network, address string) (net.Conn, error)

// Options tune sessions; zero values take the defaults.
type Options struct {
	// RecvWindow caps each session's buffered incoming bytes (reorder
	// memory included). Default 4 MiB.
	RecvWindow int
	// SendBuffer caps each session's written, unacknowledged bytes.
	// Default 4 MiB.
	SendBuffer int
	// Grace is how long a session with no path waits for one. Default 30 s.
	Grace time.Duration
	// Redundant sends every chunk on every path instead of each chunk on
	// the path expected to deliver it first: lower latency on lossy links,
	// no aggregation.
	Redundant bool
	// HandshakeTimeout bounds a sub-connection's handshake. Default 10 s.
	HandshakeTimeout time.Duration
	// DatagramCopies sends each UDP datagram on the two best paths instead
	// of the best one (for calls and games on lossy links); the receiver
	// drops the second copy.
	DatagramCopies bool
	// Password, when set, turns on the secure channel: every
	// sub-connection is authenticated and encrypted with a key derived
	// from it (docs/SECURITY.md). Client and server must have the same.
	Password string
	// StaleFloor is the least time a path may owe an answer before it is
	// declared stale and what it carries is sent on the others (its RTT
	// may set the time higher). Default 200 ms.
	StaleFloor time.Duration
}

func (o *Options) handshakeTimeout() time.Duration {
	if o.HandshakeTimeout > 0 {
		return o.HandshakeTimeout
	}
	return 10 * time.Second
}

func (o *Options) sessionConfig() session.Config {
	return session.Config{
		RecvWindow:     o.RecvWindow,
		SendBuffer:     o.SendBuffer,
		Grace:          o.Grace,
		Redundant:      o.Redundant,
		StaleFloor:     o.StaleFloor,
		DatagramCopies: o.DatagramCopies,
	}
}

// Addr is the address of an MPTP session: its target.
type Addr string

func (Addr) Network() string  { return "mptp" }
func (a Addr) String() string { return string(a) }
