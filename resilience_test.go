package mptp

// Resilience: sessions whose paths fail the ways real links fail, injected
// in-process with faultnet wrappers in the path dialers (and, for relays, by
// killing a real relay process). Every case checks the bytes with SHA-256
// and none asserts on timing: a test waits for the fault to have shown in
// the counters before it lets the transfer finish, so that fast machines
// and slow ones (-race, loaded CI) see the same thing.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mptp/mptp/internal/faultnet"
	"github.com/mptp/mptp/outbound"
	_ "github.com/mptp/mptp/outbound/http"  // registers "http"
	_ "github.com/mptp/mptp/outbound/socks" // registers "socks"
	"github.com/mptp/mptp/relaytest"
)

// resLog collects log lines written from several goroutines.
type resLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *resLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *resLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *resLog) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// resDialer is a path dialer whose sub-connections can be failed: each one
// is wrapped in a faultnet.Conn and remembered. While down, it refuses.
type resDialer struct {
	// next makes the real connection; nil is a plain TCP dial.
	next DialFunc
	// onConn, if set, is called with each new sub-connection.
	onConn func(*faultnet.Conn)

	mu      sync.Mutex
	conns   []*faultnet.Conn
	down    bool
	refused int
}

func (d *resDialer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if err := d.refuse(network); err != nil {
		return nil, err
	}
	next := d.next
	if next == nil {
		var nd net.Dialer
		next = nd.DialContext
	}
	c, err := next(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	fc := faultnet.Wrap(c)
	d.mu.Lock()
	if d.down {
		// It went down while this dial was on its way: cut() has not
		// seen this conn, so it must not be used.
		d.refused++
		d.mu.Unlock()
		c.Close()
		return nil, refused(network)
	}
	d.conns = append(d.conns, fc)
	d.mu.Unlock()
	if d.onConn != nil {
		d.onConn(fc)
	}
	return fc, nil
}

// refuse counts and returns a refusal if the dialer is down.
func (d *resDialer) refuse(network string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.down {
		return nil
	}
	d.refused++
	return refused(network)
}

func refused(network string) error {
	return &net.OpError{Op: "dial", Net: network, Err: syscall.ECONNREFUSED}
}

// last is the newest sub-connection, nil if none.
func (d *resDialer) last() *faultnet.Conn {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.conns) == 0 {
		return nil
	}
	return d.conns[len(d.conns)-1]
}

func (d *resDialer) setDown(down bool) {
	d.mu.Lock()
	d.down = down
	d.mu.Unlock()
}

func (d *resDialer) refusals() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.refused
}

// cut closes every sub-connection it made.
func (d *resDialer) cut() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, c := range d.conns {
		c.Close()
	}
}

// resPaths makes one path per dialer, named p0, p1, ...
func resPaths(ds ...*resDialer) []Path {
	var paths []Path
	for i, d := range ds {
		paths = append(paths, Path{Name: fmt.Sprint("p", i), Dial: d.dial})
	}
	return paths
}

// resStats returns the client's stats of the path named name.
func resStats(c *Client, name string) PathStats {
	for _, ps := range c.Stats() {
		if ps.Name == name {
			return ps
		}
	}
	return PathStats{Name: name}
}

