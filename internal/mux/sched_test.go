package mux

import (
	"fmt"
	"testing"
)

// The scheduler never looks at schedItem.st: these tests leave it nil and
// tell items apart by pointer.

func schedAll(*schedItem) bool { return true }

// schedPop pops one item and checks it and its turn.
func schedPop(t *testing.T, s *scheduler, want *schedItem, wantTurn int) {
	t.Helper()
	it, turn := s.pop(schedAll)
	if it != want || turn != wantTurn {
		t.Fatalf("pop = %p turn %d, want %p turn %d", it, turn, want, wantTurn)
	}
	if it != nil && it.queued {
		t.Fatalf("popped item still marked queued")
	}
}

// schedOrder pops until empty and names the items served.
func schedOrder(s *scheduler, names map[*schedItem]string) []string {
	var got []string
	for {
		it, _ := s.pop(schedAll)
		if it == nil {
			return got
		}
		got = append(got, names[it])
	}
}

func TestSchedEmpty(t *testing.T) {
	var s scheduler
	calls := 0
	it, turn := s.pop(func(*schedItem) bool { calls++; return true })
	if it != nil || turn != 0 || calls != 0 {
		t.Fatalf("empty pop = %v %d, ok called %d times", it, turn, calls)
	}
}

func TestSchedFreshBeforeBulk(t *testing.T) {
	var s scheduler
	bulk1 := &schedItem{burst: freshBytes}
	bulk2 := &schedItem{burst: 10 * freshBytes}
	fresh1 := &schedItem{}
	fresh2 := &schedItem{burst: freshBytes - 1}
	names := map[*schedItem]string{bulk1: "bulk1", bulk2: "bulk2", fresh1: "fresh1", fresh2: "fresh2"}
	// The bulk items are ready first; the fresh ones still go first.
	for _, it := range []*schedItem{bulk1, fresh1, bulk2, fresh2} {
		s.ready(it)
		if !it.queued {
			t.Fatalf("%s not marked queued", names[it])
		}
	}
	if s.fresh.len() != 2 || s.bulk.len() != 2 {
		t.Fatalf("fresh %d bulk %d", s.fresh.len(), s.bulk.len())
	}
	got := fmt.Sprint(schedOrder(&s, names))
	if want := "[fresh1 fresh2 bulk1 bulk2]"; got != want {
		t.Fatalf("order %s, want %s", got, want)
	}
	// A fresh item ready while bulk ones wait is served before them.
	s.ready(bulk1)
	s.ready(bulk2)
	schedPop(t, &s, bulk1, quantum)
	s.ready(fresh1)
	schedPop(t, &s, fresh1, freshBytes)
	schedPop(t, &s, bulk2, quantum)
	schedPop(t, &s, nil, 0)
}

// The turn of a fresh item is what it has left before it turns bulk; the
// turn of a bulk item is quantum.
func TestSchedTurnSizes(t *testing.T) {
	tests := []struct {
		burst int
		turn  int
		bulk  bool
	}{
		{0, freshBytes, false},
		{1, freshBytes - 1, false},
		{1000, freshBytes - 1000, false},
		{freshBytes - 1, 1, false},
		{freshBytes, quantum, true},
		{freshBytes + 1, quantum, true},
		{100 * freshBytes, quantum, true},
	}
	for _, tt := range tests {
		var s scheduler
		it := &schedItem{burst: tt.burst}
		s.ready(it)
		if got := s.bulk.len() == 1; got != tt.bulk {
			t.Errorf("burst %d: in bulk %v, want %v", tt.burst, got, tt.bulk)
		}
		got, turn := s.pop(schedAll)
		if got != it || turn != tt.turn {
			t.Errorf("burst %d: turn %d, want %d", tt.burst, turn, tt.turn)
		}
	}
	if freshBytes != 64<<10 || quantum != 32<<10 {
		t.Fatalf("freshBytes %d quantum %d", freshBytes, quantum)
	}
}

// A stream that sent freshBytes since it was last idle is bulk at its
// next ready, and fresh again once it went idle.
func TestSchedFreshTurnsBulk(t *testing.T) {
	var s scheduler
	it := &schedItem{}
	s.ready(it)
	schedPop(t, &s, it, freshBytes)
	s.sent(it, 40<<10, false)
	if it.burst != 40<<10 {
		t.Fatalf("burst %d", it.burst)
	}
	s.ready(it)
	if s.fresh.len() != 1 {
		t.Fatal("not fresh after 40 KiB")
	}
	schedPop(t, &s, it, freshBytes-40<<10)
	s.sent(it, freshBytes-40<<10, false) // the whole turn: now at freshBytes
	s.ready(it)
	if s.fresh.len() != 0 || s.bulk.len() != 1 {
		t.Fatalf("after freshBytes: fresh %d bulk %d", s.fresh.len(), s.bulk.len())
	}
	schedPop(t, &s, it, quantum)
	s.sent(it, quantum, false)
	if it.burst != freshBytes+quantum {
		t.Fatalf("burst %d", it.burst)
	}
	// Idle: burst back to 0, whatever was sent in the last turn.
	s.sent(it, 100, true)
	if it.burst != 0 {
		t.Fatalf("burst %d after idle", it.burst)
	}
	s.ready(it)
	if s.fresh.len() != 1 || s.bulk.len() != 0 {
		t.Fatalf("after idle: fresh %d bulk %d", s.fresh.len(), s.bulk.len())
	}
	schedPop(t, &s, it, freshBytes)
}

