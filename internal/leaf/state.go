package leaf

import (
	"fmt"
	"time"
)

// State changes shared by the API and the path goroutines. All *Locked
// methods run with c.mu held.

// unlock releases c.mu and then closes the sub-connections dropped while
// it was held: closing may block (TLS sends an alert), so not under mu.
func (c *Conn) unlock() {
	subs := c.toClose
	c.toClose = nil
	c.mu.Unlock()
	for _, s := range subs {
		s.Close()
	}
}

// waitLocked releases c.mu until the next state change or until extra is
// closed.
func (c *Conn) waitLocked(extra <-chan struct{}) {
	if c.changed == nil {
		c.changed = make(chan struct{})
	}
	ch := c.changed
	c.unlock()
	select {
	case <-ch:
	case <-extra:
	}
	c.mu.Lock()
}

// wakeLocked wakes every waitLocked.
func (c *Conn) wakeLocked() {
	if c.changed != nil {
		close(c.changed)
		c.changed = nil
	}
}

func (c *Conn) wake() {
	c.mu.Lock()
	c.wakeLocked()
	c.unlock()
}

// failLocked makes Reads and Writes fail with err. With rst the peer is
// told by an RST on each path that can still send one.
func (c *Conn) failLocked(err error, rst bool) {
	if c.err != nil {
		return
	}
	c.err = err
	c.reset = err == ErrReset
	c.stopGraceLocked()
	c.log.Debug("mptp v1: connection failed", "err", err)
	for p := range c.paths {
		if rst && !p.finQueued {
			p.queueRstLocked()
		} else {
			c.dropPathLocked(p, nil)
		}
	}
	c.wakeLocked()
}

// dropPathLocked removes a dead path; err, if any, says why.
func (c *Conn) dropPathLocked(p *path, err error) {
	if p.dead {
		return
	}
	p.dead = true
	close(p.quit)
	p.markFlushedLocked()
	delete(c.paths, p)
	c.toClose = append(c.toClose, p.sub)
	if err != nil {
		c.log.Debug("mptp v1: sub-connection lost", "remote", p.sub.RemoteAddr(), "err", err, "left", len(c.paths))
	}
	c.pathGoneLocked()
	c.wakeLocked()
}

// pathGoneLocked fails the Conn, now or after the grace period, when no
// path is left.
func (c *Conn) pathGoneLocked() {
	if c.closed || c.err != nil {
		return
	}
	// A dead path no longer holds back EOF.
	c.checkEOFLocked()
	if len(c.paths) > 0 || c.err != nil {
		return
	}
	if c.opts.Grace <= 0 {
		c.failLocked(ErrAllLost, false)
		return
	}
	c.stopGraceLocked()
	gen := c.graceGen
	c.grace = time.AfterFunc(c.opts.Grace, func() {
		c.mu.Lock()
		defer c.unlock()
		if gen == c.graceGen && len(c.paths) == 0 && !c.closed {
			c.failLocked(ErrAllLost, false)
		}
	})
}

func (c *Conn) stopGraceLocked() {
	if c.grace != nil {
		c.grace.Stop()
		c.grace = nil
	}
	c.graceGen++
}

// checkEOFLocked delivers EOF once every live path has sent FIN. Each path
// carries its frames in order, so by then every frame sent on a live path
// has arrived; a frame still missing went only on a dead path.
func (c *Conn) checkEOFLocked() {
	if c.eof || !c.finSeen || c.err != nil {
		return
	}
	for p := range c.paths {
		if !p.finRecv {
			return
		}
	}
	if c.rq.pending() > 0 {
		c.failLocked(ErrDataLost, false)
		return
	}
	c.eof = true
	c.wakeLocked()
}

// dataLocked takes one DATA frame from p. It reports false if p's reader
// should stop.
func (c *Conn) dataLocked(p *path, f Frame) bool {
	// Pause while Read is behind; a duplicate needs no room.
	for c.paused() && !c.closed && c.err == nil && !p.dead && !c.rq.duplicate(f.PN) {
		c.waitLocked(p.quit)
	}
	if p.dead {
		return false
	}
	if c.closed || c.err != nil || c.eof {
		return true
	}
	ready, err := c.rq.push(c.ready[:0], f.PN, f.Payload)
	if err != nil {
		c.failLocked(fmt.Errorf("%w: %w (limit %d frames, %d bytes)", ErrProtocol, err, c.opts.MaxHeld, c.opts.MaxHeldBytes), true)
		return false
	}
	for _, b := range ready {
		if len(b) > 0 {
			c.rbuf = append(c.rbuf, b)
			c.rlen += len(b)
		}
	}
	if len(ready) > 0 {
		c.wakeLocked()
	}
	clear(ready)
	c.ready = ready[:0]
	return true
}
