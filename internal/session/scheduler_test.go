package session

import (
	"testing"
	"time"
)

// These tests drive the scheduler on a Session from New with hand-made
// paths: no connection and no goroutine. nextChunk, rescue, room and pace
// touch only the fields set here (conn is used by the path's loops alone).

const testChunk = 1000 // ChunkSize of the scheduler tests

// schedSession returns a session with no paths, whose grace timer is
// stopped at the end of the test.
func schedSession(t *testing.T, cfg Config) *Session {
	t.Helper()
	if cfg.ChunkSize == 0 {
		cfg.ChunkSize = testChunk
	}
	if cfg.PeerWindow == 0 {
		cfg.PeerWindow = 1 << 30 // no flow control unless a test wants it
	}
	s := New(cfg)
	t.Cleanup(func() {
		s.mu.Lock()
		s.stopTimers()
		s.mu.Unlock()
	})
	return s
}

// schedPath adds a path to s as AddPath would, without its connection and
// goroutines. rate 0 leaves the rate unknown; a known one is a fresh sample.
func schedPath(s *Session, name string, rtt time.Duration, rate float64) *path {
	p := &path{
		s:       s,
		name:    name,
		ctr:     &Counters{Name: name},
		trouble: &trouble{},
		wake:    make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
	p.est.init(rtt)
	if rate > 0 {
		p.est.samples[0], p.est.next, p.est.rate = rate, 1, rate
		p.est.lastSample = time.Now()
	}
	p.cursor = s.send.una
	s.paths = append(s.paths, p)
	return p
}

// fast and slow are the two kinds of path most tests use.
func fastPath(s *Session) *path { return schedPath(s, "fast", time.Millisecond, 1e8) }
func slowPath(s *Session) *path { return schedPath(s, "slow", 50*time.Millisecond, 1e6) }

// queue writes n bytes to s's send buffer.
func queue(s *Session, n int) { fill(&s.send, s.cfg.ChunkSize, n) }

// next calls nextChunk with s.mu held, as the path's writer does, and
// accounts the chunk as the writer would.
func next(s *Session, p *path) *chunk {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.nextChunk(p)
	if c != nil {
		p.sent += uint64(len(c.data))
	}
	return c
}

func TestNextChunkCwnd(t *testing.T) {
	tests := []struct {
		name     string
		rate     float64
		inflight func(cwnd uint64) uint64
		want     bool
	}{
		{"nothing in flight", 1e7, func(uint64) uint64 { return 0 }, true},
		{"just below the window", 1e7, func(w uint64) uint64 { return w - 1 }, true},
		{"at the window", 1e7, func(w uint64) uint64 { return w }, false},
		{"beyond the window", 1e7, func(w uint64) uint64 { return w + 5000 }, false},
		{"unknown rate, at the initial window", 0, func(uint64) uint64 { return initialCwnd }, false},
		{"unknown rate, below the initial window", 0, func(uint64) uint64 { return initialCwnd - testChunk }, true},
	}
	for _, tc := range tests {
		for _, redundant := range []bool{false, true} {
			name := tc.name
			if redundant {
				name += ", redundant"
			}
			t.Run(name, func(t *testing.T) {
				s := schedSession(t, Config{Redundant: redundant})
				p := schedPath(s, "p", 10*time.Millisecond, tc.rate)
				queue(s, 10*testChunk)
				cwnd := p.est.cwnd()
				if tc.rate == 0 && cwnd != initialCwnd {
					t.Fatalf("cwnd %d with unknown rate, want %d", cwnd, initialCwnd)
				}
				p.delivered = 1 << 20
				p.sent = p.delivered + tc.inflight(cwnd)
				c := next(s, p)
				if (c != nil) != tc.want {
					t.Fatalf("got chunk %v, want one: %v (inflight %d, cwnd %d)", c != nil, tc.want, p.sent-p.delivered, cwnd)
				}
				if !tc.want {
					if !p.est.full {
						t.Fatal("a path at its window was not marked full")
					}
					if s.send.unsent != 0 {
						t.Fatal("a chunk was taken by a path at its window")
					}
				}
			})
		}
	}
}

func TestNextChunkRetransFirst(t *testing.T) {
	s := schedSession(t, Config{})
	fast, slow := fastPath(s), slowPath(s)
	gone := &path{} // a path that failed; not in s.paths
	queue(s, 6*testChunk)
	for _, on := range []*path{gone, fast, gone} {
		c := s.send.nextNew(^uint64(0))
		c.sentOn, c.sentAt = on, time.Now()
		s.send.markSent()
	}
	fast.sent = testChunk
	s.send.requeue(gone) // chunks 0 and 2

	// Even the slow path, which gets no new data while the backlog is
	// this short, takes the chunks waiting to be sent again, oldest first.
	for _, want := range []uint64{0, 2 * testChunk} {
		c := next(s, slow)
		if c == nil || c.seq != want {
			t.Fatalf("slow path got %v, want the retransmission of %d", c, want)
		}
		if c.sentOn != slow || !c.resent || c.sentAt.IsZero() {
			t.Fatalf("retransmitted chunk: sentOn %p resent %v sentAt %v", c.sentOn, c.resent, c.sentAt)
		}
	}
	if s.send.unsent != 3 {
		t.Fatalf("retransmissions moved unsent to %d, want 3", s.send.unsent)
	}
	if c := next(s, slow); c != nil {
		t.Fatalf("slow path got new chunk %d with a short backlog", c.seq)
	}
	if c := next(s, fast); c == nil || c.seq != 3*testChunk || c.resent {
		t.Fatalf("fast path got %v, want new chunk %d", c, 3*testChunk)
	}
}

func TestNextChunkEarliestCompletion(t *testing.T) {
	// fast: 1 ms, 1e8 B/s. slow: 50 ms, 1e6 B/s, so a chunk it takes
	// arrives in 25 ms + 1 ms. The fast path delivers the whole backlog B
	// in 0.5 ms + B/1e8 s, clearly sooner (x1.25 + 0.5 ms) while B is below
	// about 2 MB.
	tests := []struct {
		name       string
		backlog    int
		peerWindow uint32
		fastState  func(p *path)
		slowGets   bool
	}{
		{name: "short backlog: slow path waits", backlog: 10_000},
		{name: "1 MB backlog: slow path waits", backlog: 1_000_000},
		{name: "deep backlog: slow path helps", backlog: 4_000_000, slowGets: true},
		{name: "deep backlog past the peer's window: slow path waits", backlog: 4_000_000, peerWindow: 64 << 10},
		{name: "fast path loaded: slow path helps", backlog: 10_000, slowGets: true,
			fastState: func(p *path) { p.sent = 3_000_000 }},
		{name: "fast path troubled: slow path helps", backlog: 10_000, slowGets: true,
			fastState: func(p *path) { p.trouble.score, p.trouble.at = 100, time.Now() }},
		{name: "fast path stale: slow path helps", backlog: 10_000, slowGets: true,
			fastState: func(p *path) { p.stale = true }},
		{name: "fast path closing: slow path helps", backlog: 10_000, slowGets: true,
			fastState: func(p *path) { p.closing = true }},
		{name: "fast path a backup: slow path helps", backlog: 10_000, slowGets: true,
			fastState: func(p *path) { p.backup = true }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := schedSession(t, Config{PeerWindow: tc.peerWindow})
			fast, slow := fastPath(s), slowPath(s)
			if tc.fastState != nil {
				tc.fastState(fast)
			}
			queue(s, tc.backlog)
			backlog := s.send.backlog()
			c := next(s, slow)
			if (c != nil) != tc.slowGets {
				t.Fatalf("slow path got a chunk: %v, want %v", c != nil, tc.slowGets)
			}
			if c == nil {
				if s.send.unsent != 0 || s.send.backlog() != backlog || s.send.chunks[0].sentOn != nil {
					t.Fatal("a chunk the slow path declined was marked sent")
				}
				if fast.usable() {
					if c := next(s, fast); c == nil || c.seq != 0 {
						t.Fatalf("fast path got %v, want chunk 0", c)
					}
				}
				return
			}
			if c.seq != 0 || c.sentOn != slow || c.resent || s.send.unsent != 1 {
				t.Fatalf("slow path got chunk %d sentOn %p resent %v, unsent %d", c.seq, c.sentOn, c.resent, s.send.unsent)
			}
			if s.send.backlog() != backlog-uint64(len(c.data)) {
				t.Fatalf("backlog %d, want %d", s.send.backlog(), backlog-uint64(len(c.data)))
			}
		})
	}
}

