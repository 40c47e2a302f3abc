// Package faultnet wraps connections to misbehave on command, for tests and
// benchmarks of what no real network does on cue.
package faultnet

import (
	"net"
	"sync"
	"time"
)

// Throttle returns c with its writes paced to bytesPerSec, like a slow
// link: a write returns once the link would have carried it.
func Throttle(c net.Conn, bytesPerSec int) net.Conn {
	return &throttled{Conn: c, rate: float64(bytesPerSec), next: time.Now()}
}

type throttled struct {
	net.Conn
	mu   sync.Mutex
	rate float64
	next time.Time // when the link is free again
}

func (t *throttled) Write(b []byte) (int, error) {
	written := 0
	for written < len(b) {
		n := min(len(b)-written, 16<<10)
		t.mu.Lock()
		now := time.Now()
		if t.next.Before(now) {
			t.next = now
		}
		t.next = t.next.Add(time.Duration(float64(n) / t.rate * float64(time.Second)))
		wait := time.Until(t.next)
		t.mu.Unlock()
		time.Sleep(wait)
		m, err := t.Conn.Write(b[written : written+n])
		written += m
		if err != nil {
			return written, err
		}
	}
	return written, nil
}

func (t *throttled) CloseWrite() error {
	if cw, ok := t.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return t.Conn.Close()
}
