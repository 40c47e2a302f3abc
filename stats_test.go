package mptp

import (
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/mptp/mptp/internal/session"
	"github.com/mptp/mptp/internal/wire"
)

// TestStatus runs a stream both ways in the client's tunnel and checks
// what Status reports on each side during and after it, and the client's
// tunnel log lines.
func TestStatus(t *testing.T) {
	var srvLog, cliLog resLog
	srv := &Server{Logger: srvLog.logger()}
	addr := startServer(t, srv)
	tg := newTarget(t, 2<<20)
	c := client(t, addr, Path{Name: "a"}, Path{Name: "b", Backup: true})
	c.Logger = cliLog.logger()

	if st := c.Status(); len(st.Paths) != 2 || st.Paths[0].Name != "a" || st.Paths[0].State != "down" ||
		!st.Paths[1].Backup || st.SessionsOpen != 0 {
		t.Errorf("client status before any session: %+v", st)
	}
	conn, err := c.Dial("tcp", tg.addr())
	if err != nil {
		t.Fatal(err)
	}
	resWaitFor(t, "the client's tunnel counted", func() bool { return c.Status().SessionsOpen == 1 })
	live := c.Status()
	if len(live.Sessions) != 1 || live.Sessions[0].Target != "tunnel" || live.Sessions[0].ID != 1 ||
		live.Streams.Open != 1 || live.Streams.Total != 1 {
		t.Errorf("client status during the stream: %+v", live)
	}
	resWaitFor(t, "the server's stream counted", func() bool { return srv.Status().Streams.Open == 1 })
	srvLive := srv.Status()
	if srvLive.SessionsOpen != 1 || len(srvLive.Sessions) != 1 || srvLive.Sessions[0].Target != "tunnel" {
		t.Errorf("server status during the stream: %+v", srvLive)
	}
	transfer(t, conn, tg, 1<<20, nil)
	conn.Close()
	resWaitFor(t, "the streams' end", func() bool {
		return c.Status().Streams.Open == 0 && srv.Status().Streams.Open == 0
	})
	if c.Status().SessionsOpen != 1 {
		t.Errorf("the tunnel ended with its stream: %+v", c.Status())
	}
	c.Close()
	resWaitFor(t, "the tunnels' end", func() bool {
		return c.Status().SessionsOpen == 0 && srv.Status().SessionsOpen == 0
	})

	st := c.Status()
	var sent, rcvd uint64
	for _, p := range st.Paths {
		sent += p.BytesSent
		rcvd += p.BytesReceived
		if p.State != "down" || p.RTT != 0 {
			t.Errorf("path %s after the tunnel: state %s, RTT %v", p.Name, p.State, p.RTT)
		}
	}
	if st.SessionsTotal != 1 || sent < 1<<20 || rcvd < 2<<20 || st.Streams.Total != 1 {
		t.Errorf("client status after 1 MiB up and 2 MiB down: %+v", st)
	}
	ss := srv.Status()
	if ss.SessionsTotal != 1 || len(ss.Paths) != 1 || ss.Paths[0].Name != "127.0.0.1" ||
		ss.Paths[0].BytesReceived != sent || ss.Paths[0].BytesSent != rcvd || ss.Streams.Total != 1 {
		t.Errorf("server status %+v: want one peer, 127.0.0.1, that got the %d bytes the client sent and sent its %d", ss, sent, rcvd)
	}

	// The client logs its tunnel's session start and end, with the bytes
	// and the paths.
	var start, end string
	for line := range strings.Lines(cliLog.String()) {
		switch {
		case strings.Contains(line, `msg="session start"`):
			start = line
		case strings.Contains(line, `msg="session end"`):
			end = line
		}
	}
	// The paths up when the session opened: one, or both if the second
	// joined at once ("[a b]", quoted).
	if !strings.Contains(start, "target=tunnel") || !strings.Contains(start, "paths=") || !strings.Contains(start, "[a") {
		t.Errorf("client session start line %q", start)
	}
	for _, want := range []string{"target=tunnel", "a(sent="} {
		if !strings.Contains(end, want) {
			t.Errorf("client session end line %q lacks %q", end, want)
		}
	}
}

func TestRefusalsCounted(t *testing.T) {
	srv := &Server{}
	addr := startServer(t, srv)
	join, err := wire.AppendRequest(nil, &wire.Request{Kind: wire.KindJoin, Window: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range [][]byte{{0x7f}, join, join} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.Write(b)
		var buf [64]byte
		c.Read(buf[:])
		c.Close()
	}
	var got map[string]uint64
	resWaitFor(t, "the refusals counted", func() bool {
		got = srv.Status().Refusals
		return got["bad_version"] == 1 && got["unknown_session"] == 2
	})
	if len(got) != 2 {
		t.Errorf("refusals %v", got)
	}
	if _, err := client(t, addr).Dial("tcp", "127.0.0.1:1"); err == nil {
		t.Fatal("a dial to a closed port succeeded")
	}
	resWaitFor(t, "the target refusal counted", func() bool {
		return srv.Status().Streams.Refused["connection_refused"] == 1
	})
}

// TestPeerStatsBounded checks that a server keeps totals for at most
// maxPeerStats peers: the paths of others are counted as "other".
func TestPeerStatsBounded(t *testing.T) {
	var o observer
	for i := range maxPeerStats + 2 {
		s := session.New(session.Config{})
		a, b := net.Pipe()
		if _, err := s.AddPath(a, session.PathConfig{Name: fmt.Sprintf("198.18.%d.%d:4000", i/256, i%256)}); err != nil {
			t.Fatal(err)
		}
		o.begin(s)
		s.Reset(wire.RstClosed, "test")
		b.Close()
		<-s.Done()
		o.end(s, peerHost)
	}
	st := o.status(peerHost)
	if len(st.Paths) != maxPeerStats+1 || st.SessionsTotal != maxPeerStats+2 || st.SessionsOpen != 0 {
		t.Fatalf("%d paths, %d sessions in all, %d open", len(st.Paths), st.SessionsTotal, st.SessionsOpen)
	}
	var other *PathStatus
	for i := range st.Paths {
		if st.Paths[i].Name == "other" {
			other = &st.Paths[i]
		}
	}
	if other == nil || other.Joins != 2 {
		t.Errorf("the paths past the bound: %+v, want 2 joins under \"other\"", other)
	}
}
