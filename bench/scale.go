package main

// The "scale" group: what one session costs in memory, idle and busy, in
// mptp (client and server) and in Debian's danted, measured in the same
// run on loopback.
//
// How it measures: the mptp client and the mptp server each run as a
// subprocess of this program (roles scale-client and scale-server), so
// that each side's memory is its own process's. The echo target and the
// SOCKS5 clients of danted run here, in the harness, and are not counted.
// A figure is the growth of the resident set (VmRSS from /proc/PID/status)
// from before the sessions were opened to while they are held, divided by
// the sessions held. Before each idle reading a Go process runs the GC
// (twice, so that sync.Pool's victim cache is empty too) and gives freed
// memory back (debug.FreeOSMemory), so that its RSS is what it holds, not
// garbage; busy readings take the RSS as it is, sampled while every
// session moves data, and their median. For danted, a tree of processes,
// the figure is the sum of their RSS (pages shared between the forks count
// in each: the summed PSS, which shares them out, is given beside it). The
// mptp sides also report the Go runtime's own account,
// HeapInuse+StackInuse, which counts a buffer whole even where the kernel
// has not backed all of its pages yet (a buffer that only ever took a few
// bytes is mostly not resident). Idle cases also give the CPU the held
// sessions use while nothing moves (utime+stime from /proc/PID/stat).
//
// The busy case ends with "idle after busy": the same sessions, idle
// again, hold what carrying data left them.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/proxy"

	"github.com/mptp/mptp"
)

func init() {
	register("scale", scaleCase)
	roles["scale-server"] = roleScaleServer
	roles["scale-client"] = roleScaleClient
}

const (
	scaleDanted    = "/usr/sbin/danted"
	scaleTargets   = 16       // loopback addresses the echo target listens on
	scaleListeners = 4        // and the mptp server
	scaleBlock     = 64 << 10 // what a busy session writes, then reads back
	scaleDialers   = 64       // dials in flight while sessions are opened
)

// scaleTargetAddr and scaleServerAddr spread connections over loopback
// addresses, so that neither end runs out of ports (nor of 4-tuples with
// connections still in TIME_WAIT from an earlier run).
func scaleTargetAddr(k int) string { return fmt.Sprintf("127.31.1.%d:0", k+1) }
func scaleServerAddr(k int) string { return fmt.Sprintf("127.31.2.%d:0", k+1) }

// scalePlan is what one run measures.
type scalePlan struct {
	idle  []int // numbers of idle sessions
	busy  int   // sessions that move data while measured
	warm  time.Duration
	span  time.Duration // busy: how long RSS is sampled
	runs  int
	probe int // sessions opened and closed before the baseline
}

