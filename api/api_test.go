package api

import (
	"bufio"
	"encoding/json"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mptp/mptp/internal/wire"
)

// sampleLine is a line of the text format: name{label="value",...} value.
var sampleLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*",?)*\})? (-?[0-9.e+]+|NaN|[+-]Inf)$`)

// parseMetrics checks the text format line by line and returns each
// sample's value by "name{labels}".
func parseMetrics(t *testing.T, text string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	typed := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "# HELP "):
			continue
		case strings.HasPrefix(line, "# TYPE "):
			f := strings.Fields(line)
			if len(f) != 4 || typed[f[2]] {
				t.Errorf("bad or repeated TYPE line %q", line)
			}
			typed[f[2]] = true
			continue
		}
		m := sampleLine.FindStringSubmatch(line)
		if m == nil {
			t.Errorf("not a sample line: %q", line)
			continue
		}
		if !typed[m[1]] {
			t.Errorf("sample before its TYPE line: %q", line)
		}
		key := m[1] + m[2]
		if _, dup := out[key]; dup {
			t.Errorf("repeated sample %q", key)
		}
		v, err := strconv.ParseFloat(m[3], 64)
		if err != nil {
			t.Errorf("%q: %v", line, err)
		}
		out[key] = v
	}
	return out
}

func pathMetric(name, side, tag, path string) string {
	return name + `{side="` + side + `",tag="` + tag + `",path="` + path + `"}`
}

