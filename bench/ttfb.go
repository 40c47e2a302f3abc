package main

import (
	"fmt"
	"log"
	"net"
	"path/filepath"
)

func init() { register("ttfb", ttfbCase) }

const dantedPort = 1080

// ttfbCase times many short requests (a new connection each, one byte
// back) over two links of 10 ms RTT: straight to the source, through
// Debian's danted beside the source (the remote SOCKS5 proxy a user would
// have instead), and through mptp. The RTT unit is half the direct time
// (a TCP handshake and the request).
func ttfbCase(o *opts) ([]Row, error) {
	if err := canLab(); err != nil {
		log.Printf("ttfb: skipped: %v", err)
		return nil, nil
	}
	n := 200
	if o.smoke {
		n = 10
	}
	m, err := startMptp(o, []link{{Mbit: 40, DelayMs: 5}, {Mbit: 40, DelayMs: 5}}, "")
	if err != nil {
		return nil, err
	}
	defer m.close()
	l := m.lab
	danted, err := startDanted(o, l.srv, fmt.Sprintf("%s:%d", serviceAddr, dantedPort), "198.18.0.0/15")
	if err != nil {
		return nil, err
	}
	defer danted.stop()
	name := fmt.Sprintf("%d requests, %s", n, l)
	contenders := []struct {
		what string
		args []string
	}{
		{"direct TCP", []string{"-bind", cliAddr(1)}},
		{"danted", []string{"-bind", cliAddr(1), "-socks", fmt.Sprintf("%s:%d", serviceAddr, dantedPort)}},
		{"mptp", []string{"-socks", fmt.Sprintf("127.0.0.1:%d", socksPort)}},
	}
	got := map[string][]float64{}
	for r := 0; r < o.runs; r++ {
		for _, c := range contenders {
			res, err := l.fetch(o, append([]string{"-target", sourceAddr, "-ttfb", fmt.Sprint(n)}, c.args...)...)
			if err != nil {
				return nil, fmt.Errorf("ttfb %s: %w", c.what, err)
			}
			got[c.what] = append(got[c.what], median(res.TTFB))
		}
	}
	direct, dant, mp := median(got["direct TCP"]), median(got["danted"]), median(got["mptp"])
	rtt := direct / 2
	rows := []Row{
		{Group: "ttfb", Case: name, What: "RTT (half of direct)", Value: rtt, Unit: "ms"},
		{Group: "ttfb", Case: name, What: "direct TCP", Value: direct, Unit: "ms"},
		{Group: "ttfb", Case: name, What: "danted", Value: dant, Unit: "ms"},
		{Group: "ttfb", Case: name, What: "mptp", Value: mp, Unit: "ms", Base: "danted"},
		{Group: "ttfb", Case: name, What: "mptp - danted, in RTTs", Value: (mp - dant) / rtt, Unit: "RTT",
			Target: "<= 1 RTT", Met: yes((mp-dant)/rtt <= 1)},
	}
	ratios(rows)
	return rows, nil
}

func yes(ok bool) string {
	if ok {
		return "yes"
	}
	return "no"
}

// startDanted runs Debian's danted in ns on addr, serving clients from the
// from network, and waits until it listens.
func startDanted(o *opts, ns, addr, from string) (*proc, error) {
	host, port, _ := net.SplitHostPort(addr)
	conf := writeConf(o, fmt.Sprintf("danted-%s-%s.conf", ns, port), fmt.Sprintf(`logoutput: stderr
internal: %s port = %s
external: %s
clientmethod: none
socksmethod: none
user.privileged: root
user.unprivileged: nobody
client pass { from: %s to: 0.0.0.0/0 }
socks pass { from: %s to: 0.0.0.0/0 command: connect }
`, host, port, host, from, from))
	p, err := start("danted", ns, "/usr/sbin/danted", "-f", conf, "-N", "1", "-p", filepath.Join(o.work, "danted-"+ns+port+".pid"))
	if err != nil {
		return nil, fmt.Errorf("danted (Debian's dante-server): %w", err)
	}
	if err := p.waitPort(ns, addr); err != nil {
		p.stop()
		return nil, err
	}
	return p, nil
}