func scaleCase(o *opts) (rows []Row, err error) {
	p := scalePlan{idle: []int{1000, 10000}, busy: 1000, warm: time.Second, span: 2 * time.Second,
		runs: min(o.runs, 3), probe: 20}
	if o.smoke {
		p = scalePlan{idle: []int{50}, busy: 10, warm: 100 * time.Millisecond, span: 200 * time.Millisecond, runs: 1, probe: 5}
	}
	if p.runs < o.runs {
		log.Printf("scale: %d runs of each case, not %d, and one of 5,000 sessions or more: each figure is a mean over thousands of sessions already, and a run of 10,000 takes half a minute", p.runs, o.runs)
	}
	// Descriptors: the mptp server holds two a session (sub-connection and
	// target); this process holds two for each danted session (the SOCKS
	// client end and the target's end).
	most := p.busy
	for _, n := range p.idle {
		most = max(most, n)
	}
	restore, nerr := scaleNofile(scaleFds(most))
	defer restore()
	if nerr != nil {
		limit := scaleNofileNow()
		var keep []int
		for _, n := range p.idle {
			if scaleFds(n) <= limit {
				keep = append(keep, n)
				continue
			}
			// The most that fits, in thousands, unless that is measured
			// already.
			fit := int(limit-scaleFdSpare) / 2 / 1000 * 1000
			log.Printf("scale: skipping %d idle sessions: they need RLIMIT_NOFILE %d, it is %d and cannot be raised (%v); measuring %d instead",
				n, scaleFds(n), limit, nerr, fit)
			if fit > 0 && !slices.Contains(p.idle, fit) && !slices.Contains(keep, fit) {
				keep = append(keep, fit)
			}
		}
		p.idle = keep
		p.busy = min(p.busy, int(limit-scaleFdSpare)/2)
	}
	danted := true
	if _, err := os.Stat(scaleDanted); err != nil {
		log.Printf("scale: no danted baseline (%v): install dante-server", err)
		danted = false
	}
	goroutines := runtime.NumGoroutine()

	tgt, err := startScaleTarget()
	if err != nil {
		return nil, err
	}
	defer tgt.close()

	type measure struct {
		name string
		n    int
		busy bool
	}
	var ms []measure
	for _, n := range p.idle {
		ms = append(ms, measure{scaleCaseName(n, false, 0), n, false})
	}
	if p.busy > 0 {
		ms = append(ms, measure{scaleCaseName(p.busy, true, 0), p.busy, true})
	}
	var errs []error
	for _, m := range ms {
		// One list per case: the busy run gives "busy" and "idle after busy".
		var mp, dt [2][]scaleFigures
		runs := p.runs
		if m.n >= 5000 {
			runs = 1
		}
		useDanted := danted
		for run := 0; run < runs; run++ {
			fs, err := scaleMptpRun(o, tgt, p, m.n, m.busy)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s, mptp: %w", m.name, err))
				break
			}
			for i, f := range fs {
				log.Printf("scale: %s, mptp run %d: %s", scaleCaseName(m.n, m.busy, i), run+1, f)
				mp[i] = append(mp[i], f)
			}
			// danted's figures vary by a few percent from run to run: two
			// runs of it are enough, and save time for mptp's.
			if !useDanted || run >= 2 {
				continue
			}
			fs, err = scaleDantedRun(o, tgt, p, m.n, m.busy)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s, danted: %w", m.name, err))
				useDanted = false // it would fail again
				continue
			}
			for i, f := range fs {
				log.Printf("scale: %s, danted run %d: %s", scaleCaseName(m.n, m.busy, i), run+1, f)
				dt[i] = append(dt[i], f)
			}
		}
		rows = append(rows, scaleRows(scaleCaseName(m.n, m.busy, 0), m.n, m.busy, mp[0], dt[0])...)
		if m.busy {
			rows = append(rows, scaleRows(scaleCaseName(m.n, m.busy, 1), m.n, false, mp[1], dt[1])...)
		}
	}
	tgt.close()
	// Everything is down: the roles and danted have exited, their
	// connections are closed; the target's goroutines are gone too.
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > goroutines && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > goroutines {
		errs = append(errs, fmt.Errorf("%d goroutines left behind", n-goroutines))
	}
	ratios(rows)
	return rows, errors.Join(errs...)
}

// scaleCaseName names a case: n idle, n busy, or (part 1 of a busy run)
// n idle after busy: sessions that carried data hold what it left them.
func scaleCaseName(n int, busy bool, part int) string {
	switch {
	case !busy:
		return fmt.Sprintf("%d idle", n)
	case part == 0:
		return fmt.Sprintf("%d busy", n)
	}
	return fmt.Sprintf("%d idle after busy", n)
}

// scaleFigures is one run's figures, in KiB per session held.
type scaleFigures struct {
	held           int // sessions held (danted may hold fewer than asked)
	client, server float64
	clientGo       float64 // mptp: HeapInuse+StackInuse
	serverGo       float64
	cpu            float64 // idle: CPU time over wall time, in % of one core (client and server together)
	pss            float64 // danted: summed PSS
	mibps          float64 // busy: MiB/s echoed, all sessions together
	procs          int     // danted: processes while held
}

func (f scaleFigures) String() string {
	s := fmt.Sprintf("%d held: client %.1f KiB, server %.1f KiB per session (RSS)", f.held, f.client, f.server)
	if f.procs > 0 {
		s = fmt.Sprintf("%d held by %d processes: %.1f KiB RSS, %.1f KiB PSS per session", f.held, f.procs, f.server, f.pss)
	} else {
		s += fmt.Sprintf("; Go heap+stack client %.1f KiB, server %.1f KiB", f.clientGo, f.serverGo)
	}
	if f.mibps > 0 {
		s += fmt.Sprintf("; %.0f MiB/s echoed", f.mibps)
	} else {
		s += fmt.Sprintf("; %.1f%% of a core while idle", f.cpu)
	}
	return s
}

