package main

// The "connrate" group: new connections per second through a SOCKS5
// proxy, on loopback. Each exchange connects through the proxy, asks the
// source for a small reply (the source role's 8-byte request), reads it,
// checks it and closes; a load role runs many of them, a few at a time,
// and reports how many it completed per second. The proxies: Debian's
// danted, and the mptp client and server (the quick command lines, two
// paths), without and with a password. Since the tunnel, an mptp client
// keeps one session warm over its paths, and each SOCKS connection is a
// stream inside it: opening one is one round trip to the server, which
// dials the target.
//
// The CPU figures are the proxies' own processes' (utime+stime from
// /proc/PID/stat, and for danted's tree, the children's it reaped too)
// over each timed batch, divided by the exchanges: the load role and the
// source are not counted. Runs are interleaved (the order turns each
// run), and each ratio is the median of the runs' ratios, each taken
// against danted's batch of the same run.

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/proxy"
)

func init() {
	register("connrate", connrateCase)
	roles["connrate"] = roleConnrate
}

const (
	connrateReply    = 64 // bytes the source sends back per exchange
	connratePassword = "bench-connrate-password"
)

// connrateResult is what the connrate role prints.
type connrateResult struct {
	OK      int            `json:"ok"`
	Failed  int            `json:"failed"`
	Seconds float64        `json:"seconds"`
	Rate    float64        `json:"rate"` // exchanges completed per second
	P50     float64        `json:"p50_ms"`
	P99     float64        `json:"p99_ms"`
	Errors  map[string]int `json:"errors,omitempty"` // by message, the first few kinds
}

// connrateProxy is one contender: a SOCKS5 address and the processes
// whose CPU it costs.
type connrateProxy struct {
	what   string
	socks  string
	target string // each contender has its own source port: no 4-tuple is shared
	danted *proc  // its tree
	client *proc  // mptp
	server *proc
	port   int // the mptp server's
}