func TestNextChunkEqualPathsShare(t *testing.T) {
	// Paths of equal speed are never clearly sooner than each other: both
	// take chunks, in turn.
	s := schedSession(t, Config{})
	a := schedPath(s, "a", 10*time.Millisecond, 1e7)
	b := schedPath(s, "b", 10*time.Millisecond, 1e7)
	queue(s, 4*testChunk)
	for i, p := range []*path{a, b, a, b} {
		c := next(s, p)
		if c == nil || c.seq != uint64(i*testChunk) || c.sentOn != p {
			t.Fatalf("turn %d: got %v, want chunk %d on %s", i, c, i*testChunk, p.name)
		}
	}
	if c := next(s, a); c != nil {
		t.Fatalf("got chunk %d from an empty backlog", c.seq)
	}
}

func TestNextChunkPeerLimit(t *testing.T) {
	s := schedSession(t, Config{PeerWindow: 2500})
	p := schedPath(s, "p", 10*time.Millisecond, 1e7)
	queue(s, 5*testChunk)
	var ends []uint64
	for c := next(s, p); c != nil; c = next(s, p) {
		ends = append(ends, c.end())
	}
	if !equalU64(ends, []uint64{1000, 2000, 2500}) {
		t.Fatalf("chunks ending at %v, want [1000 2000 2500]: the last cut at the peer's limit", ends)
	}
	s.peerLimit = 10_000
	if c := next(s, p); c == nil || c.seq != 2500 || c.end() != 3000 {
		t.Fatalf("after the window opened: %v, want the rest of the cut chunk [2500, 3000)", c)
	}
}