func scaleRows(name string, n int, busy bool, mp, dt []scaleFigures) []Row {
	med := func(fs []scaleFigures, get func(scaleFigures) float64) float64 {
		var xs []float64
		for _, f := range fs {
			xs = append(xs, get(f))
		}
		return median(xs)
	}
	how := "RSS"
	if busy {
		how = "RSS while busy"
	}
	base := "danted, summed " + how + ", KiB per session"
	var rows []Row
	add := func(what string, v float64, unit string, b string) {
		rows = append(rows, Row{Group: "scale", Case: name, What: what, Value: v, Unit: unit, Base: b})
	}
	if len(dt) > 0 {
		add(base, med(dt, func(f scaleFigures) float64 { return f.server }), "KiB", "")
		add("danted, summed PSS"+strings.TrimPrefix(how, "RSS")+", KiB per session", med(dt, func(f scaleFigures) float64 { return f.pss }), "KiB", "")
		if held := med(dt, func(f scaleFigures) float64 { return float64(f.held) }); int(held) < n {
			add("danted, sessions it held", held, "sessions", "")
		}
		if !busy {
			add("danted, CPU while idle, % of a core", med(dt, func(f scaleFigures) float64 { return f.cpu }), "%", "")
		}
	} else {
		base = ""
	}
	if len(mp) > 0 {
		c := med(mp, func(f scaleFigures) float64 { return f.client })
		s := med(mp, func(f scaleFigures) float64 { return f.server })
		add("mptp client+server, "+how+", KiB per session", med(mp, func(f scaleFigures) float64 { return f.client + f.server }), "KiB", base)
		add("mptp client, "+how+", KiB per session", c, "KiB", base)
		add("mptp server, "+how+", KiB per session", s, "KiB", base)
		add("mptp client, Go HeapInuse+StackInuse, KiB per session", med(mp, func(f scaleFigures) float64 { return f.clientGo }), "KiB", "")
		add("mptp server, Go HeapInuse+StackInuse, KiB per session", med(mp, func(f scaleFigures) float64 { return f.serverGo }), "KiB", "")
		if !busy {
			// No ratio: danted's is 0 or near it.
			add("mptp client+server, CPU while idle, % of a core", med(mp, func(f scaleFigures) float64 { return f.cpu }), "%", "")
		}
	}
	if busy && len(mp) > 0 {
		tb := ""
		if len(dt) > 0 {
			tb = "danted, echoed"
			add(tb, med(dt, func(f scaleFigures) float64 { return f.mibps }), "MiB/s", "")
		}
		add("mptp, echoed", med(mp, func(f scaleFigures) float64 { return f.mibps }), "MiB/s", tb)
	}
	return rows
}

