package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// The aggregation lab: two hosts in network namespaces, cli and srv,
// joined by shaped links, one link per client address:
//
//	cli                                              srv
//	l1c 198.18.1.1/24 ── link 1 (tbf both ways) ── l1s 198.18.1.2/24    lo 198.18.0.1:
//	l2c 198.18.2.1/24 ── link 2 ─────────────────── l2s 198.18.2.2/24      mptp server, source
//
// cli reaches 198.18.0.1 only by policy routing on the source address
// (table 100+k for link k), so a socket bound to 198.18.k.1 takes link k:
// plain TCP, each kernel MPTCP subflow and each mptp actor alike. A link
// with a delay passes through a third namespace, mid k, where a TUN device
// and the delay role hold every packet for the delay (cli 198.18.k.1 ──
// 198.18.k.254 mid 198.18.(100+k).254 ── 198.18.(100+k).2 srv).

const serviceAddr = "198.18.0.1"

// link is one link of a lab.
type link struct {
	Mbit    float64
	DelayMs float64 // one way, added in user space; 0 for none
}

type lab struct {
	prefix   string
	cli, srv string
	links    []link
	mids     []string
	delays   []*proc
}

// cliAddr is the client's address on link k (from 1).
func cliAddr(k int) string { return fmt.Sprintf("198.18.%d.1", k) }

func canLab() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("needs root: it builds network namespaces, veth links and tc qdiscs")
	}
	if _, err := run("", "ip", "netns", "list"); err != nil {
		return fmt.Errorf("needs ip netns (iproute2): %v", err)
	}
	return nil
}

// newLab builds the namespaces and links; close removes them.
func newLab(o *opts, links []link) (*lab, error) {
	l := &lab{prefix: fmt.Sprintf("mptpb%d", os.Getpid()), links: links}
	l.cli, l.srv = l.prefix+"-cli", l.prefix+"-srv"
	if err := l.build(o); err != nil {
		l.close()
		return nil, err
	}
	return l, nil
}

func (l *lab) build(o *opts) error {
	for _, ns := range []string{l.cli, l.srv} {
		if _, err := run("", "ip", "netns", "add", ns); err != nil {
			return err
		}
		if err := sh(ns, "ip link set lo up"); err != nil {
			return err
		}
	}
	if err := sh(l.srv, "ip addr add "+serviceAddr+"/32 dev lo"); err != nil {
		return err
	}
	// MPTCP: a subflow from each further client address; the server takes them.
	for _, ns := range []string{l.cli, l.srv} {
		sh(ns, "sysctl -qw net.mptcp.enabled=1", "ip mptcp limits set subflow 8 add_addr_accepted 8")
	}
	for i, ln := range l.links {
		k := i + 1
		c, s := fmt.Sprintf("l%dc", k), fmt.Sprintf("l%ds", k)
		gw := fmt.Sprintf("198.18.%d.2", k) // cli's next hop on this link
		if ln.DelayMs == 0 {
			if err := sh("",
				fmt.Sprintf("ip link add %s netns %s type veth peer name %s netns %s", c, l.cli, s, l.srv)); err != nil {
				return err
			}
			if err := sh(l.srv, fmt.Sprintf("ip addr add 198.18.%d.2/24 dev %s", k, s), "ip link set "+s+" up"); err != nil {
				return err
			}
		} else {
			mid := fmt.Sprintf("%s-mid%d", l.prefix, k)
			l.mids = append(l.mids, mid)
			gw = fmt.Sprintf("198.18.%d.254", k)
			m1, m2, tun := fmt.Sprintf("l%dm", k), fmt.Sprintf("l%dn", k), fmt.Sprintf("t%d", k)
			if _, err := run("", "ip", "netns", "add", mid); err != nil {
				return err
			}
			if err := sh("",
				fmt.Sprintf("ip link add %s netns %s type veth peer name %s netns %s", c, l.cli, m1, mid),
				fmt.Sprintf("ip link add %s netns %s type veth peer name %s netns %s", m2, mid, s, l.srv)); err != nil {
				return err
			}
			if err := sh(l.srv,
				fmt.Sprintf("ip addr add 198.18.%d.2/24 dev %s", 100+k, s), "ip link set "+s+" up",
				fmt.Sprintf("ip route add 198.18.%d.0/24 via 198.18.%d.254", k, 100+k)); err != nil {
				return err
			}
			// mid routes what comes in on a veth into the TUN device; what
			// the delay role writes back comes in on the TUN device and
			// takes the main table out.
			if err := sh(mid,
				"ip link set lo up", "sysctl -qw net.ipv4.ip_forward=1",
				"sysctl -qw net.ipv4.conf.all.rp_filter=0", "sysctl -qw net.ipv4.conf.default.rp_filter=0",
				fmt.Sprintf("ip addr add 198.18.%d.254/24 dev %s", k, m1), "ip link set "+m1+" up",
				fmt.Sprintf("ip addr add 198.18.%d.254/24 dev %s", 100+k, m2), "ip link set "+m2+" up",
				fmt.Sprintf("ip route add %s/32 via 198.18.%d.2", serviceAddr, 100+k),
				fmt.Sprintf("ip tuntap add dev %s mode tun", tun), "ip link set "+tun+" up",
				fmt.Sprintf("sysctl -qw net.ipv4.conf.%s.rp_filter=0", tun),
				fmt.Sprintf("ip route add default dev %s table 200", tun),
				fmt.Sprintf("ip rule add iif %s lookup 200", m1),
				fmt.Sprintf("ip rule add iif %s lookup 200", m2)); err != nil {
				return err
			}
			p, err := start("delay "+mid, mid, o.self, "delay", "-dev", tun, "-ms", fmt.Sprint(ln.DelayMs))
			if err != nil {
				return err
			}
			l.delays = append(l.delays, p)
		}
		if err := sh(l.cli,
			fmt.Sprintf("ip addr add %s/24 dev %s", cliAddr(k), c), "ip link set "+c+" up",
			fmt.Sprintf("ip route add %s/32 via %s dev %s table %d", serviceAddr, gw, c, 100+k),
			fmt.Sprintf("ip rule add from %s lookup %d", cliAddr(k), 100+k)); err != nil {
			return err
		}
		if k > 1 {
			if err := sh(l.cli, fmt.Sprintf("ip mptcp endpoint add %s dev %s subflow", cliAddr(k), c)); err != nil {
				return err
			}
		}
		if err := l.shape(k, ln.Mbit); err != nil {
			return err
		}
	}
	return nil
}