func TestSchedSentIdle(t *testing.T) {
	tests := []struct {
		burst, n  int
		idle      bool
		wantBurst int
	}{
		{0, 100, false, 100},
		{100, 0, false, 100},
		{100, 50, true, 0},
		{freshBytes * 3, 0, true, 0},
		{freshBytes - 1, 1, false, freshBytes},
	}
	for _, tt := range tests {
		var s scheduler
		it := &schedItem{burst: tt.burst}
		s.sent(it, tt.n, tt.idle)
		if it.burst != tt.wantBurst {
			t.Errorf("burst %d, sent(%d, %v): burst %d, want %d", tt.burst, tt.n, tt.idle, it.burst, tt.wantBurst)
		}
		if it.queued || s.fresh.len() != 0 || s.bulk.len() != 0 {
			t.Errorf("sent queued something")
		}
	}
}

// Bulk items share by turns: A B C A B C.
func TestSchedBulkRoundRobin(t *testing.T) {
	var s scheduler
	a := &schedItem{burst: freshBytes}
	b := &schedItem{burst: freshBytes}
	c := &schedItem{burst: freshBytes}
	names := map[*schedItem]string{a: "A", b: "B", c: "C"}
	s.ready(a)
	s.ready(b)
	s.ready(c)
	var got []string
	for range 9 {
		it, turn := s.pop(schedAll)
		if it == nil || turn != quantum {
			t.Fatalf("pop = %v turn %d", it, turn)
		}
		got = append(got, names[it])
		s.sent(it, turn, false)
		s.ready(it) // still has data
	}
	if g, want := fmt.Sprint(got), "[A B C A B C A B C]"; g != want {
		t.Fatalf("order %s, want %s", g, want)
	}
}

// Fresh items also take turns, and one that turns bulk goes behind the
// bulk items already waiting.
func TestSchedFreshRoundRobin(t *testing.T) {
	var s scheduler
	old := &schedItem{burst: freshBytes}
	a := &schedItem{}
	b := &schedItem{}
	names := map[*schedItem]string{old: "old", a: "A", b: "B"}
	s.ready(old)
	s.ready(a)
	s.ready(b)
	var got []string
	for range 6 {
		it, turn := s.pop(schedAll)
		if it == nil {
			break
		}
		got = append(got, names[it])
		// Each sends half of freshBytes per fresh turn, a quantum per
		// bulk turn, and stays ready.
		s.sent(it, min(turn, freshBytes/2), false)
		s.ready(it)
	}
	// A and B each get two fresh turns (32 KiB each) and then are bulk,
	// behind old.
	if g, want := fmt.Sprint(got), "[A B A B old A]"; g != want {
		t.Fatalf("order %s, want %s", g, want)
	}
}

func TestSchedReadyTwice(t *testing.T) {
	var s scheduler
	a := &schedItem{}
	b := &schedItem{burst: freshBytes}
	s.ready(a)
	s.ready(a)
	s.ready(b)
	s.ready(b)
	s.ready(a)
	if s.fresh.len() != 1 || s.bulk.len() != 1 {
		t.Fatalf("fresh %d bulk %d, want 1 1", s.fresh.len(), s.bulk.len())
	}
	schedPop(t, &s, a, freshBytes)
	schedPop(t, &s, b, quantum)
	schedPop(t, &s, nil, 0)
	// Once popped, ready queues it again.
	s.ready(a)
	schedPop(t, &s, a, freshBytes)
}

func TestSchedPopDrops(t *testing.T) {
	var s scheduler
	a := &schedItem{}
	b := &schedItem{}
	c := &schedItem{burst: freshBytes}
	d := &schedItem{burst: freshBytes}
	names := map[*schedItem]string{a: "A", b: "B", c: "C", d: "D"}
	for _, it := range []*schedItem{a, b, c, d} {
		s.ready(it)
	}
	var asked []string
	drop := map[*schedItem]bool{a: true, b: true, c: true}
	it, turn := s.pop(func(it *schedItem) bool {
		asked = append(asked, names[it])
		if it.queued {
			t.Errorf("%s still queued when asked", names[it])
		}
		return !drop[it]
	})
	if it != d || turn != quantum {
		t.Fatalf("pop = %p %d, want D", it, turn)
	}
	if g, want := fmt.Sprint(asked), "[A B C D]"; g != want {
		t.Fatalf("asked %s, want %s", g, want)
	}
	for _, it := range []*schedItem{a, b, c, d} {
		if it.queued {
			t.Fatalf("%s still queued", names[it])
		}
	}
	if s.fresh.len() != 0 || s.bulk.len() != 0 {
		t.Fatalf("fresh %d bulk %d", s.fresh.len(), s.bulk.len())
	}
	// Dropped items can be made ready again.
	s.ready(b)
	s.ready(a)
	if g, want := fmt.Sprint(schedOrder(&s, names)), "[B A]"; g != want {
		t.Fatalf("order %s, want %s", g, want)
	}
	// When ok drops everything, pop returns nil and empties both queues.
	s.ready(a)
	s.ready(c)
	it, turn = s.pop(func(*schedItem) bool { return false })
	if it != nil || turn != 0 || a.queued || c.queued || s.fresh.len() != 0 || s.bulk.len() != 0 {
		t.Fatalf("drop all: %v %d", it, turn)
	}
}