// scaleMptpRun opens n sessions through a fresh mptp client and server,
// each after one small exchange, and measures both processes: idle, or
// busy and then idle again.
func scaleMptpRun(o *opts, tgt *scaleTarget, p scalePlan, n int, busy bool) (fs []scaleFigures, err error) {
	srv, err := startScaleProc(o, "scale-server", "-listen", strings.Join(scaleAddrs(scaleServerAddr, scaleListeners), ","))
	if err != nil {
		return nil, err
	}
	defer srv.stop()
	hello, err := srv.read(10 * time.Second)
	if err != nil {
		return nil, err
	}
	cli, err := startScaleProc(o, "scale-client", "-server", strings.Join(hello.Addrs, ","))
	if err != nil {
		return nil, err
	}
	defer func() {
		cli.stop() // first, so that the server sees its sessions end
		srv.stop()
		tgt.closeConns()
	}()
	targets := strings.Join(tgt.addrs, ",")
	// The first sessions allocate what every later one shares (pools,
	// maps, the runtime's caches): they belong to the baseline.
	if _, err := cli.ask(fmt.Sprintf("open %d %s", p.probe, targets), time.Minute); err != nil {
		return nil, err
	}
	if _, err := cli.ask("close", time.Minute); err != nil {
		return nil, err
	}
	if err := scaleWait(srv, 0, 10*time.Second); err != nil {
		return nil, fmt.Errorf("probe sessions did not end: %w", err)
	}
	c0, err := cli.ask("memgc", time.Minute)
	if err != nil {
		return nil, err
	}
	s0, err := srv.ask("memgc", time.Minute)
	if err != nil {
		return nil, err
	}
	if _, err := cli.ask(fmt.Sprintf("open %d %s", n, targets), 3*time.Minute); err != nil {
		return nil, err
	}
	if err := scaleWait(srv, n, 10*time.Second); err != nil {
		return nil, err
	}
	if got := tgt.count(); got != n {
		return nil, fmt.Errorf("the target has %d connections, not %d", got, n)
	}
	per := func(a, b int64) float64 { return float64(b-a) / 1024 / float64(n) }
	// idle lets each path's timers (1 s pings) run, measures what they
	// cost in CPU, then the memory held.
	idle := func() (f scaleFigures, err error) {
		f.held = n
		cpu0, at := procCPU(cli.pid())+procCPU(srv.pid()), time.Now()
		time.Sleep(p.warm)
		f.cpu = 100 * (procCPU(cli.pid()) + procCPU(srv.pid()) - cpu0).Seconds() / time.Since(at).Seconds()
		c1, err := cli.ask("memgc", time.Minute)
		if err != nil {
			return f, err
		}
		s1, err := srv.ask("memgc", time.Minute)
		if err != nil {
			return f, err
		}
		f.client, f.server = per(c0.RSS, c1.RSS), per(s0.RSS, s1.RSS)
		f.clientGo, f.serverGo = per(c0.Heap+c0.Stack, c1.Heap+c1.Stack), per(s0.Heap+s0.Stack, s1.Heap+s1.Stack)
		return f, nil
	}
	if !busy {
		f, err := idle()
		return []scaleFigures{f}, err
	}
	if _, err := cli.ask("busy", time.Minute); err != nil {
		return nil, err
	}
	time.Sleep(p.warm)
	var (
		crss, srss []float64
		c1, s1     scaleReport
	)
	for start := time.Now(); time.Since(start) < p.span; time.Sleep(p.span / 10) {
		crss = append(crss, float64(procRSS(cli.pid())))
		srss = append(srss, float64(procRSS(srv.pid())))
		if len(crss) == 3 {
			// The runtime's account, once, midway (no GC forced).
			if c1, err = cli.ask("mem", time.Minute); err != nil {
				return nil, err
			}
			if s1, err = srv.ask("mem", time.Minute); err != nil {
				return nil, err
			}
		}
	}
	stop, err := cli.ask("stop", time.Minute)
	if err != nil {
		return nil, err
	}
	f := scaleFigures{held: n, mibps: float64(stop.Bytes) / (1 << 20) / stop.Seconds}
	f.client, f.server = per(c0.RSS, int64(median(crss))), per(s0.RSS, int64(median(srss)))
	f.clientGo, f.serverGo = per(c0.Heap+c0.Stack, c1.Heap+c1.Stack), per(s0.Heap+s0.Stack, s1.Heap+s1.Stack)
	after, err := idle()
	return []scaleFigures{f, after}, err
}