func TestNextChunkBackup(t *testing.T) {
	tests := []struct {
		name       string
		primary    func(p *path) // nil: no primary path
		backupGets bool
	}{
		{"primary up", func(*path) {}, false},
		{"primary stale", func(p *path) { p.stale = true }, true},
		{"primary closing", func(p *path) { p.closing = true }, true},
		{"no primary", nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := schedSession(t, Config{})
			if tc.primary != nil {
				tc.primary(schedPath(s, "primary", 10*time.Millisecond, 1e7))
			}
			backup := schedPath(s, "backup", 10*time.Millisecond, 1e7)
			backup.backup = true
			queue(s, 10*testChunk)
			// Retransmissions too wait for the primary.
			gone := &path{}
			c := s.send.nextNew(^uint64(0))
			c.sentOn = gone
			s.send.markSent()
			s.send.requeue(gone)

			if s.primaryUp() == tc.backupGets {
				t.Fatalf("primaryUp %v", s.primaryUp())
			}
			if backup.usable() != tc.backupGets {
				t.Fatalf("backup usable %v, want %v", backup.usable(), tc.backupGets)
			}
			got := next(s, backup)
			if (got != nil) != tc.backupGets {
				t.Fatalf("backup got a chunk: %v, want %v", got != nil, tc.backupGets)
			}
			if got != nil && got.seq != 0 {
				t.Fatalf("backup got chunk %d, want the retransmission of 0", got.seq)
			}
		})
	}
}

func TestNextChunkStale(t *testing.T) {
	s := schedSession(t, Config{})
	p := schedPath(s, "p", 10*time.Millisecond, 1e7)
	queue(s, 3*testChunk)
	gone := &path{}
	c := s.send.nextNew(^uint64(0))
	c.sentOn = gone
	s.send.markSent()
	s.send.requeue(gone)
	p.stale = true
	p.rescueAt = time.Now()
	if c := next(s, p); c != nil {
		t.Fatalf("stale path got chunk %d", c.seq)
	}
	if len(s.send.retrans) != 1 || s.send.unsent != 1 {
		t.Fatalf("stale path changed the buffer: retrans %d unsent %d", len(s.send.retrans), s.send.unsent)
	}
	if !p.rescueAt.IsZero() {
		t.Fatal("rescueAt left set on a path that sends nothing")
	}
	p.stale = false // revived
	if c := next(s, p); c == nil || c.seq != 0 || !c.resent {
		t.Fatalf("revived path got %v, want the retransmission of 0", c)
	}
}

// equalPath is as fast as fastPath, with a smoothed RTT so long that
// nothing it carries is overdue during a test.
func equalPath(s *Session) *path {
	p := schedPath(s, "q", time.Millisecond, 1e8)
	p.est.srtt = time.Minute
	return p
}

