package session

import (
	"testing"
	"time"
)

// A session that carries no data pings at the idle interval; data after
// an idle spell probes every path at once, and the busy interval applies
// again.
func TestIdlePing(t *testing.T) {
	s := schedSession(t, Config{PingInterval: time.Second, IdlePing: 20 * time.Second})
	a := schedPath(s, "a", 10*time.Millisecond, 1e6)
	b := schedPath(s, "b", 10*time.Millisecond, 1e6)
	s.mu.Lock()
	defer s.mu.Unlock()
	if got := a.pingInterval(); got != 20*time.Second {
		t.Fatalf("idle session: ping every %v, want 20s", got)
	}
	then := time.Now()
	a.lastPing, b.lastPing = then, then
	s.active(then) // data after idle
	if !a.lastPing.IsZero() || !b.lastPing.IsZero() {
		t.Fatal("data after idle did not probe every path")
	}
	for _, p := range []*path{a, b} {
		select {
		case <-p.wake:
		default:
			t.Fatalf("path %s not woken to probe", p.name)
		}
	}
	if got := a.pingInterval(); got != time.Second {
		t.Fatalf("busy session: ping every %v, want 1s", got)
	}
	// More data while busy probes nothing.
	a.lastPing = then
	s.active(then.Add(time.Millisecond))
	if !a.lastPing.Equal(then) {
		t.Fatal("data while busy probed a path")
	}
	// Idle again once 3 ping intervals pass with no data.
	s.lastActive = time.Now().Add(-4 * time.Second)
	if got := a.pingInterval(); got != 20*time.Second {
		t.Fatalf("idle again: ping every %v, want 20s", got)
	}
}