// scaleWait waits until the server holds n sessions.
func scaleWait(srv *scaleProc, n int, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		r, err := srv.ask("count", time.Minute)
		if err != nil {
			return err
		}
		if r.Sessions == n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the server holds %d sessions, not %d", r.Sessions, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// scaleDantedRun holds n connections through a fresh danted, as
// scaleMptpRun does sessions.
func scaleDantedRun(o *opts, tgt *scaleTarget, p scalePlan, n int, busy bool) (fs []scaleFigures, err error) {
	d, err := startScaleDanted(o)
	if err != nil {
		return nil, err
	}
	defer func() {
		d.stop()
		tgt.closeConns()
	}()
	probe, err := scaleOpenSocks(d.addr, p.probe, tgt.addrs)
	scaleCloseAll(probe)
	if err != nil {
		return nil, fmt.Errorf("%w (danted: %s)", err, d.log.String())
	}
	time.Sleep(200 * time.Millisecond)
	rss0, pss0, _ := d.mem()
	conns, err := scaleOpenSocks(d.addr, n, tgt.addrs)
	defer func() { scaleCloseAll(conns) }()
	if err != nil {
		if len(conns) == 0 {
			return nil, fmt.Errorf("%w (danted: %s)", err, d.log.String())
		}
		log.Printf("scale: danted held %d connections of %d: %v", len(conns), n, err)
	}
	held := len(conns)
	per := func(a, b int64) float64 { return float64(b-a) / 1024 / float64(held) }
	idle := func() scaleFigures {
		f := scaleFigures{held: held}
		cpu0, at := d.cpu(), time.Now()
		time.Sleep(p.warm)
		f.cpu = 100 * (d.cpu() - cpu0).Seconds() / time.Since(at).Seconds()
		rss1, pss1, procs := d.mem()
		f.server, f.pss, f.procs = per(rss0, rss1), per(pss0, pss1), procs
		return f
	}
	if !busy {
		return []scaleFigures{idle()}, nil
	}
	b := scaleStartBusy(conns)
	time.Sleep(p.warm)
	f := scaleFigures{held: held}
	var rs, ps []float64
	for start := time.Now(); time.Since(start) < p.span; time.Sleep(p.span / 10) {
		r, s, procs := d.mem()
		rs, ps, f.procs = append(rs, float64(r)), append(ps, float64(s)), procs
	}
	moved, secs := b.stop(conns)
	f.mibps = float64(moved) / (1 << 20) / secs
	f.server, f.pss = per(rss0, int64(median(rs))), per(pss0, int64(median(ps)))
	return []scaleFigures{f, idle()}, nil
}
func scaleAddrs(f func(int) string, n int) []string {
	var out []string
	for k := 0; k < n; k++ {
		out = append(out, f(k))
	}
	return out
}

// scaleExchange is a session's one small exchange before it idles.
func scaleExchange(c net.Conn) error {
	c.SetDeadline(time.Now().Add(20 * time.Second))
	msg := []byte("scale-hi")
	if _, err := c.Write(msg); err != nil {
		return err
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		return err
	}
	if !bytes.Equal(got, msg) {
		return fmt.Errorf("echo gave %q", got)
	}
	return c.SetDeadline(time.Time{})
}

// scaleOpen opens n connections with dial, scaleDialers at a time, each
// after its exchange. On an error it returns those it opened.
func scaleOpen(n int, dial func(i int) (net.Conn, error)) ([]net.Conn, error) {
	var (
		mu    sync.Mutex
		conns []net.Conn
		first error
		next  atomic.Int64
		wg    sync.WaitGroup
	)
	for w := 0; w < min(n, scaleDialers); w++ {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				mu.Lock()
				failed := first != nil
				mu.Unlock()
				if i >= n || failed {
					return
				}
				c, err := dial(i)
				if err == nil {
					if err = scaleExchange(c); err != nil {
						c.Close()
					}
				}
				mu.Lock()
				if err != nil {
					if first == nil {
						first = fmt.Errorf("connection %d: %w", i, err)
					}
				} else {
					conns = append(conns, c)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return conns, first
}

func scaleCloseAll(conns []net.Conn) {
	for _, c := range conns {
		c.Close()
	}
}

// scaleOpenSocks opens n connections to the targets through SOCKS5 at addr.
func scaleOpenSocks(addr string, n int, targets []string) ([]net.Conn, error) {
	d, err := proxy.SOCKS5("tcp", addr, nil, &net.Dialer{Timeout: 20 * time.Second})
	if err != nil {
		return nil, err
	}
	return scaleOpen(n, func(i int) (net.Conn, error) { return d.Dial("tcp", targets[i%len(targets)]) })
}

// scaleBusy is every held connection writing a block and reading it back,
// over and over.
type scaleBusy struct {
	moved atomic.Int64
	quit  chan struct{}
	wg    sync.WaitGroup
	start time.Time
}

var scaleData = bytes.Repeat([]byte("mptp scale block"), scaleBlock/16)

func scaleStartBusy(conns []net.Conn) *scaleBusy {
	b := &scaleBusy{quit: make(chan struct{}), start: time.Now()}
	for _, c := range conns {
		b.wg.Go(func() {
			for {
				select {
				case <-b.quit:
					return
				default:
				}
				if _, err := c.Write(scaleData); err != nil {
					return
				}
				// io.Discard reads with pooled buffers: the loop's own
				// memory is its stack.
				n, err := io.CopyN(io.Discard, c, int64(len(scaleData)))
				b.moved.Add(n)
				if err != nil {
					return
				}
			}
		})
	}
	return b
}

// stop ends the loops, each after its round trip, so that the sessions
// are idle and hold nothing in flight; it cuts loops that are stuck. It
// returns the bytes echoed and the seconds they took.
func (b *scaleBusy) stop(conns []net.Conn) (int64, float64) {
	secs := time.Since(b.start).Seconds()
	moved := b.moved.Load()
	close(b.quit)
	done := make(chan struct{})
	go func() { b.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		for _, c := range conns {
			c.SetDeadline(time.Now())
		}
		<-done
	}
	return moved, secs
}

// scaleTarget is the echo server every session ends at, in this process.
type scaleTarget struct {
	lns   []net.Listener
	addrs []string
	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
	once  sync.Once
}

func startScaleTarget() (*scaleTarget, error) {
	t := &scaleTarget{conns: map[net.Conn]struct{}{}}
	for _, a := range scaleAddrs(scaleTargetAddr, scaleTargets) {
		ln, err := net.Listen("tcp", a)
		if err != nil {
			t.close()
			return nil, err
		}
		t.lns = append(t.lns, ln)
		t.addrs = append(t.addrs, ln.Addr().String())
		t.wg.Go(func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				t.mu.Lock()
				t.conns[c] = struct{}{}
				t.mu.Unlock()
				t.wg.Go(func() { t.echo(c) })
			}
		})
	}
	return t, nil
}

func (t *scaleTarget) echo(c net.Conn) {
	defer func() {
		c.Close()
		t.mu.Lock()
		delete(t.conns, c)
		t.mu.Unlock()
	}()
	// Small until the connection gets busy: thousands of them idle here.
	buf := make([]byte, 512)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
			if n == len(buf) && len(buf) < 32<<10 {
				buf = make([]byte, 32<<10)
			}
		}
		if err != nil {
			return
		}
	}
}

