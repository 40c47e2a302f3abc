package mptp

// Resilience benchmarks: how long a session stalls when a path goes
// silent, how soon a path that comes back carries data again, and what a
// flapping path costs in throughput. Each reports medians over a few
// repetitions, with its baseline from the same run, as custom metrics:
//
//	go test -run XXX -bench Resilience .
//
// They reuse resilience_test.go's fault-injecting dialer (resDialer).

import (
	"context"
	"io"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mptp/mptp/internal/faultnet"
)

const resBenchReps = 5

// resBenchServe accepts on a loopback listener until the end of the
// benchmark and serves each connection with serve, which must return once
// the connection is done; the listener's goroutines are waited for.
func resBenchServe(b *testing.B, serve func(net.Conn)) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				serve(c)
			})
		}
	})
	b.Cleanup(func() { ln.Close(); wg.Wait() })
	return ln.Addr().String()
}

// resBenchEcho echoes each connection until EOF.
func resBenchEcho(b *testing.B) string {
	return resBenchServe(b, func(c net.Conn) { io.Copy(c, c) })
}

// resBenchSink reads each connection to the end, reports how many bytes
// it got, and closes it.
func resBenchSink(b *testing.B) (string, <-chan int64) {
	got := make(chan int64, 16)
	addr := resBenchServe(b, func(c net.Conn) {
		n, _ := io.Copy(io.Discard, c)
		got <- n
	})
	return addr, got
}

func resMedian(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func resMs(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// resBenchFinish ends a session cleanly: half-close, read to the end (the
// target closes at EOF), close.
func resBenchFinish(conn net.Conn) {
	conn.(interface{ CloseWrite() error }).CloseWrite()
	io.Copy(io.Discard, conn)
	conn.Close()
}

// BenchmarkResilienceStall: a steady stream of 64-byte echoes over two
// paths; after 300 ms one path (the one that carried the most in the last
// 100 ms) goes silent. It reports the longest gap between consecutive echo
// replies in the second that follows, against the same run with no
// failure.
func BenchmarkResilienceStall(b *testing.B) {
	echo := resBenchEcho(b)
	addr := startServer(b, &Server{})
	var base, stall []float64
	for range b.N {
		for range resBenchReps {
			base = append(base, resMs(resEchoGap(b, addr, echo, false)))
			stall = append(stall, resMs(resEchoGap(b, addr, echo, true)))
		}
	}
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(resMedian(stall), "stall-ms")
	b.ReportMetric(resMedian(base), "baseline-gap-ms")
}

func resEchoGap(b *testing.B, addr, echo string, fail bool) time.Duration {
	ds := []*resDialer{{}, {}}
	c := &Client{Server: addr, Paths: resPaths(ds...)}
	defer c.Close()
	conn, err := c.Dial("tcp", echo)
	if err != nil {
		b.Fatal(err)
	}
	resWaitFor(b, "both paths to join", func() bool {
		st := c.Stats()
		return st[0].Joins > 0 && st[1].Joins > 0
	})
	msg := make([]byte, 64)
	ping := func() {
		if _, err := conn.Write(msg); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(conn, msg); err != nil {
			b.Fatal(err)
		}
	}
	carried := func() [2]uint64 {
		st := c.Stats()
		return [2]uint64{st[0].BytesSent + st[0].BytesReceived, st[1].BytesSent + st[1].BytesReceived}
	}
	start := time.Now()
	var mark [2]uint64
	for time.Since(start) < 300*time.Millisecond {
		if mark == ([2]uint64{}) && time.Since(start) >= 200*time.Millisecond {
			mark = carried()
		}
		ping()
	}
	var silent *faultnet.Conn
	if fail {
		now := carried()
		busy := 0
		if now[1]-mark[1] > now[0]-mark[0] {
			busy = 1
		}
		silent = ds[busy].last()
		silent.Silence()
	}
	var longest time.Duration
	last := time.Now()
	for end := last.Add(time.Second); last.Before(end); {
		ping()
		now := time.Now()
		longest = max(longest, now.Sub(last))
		last = now
	}
	if silent != nil {
		silent.Close()
	}
	resBenchFinish(conn)
	return longest
}

// resHold is a link that stops and comes back with nothing lost, as TCP
// makes of a link that is down for a while: while held, writes wait in a
// queue and what arrives is not handed on; Resume sends the queue and hands
// on what waited. (faultnet's Silence drops bytes instead, which leaves a
// resumed stream cut mid-frame: no real link does that to TCP.)
type resHold struct {
	net.Conn
	mu     sync.Mutex
	cond   *sync.Cond
	held   bool
	closed bool
	queue  [][]byte
}

func resHoldWrap(c net.Conn) *resHold {
	h := &resHold{Conn: c}
	h.cond = sync.NewCond(&h.mu)
	return h
}

func (h *resHold) Hold() {
	h.mu.Lock()
	h.held = true
	h.mu.Unlock()
}

func (h *resHold) Resume() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, q := range h.queue {
		if _, err := h.Conn.Write(q); err != nil {
			break
		}
	}
	h.queue, h.held = nil, false
	h.cond.Broadcast()
}

func (h *resHold) Write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.held {
		h.queue = append(h.queue, slices.Clone(p))
		return len(p), nil
	}
	return h.Conn.Write(p)
}

