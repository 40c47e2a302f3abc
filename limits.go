package mptp

import (
	"time"

	"github.com/mptp/mptp/internal/leaf"
	"github.com/mptp/mptp/internal/mux"
	"github.com/mptp/mptp/internal/session"
)

// Limits bound what a Server takes on, so that no peer can make it grow
// without bound (docs/SECURITY.md). Zero values take the defaults.
type Limits struct {
	// MaxHandshakes bounds the sub-connections in their handshake at
	// once; more are closed as they arrive. Default 1024.
	MaxHandshakes int
	// MaxSessions bounds the sessions, v2 and v1, at once; an OPEN
	// beyond it is refused as busy. Default 1024.
	MaxSessions int
	// MaxMemory bounds the bytes all sessions together may hold for
	// reordering and retransmission: each session counts its RecvWindow
	// plus SendBuffer, a tunnel its stream window on top (TunnelMemory),
	// and an OPEN that would pass the total is refused as busy. Default
	// 2 GiB. Streams cost no reservation: the tunnel's window bounds what
	// they hold together.
	MaxMemory int64
	// MaxStreams bounds the streams open at once in one tunnel; an open
	// beyond it is refused at once ("limit=max_streams"). Default 16384.
	MaxStreams int
	// StreamRate bounds the streams a tunnel may open per second, with as
	// many at once; more are refused ("limit=stream_rate"). Default 5000.
	StreamRate int
	// MaxTunnelsPerIP bounds the tunnels open at once from one client IP
	// address. Default 16.
	MaxTunnelsPerIP int
}

const (
	DefaultMaxHandshakes = 1024
	DefaultMaxSessions   = 1024
	DefaultMaxMemory     = 2 << 30
	DefaultMaxStreams    = mux.DefaultMaxStreams
	DefaultStreamRate    = 5000
	DefaultMaxTunnels    = 16
)

func (l *Limits) maxHandshakes() int { return positive(l.MaxHandshakes, DefaultMaxHandshakes) }
func (l *Limits) maxSessions() int   { return positive(l.MaxSessions, DefaultMaxSessions) }
func (l *Limits) maxStreams() int    { return positive(l.MaxStreams, DefaultMaxStreams) }
func (l *Limits) streamRate() int    { return positive(l.StreamRate, DefaultStreamRate) }
func (l *Limits) maxTunnelsPerIP() int {
	return positive(l.MaxTunnelsPerIP, DefaultMaxTunnels)
}

func (l *Limits) maxMemory() int64 {
	if l.MaxMemory > 0 {
		return l.MaxMemory
	}
	return DefaultMaxMemory
}

func positive(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

// SessionMemory is what one session may hold at most for reordering
// (its receive window) and retransmission (its send buffer).
func (o *Options) SessionMemory() int64 {
	return int64(positive(o.RecvWindow, session.DefaultRecvWindow) + positive(o.SendBuffer, session.DefaultSendBuffer))
}

// TunnelMemory is what one tunnel may hold at most: its session's
// SessionMemory, the stream bytes received and not yet read (the tunnel's
// window), and those written and not yet sent (its send buffer).
func (o *Options) TunnelMemory() int64 {
	return o.SessionMemory() + mux.DefaultTunnelWindow + mux.TunnelSendBuffer
}

// roomFor reports whether one more session fits the limits, given the
// tunnels and other v2 sessions open: a v1 session (counted at what a Leaf
// Conn may hold), a tunnel (TunnelMemory) or another (SessionMemory). It
// takes no lock: the door calls it under its own.
func (s *Server) roomFor(tunnels, others int, v1, tunnel bool) bool {
	nv1 := s.v1Count.Load()
	n := int64(tunnels+others) + nv1
	used := nv1*leaf.DefaultMemory + int64(tunnels)*s.TunnelMemory() + int64(others)*s.SessionMemory()
	need := s.SessionMemory()
	switch {
	case v1:
		need = leaf.DefaultMemory
	case tunnel:
		need = s.TunnelMemory()
	}
	return n < int64(s.maxSessions()) && used+need <= s.maxMemory()
}

// refusals counts sub-connections refused at the handshake limit, so that
// a flood makes one log line a second, not one each.
type refusals struct {
	n    int
	last time.Time
}

func (s *Server) refusedAtLimit() {
	s.mu.Lock()
	s.refused.n++
	now := time.Now()
	if now.Sub(s.refused.last) < time.Second {
		s.mu.Unlock()
		return
	}
	n := s.refused.n
	s.refused = refusals{last: now}
	s.mu.Unlock()
	s.logger().Warn("handshake limit reached: sub-connections refused", "limit", s.maxHandshakes(), "refused", n)
}

// handshaking is the number of sub-connections in their handshake.
func (s *Server) handshaking() int {
	s.mu.Lock()
	s.init()
	s.mu.Unlock()
	return s.door.Handshaking()
}

// maxV1Ended bounds the ended v1 CIDs remembered: a flood of short v1
// sessions must not grow the map for the minute each is kept.
const maxV1Ended = 1 << 16

// rememberV1 records an ended v1 session. Called with s.mu held.
func (s *Server) rememberV1(cid [16]byte) {
	for k := range s.v1Ended {
		if len(s.v1Ended) < maxV1Ended {
			break
		}
		delete(s.v1Ended, k) // any: the map's order is random
	}
	s.v1Ended[cid] = time.Now()
}