func (t *scaleTarget) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.conns)
}

// closeConns closes every connection and waits until their loops are gone.
func (t *scaleTarget) closeConns() {
	t.mu.Lock()
	for c := range t.conns {
		c.Close()
	}
	t.mu.Unlock()
	for deadline := time.Now().Add(5 * time.Second); t.count() > 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
}

func (t *scaleTarget) close() {
	t.once.Do(func() {
		for _, ln := range t.lns {
			ln.Close()
		}
		t.closeConns()
		t.wg.Wait()
	})
}

// scaleDantedProc is a danted of this run, on a free loopback port.
type scaleDantedProc struct {
	addr string
	cmd  *exec.Cmd
	log  *outputBuf
	done chan struct{}
}

func startScaleDanted(o *opts) (*scaleDantedProc, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	_, port, _ := net.SplitHostPort(addr)
	dir, err := os.MkdirTemp(o.work, "scale-danted-")
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "danted.conf")
	text := "logoutput: stderr\ninternal: 127.0.0.1 port = " + port + "\nexternal: 127.0.0.1\n" +
		"clientmethod: none\nsocksmethod: none\nuser.privileged: root\nuser.unprivileged: nobody\n" +
		"client pass { from: 127.0.0.1/32 to: 0.0.0.0/0 }\n" +
		"socks pass { from: 127.0.0.1/32 to: 0.0.0.0/0 command: connect }\n"
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		return nil, err
	}
	d := &scaleDantedProc{addr: addr, log: &outputBuf{}, done: make(chan struct{})}
	d.cmd = command(scaleDanted, "-f", conf, "-N", "1", "-p", filepath.Join(dir, "danted.pid"))
	// Its own process group: danted forks, and stop ends the whole tree.
	d.cmd.SysProcAttr.Setpgid = true
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	if err := d.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { d.cmd.Wait(); close(d.done) }()
	for deadline := time.Now().Add(10 * time.Second); ; {
		select {
		case <-d.done:
			return nil, fmt.Errorf("danted exited: %s", d.log.String())
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return d, nil
		}
		if time.Now().After(deadline) {
			d.stop()
			return nil, fmt.Errorf("danted does not listen on %s: %s", addr, d.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// mem is the summed RSS and PSS, in bytes, of danted's processes.
func (d *scaleDantedProc) mem() (rss, pss int64, procs int) {
	for _, pid := range procTree(d.cmd.Process.Pid) {
		rss += procRSS(pid)
		pss += procPSS(pid)
		procs++
	}
	return rss, pss, procs
}

// cpu is the CPU time danted's processes have used.
func (d *scaleDantedProc) cpu() time.Duration {
	var t time.Duration
	for _, pid := range procTree(d.cmd.Process.Pid) {
		t += procCPU(pid)
	}
	return t
}

func (d *scaleDantedProc) stop() {
	pgid := d.cmd.Process.Pid
	syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(3 * time.Second):
	}
	// The children too, whether or not the parent took them along.
	syscall.Kill(-pgid, syscall.SIGKILL)
	<-d.done
}

// procTree is pid and its descendants, from /proc.
func procTree(pid int) []int {
	ents, _ := os.ReadDir("/proc")
	kids := map[int][]int{}
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, not ')'.
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) < 2 {
			continue
		}
		pp, _ := strconv.Atoi(f[1])
		kids[pp] = append(kids[pp], p)
	}
	out := []int{pid}
	for i := 0; i < len(out); i++ {
		out = append(out, kids[out[i]]...)
	}
	return out
}

