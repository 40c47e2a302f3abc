package session

import "time"

// nextChunk picks the next chunk path p should send, or nil if p should
// send nothing now. Called with s.mu held.
//
// Default: each chunk goes to exactly one path. A path with room takes the
// next chunk unless another path would deliver the whole backlog before
// this chunk could arrive here: then this path would only add reordering
// (the earliest-completion-first rule). So on paths of very different
// speed the slow one is used only while the backlog is deep enough for it
// to help, and never makes the session slower than the fast one alone.
// Redundant: every chunk on every path; the receiver drops copies.
func (s *Session) nextChunk(p *path) *chunk {
	p.rescueAt = time.Time{} // set again below if still wanted
	if p.stale || p.backup && s.primaryUp() {
		return nil
	}
	p.est.expire(time.Now())
	inflight := p.sent - p.delivered
	if inflight >= p.est.cwnd() {
		p.est.full = true
		return nil
	}
	if inflight == 0 {
		p.est.busy(time.Now())
	}
	if s.cfg.Redundant {
		return s.nextRedundant(p)
	}
	if c := s.send.popRetrans(); c != nil {
		s.wakeWriter()
		c.sentOn, c.sentAt, c.resent = p, time.Now(), true
		return c
	}
	c := s.send.nextNew(s.peerLimit)
	if c == nil {
		return s.rescue(p, inflight)
	}
	now := time.Now()
	mine := p.weight(p.est.arrival(inflight+uint64(len(c.data))), now)
	// Only what the peer's window lets out counts: while this chunk is on
	// its way, the others can deliver no more than the receiver can hold
	// ahead of it.
	backlog := min(s.send.backlog(), s.peerLimit-c.seq)
	for _, q := range s.paths {
		if q != p && q.usable() && clearlySooner(q.weight(q.est.arrival(q.sent-q.delivered+backlog), now), mine) {
			return nil
		}
	}
	s.send.markSent()
	s.wakeWriter()
	c.sentOn, c.sentAt = p, time.Now()
	return c
}

// usable reports whether the path may take new data now.
func (p *path) usable() bool {
	return !p.closing && !p.stale && !(p.backup && p.s.primaryUp())
}

// primaryUp reports whether any path that is not a backup can carry data:
// backups are used only while none can.
func (s *Session) primaryUp() bool {
	for _, p := range s.paths {
		if !p.backup && !p.closing && !p.stale {
			return true
		}
	}
	return false
}

// rescue is for a path with room and nothing new to send (the window or
// the send buffer is full, or the application is idle): then the receiver
// may be waiting for a chunk that a slower or stalled path still carries.
// It sends one copy of the oldest such chunk when the chunk is overdue on
// its path (that path is in trouble), or when this path would deliver it
// clearly sooner and the wait costs throughput or completion: new data is
// held back by the peer's window, or the stream is finishing. A chunk on a
// healthy path that is merely slower is not copied while the application
// just has nothing more to send: the copy would cost its bytes and gain
// only a little latency. The receiver drops whichever copy comes second.
func (s *Session) rescue(p *path, inflight uint64) *chunk {
	// Unsent bytes that nextNew did not give out wait for the window.
	blocked := s.send.backlog() > 0
	urgent := blocked || s.finReq
	mine := p.est.arrival(inflight)
	for i, c := range s.send.chunks[:s.send.unsent] {
		if i == rescueScan {
			break
		}
		q := c.sentOn
		if c.copied || q == nil || q == p {
			continue
		}
		due := q.est.dueBy(c.sentAt, mine)
		if urgent && clearlySooner(mine, q.est.arrival(q.sent-q.delivered)) || !time.Now().Before(due) {
			c.copied = true
			p.ctr.Retransmitted += uint64(len(c.data))
			p.ctr.Rescued += uint64(len(c.data))
			return c
		}
		if p.rescueAt.IsZero() || due.Before(p.rescueAt) {
			p.rescueAt = due // the writer looks again then
		}
	}
	return nil
}

// rescueScan bounds how far into the unacknowledged chunks rescue looks.
const rescueScan = 64

func (s *Session) nextRedundant(p *path) *chunk {
	b := &s.send
	p.cursor = max(p.cursor, b.una)
	if b.unsent < len(b.chunks) && p.cursor < b.chunks[b.unsent].seq {
		c := b.from(p.cursor)[0]
		p.cursor = c.end()
		return c
	}
	if b.unsent >= len(b.chunks) && p.cursor < b.end {
		cs := b.from(p.cursor)
		if len(cs) == 0 {
			return nil
		}
		p.cursor = cs[0].end()
		return cs[0]
	}
	c := b.nextNew(s.peerLimit)
	if c == nil {
		return nil
	}
	b.markSent()
	s.wakeWriter()
	p.cursor = c.end()
	return c
}

// clearlySooner ignores differences within measurement noise, so that
// paths of equal speed share the load instead of one taking it all.
func clearlySooner(a, b time.Duration) bool {
	return a+a/4+500*time.Microsecond < b
}