// TestMetricsMoveWithTraffic downloads through the rig and checks that the
// per-path byte counters add up to what the download moved.
func TestMetricsMoveWithTraffic(t *testing.T) {
	r := newRig(t)
	before := parseMetrics(t, string(r.get(t, "/metrics")))
	for _, p := range []string{"a", "b"} {
		k := pathMetric("mptp_path_received_bytes_total", "client", "out", p)
		if v, ok := before[k]; !ok || v != 0 {
			t.Errorf("before any session, %s = %v (present %v), want 0", k, v, ok)
		}
		if before[`mptp_path_state{side="client",tag="out",path="`+p+`",state="down"}`] != 1 {
			t.Errorf("before any session, path %s is not down", p)
		}
	}

	n, err := r.download(24<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The connection's stream ends with it; the tunnel that carried it
	// ends when the client closes, and its paths' totals stay counted.
	waitFor(t, "the stream's end", func() bool {
		st := r.status(t)
		return source(t, st, "client").Streams.Open == 0 && source(t, st, "server").Streams.Open == 0
	})
	r.client.Close()
	waitFor(t, "the tunnel's end", func() bool {
		st := r.status(t)
		return source(t, st, "client").SessionsOpen == 0 && source(t, st, "server").SessionsOpen == 0
	})
	m := parseMetrics(t, string(r.get(t, "/metrics")))
	sum := func(name, side, tag string, paths ...string) (total float64) {
		for _, p := range paths {
			total += m[pathMetric(name, side, tag, p)]
		}
		return total
	}
	cliRcvd := sum("mptp_path_received_bytes_total", "client", "out", "a", "b")
	srvSent := sum("mptp_path_sent_bytes_total", "server", "in", "127.0.0.1")
	srvRetrans := sum("mptp_path_retransmitted_bytes_total", "server", "in", "127.0.0.1")
	t.Logf("moved %d bytes; client received a=%v b=%v; server sent %v, retransmitted %v", n,
		m[pathMetric("mptp_path_received_bytes_total", "client", "out", "a")],
		m[pathMetric("mptp_path_received_bytes_total", "client", "out", "b")], srvSent, srvRetrans)
	// The paths carried the tunnel's frames: the download, a header of
	// mux.HeaderLen bytes per DATA frame of up to 64 KiB, and a few control
	// frames. A bulk download's frames average far above the 8 KiB this
	// bound allows for.
	framing := float64(n)/1024 + 4096
	// Every byte went out at least once; beyond the framing, only
	// retransmissions went out twice.
	if srvSent < float64(n) || srvSent-srvRetrans > float64(n)+framing {
		t.Errorf("server paths sent %v bytes, %v of them again; the download moved %d, with at most %v of framing",
			srvSent, srvRetrans, n, framing)
	}
	// The client got every byte, and nothing the server did not send.
	if cliRcvd < float64(n) || cliRcvd > srvSent {
		t.Errorf("client paths received %v bytes; the download moved %d, the server sent %v", cliRcvd, n, srvSent)
	}
	for _, side := range []string{`{side="client",tag="out"}`, `{side="server",tag="in"}`} {
		if m["mptp_sessions_total"+side] != 1 || m["mptp_sessions_open"+side] != 0 {
			t.Errorf("%s: sessions total %v, open %v; want 1 and 0", side, m["mptp_sessions_total"+side], m["mptp_sessions_open"+side])
		}
		if m["mptp_streams_total"+side] != 1 || m["mptp_streams_open"+side] != 0 {
			t.Errorf("%s: streams total %v, open %v; want 1 and 0", side, m["mptp_streams_total"+side], m["mptp_streams_open"+side])
		}
		if v, ok := m["mptp_udp_associations"+side]; !ok || v != 0 {
			t.Errorf("%s: udp associations %v (present %v), want 0", side, v, ok)
		}
	}
	if m[pathMetric("mptp_path_joins_total", "client", "out", "a")] < 1 || m[pathMetric("mptp_path_joins_total", "client", "out", "b")] < 1 {
		t.Errorf("a path never joined")
	}
}

// TestUDPAssociationsMetric opens a UDP association through the rig, has a
// datagram echoed through it, and checks that mptp_udp_associations is 1 on
// both sides while it is open and 0 again once it is closed.
func TestUDPAssociationsMetric(t *testing.T) {
	r := newRig(t)
	echo, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	echoed := make(chan struct{})
	go func() {
		defer close(echoed)
		buf := make([]byte, 2048)
		for {
			n, from, err := echo.ReadFrom(buf)
			if err != nil {
				return
			}
			echo.WriteTo(buf[:n], from)
		}
	}()
	defer func() { echo.Close(); <-echoed }()

	pc, err := r.client.ListenPacket(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	// UDP may drop a datagram (one sent before a path is up is dropped), so
	// send again until the echo comes back.
	buf := make([]byte, 2048)
	waitFor(t, "the echo through the association", func() bool {
		if _, err := pc.WriteTo([]byte("ping"), echo.LocalAddr()); err != nil {
			t.Fatal(err)
		}
		pc.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return false
		}
		if string(buf[:n]) != "ping" || from.String() != echo.LocalAddr().String() {
			t.Fatalf("got %q from %v, want \"ping\" from %v", buf[:n], from, echo.LocalAddr())
		}
		return true
	})
	sides := []string{`{side="client",tag="out"}`, `{side="server",tag="in"}`}
	udp := func(want float64) bool {
		m := parseMetrics(t, string(r.get(t, "/metrics")))
		for _, side := range sides {
			if v, ok := m["mptp_udp_associations"+side]; !ok || v != want {
				return false
			}
		}
		return true
	}
	// The server counted the association before relaying the echo.
	if !udp(1) {
		t.Fatalf("with one association open:\n%s", r.get(t, "/metrics"))
	}
	if err := pc.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "mptp_udp_associations 0 on both sides", func() bool { return udp(0) })
}