// procCPU is the user and system time a process has used.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	// Fields 14 and 15 of stat, utime and stime, in clock ticks (USER_HZ).
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100
}

// procRSS is a process's VmRSS in bytes; 0 if it is gone.
func procRSS(pid int) int64 { return procField(fmt.Sprintf("/proc/%d/status", pid), "VmRSS:") }

// procPSS is its proportional set size in bytes.
func procPSS(pid int) int64 { return procField(fmt.Sprintf("/proc/%d/smaps_rollup", pid), "Pss:") }

func procField(file, key string) int64 {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, key); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}

// scaleFds is the descriptors one process needs for n sessions: two each
// (the mptp server's sub-connection and target; here, danted's client end
// and target end), and some to spare.
func scaleFds(n int) uint64 { return uint64(2*n + scaleFdSpare) }

const scaleFdSpare = 512

// scaleNofile raises RLIMIT_NOFILE to at least need (root may pass the
// hard limit); restore puts back what it was.
func scaleNofile(need uint64) (restore func(), err error) {
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		return func() {}, err
	}
	if old.Cur >= need {
		return func() {}, nil
	}
	// Children (the roles, danted) inherit it: Setrlimit tells os/exec
	// not to put back the limit this process started with.
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: need, Max: max(old.Max, need)}); err != nil {
		return func() {}, err
	}
	return func() { syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old) }, nil
}

func scaleNofileNow() uint64 {
	var l syscall.Rlimit
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l)
	return l.Cur
}

// The roles answer commands, one a line on standard input, with one
// scaleReport a line on standard output; they end at end of input.

type scaleReport struct {
	Addrs      []string `json:"addrs,omitempty"`
	RSS        int64    `json:"rss"`   // VmRSS
	Heap       int64    `json:"heap"`  // runtime HeapInuse
	Stack      int64    `json:"stack"` // runtime StackInuse
	Goroutines int      `json:"goroutines"`
	Sessions   int      `json:"sessions"`
	Bytes      int64    `json:"bytes"`   // busy: bytes echoed
	Seconds    float64  `json:"seconds"` // over this long
	Err        string   `json:"err,omitempty"`
}

// scaleSelf reports this process's memory; with gc, after a collection
// that returns freed memory to the kernel.
func scaleSelf(gc bool) scaleReport {
	if gc {
		// Two collections: sync.Pool keeps what it holds for one more
		// (its victim cache), and pooled buffers are not any session's.
		// FreeOSMemory collects again, then gives the free pages back.
		runtime.GC()
		debug.FreeOSMemory()
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return scaleReport{RSS: procRSS(os.Getpid()), Heap: int64(ms.HeapInuse), Stack: int64(ms.StackInuse), Goroutines: runtime.NumGoroutine()}
}

func scaleCommands(handle func(cmd []string) scaleReport) error {
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(nil, 1<<20)
	enc := json.NewEncoder(os.Stdout)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		var r scaleReport
		switch f[0] {
		case "mem", "memgc":
			r = scaleSelf(f[0] == "memgc")
		default:
			r = handle(f)
		}
		if err := enc.Encode(r); err != nil {
			return err
		}
	}
	return sc.Err()
}

// roleScaleServer runs an mptp server that connects sessions to their
// targets, and reports its memory.
func roleScaleServer(args []string) error {
	fs := flag.NewFlagSet("scale-server", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "addresses to listen on, comma-separated")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var d net.Dialer
	srv := &mptp.Server{
		Dial: d.DialContext,
		// The defaults (1,024 sessions, 2 GiB of windows: 256 sessions of
		// 4+4 MiB) are for the Internet; this is what one session costs.
		Limits: mptp.Limits{MaxSessions: 1 << 20, MaxHandshakes: 1 << 14, MaxMemory: 1 << 60},
		// Thousands of handshakes at once on two busy cores: slow, not dead.
		Options: mptp.Options{HandshakeTimeout: time.Minute},
	}
	var hello scaleReport
	var wg sync.WaitGroup
	for _, a := range strings.Split(*listen, ",") {
		ln, err := net.Listen("tcp", a)
		if err != nil {
			return err
		}
		hello.Addrs = append(hello.Addrs, ln.Addr().String())
		wg.Go(func() { srv.Serve(ln) })
	}
	defer func() {
		srv.Close()
		wg.Wait()
	}()
	if err := json.NewEncoder(os.Stdout).Encode(hello); err != nil {
		return err
	}
	return scaleCommands(func(f []string) scaleReport {
		switch f[0] {
		case "count":
			return scaleReport{Sessions: srv.Status().SessionsOpen}
		}
		return scaleReport{Err: "unknown command " + f[0]}
	})
}

