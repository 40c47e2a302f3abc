package main

import (
	"fmt"
	"log"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

func init() { register("lab", labCase) }

const (
	sourcePort = 9000
	mptpPort   = 3001
	socksPort  = 1086
)

var sourceAddr = fmt.Sprintf("%s:%d", serviceAddr, sourcePort)

// labCases are the link sets of the aggregation lab. The last has a 10x
// RTT difference (4 ms and 40 ms).
var labCases = [][]link{
	{{Mbit: 40}, {Mbit: 20}},
	{{Mbit: 80}, {Mbit: 10}},
	{{Mbit: 30}, {Mbit: 20}, {Mbit: 10}},
	{{Mbit: 40, DelayMs: 2}, {Mbit: 20, DelayMs: 20}},
}

func labCase(o *opts) ([]Row, error) {
	if err := canLab(); err != nil {
		log.Printf("lab: skipped: %v", err)
		return nil, nil
	}
	sets := labCases
	if o.smoke {
		sets = [][]link{{{Mbit: 40}, {Mbit: 20, DelayMs: 5}}}
	}
	var rows []Row
	for _, links := range sets {
		if o.lab != "" && !slices.Contains(strings.Split(o.lab, ","), (&lab{links: links}).String()) {
			continue
		}
		r, err := aggregate(o, links)
		rows = append(rows, r...)
		if err != nil {
			return rows, err
		}
	}
	return rows, nil
}

// mptpLab is an mptp server and client running in a lab.
type mptpLab struct {
	*lab
	source, server, client *proc
}

// startMptp builds a lab of links and starts in it the source, the mptp
// server and an mptp client whose actors are the links, with extra
// top-level config on the client. On an error it leaves nothing behind.
func startMptp(o *opts, links []link, clientExtra string) (m *mptpLab, err error) {
	l, err := newLab(o, links)
	if err != nil {
		return nil, err
	}
	m = &mptpLab{lab: l}
	defer func() {
		if err != nil {
			m.close()
			m = nil
		}
	}()
	if m.source, err = start("source", l.srv, o.self, "source", "-mptcp", "-listen", sourceAddr); err != nil {
		return m, err
	}
	server := writeConf(o, l.prefix+"-server.json", fmt.Sprintf(`{
  "log": {"level": "warn"},
  "inbounds": [{"protocol": "mptp", "address": %q, "port": %d}],
  "outbounds": [{"protocol": "direct"}]
}`, serviceAddr, mptpPort))
	if m.server, err = start("mptp server", l.srv, o.mptp, "-c", server); err != nil {
		return m, err
	}
	var actors, outs []string
	for i := range l.links {
		tag := fmt.Sprintf("link%d", i+1)
		actors = append(actors, fmt.Sprintf("%q", tag))
		outs = append(outs, fmt.Sprintf(`{"protocol": "direct", "tag": %q, "settings": {"bind": %q}}`, tag, cliAddr(i+1)))
	}
	client := writeConf(o, l.prefix+"-client.json", fmt.Sprintf(`{
  "log": {"level": "warn"},%s
  "inbounds": [{"protocol": "socks", "address": "127.0.0.1", "port": %d}],
  "outbounds": [
    {"protocol": "mptp", "settings": {"actors": [%s], "address": %q, "port": %d}},
    %s
  ]
}`, clientExtra, socksPort, strings.Join(actors, ", "), serviceAddr, mptpPort, strings.Join(outs, ",\n    ")))
	if m.client, err = start("mptp client", l.cli, o.mptp, "-c", client); err != nil {
		return m, err
	}
	for _, w := range []struct {
		p    *proc
		ns   string
		addr string
	}{{m.source, l.srv, sourceAddr}, {m.server, l.srv, fmt.Sprintf("%s:%d", serviceAddr, mptpPort)},
		{m.client, l.cli, fmt.Sprintf("127.0.0.1:%d", socksPort)}} {
		if err := w.p.waitPort(w.ns, w.addr); err != nil {
			return m, err
		}
	}
	return m, nil
}

func (m *mptpLab) close() {
	m.client.stop()
	m.server.stop()
	m.source.stop()
	m.lab.close()
}

func writeConf(o *opts, name, text string) string {
	f := filepath.Join(o.work, name)
	if err := os.WriteFile(f, []byte(text), 0o644); err != nil {
		log.Fatal(err)
	}
	return f
}

// aggregate measures one link set: each link alone, kernel MPTCP and mptp,
// in turn, o.runs times.
func aggregate(o *opts, links []link) ([]Row, error) {
	m, err := startMptp(o, links, "")
	if err != nil {
		return nil, err
	}
	defer m.close()
	l := m.lab
	name := l.String() + " Mbit/s"
	secs := fmt.Sprint(o.seconds)
	single := make([][]float64, len(links))
	var kernel, mp []float64
	// Bytes the server side put on the links per payload byte received.
	var tcpWire, kernelWire, mpWire []float64
	perByte := func(res fetchResult, wire int64) float64 {
		if res.Bytes == 0 {
			return 0
		}
		return float64(wire) / float64(res.Bytes)
	}
	for r := 0; r < o.runs; r++ {
		for k := range links {
			res, wire, err := l.fetchWire(o, "-target", sourceAddr, "-bind", cliAddr(k+1), "-seconds", secs)
			if err != nil {
				return nil, fmt.Errorf("%s: link %d alone: %w", name, k+1, err)
			}
			single[k] = append(single[k], res.Mbps)
			tcpWire = append(tcpWire, perByte(res, wire))
		}
		res, wire, err := l.fetchWire(o, "-target", sourceAddr, "-bind", cliAddr(1), "-mptcp", "-seconds", secs)
		if err != nil {
			return nil, fmt.Errorf("%s: kernel MPTCP: %w", name, err)
		}
		kernel = append(kernel, res.Mbps)
		kernelWire = append(kernelWire, perByte(res, wire))
		res, wire, err = l.fetchWire(o, "-target", sourceAddr, "-socks", fmt.Sprintf("127.0.0.1:%d", socksPort), "-seconds", secs)
		if err != nil {
			return nil, fmt.Errorf("%s: mptp: %w (client log: %s)", name, err, m.client.log)
		}
		mp = append(mp, res.Mbps)
		mpWire = append(mpWire, perByte(res, wire))
		log.Printf("lab %s run %d: single %v, kernel %.1f, mptp %.1f; link bytes per payload byte: TCP %.4f, kernel %.4f, mptp %.4f",
			name, r+1, lastOf(single), kernel[r], mp[r], tcpWire[len(tcpWire)-1], kernelWire[r], mpWire[r])
	}
	var rows []Row
	sum, best := 0.0, 0.0
	for k, xs := range single {
		v := median(xs)
		sum += v
		best = max(best, v)
		rows = append(rows, Row{Group: "lab", Case: name, What: fmt.Sprintf("link %d alone (TCP)", k+1), Value: v, Unit: "Mbit/s"})
	}
	rows = append(rows,
		Row{Group: "lab", Case: name, What: "sum of links", Value: sum, Unit: "Mbit/s"},
		Row{Group: "lab", Case: name, What: "best link", Value: best, Unit: "Mbit/s"},
		Row{Group: "lab", Case: name, What: "kernel MPTCP", Value: median(kernel), Unit: "Mbit/s", Base: "sum of links"})
	mpv := median(mp)
	target := 0.95
	if rttSpread(links) >= 5 {
		target = 0.90
	}
	vsSum := Row{Group: "lab", Case: name, What: "mptp", Value: mpv, Unit: "Mbit/s", Base: "sum of links"}
	vsBest := Row{Group: "lab", Case: name, What: "mptp (vs best)", Value: mpv, Unit: "Mbit/s", Base: "best link"}
	vsKernel := Row{Group: "lab", Case: name, What: "mptp (vs kernel)", Value: mpv, Unit: "Mbit/s", Base: "kernel MPTCP"}
	rows = append(rows, vsSum, vsBest, vsKernel)
	ratios(rows)
	n := len(rows)
	check(&rows[n-3], target, fmt.Sprintf(">= %.2f", target))
	check(&rows[n-2], 1.0, ">= 1.00")
	check(&rows[n-1], 1.1, ">= 1.10")
	// What the links carried per payload byte: TCP's headers for TCP
	// alone; mptp adds its frames, copies and what it sent after the
	// fetch closed. The ratio to TCP's is the extra (issue 16: <= +0.5 %).
	const wireUnit = "bytes/byte"
	wire := []Row{
		{Group: "lab", Case: name, What: "TCP alone, link bytes per payload byte", Value: median(tcpWire), Unit: wireUnit},
		{Group: "lab", Case: name, What: "kernel MPTCP, link bytes per payload byte", Value: median(kernelWire), Unit: wireUnit, Base: "TCP alone, link bytes per payload byte"},
		{Group: "lab", Case: name, What: "mptp, link bytes per payload byte", Value: median(mpWire), Unit: wireUnit, Base: "TCP alone, link bytes per payload byte"},
	}
	ratios(wire)
	checkAtMost(&wire[2], 1.005, "<= 1.005x TCP")
	return append(rows, wire...), nil
}

func lastOf(xs [][]float64) []string {
	var out []string
	for _, x := range xs {
		out = append(out, fmt.Sprintf("%.1f", x[len(x)-1]))
	}
	return out
}

// rttSpread is the ratio of the largest to the smallest RTT of the links.
func rttSpread(links []link) float64 {
	lo, hi := 1e9, 0.0
	for _, l := range links {
		rtt := 2*l.DelayMs + 0.05 // a veth's own
		lo, hi = min(lo, rtt), max(hi, rtt)
	}
	return hi / lo
}