// resWaitFor polls cond until it holds. It is no timing assertion: the
// bound only turns a hang into a failure that says what never happened.
func resWaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting (30 s) for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A path goes silent mid-transfer (packets vanish both ways, no error ever
// comes): the client finds it stale, what it carried goes out on the other
// two, and every byte arrives.
func TestResilienceSilentPath(t *testing.T) {
	const size = 32 << 20
	tg := newTarget(t, size)
	addr := startServer(t, &Server{})
	ds := []*resDialer{{}, {}, {}}
	var log resLog
	c := client(t, addr, resPaths(ds...)...)
	c.Logger = log.logger()
	conn, err := c.Dial("tcp", tg.addr())
	if err != nil {
		t.Fatal(err)
	}
	resWaitFor(t, "all three paths to join", func() bool {
		for _, ps := range c.Stats() {
			if ps.Joins == 0 {
				return false
			}
		}
		return true
	})
	var (
		silent *faultnet.Conn
		before PathStats // p1 when it went silent
	)
	transfer(t, conn, tg, size, func(sent int) {
		switch sent {
		case 8 << 20:
			silent = ds[1].last()
			before = resStats(c, "p1")
			silent.Silence()
		case 12 << 20:
			// Let the rest go only once the silence has been noticed, so
			// that a fast machine does not finish before it is.
			resWaitFor(t, "the silent path to be found stale", func() bool {
				return dealtWith(resStats(c, "p1"), before)
			})
		}
	})
	silent.Close() // a silent link never closes by itself
	for _, ps := range c.Stats() {
		t.Logf("%s: sent %d, received %d, retransmitted %d, joins %d, fails %d, stalls %d",
			ps.Name, ps.BytesSent, ps.BytesReceived, ps.Retransmitted, ps.Joins, ps.Fails, ps.Stalls)
	}
	if p1 := resStats(c, "p1"); !dealtWith(p1, before) {
		t.Fatalf("the silent path shows no stall after it went silent: %+v, before %+v\nclient log:\n%s", p1, before, log.String())
	}
}

// dealtWith reports whether a path that went silent after before was
// found stale, or, if it already counted as stale then (a loaded machine
// can make a live path look silent for a moment), closed as dead.
func dealtWith(now, before PathStats) bool {
	return now.Stalls > before.Stalls || now.Fails > before.Fails
}

// resJam is a link whose packets stop getting through once jammed, seen
// from a socket whose send buffer then fills: writes block (as write(2)
// does on a full buffer, with TCP_NOTSENT_LOWAT never met again) and
// nothing more arrives, until the connection is closed. faultnet's Silence
// makes writes succeed instead, which a real socket does only until its
// buffer is full.
type resJam struct {
	net.Conn
	jammed atomic.Bool
	once   sync.Once
	closed chan struct{}
}

func resJamWrap(c net.Conn) *resJam { return &resJam{Conn: c, closed: make(chan struct{})} }

func (j *resJam) Jam() { j.jammed.Store(true) }

func (j *resJam) Write(b []byte) (int, error) {
	if j.jammed.Load() {
		<-j.closed
		return 0, net.ErrClosed
	}
	return j.Conn.Write(b)
}

func (j *resJam) Read(b []byte) (int, error) {
	n, err := j.Conn.Read(b)
	if j.jammed.Load() {
		<-j.closed
		return 0, net.ErrClosed
	}
	return n, err
}

func (j *resJam) Close() error {
	j.once.Do(func() { close(j.closed) })
	return j.Conn.Close()
}

func (j *resJam) CloseWrite() error {
	if j.jammed.Load() {
		return nil
	}
	return j.Conn.(*net.TCPConn).CloseWrite()
}

// A path's link goes silent while its sender has more to write than the
// socket takes: its writer blocks in a write, as on a real link once the
// socket's buffer is full (the multihoming lab shows it: see
// TestResilienceNetnsRouteMoves). The path must still be found stale
// (docs/PROTOCOL.md 8.2: owes something, no progress), and the transfer
// must not wait on it.
func TestResilienceJammedPath(t *testing.T) {
	const size = 32 << 20
	tg := newTarget(t, size)
	addr := startServer(t, &Server{})
	var (
		mu   sync.Mutex
		jams []*resJam
	)
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, j := range jams {
			j.Close()
		}
	})
	jamDial := func(ctx context.Context, network, a string) (net.Conn, error) {
		var nd net.Dialer
		c, err := nd.DialContext(ctx, network, a)
		if err != nil {
			return nil, err
		}
		j := resJamWrap(c)
		mu.Lock()
		jams = append(jams, j)
		mu.Unlock()
		return j, nil
	}
	var log resLog
	c := client(t, addr, Path{Name: "p0"}, Path{Name: "p1", Dial: jamDial}, Path{Name: "p2"})
	c.Logger = log.logger()
	conn, err := c.Dial("tcp", tg.addr())
	if err != nil {
		t.Fatal(err)
	}
	resWaitFor(t, "all three paths to join", func() bool {
		for _, ps := range c.Stats() {
			if ps.Joins == 0 {
				return false
			}
		}
		return true
	})
	var before PathStats
	transfer(t, conn, tg, size, func(sent int) {
		switch sent {
		case 8 << 20:
			before = resStats(c, "p1")
			mu.Lock()
			jams[len(jams)-1].Jam()
			mu.Unlock()
		case 12 << 20:
			// A loaded machine may have found p1 stale just before the
			// jam: then it stays stale, is not found so again, and is
			// closed as dead instead.
			resWaitFor(t, "the jammed path to be found stale or dead", func() bool {
				now := resStats(c, "p1")
				return now.Stalls > before.Stalls || now.Fails > before.Fails
			})
		}
	})
}