func (h *resHold) Read(p []byte) (int, error) {
	n, err := h.Conn.Read(p)
	h.mu.Lock()
	for h.held && !h.closed {
		h.cond.Wait()
	}
	h.mu.Unlock()
	return n, err
}

func (h *resHold) Close() error {
	err := h.Conn.Close() // first: it ends a Write blocked under mu
	h.mu.Lock()
	h.closed = true
	h.cond.Broadcast()
	h.mu.Unlock()
	return err
}

func (h *resHold) CloseWrite() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.held {
		return nil
	}
	return h.Conn.(*net.TCPConn).CloseWrite()
}

// BenchmarkResilienceRevive: an upload streams over two paths; one path's
// link stops until the session finds it stale, then comes back. It reports
// the time from the comeback until that path's stats show new bytes sent:
// "resume" when the same sub-connection's link resumes with nothing lost
// (the path is revived), "redial" when its dead sub-connection is closed
// and the actor dials a new one.
func BenchmarkResilienceRevive(b *testing.B) {
	sink, got := resBenchSink(b)
	addr := startServer(b, &Server{})
	var resume, redial []float64
	for range b.N {
		for range resBenchReps {
			resume = append(resume, resMs(resRevive(b, addr, sink, got, true)))
			redial = append(redial, resMs(resRevive(b, addr, sink, got, false)))
		}
	}
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(resMedian(resume), "revive-resume-ms")
	b.ReportMetric(resMedian(redial), "revive-redial-ms")
}

