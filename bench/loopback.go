package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// The loopback group: on 127.0.0.1 alone, where the links cost nothing and
// every difference is the relays' own cost. One download through each of
// plain TCP, Debian's danted and mptp with 1 and 3 paths, interleaved run
// by run; the machine's busy CPU over each download per GB moved, and the
// CPU of the processes of the transfer (the source, the relays, the fetch
// role) per GB: on a machine shared with other work the first counts that
// work too, the second misses kernel work done outside them (softirqs on
// other tasks' time, ksoftirqd); and the time to a first byte through
// danted and through mptp.

func init() { register("loopback", loopbackCase) }

// lbContender is one way of reaching the source.
type lbContender struct {
	what  string
	socks string  // "" is a plain TCP connection
	procs []*proc // the relays' processes (their trees)
}

func loopbackCase(o *opts) (rows []Row, err error) {
	if _, err := os.Stat("/usr/sbin/danted"); err != nil {
		return nil, fmt.Errorf("Debian's danted is needed (apt-get install dante-server): %v", err)
	}
	seconds := min(o.seconds, 5)
	ttfbN := 200
	if o.smoke {
		seconds, ttfbN = 1, 20
	}

	var procs []*proc
	defer func() {
		for i := len(procs) - 1; i >= 0; i-- {
			procs[i].stop()
		}
	}()
	// up starts a process and waits until it listens on addr.
	up := func(name, addr string, argv ...string) (*proc, error) {
		p, err := start(name, "", argv...)
		if err != nil {
			return nil, err
		}
		procs = append(procs, p)
		return p, p.waitPort("", addr)
	}

	ports, err := lbFreePorts(5)
	if err != nil {
		return nil, err
	}
	addr := func(i int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[i])) }
	src, dante, server, socks1, socks3 := addr(0), addr(1), addr(2), addr(3), addr(4)
	dir := filepath.Join(o.work, "loopback")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}

	source, err := up("source", src, o.self, "source", "-listen", src)
	if err != nil {
		return nil, err
	}

	danted, err := startDanted(o, "", dante, "127.0.0.1/32")
	if err != nil {
		return nil, err
	}
	procs = append(procs, danted)

	serverConf, err := lbWriteJSON(dir, "server.json", map[string]any{
		"log":       map[string]any{"level": "warn"},
		"inbounds":  []any{map[string]any{"protocol": "mptp", "address": "127.0.0.1", "port": ports[2]}},
		"outbounds": []any{map[string]any{"protocol": "direct"}},
	})
	if err != nil {
		return nil, err
	}
	mserver, err := up("mptp server", server, o.mptp, "-c", serverConf)
	if err != nil {
		return nil, err
	}
	clients := map[int]*proc{}
	for _, c := range []struct {
		paths int
		port  int
		addr  string
	}{{1, ports[3], socks1}, {3, ports[4], socks3}} {
		var actors []string
		outbounds := []any{nil}
		for i := 0; i < c.paths; i++ {
			tag := fmt.Sprint("p", i)
			actors = append(actors, tag)
			outbounds = append(outbounds, map[string]any{"protocol": "direct", "tag": tag,
				"settings": map[string]any{"bind": fmt.Sprintf("127.0.0.%d", i+1)}})
		}
		outbounds[0] = map[string]any{"protocol": "mptp", "settings": map[string]any{
			"actors": actors, "address": "127.0.0.1", "port": ports[2]}}
		f, err := lbWriteJSON(dir, fmt.Sprintf("client%d.json", c.paths), map[string]any{
			"log":       map[string]any{"level": "warn"},
			"inbounds":  []any{map[string]any{"protocol": "socks", "address": "127.0.0.1", "port": c.port}},
			"outbounds": outbounds,
		})
		if err != nil {
			return nil, err
		}
		if clients[c.paths], err = up(fmt.Sprintf("mptp client, %d paths", c.paths), c.addr, o.mptp, "-c", f); err != nil {
			return nil, err
		}
	}

	contenders := []lbContender{
		{"tcp direct", "", nil},
		{"danted", dante, []*proc{danted}},
		{"mptp 1 path", socks1, []*proc{clients[1], mserver}},
		{"mptp 3 paths", socks3, []*proc{clients[3], mserver}},
	}
	mbps := map[string][]float64{}
	cpu := map[string][]float64{}  // CPU seconds per GB, the machine's
	pcpu := map[string][]float64{} // and the processes' of the transfer
	// procsCPU is the CPU time of the source, c's relays, and this
	// program's children that ended (the fetch role).
	procsCPU := func(c lbContender) time.Duration {
		t := treeCPU(source.cmd.Process.Pid) + childrenCPU()
		for _, p := range c.procs {
			t += treeCPU(p.cmd.Process.Pid)
		}
		return t
	}
	var errs []error
	for run := 0; run < o.runs; run++ {
		for _, c := range contenders {
			args := []string{"-target", src, "-seconds", fmt.Sprint(seconds)}
			if c.socks != "" {
				args = append(args, "-socks", c.socks)
			}
			before, pbefore := cpuBusy(), procsCPU(c)
			r, err := fetch(o, "", args...)
			busy, pbusy := cpuBusy()-before, procsCPU(c)-pbefore
			if err != nil {
				errs = append(errs, fmt.Errorf("download via %s, run %d: %w", c.what, run+1, err))
				continue
			}
			mbps[c.what] = append(mbps[c.what], r.Mbps)
			if r.Bytes > 0 {
				cpu[c.what] = append(cpu[c.what], busy.Seconds()/(float64(r.Bytes)/1e9))
				pcpu[c.what] = append(pcpu[c.what], pbusy.Seconds()/(float64(r.Bytes)/1e9))
			}
			log.Printf("loopback: run %d %-12s %8.0f Mbit/s %6.2f CPU s/GB (machine), %6.2f (processes)", run+1, c.what, r.Mbps,
				busy.Seconds()/(float64(r.Bytes)/1e9), pbusy.Seconds()/(float64(r.Bytes)/1e9))
			time.Sleep(200 * time.Millisecond) // let the last one's sockets close
		}
	}

	ttfbContenders := contenders[:3]
	ttfb := map[string][]float64{}
	for run := 0; run < o.runs; run++ {
		for _, c := range ttfbContenders {
			args := []string{"-target", src, "-ttfb", fmt.Sprint(ttfbN)}
			if c.socks != "" {
				args = append(args, "-socks", c.socks)
			}
			r, err := fetch(o, "", args...)
			if err != nil {
				errs = append(errs, fmt.Errorf("ttfb via %s, run %d: %w", c.what, run+1, err))
				continue
			}
			ttfb[c.what] = append(ttfb[c.what], r.TTFB...)
		}
	}

	base := func(what string) string {
		if what == "danted" || what == "tcp direct" {
			return ""
		}
		return "danted"
	}
	for _, c := range contenders {
		if len(mbps[c.what]) > 0 {
			rows = append(rows, Row{Group: "loopback", Case: "download", What: c.what,
				Value: median(mbps[c.what]), Unit: "Mbit/s", Base: base(c.what)})
		}
	}
	for _, c := range contenders {
		if len(cpu[c.what]) > 0 {
			rows = append(rows, Row{Group: "loopback", Case: "CPU per GB", What: c.what,
				Value: median(cpu[c.what]), Unit: "CPU s/GB", Base: base(c.what)})
		}
	}
	for _, c := range contenders {
		if len(pcpu[c.what]) > 0 {
			rows = append(rows, Row{Group: "loopback", Case: "CPU per GB, processes", What: c.what,
				Value: median(pcpu[c.what]), Unit: "CPU s/GB", Base: base(c.what)})
		}
	}
	for _, c := range ttfbContenders {
		if len(ttfb[c.what]) > 0 {
			rows = append(rows, Row{Group: "loopback", Case: "time to first byte", What: c.what,
				Value: median(ttfb[c.what]), Unit: "ms", Base: base(c.what)})
		}
	}
	ratios(rows)
	for i := range rows {
		if rows[i].Case == "download" && rows[i].What == "mptp 1 path" {
			check(&rows[i], 1.0, ">= danted")
		}
	}
	return rows, errors.Join(errs...)
}

// lbFreePorts finds n distinct free TCP ports on 127.0.0.1, below the
// kernel's ephemeral range (32768 and up), so that no outgoing connection
// of a concurrent run takes one between this check and the bind.
func lbFreePorts(n int) ([]int, error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	var ports []int
	for tries := 0; len(ports) < n && tries < 1000; tries++ {
		port := 20000 + rand.IntN(12000)
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue
		}
		lns = append(lns, ln)
		ports = append(ports, port)
	}
	if len(ports) < n {
		return nil, fmt.Errorf("found only %d free ports of %d", len(ports), n)
	}
	return ports, nil
}

// lbWriteJSON writes v as JSON to dir/name and returns the file's path.
func lbWriteJSON(dir, name string, v any) (string, error) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return "", err
	}
	f := filepath.Join(dir, name)
	return f, os.WriteFile(f, b, 0o644)
}