// resActor builds an outbound of protocol with settings, the way the mptp
// outbound gets its actors from a config.
func resActor(t *testing.T, protocol, tag, settings string) outbound.Outbound {
	t.Helper()
	factory, ok := outbound.Lookup(protocol)
	if !ok {
		t.Fatalf("outbound %q not registered", protocol)
	}
	ctx := &outbound.Context{Tag: tag, Path: "outbounds[" + tag + "]", Logger: slog.New(slog.DiscardHandler),
		Warn: func(msg string) { t.Errorf("unexpected warning: %s", msg) }}
	ob, err := factory(ctx, json.RawMessage(settings))
	if err != nil {
		t.Fatal(err)
	}
	return ob
}

func resRelaySettings(t *testing.T, addr string) string {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf(`{"address": %q, "port": %s}`, host, port)
}

// Three actors: direct, SOCKS5 through a real danted, HTTP CONNECT through
// a real tinyproxy. Mid-transfer danted's processes are killed (SIGKILL):
// the kernel closes its connections, the socks path dies and its actor
// keeps being refused; the session goes on over the other two, intact.
func TestResilienceRelayKilled(t *testing.T) {
	const size = 24 << 20
	tg := newTarget(t, size)
	addr := startServer(t, &Server{})
	_, port, _ := net.SplitHostPort(addr)
	var serverPort int
	fmt.Sscan(port, &serverPort)
	danted := relaytest.Danted(t, "")
	tinyproxy := relaytest.Tinyproxy(t, "", "", serverPort)
	socks := resActor(t, "socks", "socks", resRelaySettings(t, danted.Addr))
	httpRelay := resActor(t, "http", "http", resRelaySettings(t, tinyproxy.Addr))
	var log resLog
	c := &Client{Server: addr, Logger: log.logger(), Paths: []Path{
		{Name: "direct"},
		{Name: "socks", Dial: socks.DialContext},
		{Name: "http", Dial: httpRelay.DialContext},
	}}
	defer c.Close()
	conn, err := c.Dial("tcp", tg.addr())
	if err != nil {
		t.Fatal(err)
	}
	resWaitFor(t, "the three actors to join", func() bool {
		for _, ps := range c.Stats() {
			if ps.Joins == 0 {
				return false
			}
		}
		return true
	})
	var beforeKill PathStats
	transfer(t, conn, tg, size, func(sent int) {
		if sent == 6<<20 {
			beforeKill = resStats(c, "socks")
			danted.Stop(t) // SIGKILL to its process group; returns once its port refuses
			resWaitFor(t, "the socks path to fail after danted was killed", func() bool {
				return resStats(c, "socks").Fails > beforeKill.Fails
			})
		}
	})
	for _, ps := range c.Stats() {
		t.Logf("%s: sent %d, received %d, retransmitted %d, joins %d, fails %d",
			ps.Name, ps.BytesSent, ps.BytesReceived, ps.Retransmitted, ps.Joins, ps.Fails)
	}
	after := resStats(c, "socks")
	if after.Joins != beforeKill.Joins {
		t.Errorf("the socks path joined again (%d -> %d) with danted dead", beforeKill.Joins, after.Joins)
	}
	if !strings.Contains(log.String(), "path=socks") {
		t.Errorf("the client log says nothing of the socks path:\n%s", log.String())
	}
}