// A stale entry (the item was dropped by the caller's own bookkeeping and
// is no longer ready) is skipped, and the items behind it keep their order.
func TestSchedPopSkipsInOrder(t *testing.T) {
	var s scheduler
	items := make([]*schedItem, 5)
	names := map[*schedItem]string{}
	for i := range items {
		items[i] = &schedItem{}
		names[items[i]] = fmt.Sprint(i)
		s.ready(items[i])
	}
	stale := map[*schedItem]bool{items[1]: true, items[3]: true}
	var got []string
	for {
		it, _ := s.pop(func(it *schedItem) bool { return !stale[it] })
		if it == nil {
			break
		}
		got = append(got, names[it])
	}
	if g, want := fmt.Sprint(got), "[0 2 4]"; g != want {
		t.Fatalf("order %s, want %s", g, want)
	}
}

func TestSchedQueueGrowsFIFO(t *testing.T) {
	var q queue
	if q.pop() != nil || q.len() != 0 {
		t.Fatal("empty queue")
	}
	items := make([]*schedItem, 100)
	for i := range items {
		items[i] = &schedItem{burst: i}
	}
	for i, it := range items {
		q.push(it)
		if q.len() != i+1 {
			t.Fatalf("len %d after %d pushes", q.len(), i+1)
		}
	}
	if len(q.buf) < 100 {
		t.Fatalf("buffer of %d", len(q.buf))
	}
	for i := range items {
		if it := q.pop(); it != items[i] {
			t.Fatalf("pop %d: got %+v", i, it)
		}
	}
	if q.pop() != nil || q.len() != 0 {
		t.Fatal("not empty")
	}
}

// Pushes and pops that wrap around the ring, with growth while wrapped,
// keep FIFO order.
func TestSchedQueueWrapAround(t *testing.T) {
	var q queue
	var next, want int // next item number to push, next expected out
	push := func(n int) {
		for range n {
			q.push(&schedItem{burst: next})
			next++
		}
	}
	popN := func(n int) {
		t.Helper()
		for range n {
			it := q.pop()
			if it == nil || it.burst != want {
				t.Fatalf("pop: got %+v, want item %d (len %d head %d cap %d)", it, want, q.len(), q.head, len(q.buf))
			}
			want++
		}
	}
	push(8)
	if len(q.buf) != 8 {
		t.Fatalf("first buffer of %d, want 8", len(q.buf))
	}
	popN(5)
	push(5) // wraps: head 5, items at 5,6,7,0,1,2,3,4
	if len(q.buf) != 8 || q.len() != 8 || q.head != 5 {
		t.Fatalf("cap %d len %d head %d", len(q.buf), q.len(), q.head)
	}
	push(1) // grows while wrapped
	if len(q.buf) != 16 || q.head != 0 {
		t.Fatalf("after growth: cap %d head %d", len(q.buf), q.head)
	}
	popN(9)
	if q.len() != 0 {
		t.Fatalf("len %d", q.len())
	}
	// Many rounds around a ring that no longer grows.
	for round := range 50 {
		push(round%16 + 1)
		popN(round%16 + 1)
	}
	if len(q.buf) != 16 {
		t.Fatalf("cap %d, want 16: steady use must not grow it", len(q.buf))
	}
	// Growth again, from a wrapped position, to 32 and 64.
	push(10)
	popN(7)
	push(40)
	if len(q.buf) != 64 {
		t.Fatalf("cap %d, want 64", len(q.buf))
	}
	popN(43)
	if q.pop() != nil || q.len() != 0 {
		t.Fatal("not empty")
	}
	// Popped slots are cleared, so the queue holds no stale pointers.
	for i, it := range q.buf {
		if it != nil {
			t.Fatalf("slot %d still holds item %d", i, it.burst)
		}
	}
}

// The scheduler keeps its order when its queues grow past 8 items.
func TestSchedManyItems(t *testing.T) {
	var s scheduler
	names := map[*schedItem]string{}
	var want []string
	for i := range 20 {
		it := &schedItem{burst: freshBytes}
		names[it] = fmt.Sprint(i)
		want = append(want, names[it])
		s.ready(it)
	}
	// Two full rounds.
	var got []string
	for range 40 {
		it, _ := s.pop(schedAll)
		got = append(got, names[it])
		s.ready(it)
	}
	if g, w := fmt.Sprint(got), fmt.Sprint(append(want, want...)); g != w {
		t.Fatalf("order %s, want %s", g, w)
	}
}