func connrateCase(o *opts) (rows []Row, err error) {
	if _, err := os.Stat("/usr/sbin/danted"); err != nil {
		return nil, fmt.Errorf("Debian's danted is needed (apt-get install dante-server): %v", err)
	}
	n, par, warm := 3000, 32, 200
	if o.smoke {
		n, par, warm = 60, 8, 16
	}
	var procs []*proc
	defer func() {
		for i := len(procs) - 1; i >= 0; i-- {
			procs[i].stop()
		}
	}()
	up := func(name, addr string, argv ...string) (*proc, error) {
		p, err := start(name, "", argv...)
		if err != nil {
			return nil, err
		}
		procs = append(procs, p)
		return p, p.waitPort("", addr)
	}
	ports, err := lbFreePorts(10)
	if err != nil {
		return nil, err
	}
	addr := func(i int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[i])) }
	sources := []string{addr(0), addr(1), addr(2)}
	if _, err := up("source", sources[0], o.self, "source", "-listen", strings.Join(sources, ",")); err != nil {
		return nil, err
	}
	danted, err := startDanted(o, "", addr(3), "127.0.0.1/32")
	if err != nil {
		return nil, err
	}
	procs = append(procs, danted)
	contenders := []*connrateProxy{{what: "danted", socks: addr(3), target: sources[0], danted: danted}}
	for i, pw := range []bool{false, true} {
		srvAddr, socks := addr(4+2*i), addr(5+2*i)
		what := "mptp 2 paths"
		srvArgs := []string{o.mptp, "server", "--listen", srvAddr}
		cliArgs := []string{o.mptp, "client", "--socks", socks, "--server", srvAddr,
			"--path", "direct", "--path", "direct?bind=127.0.0.2"}
		if pw {
			what += " + password"
			srvArgs = append(srvArgs, "--password", connratePassword)
			cliArgs = append(cliArgs, "--password", connratePassword)
		}
		srv, err := up(what+" server", srvAddr, srvArgs...)
		if err != nil {
			return nil, err
		}
		cli, err := up(what+" client", socks, cliArgs...)
		if err != nil {
			return nil, err
		}
		contenders = append(contenders, &connrateProxy{what: what, socks: socks, target: sources[1+i], client: cli, server: srv, port: ports[4+2*i]})
	}
	// Warm each proxy up (danted forks its children, the mptp client's
	// tunnel comes up), and check that each client has both paths.
	for _, c := range contenders {
		if _, err := connrateRun(o, c, warm, min(par, warm)); err != nil {
			return nil, fmt.Errorf("warm-up via %s: %w", c.what, err)
		}
		if c.server == nil {
			continue
		}
		if _, err := exec.LookPath("ss"); err != nil {
			log.Printf("connrate: %s: not checking its paths: no ss (iproute2)", c.what)
			continue
		}
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			paths, err := tcpPaths(c.port)
			if err != nil {
				return nil, err
			}
			if len(paths) == 2 {
				log.Printf("connrate: %s: %d paths to the server: %v", c.what, len(paths), paths)
				break
			}
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("%s: the client has %d paths to the server, not 2: %v", c.what, len(paths), paths)
			}
		}
	}

	type figures struct{ rate, cpu, cli, srv float64 }
	got := map[string][]figures{} // by contender, one per run (zero: failed run)
	failed := map[string]int{}
	var errs []error
	for run := 0; run < o.runs; run++ {
		for k := range contenders {
			c := contenders[(k+run)%len(contenders)]
			cpu0 := c.cpu()
			r, err := connrateRun(o, c, n, par)
			cpu1 := c.cpu()
			if err != nil {
				errs = append(errs, fmt.Errorf("%s, run %d: %w", c.what, run+1, err))
				got[c.what] = append(got[c.what], figures{})
				continue
			}
			failed[c.what] += r.Failed
			f := figures{rate: r.Rate}
			per := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) / float64(max(r.OK, 1)) }
			f.cpu = per(cpu1[0] + cpu1[1] - cpu0[0] - cpu0[1])
			f.cli, f.srv = per(cpu1[0]-cpu0[0]), per(cpu1[1]-cpu0[1])
			got[c.what] = append(got[c.what], f)
			log.Printf("connrate: run %d %-24s %6.0f conn/s, %.3f CPU ms/conn (client %.3f, server %.3f), exchange p50 %.2f ms p99 %.2f ms, %d failed %v",
				run+1, c.what, r.Rate, f.cpu, f.cli, f.srv, r.P50, r.P99, r.Failed, r.Errors)
			time.Sleep(200 * time.Millisecond)
		}
	}
	name := fmt.Sprintf("%d exchanges, %d at a time", n, par)
	// med is the median of a figure over the runs that gave one; rel the
	// median of its ratios to danted's in the same runs.
	med := func(what string, get func(figures) float64) float64 {
		var xs []float64
		for _, f := range got[what] {
			if f.rate > 0 {
				xs = append(xs, get(f))
			}
		}
		return median(xs)
	}
	rel := func(what string, get func(figures) float64) float64 {
		var xs []float64
		for i, f := range got[what] {
			if i < len(got["danted"]) && f.rate > 0 && got["danted"][i].rate > 0 && get(got["danted"][i]) > 0 {
				xs = append(xs, get(f)/get(got["danted"][i]))
			}
		}
		return median(xs)
	}
	add := func(what string, v float64, unit, base string, ratio float64) *Row {
		rows = append(rows, Row{Group: "connrate", Case: name, What: what, Value: v, Unit: unit, Base: base, Ratio: ratio})
		return &rows[len(rows)-1]
	}
	rate := func(f figures) float64 { return f.rate }
	cpu := func(f figures) float64 { return f.cpu }
	const dr, dc = "danted, connections/s", "danted, CPU ms per connection"
	if len(got["danted"]) == 0 {
		return rows, errors.Join(errs...)
	}
	add(dr, med("danted", rate), "conn/s", "", 0)
	for _, c := range contenders[1:] {
		if med(c.what, rate) == 0 {
			continue
		}
		r := add(c.what+", connections/s", med(c.what, rate), "conn/s", dr, rel(c.what, rate))
		if strings.HasSuffix(c.what, "password") {
			check(r, 1.0, ">= 1.0x danted")
		} else {
			check(r, 1.2, ">= 1.2x danted")
		}
	}
	add(dc, med("danted", cpu), "ms", "", 0)
	for _, c := range contenders[1:] {
		if med(c.what, rate) == 0 {
			continue
		}
		add(c.what+", client+server CPU ms per connection", med(c.what, cpu), "ms", dc, rel(c.what, cpu))
		add(c.what+", client CPU ms per connection", med(c.what, func(f figures) float64 { return f.cli }), "ms", "", 0)
		add(c.what+", server CPU ms per connection", med(c.what, func(f figures) float64 { return f.srv }), "ms", "", 0)
	}
	for _, c := range contenders {
		if failed[c.what] > 0 {
			add(c.what+", failed exchanges (all runs)", float64(failed[c.what]), "", "", 0)
			errs = append(errs, fmt.Errorf("%s: %d exchanges failed", c.what, failed[c.what]))
		}
	}
	return rows, errors.Join(errs...)
}

// cpu is the CPU time the contender's processes have used: mptp's client
// and server, or danted's tree (as [0] and [1] zero).
func (c *connrateProxy) cpu() [2]time.Duration {
	if c.danted != nil {
		return [2]time.Duration{0, treeCPU(c.danted.cmd.Process.Pid)}
	}
	return [2]time.Duration{treeCPU(c.client.cmd.Process.Pid), treeCPU(c.server.cmd.Process.Pid)}
}