func TestNextChunkRescue(t *testing.T) {
	type sent struct {
		on  string // "p" (the path asking), "q" (the other) or "" (unsent)
		age time.Duration
	}
	tests := []struct {
		name      string
		q         func(s *Session) *path
		chunks    []sent
		peerLimit uint64 // 0: no limit
		want      []int  // indexes of the chunks copied, in order, then nil
		rescueAt  int    // index of the chunk whose due time rescueAt holds; -1: zero
		finishing bool   // CloseWrite was called
	}{
		{
			name:      "finishing: the oldest chunks on a slower path are copied",
			q:         slowPath,
			chunks:    []sent{{on: "q"}, {on: "p"}, {on: "q"}},
			finishing: true,
			want:      []int{0, 2},
			rescueAt:  -1,
		},
		{
			name:     "nothing more to send, a slower healthy path: wait for the first due",
			q:        slowPath,
			chunks:   []sent{{on: "q"}, {on: "p"}, {on: "q"}},
			want:     nil,
			rescueAt: 0,
		},
		{
			name:     "nothing clearly sooner: wait for the first due",
			q:        equalPath,
			chunks:   []sent{{on: "q"}, {on: "q"}},
			want:     nil,
			rescueAt: 0,
		},
		{
			name: "an overdue chunk is copied even from an equal path",
			q:    equalPath,
			chunks: []sent{
				{on: "q", age: 0},
				{on: "q", age: time.Hour},
			},
			want:     []int{1},
			rescueAt: 0,
		},
		{
			name:      "the peer's window is full: rescue the slow path's chunk",
			q:         slowPath,
			chunks:    []sent{{on: "q"}, {on: "p"}, {}, {}},
			peerLimit: 2 * testChunk,
			want:      []int{0},
			rescueAt:  -1,
		},
		{
			name:     "only its own chunks: nothing",
			q:        slowPath,
			chunks:   []sent{{on: "p"}, {on: "p"}},
			want:     nil,
			rescueAt: -1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := schedSession(t, Config{})
			p := fastPath(s)
			q := tc.q(s)
			queue(s, len(tc.chunks)*testChunk)
			now := time.Now()
			var chunks []*chunk
			for _, sc := range tc.chunks {
				if sc.on == "" {
					break
				}
				c := s.send.nextNew(^uint64(0))
				c.sentAt = now.Add(-sc.age)
				c.sentOn = map[string]*path{"p": p, "q": q}[sc.on]
				c.sentOn.sent += uint64(len(c.data))
				s.send.markSent()
				chunks = append(chunks, c)
			}
			if tc.peerLimit > 0 {
				s.peerLimit = tc.peerLimit
			}
			s.finReq = tc.finishing
			unsent := s.send.unsent
			copied := uint64(0)
			for _, i := range tc.want {
				c := next(s, p)
				if c != chunks[i] {
					t.Fatalf("got %v, want a copy of chunk %d", c, i)
				}
				if !c.copied || c.sentOn != q || c.resent {
					t.Fatalf("copy of chunk %d: copied %v sentOn %p resent %v; want copied, still on q", i, c.copied, c.sentOn, c.resent)
				}
				copied += uint64(len(c.data))
			}
			mine := p.est.arrival(p.sent - p.delivered)
			if c := next(s, p); c != nil {
				t.Fatalf("got chunk %d, want nil after %d copies", c.seq, len(tc.want))
			}
			if p.ctr.Retransmitted != copied || p.ctr.Rescued != copied {
				t.Fatalf("Retransmitted %d, Rescued %d, want %d", p.ctr.Retransmitted, p.ctr.Rescued, copied)
			}
			if s.send.unsent != unsent {
				t.Fatal("rescue changed what was sent")
			}
			var want time.Time
			if tc.rescueAt >= 0 {
				c := chunks[tc.rescueAt]
				want = c.sentOn.est.dueBy(c.sentAt, mine)
			}
			if !p.rescueAt.Equal(want) {
				t.Fatalf("rescueAt %v, want %v", p.rescueAt, want)
			}
		})
	}
}

func TestRescueScanBound(t *testing.T) {
	// rescue looks at the oldest rescueScan chunks only.
	for _, tc := range []struct {
		at   int
		want bool
	}{{rescueScan - 1, true}, {rescueScan, false}} {
		s := schedSession(t, Config{})
		s.finReq = true // the last bytes: a copy is worth it
		p, q := fastPath(s), slowPath(s)
		queue(s, (rescueScan+4)*testChunk)
		var target *chunk
		for i := 0; i < rescueScan+4; i++ {
			c := s.send.nextNew(^uint64(0))
			c.sentOn, c.sentAt = p, time.Now()
			if i == tc.at {
				c.sentOn, target = q, c
			}
			c.sentOn.sent += uint64(len(c.data))
			s.send.markSent()
		}
		c := next(s, p)
		if got := c != nil && c == target; got != tc.want {
			t.Fatalf("slow path's chunk at index %d copied: %v, want %v", tc.at, got, tc.want)
		}
	}
}

