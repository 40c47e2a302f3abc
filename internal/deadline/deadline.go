// Package deadline gives net.Conn implementations read and write deadlines
// that blocked calls can select on.
package deadline

import (
	"sync"
	"time"
)

// Deadline is a channel closed when a deadline passes; setting a new
// deadline re-arms it.
type Deadline struct {
	mu    sync.Mutex
	gen   uint64 // ignores timers from earlier set calls
	timer *time.Timer
	ch    chan struct{}
}

// New returns a deadline that is not set.
func New() *Deadline { return &Deadline{ch: make(chan struct{})} }

// Set arms the deadline for t; the zero time means none.
func (d *Deadline) Set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
	d.gen++
	if isClosed(d.ch) {
		d.ch = make(chan struct{})
	}
	if t.IsZero() {
		return
	}
	dur := time.Until(t)
	if dur <= 0 {
		close(d.ch)
		return
	}
	gen, ch := d.gen, d.ch
	d.timer = time.AfterFunc(dur, func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		if d.gen == gen {
			close(ch)
		}
	})
}

// Done returns the channel for the current deadline.
func (d *Deadline) Done() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ch
}

// Expired reports whether the deadline has passed.
func (d *Deadline) Expired() bool { return isClosed(d.Done()) }

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
