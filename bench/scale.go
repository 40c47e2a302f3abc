package main

// The "scale" group: what an idle tunnel costs, and what one more
// connection through it costs in memory, idle and busy, in mptp (client
// and server) and in Debian's danted, measured in the same run on
// loopback.
//
// Since the tunnel, an mptp client keeps one session open over its paths,
// and each SOCKS connection is a stream inside it. Each side of mptp runs
// as a subprocess of this program (role scale-app) that builds and starts
// the very config the quick command line prints (`mptp server --listen
// ADDR`, `mptp client --socks ADDR --server ADDR --path direct --path
// direct?bind=127.0.0.2`: the default settings, two paths), so that each
// side's memory is its own process's and its Go runtime can be asked for
// its account. The echo target runs in a process of its own (role
// scale-target), and the SOCKS5 clients, for mptp and for danted alike,
// run here, in the harness: neither is counted. A figure is the growth of
// the resident set (VmRSS from /proc/PID/status) from before the
// connections were opened to while they are held, divided by the
// connections held. Before each idle reading a Go process runs the GC
// (twice, so that sync.Pool's victim cache is empty too) and gives freed
// memory back (debug.FreeOSMemory), so that its RSS is what it holds, not
// garbage; busy readings take the RSS as it is, sampled while every
// connection moves data, and their median. For danted, a tree of
// processes, the figure is the sum of their RSS (pages shared between the
// forks count in each: the summed PSS, which shares them out, is given
// beside it). The mptp sides also report the Go runtime's own account,
// HeapInuse+StackInuse, which counts a buffer whole even where the kernel
// has not backed all of its pages yet. Idle cases also give the CPU the
// held connections use while nothing moves (utime+stime from
// /proc/PID/stat, over idleSpan).
//
// The busy case ends with "idle after busy": the same connections, idle
// again, hold what carrying data left them.
//
// The "idle tunnel" case is the client and server up with no stream: the
// CPU they use (client and server together) and the TCP segments each
// path carries, both ways, per second. The segments are counted per
// socket: `ss -tin` gives each end's segs_out (data, ACKs and
// retransmissions alike), read at the start and the end of the span, for
// the connections to the server's port; a path is named by the client's
// local address (127.0.0.1, 127.0.0.2). Other traffic on the machine's
// loopback is not counted.

import (
	"bufio"
	"bytes"
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

	"github.com/mptp/mptp/app"
	"github.com/mptp/mptp/config"
	inmptp "github.com/mptp/mptp/inbound/mptp"
	outmptp "github.com/mptp/mptp/outbound/mptp"
)

func init() {
	register("scale", scaleCase)
	roles["scale-app"] = roleScaleApp
	roles["scale-target"] = roleScaleTarget
}

const (
	scaleDanted  = "/usr/sbin/danted"
	scaleTargets = 16       // loopback addresses the echo target listens on
	scaleBlock   = 64 << 10 // what a busy connection writes, then reads back
	scaleDialers = 64       // dials in flight while connections are opened
	scalePaths   = 2        // the mptp client's
)

// scaleTargetAddr spreads connections over loopback addresses, so that
// no end runs out of ports (nor of 4-tuples with connections still in
// TIME_WAIT from an earlier run).
func scaleTargetAddr(k int) string { return fmt.Sprintf("127.31.1.%d:0", k+1) }

// scalePlan is what one run measures.
type scalePlan struct {
	idle     []int         // numbers of idle connections
	busy     int           // connections that move data while measured
	warm     time.Duration // before the readings
	idleSpan time.Duration // idle: CPU is measured over this
	span     time.Duration // busy: how long RSS is sampled
	tunnel   time.Duration // idle tunnel: CPU and segments are counted over this
	// tunnelWarm is how long the idle tunnel runs before it is counted:
	// past its paths' first pings and the busy spell its first frames
	// start (3 ping intervals: docs/PROTOCOL.md, 8.4).
	tunnelWarm time.Duration
	runs       int
	probe      int // connections opened and closed before the baseline
}