// One path is reset 200 ms after each of its sub-connections is made, for
// 10 s, next to a steady path; an echo stream that runs through those 10 s
// comes back intact.
func TestResilienceFlappingPath(t *testing.T) {
	const (
		flapFor   = 10 * time.Second
		flapAfter = 200 * time.Millisecond
	)
	echo := echoServer(t)
	addr := startServer(t, &Server{})
	var (
		mu      sync.Mutex
		timers  []*time.Timer
		pending sync.WaitGroup
		resets  atomic.Int64
	)
	start := time.Now()
	flap := &resDialer{onConn: func(c *faultnet.Conn) {
		mu.Lock()
		defer mu.Unlock()
		if time.Since(start) >= flapFor {
			return // the link has settled
		}
		pending.Add(1)
		timers = append(timers, time.AfterFunc(flapAfter, func() {
			defer pending.Done()
			resets.Add(1)
			c.Reset()
		}))
	}}
	steady := &resDialer{}
	var log resLog
	c := client(t, addr, Path{Name: "steady", Dial: steady.dial}, Path{Name: "flap", Dial: flap.dial})
	c.Logger = log.logger()
	conn, err := c.Dial("tcp", echo)
	if err != nil {
		t.Fatal(err)
	}

	// The writer paces 32 KiB every 5 ms (about 6.5 MB/s) until the
	// flapping is over, hashing what it sends; the reader hashes the echo.
	type result struct {
		n   int64
		sum [32]byte
		err error
	}
	read := make(chan result, 1)
	go func() {
		h := sha256.New()
		n, err := io.Copy(h, conn)
		var r result
		r.n, r.err = n, err
		copy(r.sum[:], h.Sum(nil))
		read <- r
	}()
	rng := rand.NewChaCha8([32]byte{1})
	sent := sha256.New()
	var total int64
	buf := make([]byte, 32<<10)
	tick := time.NewTicker(5 * time.Millisecond)
	for time.Since(start) < flapFor+300*time.Millisecond {
		<-tick.C
		rng.Read(buf)
		if _, err := conn.Write(buf); err != nil {
			tick.Stop()
			t.Fatalf("write after %d bytes: %v\nclient log:\n%s", total, err, log.String())
		}
		sent.Write(buf)
		total += int64(len(buf))
	}
	tick.Stop()
	conn.(interface{ CloseWrite() error }).CloseWrite()
	r := <-read
	conn.Close()

	mu.Lock()
	for _, tm := range timers {
		if tm.Stop() {
			pending.Done()
		}
	}
	mu.Unlock()
	pending.Wait()

	if r.err != nil {
		t.Fatalf("read after %d of %d bytes: %v\nclient log:\n%s", r.n, total, r.err, log.String())
	}
	if r.n != total || !bytes.Equal(r.sum[:], sent.Sum(nil)) {
		t.Fatalf("echo: %d bytes back of %d sent, sums equal: %v", r.n, total, bytes.Equal(r.sum[:], sent.Sum(nil)))
	}
	fs := resStats(c, "flap")
	t.Logf("%d bytes echoed; flapping path: %d resets, %d joins, %d fails, sent %d, received %d",
		total, resets.Load(), fs.Joins, fs.Fails, fs.BytesSent, fs.BytesReceived)
	if resets.Load() < 2 || fs.Joins < 2 {
		t.Fatalf("the path did not flap: %d resets, %d joins", resets.Load(), fs.Joins)
	}
}