// connrateRun runs the connrate role: n exchanges, par at a time.
func connrateRun(o *opts, c *connrateProxy, n, par int) (connrateResult, error) {
	var r connrateResult
	out, err := run("", o.self, "connrate", "-socks", c.socks, "-target", c.target, "-n", fmt.Sprint(n), "-parallel", fmt.Sprint(par))
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		return r, fmt.Errorf("connrate: %v: %q", err, out)
	}
	if r.OK == 0 {
		return r, fmt.Errorf("no exchange completed: %v", r.Errors)
	}
	return r, nil
}

// roleConnrate makes n exchanges with the source through a SOCKS5 proxy,
// par at a time, and prints a connrateResult.
func roleConnrate(args []string) error {
	fs := flag.NewFlagSet("connrate", flag.ContinueOnError)
	socks := fs.String("socks", "", "the SOCKS5 proxy")
	target := fs.String("target", "", "the source's host:port")
	n := fs.Int("n", 3000, "exchanges")
	par := fs.Int("parallel", 32, "exchanges at a time")
	if err := fs.Parse(args); err != nil {
		return err
	}
	d, err := proxy.SOCKS5("tcp", *socks, nil, &net.Dialer{Timeout: 10 * time.Second})
	if err != nil {
		return err
	}
	req := make([]byte, 8)
	binary.BigEndian.PutUint64(req, connrateReply)
	exchange := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, err := d.(proxy.ContextDialer).DialContext(ctx, "tcp", *target)
		cancel()
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write(req); err != nil {
			return err
		}
		var got [connrateReply]byte
		if _, err := io.ReadFull(c, got[:]); err != nil {
			return err
		}
		for i, b := range got {
			if b != pattern(uint64(i)) {
				return fmt.Errorf("byte %d of the reply is %d, want %d", i, b, pattern(uint64(i)))
			}
		}
		return nil
	}
	var (
		next   atomic.Int64
		mu     sync.Mutex
		res    connrateResult
		took   []float64
		wg     sync.WaitGroup
		errMsg = map[string]int{}
	)
	start := time.Now()
	for w := 0; w < min(*par, *n); w++ {
		wg.Go(func() {
			for next.Add(1) <= int64(*n) {
				t0 := time.Now()
				err := exchange()
				ms := float64(time.Since(t0)) / float64(time.Millisecond)
				mu.Lock()
				if err != nil {
					res.Failed++
					msg := err.Error()
					if len(errMsg) < 8 || errMsg[msg] > 0 {
						errMsg[msg]++
					}
				} else {
					res.OK++
					took = append(took, ms)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	res.Seconds = time.Since(start).Seconds()
	res.Rate = float64(res.OK) / res.Seconds
	if len(errMsg) > 0 {
		res.Errors = errMsg
	}
	sort.Float64s(took)
	if len(took) > 0 {
		res.P50 = took[len(took)/2]
		res.P99 = took[len(took)*99/100]
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}

// pathSegs is one path's TCP segments so far, from ss: what the client's
// end and the server's end of its connection each sent (data, ACKs,
// retransmissions), summed over the path's connections.
type pathSegs struct {
	Conns int
	Out   int64 // client to server
	In    int64 // server to client
}

// tcpPaths reads the TCP connections to the server's port on this
// machine with `ss -tin` and returns their segment counts by the client's
// local IP address, which names an mptp path on loopback (127.0.0.1,
// 127.0.0.2, ...).
func tcpPaths(port int) (map[string]pathSegs, error) {
	out, err := exec.Command("ss", "-tinH", "state", "established",
		fmt.Sprintf("( dport = :%d or sport = :%d )", port, port)).Output()
	if err != nil {
		return nil, fmt.Errorf("ss: %v", err)
	}
	paths := map[string]pathSegs{}
	var local, peer string
	for _, line := range strings.Split(string(out), "\n") {
		if line == "" {
			continue
		}
		if line[0] != ' ' && line[0] != '\t' {
			f := strings.Fields(line)
			if len(f) < 4 {
				local, peer = "", ""
				continue
			}
			local, peer = f[2], f[3]
			continue
		}
		var segs int64
		for _, f := range strings.Fields(line) {
			if v, ok := strings.CutPrefix(f, "segs_out:"); ok {
				segs, _ = strconv.ParseInt(v, 10, 64)
			}
		}
		lh, lp, _ := net.SplitHostPort(local)
		ph, _, _ := net.SplitHostPort(peer)
		if lp == strconv.Itoa(port) { // the server's end: the path is its peer
			ps := paths[ph]
			ps.In += segs
			paths[ph] = ps
		} else {
			ps := paths[lh]
			ps.Out += segs
			ps.Conns++
			paths[lh] = ps
		}
	}
	return paths, nil
}
