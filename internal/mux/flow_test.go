package mux

import (
	"math"
	"testing"
	"time"
)

// flowT0 is the time the flow tests start at; they never read the clock.
var flowT0 = time.Unix(1_700_000_000, 0)

func TestFlowNewRecvWindow(t *testing.T) {
	tests := []struct {
		size, max uint32
		want      recvWindow
	}{
		{100, 400, recvWindow{size: 100, max: 400, limit: 100}},
		{100, 100, recvWindow{size: 100, max: 100, limit: 100}},
		// A max below the size is the size: no growth.
		{100, 0, recvWindow{size: 100, max: 100, limit: 100}},
		{100, 50, recvWindow{size: 100, max: 100, limit: 100}},
		{math.MaxUint32, math.MaxUint32, recvWindow{size: math.MaxUint32, max: math.MaxUint32, limit: math.MaxUint32}},
	}
	for _, tt := range tests {
		if got := newRecvWindow(tt.size, tt.max); got != tt.want {
			t.Errorf("newRecvWindow(%d, %d) = %+v, want %+v", tt.size, tt.max, got, tt.want)
		}
	}
}

func TestFlowRecvWindowReceive(t *testing.T) {
	tests := []struct {
		name  string
		sizes []int
		want  []bool
	}{
		{"up to the limit", []int{60, 40}, []bool{true, true}},
		{"one byte past", []int{100, 1}, []bool{true, false}},
		{"at once past", []int{101}, []bool{false}},
		{"empty", []int{0, 100, 0}, []bool{true, true, true}},
		{"stays past", []int{99, 2, 0}, []bool{true, false, false}},
	}
	for _, tt := range tests {
		w := newRecvWindow(100, 1000)
		for i, n := range tt.sizes {
			if got := w.receive(n); got != tt.want[i] {
				t.Errorf("%s: receive #%d (%d) = %v, want %v", tt.name, i, n, got, tt.want[i])
			}
		}
	}
}

// flowStep is one call on a recvWindow: receive n bytes, or consume n
// bytes at flowT0+at with rtt; then the expected results.
type flowStep struct {
	recv    int  // receive recv bytes first (0: none)
	recvOK  bool // what receive returns, if recv > 0
	consume int
	at      time.Duration
	rtt     time.Duration
	inc     uint32 // what consume returns
	size    uint64 // w.size after
	limit   uint64 // w.limit after
}

func flowRun(t *testing.T, name string, w recvWindow, steps []flowStep) {
	t.Helper()
	for i, s := range steps {
		if s.recv > 0 {
			if ok := w.receive(s.recv); ok != s.recvOK {
				t.Fatalf("%s: step %d: receive(%d) = %v, want %v", name, i, s.recv, ok, s.recvOK)
			}
		}
		inc := w.consume(s.consume, flowT0.Add(s.at), s.rtt)
		if inc != s.inc || w.size != s.size || w.limit != s.limit {
			t.Fatalf("%s: step %d: consume(%d, +%v, rtt %v) = %d size %d limit %d; want %d size %d limit %d",
				name, i, s.consume, s.at, s.rtt, inc, w.size, w.limit, s.inc, s.size, s.limit)
		}
		if w.buffered() != w.received-w.consumed {
			t.Fatalf("%s: step %d: buffered %d", name, i, w.buffered())
		}
	}
}