func TestNextChunkRedundant(t *testing.T) {
	s := schedSession(t, Config{Redundant: true})
	fast, slow := fastPath(s), slowPath(s)
	queue(s, 3*testChunk)
	// The first path to ask takes new chunks; the other follows with the
	// same chunks: the earliest-completion rule does not apply.
	for _, p := range []*path{slow, fast} {
		for i := 0; i < 3; i++ {
			c := next(s, p)
			if c == nil || c.seq != uint64(i*testChunk) {
				t.Fatalf("%s: got %v, want chunk %d", p.name, c, i*testChunk)
			}
		}
		if c := next(s, p); c != nil {
			t.Fatalf("%s: got chunk %d past the end", p.name, c.seq)
		}
	}
	if !s.send.allSent() {
		t.Fatal("not all sent")
	}
	// A path that joins after an ACK starts at una.
	s.send.ack(2 * testChunk)
	late := schedPath(s, "late", time.Millisecond, 1e8)
	if c := next(s, late); c == nil || c.seq != 2*testChunk {
		t.Fatalf("late path got %v, want chunk %d", c, 2*testChunk)
	}
	// New bytes go to whichever path asks first, then to the others.
	queue(s, testChunk)
	for _, p := range []*path{fast, slow, late} {
		if c := next(s, p); c == nil || c.seq != 3*testChunk {
			t.Fatalf("%s: got %v, want chunk %d", p.name, c, 3*testChunk)
		}
	}
}

// pathSpec makes a path of a pace or room test.
type pathSpec struct {
	rtt                    time.Duration
	rate                   float64
	backup, stale, closing bool
}

func (ps pathSpec) add(s *Session) *path {
	p := schedPath(s, "p", ps.rtt, ps.rate)
	p.backup, p.stale, p.closing = ps.backup, ps.stale, ps.closing
	return p
}

func TestPace(t *testing.T) {
	fast := pathSpec{rtt: 10 * time.Millisecond, rate: 1e8} // cwnd 2e6, arrival(cwnd) 25 ms
	mid := pathSpec{rtt: 50 * time.Millisecond, rate: 1e7}  // cwnd 1e6, arrival(cwnd) 125 ms
	tests := []struct {
		name  string
		paths []pathSpec
		want  uint64
	}{
		{"no paths", nil, minPace},
		// 2 x 64 KiB/100 ms x (50 ms + 100 ms) = 192 KiB.
		{"one path of unknown rate", []pathSpec{{rtt: 100 * time.Millisecond}}, 192 << 10},
		{"one fast path", []pathSpec{fast}, 5_000_000},                      // 2 x 1e8 x 25 ms
		{"one mid path", []pathSpec{mid}, 2_500_000},                        // 2 x 1e7 x 125 ms
		{"both: sum of rates x longest", []pathSpec{fast, mid}, 27_500_000}, // 2 x 1.1e8 x 125 ms
		{"stale path left out", []pathSpec{{rtt: fast.rtt, rate: fast.rate, stale: true}, mid}, 2_500_000},
		{"closing path left out", []pathSpec{{rtt: fast.rtt, rate: fast.rate, closing: true}, mid}, 2_500_000},
		{"backup left out while a primary is up", []pathSpec{{rtt: fast.rtt, rate: fast.rate, backup: true}, mid}, 2_500_000},
		{"backup counts with no primary up", []pathSpec{{rtt: fast.rtt, rate: fast.rate, backup: true}, {rtt: mid.rtt, rate: mid.rate, stale: true}}, 5_000_000},
		{"only unusable paths", []pathSpec{{rtt: fast.rtt, rate: fast.rate, stale: true}}, minPace},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := schedSession(t, Config{})
			for _, ps := range tc.paths {
				ps.add(s)
			}
			s.mu.Lock()
			got := s.pace()
			s.mu.Unlock()
			if d := float64(got) - float64(tc.want); d > float64(tc.want)*1e-6 || -d > float64(tc.want)*1e-6 {
				t.Fatalf("pace %d, want %d", got, tc.want)
			}
			if got < minPace {
				t.Fatalf("pace %d below minPace", got)
			}
		})
	}
}