// TestStatusJSON checks /api/status during a stream in the tunnel, once
// the stream ended and once the tunnel ended, the refusal counts, and
// /api/history.
func TestStatusJSON(t *testing.T) {
	r := newRig(t)
	stop := r.stream(t)
	addr := r.target.ln.Addr().String()

	// While the stream flows: one tunnel on each side, carrying it, with
	// both client paths up, a measured RTT and a throughput.
	var live Report
	waitFor(t, "both client paths up with throughput", func() bool {
		live = r.status(t)
		cli := source(t, live, "client")
		if len(cli.Sessions) != 1 || len(cli.Paths) != 2 {
			return false
		}
		var rate float64
		for _, p := range cli.Paths {
			if p.State != "up" || p.RTTms <= 0 {
				return false
			}
			rate += p.RateReceived
		}
		return rate > 0 && cli.Sessions[0].RateReceived > 0
	})
	n := stop()
	cli, srv := source(t, live, "client"), source(t, live, "server")
	if cli.Tag != "out" || srv.Tag != "in" || cli.SessionsOpen != 1 || srv.SessionsOpen != 1 {
		t.Errorf("sources %+v, %+v", cli, srv)
	}
	if s := cli.Sessions[0]; s.Target != "tunnel" || !s.Tunnel || s.ID != 1 || len(s.Paths) != 2 {
		t.Errorf("client session %+v", s)
	}
	if len(srv.Sessions) != 1 || srv.Sessions[0].Target != "tunnel" || !srv.Sessions[0].Tunnel {
		t.Errorf("server sessions %+v", srv.Sessions)
	}
	// Each tunnel lists the stream to the target, with its bytes so far.
	// The client is asked first, so the server had sent at least what the
	// client had received.
	var got [2]StreamReport
	for i, src := range []SourceReport{cli, srv} {
		if src.Streams.Open != 1 || src.Streams.Total != 1 {
			t.Errorf("%s streams %+v, want 1 open of 1", src.Side, src.Streams)
		}
		if len(src.Sessions) != 1 || src.Sessions[0].StreamsOpen != 1 || len(src.Sessions[0].Streams) != 1 ||
			src.Sessions[0].Streams[0].Target != addr {
			t.Fatalf("%s tunnel does not list one stream to %s: %+v", src.Side, addr, src.Sessions)
		}
		got[i] = src.Sessions[0].Streams[0]
	}
	if got[0].BytesReceived == 0 || got[0].BytesReceived > uint64(n) || got[1].BytesSent < got[0].BytesReceived {
		t.Errorf("the stream moved %d bytes; while it flowed the client had received %d, the server sent %d",
			n, got[0].BytesReceived, got[1].BytesSent)
	}

	// The connection closed: its stream ended, the tunnel lives on.
	waitFor(t, "the stream's end", func() bool {
		st := r.status(t)
		return source(t, st, "client").Streams.Open == 0 && source(t, st, "server").Streams.Open == 0
	})
	idle := r.status(t)
	for _, src := range []SourceReport{source(t, idle, "client"), source(t, idle, "server")} {
		if src.SessionsOpen != 1 || len(src.Sessions) != 1 || src.Sessions[0].StreamsOpen != 0 ||
			len(src.Sessions[0].Streams) != 0 || src.Streams.Total != 1 {
			t.Errorf("%s once the connection closed: %+v; want the tunnel open with no stream", src.Side, src)
		}
	}

	// A target that refuses: the stream is refused, the tunnel lives on,
	// and the server counts the refusal by the target's answer.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	if c, err := r.client.Dial("tcp", closed); err == nil {
		c.Close()
		t.Fatalf("dialing %s, where nothing listens, succeeded", closed)
	}
	srv = source(t, r.status(t), "server")
	if srv.Streams.Refused["connection_refused"] != 1 || srv.Streams.Total != 1 || srv.SessionsOpen != 1 {
		t.Errorf("server after a refused stream: %+v", srv)
	}

	// The client closed: the tunnel ended, and the totals hold what the
	// stream moved.
	r.client.Close()
	waitFor(t, "the tunnel's end", func() bool {
		st := r.status(t)
		return source(t, st, "client").SessionsOpen == 0 && source(t, st, "server").SessionsOpen == 0
	})
	after := source(t, r.status(t), "client")
	var rcvd uint64
	for _, p := range after.Paths {
		rcvd += p.BytesReceived
		if p.State != "down" {
			t.Errorf("path %s is %s after the tunnel, want down", p.Name, p.State)
		}
	}
	if rcvd < uint64(n) || after.SessionsTotal != 1 || len(after.Sessions) != 0 || after.Streams.Total != 1 {
		t.Errorf("after a %d-byte stream: %+v", n, after)
	}

	// Refused handshakes are counted by reason.
	refuse := func(b []byte) {
		c, err := net.Dial("tcp", r.srvLn.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write(b)
		var reply [64]byte
		c.Read(reply[:]) // the reply, or the close
	}
	refuse([]byte{0xee, 0, 0, 0})
	join, err := wire.AppendRequest(nil, &wire.Request{Kind: wire.KindJoin, CID: [16]byte{1}, Window: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	refuse(join)
	refuse(join)
	var refusals map[string]uint64
	waitFor(t, "the refusals counted", func() bool {
		refusals = source(t, r.status(t), "server").Refusals
		return refusals["unknown_session"] == 2
	})
	if refusals["bad_version"] != 1 {
		t.Errorf("refusals %v, want bad_version 1 and unknown_session 2", refusals)
	}
	m := parseMetrics(t, string(r.get(t, "/metrics")))
	if v := m[`mptp_handshake_refusals_total{side="server",tag="in",reason="unknown_session"}`]; v != 2 {
		t.Errorf("mptp_handshake_refusals_total for unknown_session = %v, want 2", v)
	}
	if v := m[`mptp_streams_refused_total{side="server",tag="in",reason="connection_refused"}`]; v != 1 {
		t.Errorf("mptp_streams_refused_total for connection_refused = %v, want 1", v)
	}

	// The history has a series per path, one value per sample time, and
	// the stream shows in the client's.
	var h History
	if err := json.Unmarshal(r.get(t, "/api/history"), &h); err != nil {
		t.Fatal(err)
	}
	if h.Interval != 0.1 || h.Window != DefaultWindow.Seconds() || len(h.Times) < 2 {
		t.Errorf("history: interval %v, window %v, %d samples", h.Interval, h.Window, len(h.Times))
	}
	peak := map[string]float64{}
	for _, s := range h.Series {
		if len(s.Rates) != len(h.Times) {
			t.Errorf("series %s/%s/%s has %d values for %d times", s.Side, s.Tag, s.Path, len(s.Rates), len(h.Times))
		}
		for _, v := range s.Rates {
			peak[s.Side+"/"+s.Path] = max(peak[s.Side+"/"+s.Path], v)
		}
	}
	if peak["client/a"]+peak["client/b"] <= 0 || peak["server/127.0.0.1"] <= 0 {
		t.Errorf("history peaks %v: want throughput on the client's paths and the server's peer", peak)
	}
}

func TestMetricsFormat(t *testing.T) {
	var b strings.Builder
	reports := []SourceReport{{Side: "server", Tag: `we"ird\tag` + "\n", Refusals: map[string]uint64{"busy": 3},
		Streams: StreamsReport{Open: 7, Total: 1 << 33, Refused: map[string]uint64{"stream_rate": 5, "host_unreachable": 2}},
		Paths:   []PathReport{{Name: "::1", State: "stale", RTTms: 12.5, BytesSent: 1 << 40}}}}
	if err := writeMetrics(&b, metrics(reports)); err != nil {
		t.Fatal(err)
	}
	m := parseMetrics(t, b.String())
	src := `side="server",tag="we\"ird\\tag\n"`
	for key, want := range map[string]float64{
		`mptp_path_sent_bytes_total{` + src + `,path="::1"}`:                1 << 40,
		`mptp_path_rtt_seconds{` + src + `,path="::1"}`:                     0.0125,
		`mptp_path_state{` + src + `,path="::1",state="stale"}`:             1,
		`mptp_path_state{` + src + `,path="::1",state="up"}`:                0,
		`mptp_handshake_refusals_total{` + src + `,reason="busy"}`:          3,
		`mptp_sessions_open{` + src + `}`:                                   0,
		`mptp_streams_open{` + src + `}`:                                    7,
		`mptp_streams_total{` + src + `}`:                                   1 << 33,
		`mptp_streams_refused_total{` + src + `,reason="stream_rate"}`:      5,
		`mptp_streams_refused_total{` + src + `,reason="host_unreachable"}`: 2,
	} {
		if got, ok := m[key]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v\n%s", key, got, ok, want, b.String())
		}
	}
}
