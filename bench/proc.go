package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

func command(name string, args ...string) *exec.Cmd {
	c := exec.Command(name, args...)
	c.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return c
}

// inNetns prefixes a command so that it runs in network namespace ns ("" is
// this one).
func inNetns(ns string, argv ...string) []string {
	if n := os.Getenv("BENCH_NICE"); n != "" {
		// On a shared machine: the measured processes ahead of the rest.
		argv = append([]string{"nice", "-n", n}, argv...)
	}
	if ns == "" {
		return argv
	}
	return append([]string{"ip", "netns", "exec", ns}, argv...)
}

// run runs argv in ns and returns its standard output.
func run(ns string, argv ...string) (string, error) {
	argv = inNetns(ns, argv...)
	c := command(argv[0], argv[1:]...)
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	if err := c.Run(); err != nil {
		return out.String(), fmt.Errorf("%s: %v: %s", strings.Join(argv, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// sh runs shell command lines in ns, stopping at the first that fails.
func sh(ns string, lines ...string) error {
	for _, l := range lines {
		if _, err := run(ns, "sh", "-c", l); err != nil {
			return err
		}
	}
	return nil
}

// proc is a background process of the harness.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  *outputBuf
	done chan struct{}
}

// start runs argv in ns in the background; its output is kept for errors.
func start(name, ns string, argv ...string) (*proc, error) {
	argv = inNetns(ns, argv...)
	p := &proc{name: name, cmd: command(argv[0], argv[1:]...), log: &outputBuf{}, done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	return p, nil
}

// stop ends the process and waits for it.
func (p *proc) stop() {
	if p == nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(3 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// waitPort waits until addr accepts a TCP connection from namespace ns.
func (p *proc) waitPort(ns, addr string) error {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			return fmt.Errorf("%s exited: %s", p.name, p.log.String())
		default:
		}
		var err error
		if ns == "" {
			var c net.Conn
			if c, err = net.DialTimeout("tcp", addr, time.Second); err == nil {
				c.Close()
				return nil
			}
		} else {
			host, port, _ := net.SplitHostPort(addr)
			// A bash /dev/tcp probe, from inside the namespace.
			_, err = run(ns, "bash", "-c", fmt.Sprintf("exec 3<>/dev/tcp/%s/%s", host, port))
			if err == nil {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s: nothing listens on %s (ns %q): %s", p.name, addr, ns, p.log.String())
}

// fetchResult is what the fetch role prints.
type fetchResult struct {
	Bytes   int64     `json:"bytes"`
	Seconds float64   `json:"seconds"`
	Mbps    float64   `json:"mbps"`    // over the steady part
	TTFB    []float64 `json:"ttfb_ms"` // in ttfb mode: one per request
}

// fetch runs the fetch role in ns and decodes its result.
func fetch(o *opts, ns string, args ...string) (fetchResult, error) {
	var r fetchResult
	out, err := run(ns, append([]string{o.self, "fetch"}, args...)...)
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		return r, fmt.Errorf("fetch %v: %v: %q", args, err, out)
	}
	return r, nil
}

// cpuBusy is the machine's busy CPU time so far, from /proc/stat.
func cpuBusy() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)[1:]
	var busy int64
	for i, v := range f {
		n, _ := strconv.ParseInt(v, 10, 64)
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		busy += n
	}
	return time.Duration(busy) * time.Second / 100 // USER_HZ
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// outputBuf keeps a process's output while the harness reads it.
type outputBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *outputBuf) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.b.Len() > 1<<20 { // keep the start: it says what went wrong
		return len(p), nil
	}
	return b.b.Write(p)
}

func (b *outputBuf) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.TrimSpace(b.b.String())
}

// treeCPU is the CPU time pid and its descendants have used, with what
// their children that ended and were reaped had used (danted's children
// come and go).
func treeCPU(pid int) time.Duration {
	var t time.Duration
	for _, p := range procTree(pid) {
		t += procCPUWithChildren(p)
	}
	return t
}

// procCPUWithChildren is utime+stime+cutime+cstime of a process.
func procCPUWithChildren(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 15 {
		return 0
	}
	var ticks int64
	for _, i := range []int{11, 12, 13, 14} { // fields 14-17 of stat
		v, _ := strconv.ParseInt(f[i], 10, 64)
		ticks += v
	}
	return time.Duration(ticks) * time.Second / 100
}

// childrenCPU is the CPU time this program's children that ended and were
// waited for have used.
func childrenCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