func TestPaceGrowsWithRate(t *testing.T) {
	var last uint64
	for _, rate := range []float64{1e6, 1e7, 5e7, 1e8, 1e9} {
		s := schedSession(t, Config{})
		schedPath(s, "p", 20*time.Millisecond, rate)
		s.mu.Lock()
		pace := s.pace()
		s.mu.Unlock()
		if pace < last {
			t.Fatalf("pace %d at rate %v, below %d at a lower rate", pace, rate, last)
		}
		last = pace
	}
	if last <= minPace {
		t.Fatalf("pace %d at 1 GB/s, want above minPace", last)
	}
}

func TestRoom(t *testing.T) {
	tests := []struct {
		name       string
		sendBuffer int
		paths      []pathSpec
		written    int
		sent       int // bytes of it sent (whole chunks)
		requeued   int // bytes of the sent ones queued again
		acked      uint64
		want       func(s *Session) int
	}{
		{name: "empty, no paths: minPace", want: func(*Session) int { return minPace }},
		{name: "backlog below pace", written: 100_000, want: func(*Session) int { return minPace - 100_000 }},
		{name: "backlog at pace", written: minPace, want: func(*Session) int { return 0 }},
		{name: "backlog beyond pace", written: minPace + 50_000, want: func(*Session) int { return 0 }},
		{name: "sent bytes leave the backlog", written: minPace, sent: 100_000,
			want: func(*Session) int { return 100_000 }},
		{name: "retransmissions count in the backlog", written: minPace, sent: 100_000, requeued: 40_000,
			want: func(*Session) int { return 60_000 }},
		{name: "small send buffer bounds it", sendBuffer: 64 << 10,
			want: func(*Session) int { return 64 << 10 }},
		{name: "unacked sent bytes use the buffer", sendBuffer: 64 << 10, written: 60_000, sent: 60_000,
			want: func(*Session) int { return 64<<10 - 60_000 }},
		{name: "full buffer, nothing unsent", sendBuffer: 64 << 10, written: 64 << 10, sent: 64 << 10,
			want: func(*Session) int { return 0 }},
		{name: "acks make room", sendBuffer: 64 << 10, written: 64 << 10, sent: 64 << 10, acked: 10_000,
			want: func(*Session) int { return 10_000 }},
		{name: "fast path: the buffer bounds it", sendBuffer: 4 << 20,
			paths: []pathSpec{{rtt: 10 * time.Millisecond, rate: 1e8}},
			want:  func(*Session) int { return 4 << 20 }},
		{name: "fast path, big buffer: pace bounds it", sendBuffer: 64 << 20, written: 1_000_000,
			paths: []pathSpec{{rtt: 10 * time.Millisecond, rate: 1e8}},
			want:  func(s *Session) int { return int(s.pace()) - 1_000_000 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := schedSession(t, Config{SendBuffer: tc.sendBuffer})
			for _, ps := range tc.paths {
				ps.add(s)
			}
			queue(s, tc.written)
			// The last tc.requeued bytes sent were on a path that failed.
			other, gone := &path{}, &path{}
			for sent := 0; sent < tc.sent; {
				c := s.send.nextNew(^uint64(0))
				c.sentOn = other
				if sent >= tc.sent-tc.requeued {
					c.sentOn = gone
				}
				s.send.markSent()
				sent += len(c.data)
			}
			s.send.requeue(gone)
			s.send.ack(tc.acked)

			s.mu.Lock()
			defer s.mu.Unlock()
			room, pace := s.roomPace()
			if r := s.room(); r != room {
				t.Fatalf("room %d, roomPace %d", r, room)
			}
			if want := tc.want(s); room != want {
				t.Fatalf("room %d, want %d (backlog %d, buffered %d, pace %d)", room, want, s.send.backlog(), s.send.buffered(), pace)
			}
			space := s.cfg.SendBuffer - s.send.buffered()
			if room > space {
				t.Fatalf("room %d beyond the send buffer's space %d", room, space)
			}
			if s.send.backlog() >= pace && room != 0 {
				t.Fatalf("room %d with backlog %d at pace %d", room, s.send.backlog(), pace)
			}
		})
	}
}