// roleScaleClient holds mptp sessions, one path each, through the server.
func roleScaleClient(args []string) error {
	fs := flag.NewFlagSet("scale-client", flag.ContinueOnError)
	servers := fs.String("server", "", "the mptp server's addresses, comma-separated: paths are spread over them")
	if err := fs.Parse(args); err != nil {
		return err
	}
	addrs := strings.Split(*servers, ",")
	var next atomic.Uint64
	var d net.Dialer
	cl := &mptp.Client{Server: addrs[0], Paths: []mptp.Path{{Name: "p0",
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, addrs[next.Add(1)%uint64(len(addrs))])
		}}}, Options: mptp.Options{HandshakeTimeout: time.Minute}}
	var (
		held []net.Conn
		busy *scaleBusy
	)
	defer func() {
		if busy != nil {
			busy.stop(held)
		}
		scaleCloseAll(held)
	}()
	return scaleCommands(func(f []string) scaleReport {
		var r scaleReport
		switch {
		case f[0] == "open" && len(f) == 3:
			n, _ := strconv.Atoi(f[1])
			targets := strings.Split(f[2], ",")
			conns, err := scaleOpen(n, func(i int) (net.Conn, error) { return cl.Dial("tcp", targets[i%len(targets)]) })
			held = append(held, conns...)
			if err != nil {
				r.Err = err.Error()
			}
		case f[0] == "close":
			if busy != nil {
				busy.stop(held)
				busy = nil
			}
			scaleCloseAll(held)
			held = nil
		case f[0] == "busy" && busy == nil:
			busy = scaleStartBusy(held)
		case f[0] == "stop" && busy != nil:
			r.Bytes, r.Seconds = busy.stop(held)
			busy = nil
		default:
			r.Err = "bad command " + strings.Join(f, " ")
		}
		r.Sessions = len(held)
		return r
	})
}

// scaleProc is a role of this program run for the scale group.
type scaleProc struct {
	name  string
	cmd   *exec.Cmd
	in    io.WriteCloser
	lines chan string
	log   *outputBuf
	done  chan struct{}
}

func startScaleProc(o *opts, role string, args ...string) (*scaleProc, error) {
	p := &scaleProc{name: role, cmd: command(o.self, append([]string{role}, args...)...),
		lines: make(chan string, 16), log: &outputBuf{}, done: make(chan struct{})}
	p.cmd.Stderr = p.log
	var err error
	if p.in, err = p.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %v", role, err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
		p.cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *scaleProc) pid() int { return p.cmd.Process.Pid }

// read waits for the role's next report.
func (p *scaleProc) read(d time.Duration) (scaleReport, error) {
	var r scaleReport
	select {
	case line, ok := <-p.lines:
		if !ok {
			<-p.done
			return r, fmt.Errorf("%s exited (%v): %s", p.name, p.cmd.ProcessState, p.log.String())
		}
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			return r, fmt.Errorf("%s: %v: %q", p.name, err, line)
		}
		if r.Err != "" {
			return r, fmt.Errorf("%s: %s", p.name, r.Err)
		}
		return r, nil
	case <-time.After(d):
		p.cmd.Process.Kill()
		return r, fmt.Errorf("%s: no answer in %v: %s", p.name, d, p.log.String())
	}
}

// ask sends a command and waits for its answer.
func (p *scaleProc) ask(cmd string, d time.Duration) (scaleReport, error) {
	if _, err := io.WriteString(p.in, cmd+"\n"); err != nil {
		return scaleReport{}, fmt.Errorf("%s: %v: %s", p.name, err, p.log.String())
	}
	return p.read(d)
}

// stop ends the role's input, which ends it, and waits; it kills a role
// that takes too long. A second call does nothing.
func (p *scaleProc) stop() {
	p.in.Close()
	go func() {
		for range p.lines { // unblocks the reader
		}
	}()
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		log.Printf("scale: %s did not end: killed", p.name)
		p.cmd.Process.Kill()
		<-p.done
	}
}