// shape sets link k's rate both ways: on cli's device (uploads) and srv's
// (downloads). The queue holds 100 ms at the rate, as a home router's or
// a cellular link's does; a shallower one makes every TCP on these
// kernels (BBR is their default) lose most of what it sends.
func (l *lab) shape(k int, mbit float64) error {
	if err := sh(l.cli, tbf(fmt.Sprintf("l%dc", k), mbit)); err != nil {
		return err
	}
	return sh(l.srv, tbf(fmt.Sprintf("l%ds", k), mbit))
}

func tbf(dev string, mbit float64) string {
	return fmt.Sprintf("tc qdisc replace dev %s root tbf rate %gmbit burst 16kb latency 100ms", dev, mbit)
}

// setLink takes link k's server side down or up: the client sees its
// path go silent, then come back.
func (l *lab) setLink(k int, up bool) error {
	state := "down"
	if up {
		state = "up"
	}
	return sh(l.srv, fmt.Sprintf("ip link set l%ds %s", k, state))
}

func (l *lab) close() {
	for _, p := range l.delays {
		p.stop()
	}
	for _, ns := range append([]string{l.cli, l.srv}, l.mids...) {
		run("", "ip", "netns", "del", ns)
	}
}

func (l *lab) String() string {
	var parts []string
	for _, ln := range l.links {
		s := fmt.Sprintf("%g", ln.Mbit)
		if ln.DelayMs > 0 {
			s += fmt.Sprintf("@%gms", 2*ln.DelayMs)
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "+")
}

// fetch runs the fetch role in cli once the links are quiet, so that each
// contender has them to itself.
func (l *lab) fetch(o *opts, args ...string) (fetchResult, error) {
	if err := l.quiet(); err != nil {
		return fetchResult{}, err
	}
	return fetch(o, l.cli, args...)
}

// quiet waits until the links carry (almost) nothing. A connection the last
// measurement closed can go on sending what its socket still holds: kernel
// MPTCP's subflows drain for seconds after the close, and would share the
// links with the next contender.
func (l *lab) quiet() error {
	const (
		every = 250 * time.Millisecond
		idle  = 4 << 10 // bytes per interval: pings, not data
	)
	last := int64(-1)
	for end := time.Now().Add(15 * time.Second); time.Now().Before(end); time.Sleep(every) {
		n, err := l.sent()
		if err != nil {
			return err
		}
		if last >= 0 && n-last < idle {
			return nil
		}
		last = n
	}
	return fmt.Errorf("lab %s: the links are still busy after 15 s", l)
}

// fetchWire is fetch, with the bytes the server side put on the links for
// it: counted from quiet links before to quiet links after, so that what
// a contender still sends after the fetch closed (data in flight, copies)
// is counted too.
func (l *lab) fetchWire(o *opts, args ...string) (fetchResult, int64, error) {
	if err := l.quiet(); err != nil {
		return fetchResult{}, 0, err
	}
	before, err := l.sent(l.srv)
	if err != nil {
		return fetchResult{}, 0, err
	}
	res, err := fetch(o, l.cli, args...)
	if err != nil {
		return res, 0, err
	}
	if err := l.quiet(); err != nil {
		return res, 0, err
	}
	after, err := l.sent(l.srv)
	return res, after - before, err
}

// sent is how many bytes the qdiscs of the namespaces given (the links'
// both ways when none) have sent so far.
func (l *lab) sent(namespaces ...string) (int64, error) {
	if len(namespaces) == 0 {
		namespaces = []string{l.cli, l.srv}
	}
	var n int64
	for _, ns := range namespaces {
		out, err := run(ns, "tc", "-s", "qdisc", "show")
		if err != nil {
			return 0, err
		}
		for _, f := range strings.Split(out, "\n") {
			f = strings.TrimSpace(f)
			if v, ok := strings.CutPrefix(f, "Sent "); ok {
				b, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
				n += b
			}
		}
	}
	return n, nil
}