func TestRoomPastSendBuffer(t *testing.T) {
	// ReadFrom may push a chunk into the last bit of room: the buffer then
	// holds more than SendBuffer, and there is no room.
	s := schedSession(t, Config{SendBuffer: 64 << 10})
	queue(s, 65_000)
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.room(); r != 64<<10-65_000 {
		t.Fatalf("room %d, want %d", r, 64<<10-65_000)
	}
	// ReadFrom saw room, read a whole chunk, and pushes it.
	buf := make([]byte, testChunk)
	if !s.send.push(&buf, testChunk, testChunk) {
		t.Fatal("push did not keep a whole chunk")
	}
	if s.send.buffered() <= s.cfg.SendBuffer {
		t.Fatalf("buffered %d, want past %d", s.send.buffered(), s.cfg.SendBuffer)
	}
	if r := s.room(); r > 0 {
		t.Fatalf("room %d past the send buffer", r)
	}
}

func TestWakeWriter(t *testing.T) {
	// A writer is woken once room reaches min(SendBuffer/8, pace/4): here
	// minPace/4 = 64 KiB of the 4 MiB buffer's 512 KiB.
	tests := []struct {
		name    string
		backlog int
		woken   bool
	}{
		{"empty", 0, true},
		{"room exactly the threshold", minPace - minPace/4, true},
		{"room below the threshold", minPace - minPace/4 + 1, false},
		{"no room", minPace, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := schedSession(t, Config{})
			queue(s, tc.backlog)
			s.mu.Lock()
			s.wakeWriter()
			s.mu.Unlock()
			woken := false
			select {
			case <-s.writable:
				woken = true
			default:
			}
			if woken != tc.woken {
				t.Fatalf("writer woken %v, want %v", woken, tc.woken)
			}
		})
	}
}

func TestNextChunkWakesWriter(t *testing.T) {
	// Taking chunks off a backlog at pace wakes a waiting writer once
	// enough room opened.
	s := schedSession(t, Config{})
	p := schedPath(s, "p", 100*time.Millisecond, 0) // pace: minPace
	queue(s, minPace)
	s.mu.Lock()
	pace := s.pace()
	s.mu.Unlock()
	if pace != minPace {
		t.Skipf("pace %d: this test needs the backlog at pace", pace)
	}
	taken := 0
	for {
		select {
		case <-s.writable:
			// The room is what was taken: woken at the first chunk that
			// made it reach the threshold.
			if taken < minPace/4 || taken >= minPace/4+testChunk {
				t.Fatalf("writer woken with %d bytes of room, want the first chunk past %d", taken, minPace/4)
			}
			return
		default:
		}
		c := next(s, p)
		if c == nil {
			t.Fatal("backlog drained and no writer woken")
		}
		taken += len(c.data)
		p.delivered = p.sent // delivered at once: the window never fills
	}
}

func TestClearlySooner(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		a, b time.Duration
		want bool
	}{
		{10 * ms, 10 * ms, false},
		{10 * ms, 12 * ms, false},  // within 25% + 0.5 ms
		{10 * ms, 13 * ms, false},  // exactly the margin
		{10 * ms, 13*ms + 1, true}, // just beyond
		{10 * ms, 100 * ms, true},
		{0, 500 * time.Microsecond, false},
		{0, 501 * time.Microsecond, true},
		{20 * ms, 10 * ms, false},
	}
	for _, tc := range tests {
		if got := clearlySooner(tc.a, tc.b); got != tc.want {
			t.Errorf("clearlySooner(%v, %v) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

// A path that sat idle since it joined, then gets data, samples its rate
// from when it got the data, not from when it joined: its first sample is
// what it delivers, not those bytes over its idle time.
func TestIdlePathFirstSample(t *testing.T) {
	s := schedSession(t, Config{})
	p := schedPath(s, "p", 10*time.Millisecond, 0)
	p.est.lastStamp = time.Now().Add(-time.Hour) // joined long ago
	queue(s, 10*testChunk)
	start := time.Now()
	if next(s, p) == nil {
		t.Fatal("an idle path got nothing")
	}
	if p.est.lastStamp.Before(start) {
		t.Fatalf("the sampling interval starts %v, before the path got data", p.est.lastStamp)
	}
	// Once busy, a later chunk does not restart it.
	stamp := p.est.lastStamp
	if next(s, p) == nil {
		t.Fatal("no second chunk")
	}
	if p.est.lastStamp != stamp {
		t.Fatal("a busy path's sampling interval restarted")
	}
}