// Every sub-connection is cut and the dialers refuse for 1 s, less than the
// 5 s grace period of both ends: the paths come back, rejoin, and nothing
// is lost.
func TestResilienceAllPathsDownWithinGrace(t *testing.T) {
	const size = 16 << 20
	tg := newTarget(t, size)
	grace := Options{Grace: 5 * time.Second}
	addr := startServer(t, &Server{Options: grace})
	ds := []*resDialer{{}, {}}
	var log resLog
	c := client(t, addr, resPaths(ds...)...)
	c.Options, c.Logger = grace, log.logger()
	conn, err := c.Dial("tcp", tg.addr())
	if err != nil {
		t.Fatal(err)
	}
	transfer(t, conn, tg, size, func(sent int) {
		if sent != 4<<20 {
			return
		}
		for _, d := range ds {
			d.setDown(true)
		}
		for _, d := range ds {
			d.cut()
		}
		time.Sleep(time.Second)
		// The outage must have been seen: each path was refused.
		resWaitFor(t, "each path's redial to be refused", func() bool {
			return ds[0].refusals() > 0 && ds[1].refusals() > 0
		})
		for _, d := range ds {
			d.setDown(false)
		}
	})
	// Every sub-connection was cut, so the rest came over a rejoined path
	// (which one, and whether the other made it back before the end, is
	// up to the redial backoff).
	var joins uint64
	for _, ps := range c.Stats() {
		t.Logf("%s: joins %d, fails %d, sent %d, received %d", ps.Name, ps.Joins, ps.Fails, ps.BytesSent, ps.BytesReceived)
		joins += ps.Joins
	}
	if joins <= uint64(len(ds)) {
		t.Fatalf("paths joined %d times in all, want a rejoin after the outage\nclient log:\n%s", joins, log.String())
	}
}

// resAcceptServer runs a Server that hands sessions to Accept (the test
// holds the server's end) until the end of the test.
func resAcceptServer(t *testing.T, s *Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { s.Serve(ln); close(done) }()
	t.Cleanup(func() { s.Close(); <-done })
	return ln.Addr().String()
}

// resPing sends msg from a to b and checks it arrives.
func resPing(t *testing.T, a, b net.Conn, msg string) {
	t.Helper()
	go a.Write([]byte(msg))
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(b, got); err != nil || string(got) != msg {
		t.Fatalf("got %q, %v; want %q", got, err, msg)
	}
}

// Every path is gone for longer than the grace period: both ends see a
// reset, never a hang, also when the paths come back afterwards.
func TestResilienceAllPathsDownPastGrace(t *testing.T) {
	// Both ends have the same grace: the client's own timer ends its side,
	// and the dialers that come back afterwards are not used.
	t.Run("same grace", func(t *testing.T) {
		testPastGrace(t, 300*time.Millisecond, 300*time.Millisecond)
	})
	// The client waits longer than the server: its paths come back after
	// the server forgot the session, their JOINs get "unknown session",
	// and that must end the client's side at once, not at its own grace.
	t.Run("server forgot", func(t *testing.T) {
		testPastGrace(t, 300*time.Millisecond, time.Minute)
	})
}

func testPastGrace(t *testing.T, serverGrace, clientGrace time.Duration) {
	var srvLog, cliLog resLog
	srv := &Server{Options: Options{Grace: serverGrace}, Logger: srvLog.logger()}
	addr := resAcceptServer(t, srv)
	ds := []*resDialer{{}, {}}
	c := client(t, addr, resPaths(ds...)...)
	c.Options, c.Logger = Options{Grace: clientGrace}, cliLog.logger()
	conn, err := c.Dial("tcp", "app.invalid:1")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	sc, err := srv.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	resPing(t, conn, sc, "hello")
	resPing(t, sc, conn, "world")

	for _, d := range ds {
		d.setDown(true)
	}
	for _, d := range ds {
		d.cut()
	}
	// The server's grace runs out: its end is reset.
	if _, err := io.Copy(io.Discard, sc); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("server end: %v, want a reset\nserver log:\n%s", err, srvLog.String())
	}
	// Only then do the paths come back.
	refusedBefore := ds[0].refusals() + ds[1].refusals()
	for _, d := range ds {
		d.setDown(false)
	}
	// A read deadline well below the client's grace turns a hang into a
	// failure that says so; it is not a timing assertion on a success.
	const hang = 10 * time.Second
	conn.SetReadDeadline(time.Now().Add(hang))
	_, err = io.Copy(io.Discard, conn)
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		t.Fatalf("client end still open %v after the paths came back (server grace %v, client grace %v)\nclient log:\n%s\nserver log:\n%s",
			hang, serverGrace, clientGrace, cliLog.String(), srvLog.String())
	case !errors.Is(err, syscall.ECONNRESET):
		t.Fatalf("client end: %v, want a reset", err)
	}
	t.Logf("dials refused while the paths were down: %d", refusedBefore)
	if clientGrace > serverGrace && !strings.Contains(srvLog.String(), `msg="join refused" `) {
		// The reset came some other way than the server's answer.
		t.Errorf("the server refused no JOIN after its grace\nserver log:\n%s", srvLog.String())
	}
}