func scaleCase(o *opts) (rows []Row, err error) {
	p := scalePlan{idle: []int{1000, 10000}, busy: 1000, warm: time.Second, idleSpan: 5 * time.Second,
		span: 2 * time.Second, tunnel: 30 * time.Second, tunnelWarm: 5 * time.Second, runs: min(o.runs, 3), probe: 20}
	if o.smoke {
		p = scalePlan{idle: []int{50}, busy: 10, warm: 100 * time.Millisecond, idleSpan: 300 * time.Millisecond,
			span: 200 * time.Millisecond, tunnel: time.Second, tunnelWarm: 100 * time.Millisecond, runs: 1, probe: 5}
	}
	if p.runs < o.runs {
		log.Printf("scale: %d runs of each case, not %d: each figure is a mean over thousands of connections already", p.runs, o.runs)
	}
	// Descriptors: each process holds one a connection: the harness the
	// SOCKS client's end, the target its end, the mptp client the SOCKS
	// connection, the mptp server the target connection; danted's are
	// spread over its processes.
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
			fit := int(limit-scaleFdSpare) / 1000 * 1000
			log.Printf("scale: skipping %d idle connections: they need RLIMIT_NOFILE %d, it is %d and cannot be raised (%v); measuring %d instead",
				n, scaleFds(n), limit, nerr, fit)
			if fit > 0 && !slices.Contains(p.idle, fit) && !slices.Contains(keep, fit) {
				keep = append(keep, fit)
			}
		}
		p.idle = keep
		p.busy = min(p.busy, int(limit-scaleFdSpare))
	}
	danted := true
	if _, err := os.Stat(scaleDanted); err != nil {
		log.Printf("scale: no danted baseline (%v): install dante-server", err)
		danted = false
	}
	goroutines := runtime.NumGoroutine()

	tgt, err := startScaleTarget(o)
	if err != nil {
		return nil, err
	}
	defer tgt.close()

	var errs []error
	trows, err := scaleTunnelCase(o, p)
	rows = append(rows, trows...)
	if err != nil {
		errs = append(errs, fmt.Errorf("idle tunnel: %w", err))
	}

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
	for _, m := range ms {
		// One list per case: the busy run gives "busy" and "idle after busy".
		var mp, dt [2][]scaleFigures
		useDanted := danted
		for run := 0; run < p.runs; run++ {
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
	// Everything is down: the roles and danted have exited, the
	// connections here are closed and their goroutines gone.
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
// n idle after busy: connections that carried data hold what it left them.
func scaleCaseName(n int, busy bool, part int) string {
	switch {
	case !busy:
		return fmt.Sprintf("%d idle streams", n)
	case part == 0:
		return fmt.Sprintf("%d busy streams", n)
	}
	return fmt.Sprintf("%d idle streams after busy", n)
}

// scaleFigures is one run's figures, in KiB per connection held.
type scaleFigures struct {
	held           int // connections held (danted may hold fewer than asked)
	client, server float64
	clientGo       float64 // mptp: HeapInuse+StackInuse
	serverGo       float64
	cpu            float64 // CPU time over wall time, in % of one core (client and server together), idle or busy
	pss            float64 // danted: summed PSS
	mibps          float64 // busy: MiB/s echoed, all connections together
	procs          int     // danted: processes while held
}

func (f scaleFigures) String() string {
	s := fmt.Sprintf("%d held: client %.1f KiB, server %.1f KiB per stream (RSS)", f.held, f.client, f.server)
	if f.procs > 0 {
		s = fmt.Sprintf("%d held by %d processes: %.1f KiB RSS, %.1f KiB PSS per connection", f.held, f.procs, f.server, f.pss)
	} else {
		s += fmt.Sprintf("; Go heap+stack client %.1f KiB, server %.1f KiB", f.clientGo, f.serverGo)
	}
	if f.mibps > 0 {
		s += fmt.Sprintf("; %.0f MiB/s echoed, %.0f%% of a core", f.mibps, f.cpu)
	} else {
		s += fmt.Sprintf("; %.2f%% of a core while idle", f.cpu)
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
	base := "danted, summed " + how + ", KiB per connection"
	var rows []Row
	add := func(what string, v float64, unit string, b string) {
		rows = append(rows, Row{Group: "scale", Case: name, What: what, Value: v, Unit: unit, Base: b})
	}
	if len(dt) > 0 {
		add(base, med(dt, func(f scaleFigures) float64 { return f.server }), "KiB", "")
		add("danted, summed PSS"+strings.TrimPrefix(how, "RSS")+", KiB per connection", med(dt, func(f scaleFigures) float64 { return f.pss }), "KiB", "")
		if held := med(dt, func(f scaleFigures) float64 { return float64(f.held) }); int(held) < n {
			add("danted, connections it held", held, "connections", "")
		}
		if !busy {
			add("danted, CPU while idle, % of a core", med(dt, func(f scaleFigures) float64 { return f.cpu }), "%", "")
		} else {
			add("danted, CPU while busy, % of a core", med(dt, func(f scaleFigures) float64 { return f.cpu }), "%", "")
		}
	} else {
		base = ""
	}
	if len(mp) > 0 {
		c := med(mp, func(f scaleFigures) float64 { return f.client })
		s := med(mp, func(f scaleFigures) float64 { return f.server })
		add("mptp client+server, "+how+", KiB per stream", med(mp, func(f scaleFigures) float64 { return f.client + f.server }), "KiB", base)
		add("mptp client, "+how+", KiB per stream", c, "KiB", base)
		add("mptp server, "+how+", KiB per stream", s, "KiB", base)
		add("mptp client, Go HeapInuse+StackInuse, KiB per stream", med(mp, func(f scaleFigures) float64 { return f.clientGo }), "KiB", "")
		add("mptp server, Go HeapInuse+StackInuse, KiB per stream", med(mp, func(f scaleFigures) float64 { return f.serverGo }), "KiB", "")
		if !busy {
			// No ratio: danted's is 0 or near it.
			add("mptp client+server, CPU while idle, % of a core", med(mp, func(f scaleFigures) float64 { return f.cpu }), "%", "")
		} else {
			add("mptp client+server, CPU while busy, % of a core", med(mp, func(f scaleFigures) float64 { return f.cpu }), "%", "")
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

// scaleMptp is an mptp server and client of one run, each a scale-app
// role running the config its quick command line prints.
type scaleMptp struct {
	srv, cli *scaleProc
	socks    string // the client's SOCKS5 address
	port     int    // the server's port, on 127.0.0.1
}

// startScaleMptp starts a server and a client, and waits until the
// client's tunnel is up on both paths. On an error it stops them.
func startScaleMptp(o *opts) (m *scaleMptp, err error) {
	ports, err := lbFreePorts(2)
	if err != nil {
		return nil, err
	}
	srvAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
	socks := net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[1]))
	dir, err := os.MkdirTemp(o.work, "scale-mptp-")
	if err != nil {
		return nil, err
	}
	srvConf, err := scaleQuickConf(o, dir, "server.json", "server", "--listen", srvAddr)
	if err != nil {
		return nil, err
	}
	cliConf, err := scaleQuickConf(o, dir, "client.json", "client", "--socks", socks, "--server", srvAddr,
		"--path", "direct", "--path", "direct?bind=127.0.0.2")
	if err != nil {
		return nil, err
	}
	m = &scaleMptp{socks: socks, port: ports[0]}
	if m.srv, err = startScaleProc(o, "mptp server", "scale-app", "-c", srvConf); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			m.stop()
		}
	}()
	if _, err := m.srv.read(10 * time.Second); err != nil {
		return m, err
	}
	if m.cli, err = startScaleProc(o, "mptp client", "scale-app", "-c", cliConf); err != nil {
		return m, err
	}
	if _, err := m.cli.read(10 * time.Second); err != nil {
		return m, err
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		r, err := m.cli.ask("count", time.Minute)
		if err != nil {
			return m, err
		}
		if r.Sessions == 1 && r.Paths == scalePaths {
			return m, nil
		}
		if time.Now().After(deadline) {
			return m, fmt.Errorf("the client's tunnel is not up: %d sessions, %d paths up, not 1 and %d", r.Sessions, r.Paths, scalePaths)
		}
	}
}

// stop ends the client first, so that the server sees its tunnel end.
func (m *scaleMptp) stop() {
	if m.cli != nil {
		m.cli.stop()
	}
	if m.srv != nil {
		m.srv.stop()
	}
}

// scaleQuickConf writes the config `mptp ARGS --print` prints.
func scaleQuickConf(o *opts, dir, name string, args ...string) (string, error) {
	out, err := run("", append(append([]string{o.mptp}, args...), "--print")...)
	if err != nil {
		return "", err
	}
	f := filepath.Join(dir, name)
	return f, os.WriteFile(f, []byte(out), 0o644)
}

// scaleTunnelCase measures an idle tunnel: client and server up, no
// stream.
func scaleTunnelCase(o *opts, p scalePlan) ([]Row, error) {
	var cpu, crss, srss []float64
	perPath := map[string][]float64{}
	var errs []error
	for run := 0; run < p.runs; run++ {
		m, err := startScaleMptp(o)
		if err != nil {
			return nil, err
		}
		err = func() error {
			defer m.stop()
			time.Sleep(p.tunnelWarm)
			_, noSS := exec.LookPath("ss")
			if noSS != nil && run == 0 {
				log.Printf("scale: idle tunnel: no segment counts: no ss (iproute2)")
			}
			seg0, err := tcpPaths(m.port)
			if err != nil && noSS == nil {
				return err
			}
			cpu0, at := procCPU(m.cli.pid())+procCPU(m.srv.pid()), time.Now()
			time.Sleep(p.tunnel)
			secs := time.Since(at).Seconds()
			c := 100 * (procCPU(m.cli.pid()) + procCPU(m.srv.pid()) - cpu0).Seconds() / secs
			seg1, err := tcpPaths(m.port)
			if noSS != nil {
				seg1 = nil
			} else if err != nil {
				return err
			} else if len(seg1) != scalePaths {
				return fmt.Errorf("%d paths to the server, not %d: %v", len(seg1), scalePaths, seg1)
			}
			var line []string
			for ip, s1 := range seg1 {
				s0, ok := seg0[ip]
				if !ok || s0.Conns != s1.Conns || s1.Out < s0.Out || s1.In < s0.In {
					return fmt.Errorf("path %s changed connections while counted: %v, then %v", ip, s0, s1)
				}
				pps := float64(s1.Out-s0.Out+s1.In-s0.In) / secs
				perPath[ip] = append(perPath[ip], pps)
				line = append(line, fmt.Sprintf("%s %.2f segments/s (%d out, %d in)", ip, pps, s1.Out-s0.Out, s1.In-s0.In))
			}
			slices.Sort(line)
			cr, err := m.cli.ask("memgc", time.Minute)
			if err != nil {
				return err
			}
			sr, err := m.srv.ask("memgc", time.Minute)
			if err != nil {
				return err
			}
			cpu, crss, srss = append(cpu, c), append(crss, float64(cr.RSS)/(1<<20)), append(srss, float64(sr.RSS)/(1<<20))
			log.Printf("scale: idle tunnel, run %d: %.2f%% of a core over %.1f s; %s; RSS client %.1f MiB, server %.1f MiB",
				run+1, c, secs, strings.Join(line, ", "), float64(cr.RSS)/(1<<20), float64(sr.RSS)/(1<<20))
			return nil
		}()
		if err != nil {
			errs = append(errs, err)
			break
		}
	}
	if len(cpu) == 0 {
		return nil, errors.Join(errs...)
	}
	name := fmt.Sprintf("idle tunnel, no streams, %d paths", scalePaths)
	rows := []Row{{Group: "scale", Case: name, What: "mptp client+server, CPU, % of a core", Value: median(cpu), Unit: "%"}}
	ips := slices.Sorted(func(yield func(string) bool) {
		for ip := range perPath {
			if !yield(ip) {
				return
			}
		}
	})
	for _, ip := range ips {
		rows = append(rows, Row{Group: "scale", Case: name, What: "path from " + ip + ", TCP segments/s, both ways",
			Value: median(perPath[ip]), Unit: "pkt/s"})
	}
	rows = append(rows,
		Row{Group: "scale", Case: name, What: "mptp client, RSS", Value: median(crss), Unit: "MiB"},
		Row{Group: "scale", Case: name, What: "mptp server, RSS", Value: median(srss), Unit: "MiB"})
	return rows, errors.Join(errs...)
}

// scaleMptpRun opens n connections through the SOCKS5 inbound of a fresh
// mptp client, streams of its tunnel, each after one small exchange, and
// measures both processes: idle, or busy and then idle again.
func scaleMptpRun(o *opts, tgt *scaleTargetProc, p scalePlan, n int, busy bool) (fs []scaleFigures, err error) {
	m, err := startScaleMptp(o)
	if err != nil {
		return nil, err
	}
	var conns []net.Conn
	defer func() {
		scaleTeardown(tgt, conns)
		m.stop()
	}()
	cli, srv := m.cli, m.srv
	// The first connections allocate what every later one shares (pools,
	// maps, the runtime's caches): they belong to the baseline.
	probe, err := scaleOpenSocks(m.socks, p.probe, tgt.addrs)
	scaleCloseAll(probe)
	if err != nil {
		return nil, err
	}
	if err := scaleWait(srv, 0, 10*time.Second); err != nil {
		return nil, fmt.Errorf("probe streams did not end: %w", err)
	}
	c0, err := cli.ask("memgc", time.Minute)
	if err != nil {
		return nil, err
	}
	s0, err := srv.ask("memgc", time.Minute)
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	conns, err = scaleOpenSocks(m.socks, n, tgt.addrs)
	if err != nil {
		return nil, fmt.Errorf("%d of %d opened: %w", len(conns), n, err)
	}
	log.Printf("scale: %d streams opened in %.1f s", n, time.Since(t0).Seconds())
	if err := scaleWait(srv, n, 10*time.Second); err != nil {
		return nil, err
	}
	if got, err := tgt.count(); err != nil || got != n {
		return nil, fmt.Errorf("the target has %d connections, not %d (%v)", got, n, err)
	}
	per := func(a, b int64) float64 { return float64(b-a) / 1024 / float64(n) }
	// idle lets each path's timers (1 s pings) run, measures what they
	// cost in CPU, then the memory held.
	idle := func() (f scaleFigures, err error) {
		f.held = n
		time.Sleep(p.warm)
		cpu0, at := procCPU(cli.pid())+procCPU(srv.pid()), time.Now()
		time.Sleep(p.idleSpan)
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
	b := scaleStartBusy(conns)
	time.Sleep(p.warm)
	var (
		crss, srss []float64
		c1, s1     scaleReport
	)
	cpu0, at := procCPU(cli.pid())+procCPU(srv.pid()), time.Now()
	for start := time.Now(); time.Since(start) < p.span; time.Sleep(p.span / 10) {
		crss = append(crss, float64(procRSS(cli.pid())))
		srss = append(srss, float64(procRSS(srv.pid())))
		if len(crss) == 3 {
			// The runtime's account, once, midway (no GC forced).
			if c1, err = cli.ask("mem", time.Minute); err != nil {
				b.stop(conns)
				return nil, err
			}
			if s1, err = srv.ask("mem", time.Minute); err != nil {
				b.stop(conns)
				return nil, err
			}
		}
	}
	cpu := 100 * (procCPU(cli.pid()) + procCPU(srv.pid()) - cpu0).Seconds() / time.Since(at).Seconds()
	moved, secs := b.stop(conns)
	f := scaleFigures{held: n, mibps: float64(moved) / (1 << 20) / secs, cpu: cpu}
	f.client, f.server = per(c0.RSS, int64(median(crss))), per(s0.RSS, int64(median(srss)))
	f.clientGo, f.serverGo = per(c0.Heap+c0.Stack, c1.Heap+c1.Stack), per(s0.Heap+s0.Stack, s1.Heap+s1.Stack)
	after, err := idle()
	return []scaleFigures{f, after}, err
}

// scaleWait waits until the server holds n streams.
func scaleWait(srv *scaleProc, n int, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		r, err := srv.ask("count", time.Minute)
		if err != nil {
			return err
		}
		if r.Streams == n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the server holds %d streams, not %d", r.Streams, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// scaleDantedRun holds n connections through a fresh danted, as
// scaleMptpRun does through mptp.
func scaleDantedRun(o *opts, tgt *scaleTargetProc, p scalePlan, n int, busy bool) (fs []scaleFigures, err error) {
	d, err := startScaleDanted(o)
	if err != nil {
		return nil, err
	}
	var conns []net.Conn
	defer func() {
		scaleTeardown(tgt, conns)
		d.stop()
	}()
	probe, err := scaleOpenSocks(d.addr, p.probe, tgt.addrs)
	scaleCloseAll(probe)
	if err != nil {
		return nil, fmt.Errorf("%w (danted: %s)", err, d.log.String())
	}
	time.Sleep(200 * time.Millisecond)
	rss0, pss0, _ := d.mem()
	conns, err = scaleOpenSocks(d.addr, n, tgt.addrs)
	if err != nil {
		if len(conns) == 0 {
			return nil, fmt.Errorf("%w (danted: %s)", err, d.log.String())
		}
		log.Printf("scale: danted held %d connections of %d: %v; danted's last words: %s", len(conns), n, err, lastLines(d.log.String(), 5))
	}
	held := len(conns)
	per := func(a, b int64) float64 { return float64(b-a) / 1024 / float64(held) }
	idle := func() scaleFigures {
		f := scaleFigures{held: held}
		time.Sleep(p.warm)
		cpu0, at := d.cpu(), time.Now()
		time.Sleep(p.idleSpan)
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
	cpu0, at := d.cpu(), time.Now()
	for start := time.Now(); time.Since(start) < p.span; time.Sleep(p.span / 10) {
		r, s, procs := d.mem()
		rs, ps, f.procs = append(rs, float64(r)), append(ps, float64(s)), procs
	}
	f.cpu = 100 * (d.cpu() - cpu0).Seconds() / time.Since(at).Seconds()
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

// scaleExchange is a connection's one small exchange before it idles.
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

// scaleTeardown ends a run's connections from the target's end first, and
// closes the harness's ends once the proxy has passed the close on (or
// after 10 s). Whoever closes first keeps the connection in TIME_WAIT for
// a minute: so it is the target's listening ports and the proxy's, and
// not the ports the proxy dialed from, which a later run needs. (danted
// binds each connection it dials to its external address, and a port in
// TIME_WAIT there cannot be bound again.)
func scaleTeardown(tgt *scaleTargetProc, conns []net.Conn) {
	tgt.closeConns()
	deadline := time.Now().Add(10 * time.Second)
	var buf [1]byte
	for _, c := range conns {
		c.SetReadDeadline(deadline)
		for {
			if _, err := c.Read(buf[:]); err != nil {
				break
			}
		}
	}
	scaleCloseAll(conns)
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

// scaleTarget is the echo server every connection ends at, in the
// scale-target role.
type scaleTarget struct {
	lns   []net.Listener
	addrs []string
	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
	once  sync.Once
}

func newScaleTarget() (*scaleTarget, error) {
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

// lastLines is the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

var scaleDantedNext atomic.Int32

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
	// Its own external address each time: danted binds every connection
	// it dials to it, and that address's ports are its alone.
	external := fmt.Sprintf("127.31.3.%d", scaleDantedNext.Add(1)%250+1)
	text := "logoutput: stderr\ninternal: 127.0.0.1 port = " + port + "\nexternal: " + external + "\n" +
		"clientmethod: none\nsocksmethod: none\nuser.privileged: root\nuser.unprivileged: nobody\n" +
		"client pass { from: 127.0.0.1/32 to: 0.0.0.0/0 }\n" +
		"socks pass { from: 127.0.0.1/32 to: 0.0.0.0/0 command: connect }\n"
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		return nil, err
	}
	d := &scaleDantedProc{addr: addr, log: &outputBuf{}, done: make(chan struct{})}
	argv := inNetns("", scaleDanted, "-f", conf, "-N", "1", "-p", filepath.Join(dir, "danted.pid")) // BENCH_NICE
	d.cmd = command(argv[0], argv[1:]...)
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

// cpu is the CPU time danted's processes have used, with their children
// that ended.
func (d *scaleDantedProc) cpu() time.Duration { return treeCPU(d.cmd.Process.Pid) }

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

// scaleFds is the descriptors one process needs for n connections: one
// each (the harness's SOCKS client ends, the target's ends, the mptp
// client's SOCKS connections, the mptp server's target connections), and
// some to spare.
func scaleFds(n int) uint64 { return uint64(n + scaleFdSpare) }

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
	Sessions   int      `json:"sessions"` // mptp: sessions (tunnels) open; target: connections
	Streams    int      `json:"streams"`  // mptp: streams open
	Paths      int      `json:"paths"`    // mptp client: paths up
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

// roleScaleApp runs an mptp config (the quick command lines' output) as
// the mptp command does, and reports its memory and what it holds.
func roleScaleApp(args []string) error {
	fs := flag.NewFlagSet("scale-app", flag.ContinueOnError)
	conf := fs.String("c", "", "the config file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	text, err := os.ReadFile(*conf)
	if err != nil {
		return err
	}
	cfg, warnings, err := config.Parse(text)
	for _, w := range warnings {
		fmt.Fprintln(os.Stderr, "warning:", w)
	}
	if err != nil {
		return err
	}
	logger, closer, err := app.Logger(cfg.Log)
	if err != nil {
		return err
	}
	defer closer.Close()
	a, warnings, err := app.Build(cfg, logger)
	for _, w := range warnings {
		fmt.Fprintln(os.Stderr, "warning:", w)
	}
	if err != nil {
		return err
	}
	if err := a.Start(); err != nil {
		return err
	}
	defer a.Close()
	if err := json.NewEncoder(os.Stdout).Encode(scaleReport{}); err != nil {
		return err
	}
	return scaleCommands(func(f []string) scaleReport {
		if f[0] != "count" {
			return scaleReport{Err: "unknown command " + f[0]}
		}
		var r scaleReport
		for _, in := range a.Inbounds {
			if m, ok := in.(*inmptp.Inbound); ok {
				st := m.Server().Status()
				r.Sessions += st.SessionsOpen
				r.Streams += int(st.Streams.Open)
			}
		}
		for _, ob := range a.Outbounds {
			if m, ok := ob.(*outmptp.Outbound); ok {
				st := m.Client().Status()
				r.Sessions += st.SessionsOpen
				r.Streams += int(st.Streams.Open)
				for _, p := range st.Paths {
					if p.State == "up" {
						r.Paths++
					}
				}
			}
		}
		return r
	})
}

// roleScaleTarget runs the echo target on scaleTargets loopback
// addresses; "count" reports its connections, "close" closes them.
func roleScaleTarget(args []string) error {
	t, err := newScaleTarget()
	if err != nil {
		return err
	}
	defer t.close()
	if err := json.NewEncoder(os.Stdout).Encode(scaleReport{Addrs: t.addrs}); err != nil {
		return err
	}
	return scaleCommands(func(f []string) scaleReport {
		switch f[0] {
		case "count":
		case "close":
			t.closeConns()
		default:
			return scaleReport{Err: "unknown command " + f[0]}
		}
		return scaleReport{Sessions: t.count()}
	})
}

// scaleTargetProc is the scale-target role of a run.
type scaleTargetProc struct {
	*scaleProc
	addrs []string
}

func startScaleTarget(o *opts) (*scaleTargetProc, error) {
	p, err := startScaleProc(o, "echo target", "scale-target")
	if err != nil {
		return nil, err
	}
	hello, err := p.read(10 * time.Second)
	if err != nil {
		p.stop()
		return nil, err
	}
	return &scaleTargetProc{scaleProc: p, addrs: hello.Addrs}, nil
}

// count is the target's connections now.
func (t *scaleTargetProc) count() (int, error) {
	r, err := t.ask("count", time.Minute)
	return r.Sessions, err
}

// closeConns closes every connection at the target and waits until their
// loops are gone.
func (t *scaleTargetProc) closeConns() {
	if r, err := t.ask("close", time.Minute); err != nil || r.Sessions != 0 {
		log.Printf("scale: the target's connections did not all close: %d left (%v)", r.Sessions, err)
	}
}

func (t *scaleTargetProc) close() { t.stop() }

// scaleProc is a role of this program run for the scale group.
type scaleProc struct {
	name  string
	cmd   *exec.Cmd
	in    io.WriteCloser
	lines chan string
	log   *outputBuf
	done  chan struct{}
}

func startScaleProc(o *opts, name, role string, args ...string) (*scaleProc, error) {
	argv := inNetns("", append([]string{o.self, role}, args...)...) // BENCH_NICE
	p := &scaleProc{name: name, cmd: command(argv[0], argv[1:]...),
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
		return nil, fmt.Errorf("%s: %v", name, err)
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
