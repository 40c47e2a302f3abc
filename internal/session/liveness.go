package session

import (
	"fmt"
	"time"
)

// Silent failures, where packets vanish and no error ever comes, are found
// here. A path that owes something (unacknowledged DATA, or a PONG) and has
// made no progress (its per-path count advanced, or a PONG came) for a time
// derived from its RTT is stale: what it carries goes out again on the other
// paths at once, and it gets no new data until it shows life. A path stale
// for much longer is closed, so that its actor dials again, perhaps over a
// new route.

// staleAfter is how long a path may owe something without progress.
func (p *path) staleAfter() time.Duration {
	e := &p.est
	return max(p.s.cfg.StaleFloor, 3*(e.srtt+4*e.rttvar))
}

// deadAfter is how long a path may stay stale before it is closed. It is
// shorter when no other path can carry the session: then a fresh
// sub-connection, perhaps over a new route, is the only way on.
func (p *path) deadAfter() time.Duration {
	for _, q := range p.s.paths {
		if q != p && q.usable() {
			return max(3*time.Second, 10*p.staleAfter())
		}
	}
	return max(time.Second, 4*p.staleAfter())
}

// owes reports whether the path waits for something from the peer.
func (p *path) owes() bool {
	return p.sent > p.delivered || p.lastPing.After(p.lastPong)
}

// progressed records life on the path: delivery or a PONG.
func (p *path) progressed(now time.Time) {
	p.lastProgress = now
	if p.stale {
		p.stale = false
		p.s.log.Info("path revived", "path", p.name, "after", now.Sub(p.staleSince).Round(time.Millisecond))
		p.s.wakeAll()
	}
}

// checkLiveness marks the path stale or closes it when due, and returns
// when it should be checked again (zero: nothing owed). Called with s.mu
// held, by the path's writer.
func (p *path) checkLiveness(now time.Time) time.Time {
	if !p.owes() {
		p.waitingSince = time.Time{}
		return time.Time{}
	}
	if p.waitingSince.IsZero() {
		p.waitingSince = now
	}
	since := p.waitingSince
	if p.lastProgress.After(since) {
		since = p.lastProgress
	}
	if !p.stale {
		due := since.Add(p.staleAfter())
		if now.Before(due) {
			return due
		}
		p.markStale(now)
	}
	dead := p.staleSince.Add(p.deadAfter())
	if now.Before(dead) {
		return dead
	}
	p.fail(fmt.Errorf("no answer for %s", now.Sub(since).Round(time.Millisecond)))
	return time.Time{}
}

func (p *path) markStale(now time.Time) {
	s := p.s
	p.stale, p.staleSince = true, now
	p.rttAt = time.Time{} // a sample across the silence is no RTT
	p.ctr.Stalls++
	p.trouble.add(now)
	// What it carries goes out again elsewhere, if there is an elsewhere:
	// sent again on this path it would only follow the copy that TCP
	// still holds (a loaded machine makes a lone path look silent). If the
	// path dies, fail sends it all again anyway.
	n := 0
	for _, q := range s.paths {
		if q != p && q.usable() {
			n = s.send.requeue(p)
			break
		}
	}
	p.ctr.Retransmitted += uint64(n)
	// Its measured rate is kept: most stalls are one lost segment waiting
	// for TCP's retransmission timer, after which the path is as fast as
	// before. A rate nothing confirms expires soon enough (rateTTL).
	s.log.Info("path stale", "path", p.name, "silent_for", now.Sub(p.waitingSince).Round(time.Millisecond), "resent", n)
	s.wakeAll()
}

// watch keeps liveness checked while the writer is blocked in a write: on
// a link that went silent with a full socket buffer the write never
// returns, and only a check from outside can find the path stale, send its
// data elsewhere and, in the end, close it (which frees the writer).
func (p *path) watch(on bool) {
	s := p.s
	s.mu.Lock()
	defer s.mu.Unlock()
	p.writing = on
	if !on {
		if p.watchdog != nil {
			p.watchdog.Stop()
		}
		return
	}
	wait := p.staleAfter()
	if !p.checkAt.IsZero() {
		wait = min(wait, time.Until(p.checkAt))
	}
	if p.watchdog == nil {
		p.watchdog = time.AfterFunc(wait, p.watchdogFired)
	} else {
		p.watchdog.Reset(wait)
	}
}

func (p *path) watchdogFired() {
	s := p.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if !p.writing || p.dead || p.closing {
		return
	}
	next := p.checkLiveness(time.Now())
	if next.IsZero() || p.dead {
		return
	}
	p.checkAt = next
	p.watchdog.Reset(time.Until(next))
}