func resRevive(b *testing.B, addr, sink string, got <-chan int64, resume bool) time.Duration {
	var (
		mu    sync.Mutex
		holds []*resHold
	)
	holdDial := func(ctx context.Context, network, a string) (net.Conn, error) {
		var nd net.Dialer
		c, err := nd.DialContext(ctx, network, a)
		if err != nil {
			return nil, err
		}
		h := resHoldWrap(c)
		mu.Lock()
		holds = append(holds, h)
		mu.Unlock()
		return h, nil
	}
	c := &Client{Server: addr, Paths: []Path{{Name: "steady"}, {Name: "revived", Dial: holdDial}}}
	defer c.Close()
	conn, err := c.Dial("tcp", sink)
	if err != nil {
		b.Fatal(err)
	}
	resWaitFor(b, "both paths to join", func() bool {
		st := c.Stats()
		return st[0].Joins > 0 && st[1].Joins > 0
	})
	// The upload: as fast as the session takes it, until stopped.
	var stop atomic.Bool
	var sent int64
	wrote := make(chan error, 1)
	go func() {
		buf := make([]byte, 64<<10)
		for !stop.Load() {
			n, err := conn.Write(buf)
			sent += int64(n)
			if err != nil {
				wrote <- err
				return
			}
		}
		wrote <- nil
	}()
	stats := func() PathStats { return c.Stats()[1] }
	resWaitFor(b, "the path to carry data", func() bool { return stats().BytesSent > 0 })
	mu.Lock()
	link := holds[len(holds)-1]
	mu.Unlock()
	stalls := stats().Stalls
	link.Hold()
	resWaitFor(b, "the held path to be found stale", func() bool { return stats().Stalls > stalls })
	before := stats().BytesSent
	at := time.Now()
	if resume {
		link.Resume()
	} else {
		link.Close()
	}
	resWaitFor(b, "the path to carry new bytes", func() bool { return stats().BytesSent > before })
	took := time.Since(at)

	stop.Store(true)
	if err := <-wrote; err != nil {
		b.Fatal(err)
	}
	resBenchFinish(conn)
	if n := <-got; n != sent {
		b.Fatalf("the sink got %d bytes of %d", n, sent)
	}
	mu.Lock()
	for _, h := range holds {
		h.Close()
	}
	mu.Unlock()
	return took
}

// BenchmarkResilienceFlap: a 32 MiB upload over two paths throttled to
// 8 MB/s each, one steady and one whose sub-connections are reset 200 ms
// after they are made, against the same upload with both steady. It
// reports MB/s of each and their ratio.
func BenchmarkResilienceFlap(b *testing.B) {
	const size = 32 << 20
	sink, got := resBenchSink(b)
	addr := startServer(b, &Server{})
	var steady, flapping []float64
	for range b.N {
		for range 3 {
			steady = append(steady, resFlapUpload(b, addr, sink, got, size, false))
			flapping = append(flapping, resFlapUpload(b, addr, sink, got, size, true))
		}
	}
	b.ReportMetric(0, "ns/op")
	st, fl := resMedian(steady), resMedian(flapping)
	b.ReportMetric(st, "steady-MB/s")
	b.ReportMetric(fl, "flapping-MB/s")
	b.ReportMetric(fl/st, "flap/steady")
}

func resFlapUpload(b *testing.B, addr, sink string, got <-chan int64, size int, flap bool) float64 {
	const rate = 8 << 20
	var (
		mu      sync.Mutex
		done    bool
		timers  []*time.Timer
		pending sync.WaitGroup
	)
	throttled := func(d *resDialer) DialFunc {
		return func(ctx context.Context, network, a string) (net.Conn, error) {
			c, err := d.dial(ctx, network, a)
			if err != nil {
				return nil, err
			}
			return faultnet.Throttle(c, rate), nil
		}
	}
	flapper := &resDialer{}
	if flap {
		flapper.onConn = func(c *faultnet.Conn) {
			mu.Lock()
			defer mu.Unlock()
			if done {
				return
			}
			pending.Add(1)
			timers = append(timers, time.AfterFunc(200*time.Millisecond, func() {
				defer pending.Done()
				c.Reset()
			}))
		}
	}
	c := &Client{Server: addr, Paths: []Path{
		{Name: "steady", Dial: throttled(&resDialer{})},
		{Name: "flap", Dial: throttled(flapper)},
	}}
	defer c.Close()
	data := make([]byte, size)
	start := time.Now()
	conn, err := c.Dial("tcp", sink)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := conn.Write(data); err != nil {
		b.Fatal(err)
	}
	resBenchFinish(conn) // the sink closes once it has it all
	took := time.Since(start)
	mu.Lock()
	done = true
	for _, t := range timers {
		if t.Stop() {
			pending.Done()
		}
	}
	mu.Unlock()
	pending.Wait()
	if n := <-got; n != int64(size) {
		b.Fatalf("the sink got %d bytes of %d", n, size)
	}
	return float64(size) / 1e6 / took.Seconds()
}