// The client's source address changes mid-transfer, as when an interface
// gets a new address: the path's dialer binds 127.0.0.2 at first and
// 127.0.0.3 after the switch, and at the switch the old sub-connection goes
// silent. The session goes on over a new sub-connection from the new
// address; the server saw both.
func TestResilienceSourceAddressChange(t *testing.T) {
	const size = 16 << 20
	for _, ip := range []string{"127.0.0.2", "127.0.0.3"} {
		ln, err := net.Listen("tcp", ip+":0")
		if err != nil {
			t.Skipf("cannot use %s on this host: %v", ip, err)
		}
		ln.Close()
	}
	tg := newTarget(t, size)
	var srvLog, cliLog resLog
	addr := startServer(t, &Server{Logger: srvLog.logger()})
	var moved atomic.Bool
	d := &resDialer{next: func(ctx context.Context, network, address string) (net.Conn, error) {
		local := "127.0.0.2"
		if moved.Load() {
			local = "127.0.0.3"
		}
		nd := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
		return nd.DialContext(ctx, network, address)
	}}
	c := client(t, addr, Path{Name: "wifi", Dial: d.dial})
	c.Logger = cliLog.logger()
	conn, err := c.Dial("tcp", tg.addr())
	if err != nil {
		t.Fatal(err)
	}
	var old *faultnet.Conn
	transfer(t, conn, tg, size, func(sent int) {
		if sent == 4<<20 {
			old = d.last()
			moved.Store(true)
			old.Silence()
		}
	})
	old.Close()
	ws := resStats(c, "wifi")
	t.Logf("wifi: joins %d, fails %d, stalls %d, sent %d, received %d", ws.Joins, ws.Fails, ws.Stalls, ws.BytesSent, ws.BytesReceived)
	if ws.Joins < 2 {
		t.Errorf("the path joined %d times, want a rejoin from the new address", ws.Joins)
	}
	// The server's "session end" line lists the session's paths by peer;
	// the tunnel's session ends with the client.
	c.Close()
	var line string
	resWaitFor(t, "the server's session end line", func() bool {
		for l := range strings.Lines(srvLog.String()) {
			if strings.Contains(l, `msg="session end"`) {
				line = l
				return true
			}
		}
		return false
	})
	for _, ip := range []string{"127.0.0.2:", "127.0.0.3:"} {
		if !strings.Contains(line, ip) {
			t.Errorf("the server's session had no path from %s: %s\nclient log:\n%s", ip, line, cliLog.String())
		}
	}
}

// A path bound to an address the host has by route rather than by listing
// (127.0.0.2: lo holds 127.0.0.1/8, so the whole /8 is local) is not taken
// for a path whose address is gone.
func TestResilienceBoundLoopbackAliasKept(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("cannot use 127.0.0.2 on this host: %v", err)
	}
	ln.Close()
	echo := echoServer(t)
	addr := startServer(t, &Server{})
	alias := func(ctx context.Context, network, address string) (net.Conn, error) {
		nd := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}
		return nd.DialContext(ctx, network, address)
	}
	var log resLog
	c := client(t, addr, Path{Name: "plain"}, Path{Name: "alias", Dial: alias})
	c.Logger = log.logger()
	conn, err := c.Dial("tcp", echo)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	resWaitFor(t, "the alias path to join", func() bool { return resStats(c, "alias").Joins > 0 })
	// Long enough for the address watch to have looked twice.
	for range 5 {
		resPing(t, conn, conn, "ping")
		time.Sleep(500 * time.Millisecond)
	}
	if as := resStats(c, "alias"); as.Fails != 0 {
		t.Fatalf("the path bound to 127.0.0.2 failed %d times\nclient log:\n%s", as.Fails, log.String())
	}
}