func TestFlowRecvWindowConsume(t *testing.T) {
	const rtt = 10 * time.Millisecond
	tests := []struct {
		name  string
		w     recvWindow
		steps []flowStep
	}{
		{
			// Nothing is granted until half the window (50) is free; then
			// all the free room is, and the limit moves by it.
			name: "half window",
			w:    newRecvWindow(100, 100),
			steps: []flowStep{
				{recv: 100, recvOK: true, consume: 10, inc: 0, size: 100, limit: 100},
				{consume: 39, inc: 0, size: 100, limit: 100},
				{consume: 1, inc: 50, size: 100, limit: 150},
				{recv: 50, recvOK: true, consume: 49, inc: 0, size: 100, limit: 150},
				{consume: 50, inc: 99, size: 100, limit: 249},
				{recv: 99, recvOK: true, consume: 0, inc: 0, size: 100, limit: 249},
				{consume: 99, inc: 99, size: 100, limit: 348},
			},
		},
		{
			// An odd size: half is rounded down.
			name: "odd size",
			w:    newRecvWindow(7, 7),
			steps: []flowStep{
				{recv: 7, recvOK: true, consume: 2, inc: 0, size: 7, limit: 7},
				{consume: 1, inc: 3, size: 7, limit: 10},
			},
		},
		{
			// A fast reader: each half window within 2 rtt of the last
			// grant doubles the size, until max.
			name: "auto-tuning",
			w:    newRecvWindow(100, 400),
			steps: []flowStep{
				// The first grant never grows: there is no previous one.
				{recv: 100, recvOK: true, consume: 50, at: 0, rtt: rtt, inc: 50, size: 100, limit: 150},
				{recv: 50, recvOK: true, consume: 50, at: 15 * time.Millisecond, rtt: rtt, inc: 150, size: 200, limit: 300},
				{recv: 150, recvOK: true, consume: 100, at: 30 * time.Millisecond, rtt: rtt, inc: 300, size: 400, limit: 600},
				// At max: the grant is the free room only.
				{recv: 300, recvOK: true, consume: 200, at: 35 * time.Millisecond, rtt: rtt, inc: 200, size: 400, limit: 800},
				{recv: 200, recvOK: true, consume: 300, at: 36 * time.Millisecond, rtt: rtt, inc: 300, size: 400, limit: 1100},
			},
		},
		{
			// Growth stops at max even when doubling would pass it.
			name: "max not a power of two",
			w:    newRecvWindow(100, 250),
			steps: []flowStep{
				{recv: 100, recvOK: true, consume: 50, rtt: rtt, inc: 50, size: 100, limit: 150},
				{recv: 50, recvOK: true, consume: 50, at: time.Millisecond, rtt: rtt, inc: 150, size: 200, limit: 300},
				{recv: 150, recvOK: true, consume: 100, at: 2 * time.Millisecond, rtt: rtt, inc: 150, size: 250, limit: 450},
				{recv: 150, recvOK: true, consume: 125, at: 3 * time.Millisecond, rtt: rtt, inc: 125, size: 250, limit: 575},
			},
		},
		{
			// Exactly 2 rtt since the last grant is not less than 2 rtt.
			name: "2 rtt boundary",
			w:    newRecvWindow(100, 1000),
			steps: []flowStep{
				{recv: 100, recvOK: true, consume: 50, at: 0, rtt: rtt, inc: 50, size: 100, limit: 150},
				{recv: 50, recvOK: true, consume: 50, at: 2 * rtt, rtt: rtt, inc: 50, size: 100, limit: 200},
				{recv: 50, recvOK: true, consume: 50, at: 4*rtt - time.Nanosecond, rtt: rtt, inc: 150, size: 200, limit: 350},
			},
		},
		{
			// The time is measured from the last grant, not the first.
			name: "from the last grant",
			w:    newRecvWindow(100, 1000),
			steps: []flowStep{
				{recv: 100, recvOK: true, consume: 50, at: 0, rtt: rtt, inc: 50, size: 100, limit: 150},
				{recv: 50, recvOK: true, consume: 50, at: time.Second, rtt: rtt, inc: 50, size: 100, limit: 200},
				{recv: 50, recvOK: true, consume: 50, at: time.Second + 19*time.Millisecond, rtt: rtt, inc: 150, size: 200, limit: 350},
			},
		},
		{
			// Without an rtt, the window never grows.
			name: "rtt 0",
			w:    newRecvWindow(100, 1000),
			steps: []flowStep{
				{recv: 100, recvOK: true, consume: 50, inc: 50, size: 100, limit: 150},
				{recv: 50, recvOK: true, consume: 50, inc: 50, size: 100, limit: 200},
				{recv: 50, recvOK: true, consume: 50, inc: 50, size: 100, limit: 250},
				{recv: 50, recvOK: true, consume: 50, at: time.Nanosecond, inc: 50, size: 100, limit: 300},
			},
		},
		{
			// Calls that consume nothing (or too little) do not count as
			// grants: the time to the next real one is measured from the
			// last grant.
			name: "no grant, no clock",
			w:    newRecvWindow(100, 1000),
			steps: []flowStep{
				{recv: 100, recvOK: true, consume: 50, at: 0, rtt: rtt, inc: 50, size: 100, limit: 150},
				{consume: 0, at: 30 * time.Millisecond, rtt: rtt, inc: 0, size: 100, limit: 150},
				{recv: 50, recvOK: true, consume: 49, at: 35 * time.Millisecond, rtt: rtt, inc: 0, size: 100, limit: 150},
				{consume: 1, at: 40 * time.Millisecond, rtt: rtt, inc: 50, size: 100, limit: 200},
			},
		},
	}
	for _, tt := range tests {
		flowRun(t, tt.name, tt.w, tt.steps)
	}
}

// A reader that stops never grows the window: the sender fills it and
// waits; consume(0) calls grant nothing; a reader that resumes late gets
// no growth.
func TestFlowRecvWindowStoppedReader(t *testing.T) {
	const rtt = 10 * time.Millisecond
	w := newRecvWindow(100, 1<<20)
	if !w.receive(100) || w.consume(50, flowT0, rtt) != 50 {
		t.Fatal("first grant")
	}
	if !w.receive(50) || w.receive(1) {
		t.Fatal("the window is 150")
	}
	for i := range 1000 {
		at := flowT0.Add(time.Duration(i) * time.Microsecond)
		if inc := w.consume(0, at, rtt); inc != 0 || w.size != 100 || w.limit != 150 {
			t.Fatalf("idle consume #%d: inc %d size %d limit %d", i, inc, w.size, w.limit)
		}
	}
	if w.buffered() != 101 {
		t.Fatalf("buffered %d, want 101", w.buffered())
	}
	// The reader comes back a second later.
	if inc := w.consume(101, flowT0.Add(time.Second), rtt); inc != 101 || w.size != 100 || w.limit != 251 {
		t.Fatalf("late read: inc %d size %d limit %d", inc, w.size, w.limit)
	}
	if w.buffered() != 0 {
		t.Fatalf("buffered %d", w.buffered())
	}
}

// The limit counts from the start: a long exchange of many windows keeps
// limit == consumed + size after each grant, whatever the read sizes.
func TestFlowRecvWindowInvariant(t *testing.T) {
	w := newRecvWindow(1000, 1000)
	reads := []int{1, 499, 500, 7, 993, 250, 250, 250, 250, 1000, 3, 3}
	for i, n := range reads {
		if !w.receive(n) {
			t.Fatalf("read %d: receive(%d) refused, limit %d received %d", i, n, w.limit, w.received)
		}
		inc := w.consume(n, flowT0, 0)
		if inc != 0 && w.limit != w.consumed+w.size {
			t.Fatalf("read %d: limit %d, consumed %d", i, w.limit, w.consumed)
		}
		if w.limit-w.consumed > w.size || w.limit < w.received {
			t.Fatalf("read %d: limit %d consumed %d received %d", i, w.limit, w.consumed, w.received)
		}
	}
}

func TestFlowSendCredit(t *testing.T) {
	var c sendCredit
	if c.avail() != 0 {
		t.Fatalf("zero credit: avail %d", c.avail())
	}
	steps := []struct {
		grant uint32 // 0: no grant
		sent  uint64 // then sent += this
		avail int
	}{
		{grant: 100, avail: 100},
		{sent: 40, avail: 60},
		{sent: 60, avail: 0},
		{grant: 1, avail: 1},
		{grant: 0xffffffff, avail: 1 << 30}, // capped
	}
	for i, s := range steps {
		if s.grant > 0 && !c.grant(s.grant) {
			t.Fatalf("step %d: grant(%d) refused", i, s.grant)
		}
		c.sent += s.sent
		if got := c.avail(); got != s.avail {
			t.Fatalf("step %d: avail %d, want %d (sent %d limit %d)", i, got, s.avail, c.sent, c.limit)
		}
	}
}

func TestFlowCreditAvail(t *testing.T) {
	tests := []struct {
		sent, limit uint64
		want        int
	}{
		{0, 0, 0},
		{0, 1, 1},
		{5, 5, 0},
		{6, 5, 0}, // past the limit: nothing, not negative
		{0, 1 << 30, 1 << 30},
		{0, 1<<30 + 1, 1 << 30}, // capped
		{0, math.MaxUint64, 1 << 30},
		{math.MaxUint64 - 7, math.MaxUint64, 7},
	}
	for _, tt := range tests {
		c := sendCredit{sent: tt.sent, limit: tt.limit}
		if got := c.avail(); got != tt.want {
			t.Errorf("avail(sent %d, limit %d) = %d, want %d", tt.sent, tt.limit, got, tt.want)
		}
	}
}

func TestFlowCreditGrantOverflow(t *testing.T) {
	tests := []struct {
		limit     uint64
		inc       uint32
		ok        bool
		wantLimit uint64
	}{
		{0, 0, true, 0},
		{0, math.MaxUint32, true, math.MaxUint32},
		{math.MaxUint64 - 10, 10, true, math.MaxUint64},
		{math.MaxUint64 - 10, 11, false, math.MaxUint64 - 10},
		{math.MaxUint64, 0, true, math.MaxUint64},
		{math.MaxUint64, 1, false, math.MaxUint64},
		{math.MaxUint64 - math.MaxUint32 + 1, math.MaxUint32, false, math.MaxUint64 - math.MaxUint32 + 1},
	}
	for _, tt := range tests {
		c := sendCredit{sent: 3, limit: tt.limit}
		if ok := c.grant(tt.inc); ok != tt.ok || c.limit != tt.wantLimit || c.sent != 3 {
			t.Errorf("grant(%d) on limit %d = %v, limit %d sent %d; want %v, limit %d",
				tt.inc, tt.limit, ok, c.limit, c.sent, tt.ok, tt.wantLimit)
		}
	}
}
