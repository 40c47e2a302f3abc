package accept

import (
	"bytes"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/mptp/mptp/internal/leaf"
	"github.com/mptp/mptp/internal/secure"
	"github.com/mptp/mptp/internal/session"
	"github.com/mptp/mptp/internal/wire"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const password = "door test password"

// server runs a door on a loopback listener. Its OPENs register a session
// (refused when room says no) and are accepted; its v1 sub-connections
// are recorded and closed.
type server struct {
	door    *Door
	addr    string
	room    bool
	mu      sync.Mutex
	reasons []string
	v1      []leaf.Handshake
	sess    []*session.Session
	entries []*entry
}

func newServer(t *testing.T, cfg Config) *server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &server{addr: ln.Addr().String(), room: true}
	cfg.HandshakeTimeout = 5 * time.Second
	if cfg.MaxHandshakes == 0 {
		cfg.MaxHandshakes = 64
	}
	if cfg.MaxPaths == 0 {
		cfg.MaxPaths = 4
	}
	cfg.Refused = func(reason string) {
		s.mu.Lock()
		s.reasons = append(s.reasons, reason)
		s.mu.Unlock()
	}
	cfg.Open = func(o *Open) {
		sess := session.New(session.Config{PeerWindow: o.Req.Window})
		s.mu.Lock()
		room := s.room
		s.mu.Unlock()
		if !o.Register(sess, o.Req.Cmd == wire.CmdMux, func(int, int) bool { return room }) {
			return
		}
		s.mu.Lock()
		s.sess, s.entries = append(s.sess, sess), append(s.entries, o.e)
		s.mu.Unlock()
		o.Accept()
	}
	cfg.V1 = func(hs leaf.Handshake, conn net.Conn, _ *slog.Logger) {
		s.mu.Lock()
		s.v1 = append(s.v1, hs)
		s.mu.Unlock()
		conn.Close()
	}
	s.door = New(cfg)
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if s.door.Admit(c) != nil {
				c.Close()
				continue
			}
			wg.Go(func() { s.door.Handle(c) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		s.door.Close(wire.RstShutdown, "test over")
		wg.Wait()
		for _, sess := range s.sess {
			<-sess.Done()
		}
	})
	return s
}

// request sends one v2 request (inside the secure channel with a
// password) and returns the reply's status. The connection stays open
// until the test ends, so that an accepted path stays up.
func (s *server) request(t *testing.T, pw string, req *wire.Request) byte {
	t.Helper()
	conn, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	var c net.Conn = conn
	if pw != "" {
		if c, err = secure.Client(conn, secure.KeyFromPassword(pw)); err != nil {
			t.Fatal(err)
		}
	}
	b, err := wire.AppendRequest(nil, req)
	if err != nil {
		t.Fatal(err)
	}
	c.Write(b)
	reply, err := wire.ReadReply(c)
	if err != nil {
		t.Fatal(err)
	}
	return reply.Status
}

func open(cid byte) *wire.Request {
	return &wire.Request{Kind: wire.KindOpen, CID: [16]byte{cid}, Cmd: wire.CmdMux, Target: "0.0.0.0:0", Window: 1 << 20}
}

func join(cid byte, ext []byte) *wire.Request {
	return &wire.Request{Kind: wire.KindJoin, CID: [16]byte{cid}, Window: 1 << 20, Ext: ext}
}

// A JOIN that knows the CID but not the session's token is refused; the
// token lets it in.
func TestJoinNeedsToken(t *testing.T) {
	s := newServer(t, Config{Password: password})
	if st := s.request(t, password, open(1)); st != wire.StatusOK {
		t.Fatalf("OPEN: status %d", st)
	}
	s.mu.Lock()
	token := s.entries[0].token
	s.mu.Unlock()
	if len(token) != 16 {
		t.Fatalf("token %x", token)
	}
	wrong := bytes.Clone(token)
	wrong[0] ^= 1
	for _, tc := range []struct {
		name   string
		ext    []byte
		status byte
	}{
		{"no token", nil, wire.StatusAuthFailed},
		{"wrong token", wire.AppendExt(nil, wire.ExtJoinToken, wrong), wire.StatusAuthFailed},
		{"short token", wire.AppendExt(nil, wire.ExtJoinToken, token[:8]), wire.StatusAuthFailed},
		{"token", wire.AppendExt(nil, wire.ExtJoinToken, token), wire.StatusOK},
	} {
		if st := s.request(t, password, join(1, tc.ext)); st != tc.status {
			t.Errorf("%s: status %d, want %d", tc.name, st, tc.status)
		}
	}
}

// The table's answers: a CID taken, an unknown session, a session at its
// path limit, no room; each is counted by its reason.
func TestRefusals(t *testing.T) {
	s := newServer(t, Config{MaxPaths: 1})
	for _, tc := range []struct {
		name   string
		req    *wire.Request
		room   bool
		status byte
	}{
		{"open", open(1), true, wire.StatusOK},
		{"same CID", open(1), true, wire.StatusSessionExists},
		{"unknown session", join(2, nil), true, wire.StatusUnknownSession},
		{"past the path limit", join(1, nil), true, wire.StatusTooManyPaths},
		{"no room", open(3), false, wire.StatusBusy},
	} {
		s.mu.Lock()
		s.room = tc.room
		s.mu.Unlock()
		if st := s.request(t, "", tc.req); st != tc.status {
			t.Errorf("%s: status %d, want %d", tc.name, st, tc.status)
		}
		if tc.name == "open" {
			// The door adds the path right after its reply.
			s.mu.Lock()
			sess := s.sess[0]
			s.mu.Unlock()
			for sess.PathCount() == 0 {
				time.Sleep(time.Millisecond)
			}
		}
	}
	if tunnels, others := s.door.Count(); tunnels != 1 || others != 0 {
		t.Errorf("count %d tunnels, %d others", tunnels, others)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	want := []string{"session_exists", "unknown_session", "too_many_paths", "busy"}
	if len(s.reasons) != len(want) {
		t.Fatalf("reasons %v, want %v", s.reasons, want)
	}
	for i := range want {
		if s.reasons[i] != want[i] {
			t.Fatalf("reasons %v, want %v", s.reasons, want)
		}
	}
}

// With a password, a plain v2 request is refused as unauthenticated, and
// a v1 handshake is cut without reaching the server; a wrong password
// fails the secure handshake.
func TestPassword(t *testing.T) {
	s := newServer(t, Config{Password: password})
	if st := s.request(t, "", open(1)); st != wire.StatusAuthFailed {
		t.Fatalf("plain v2: status %d", st)
	}
	conn, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := secure.Client(conn, secure.KeyFromPassword("another")); err == nil {
		t.Fatal("wrong password: secure handshake succeeded")
	}
	conn.Close()
	v1, _ := leaf.AppendHandshake(nil, leaf.Handshake{CID: [16]byte{9}, Cmd: leaf.CmdConnect, Target: "x.test:1"})
	conn, err = net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	conn.Write(v1)
	if n, _ := conn.Read(make([]byte, 1)); n != 0 {
		t.Fatal("v1 got an answer")
	}
	conn.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.v1) != 0 {
		t.Fatalf("v1 served: %+v", s.v1)
	}
}

// Without a password, the first byte picks the version: v1 goes to the V1
// callback with its handshake, an unknown byte is refused as bad_version.
func TestVersions(t *testing.T) {
	s := newServer(t, Config{})
	v1, _ := leaf.AppendHandshake(nil, leaf.Handshake{CID: [16]byte{9}, Cmd: leaf.CmdConnect, Target: "x.test:1"})
	for _, b := range [][]byte{v1, {0x7f, 0, 0, 0}} {
		conn, err := net.Dial("tcp", s.addr)
		if err != nil {
			t.Fatal(err)
		}
		conn.Write(b)
		conn.Read(make([]byte, 1)) // until the door closes it
		conn.Close()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.v1) != 1 || s.v1[0].Target != "x.test:1" {
		t.Fatalf("v1 %+v", s.v1)
	}
	if len(s.reasons) != 1 || s.reasons[0] != "bad_version" {
		t.Fatalf("reasons %v", s.reasons)
	}
}

// Admit refuses past the handshake limit, and after Close.
func TestAdmit(t *testing.T) {
	d := New(Config{MaxHandshakes: 1})
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if err := d.Admit(a); err != nil {
		t.Fatal(err)
	}
	if err := d.Admit(b); err != ErrBusy {
		t.Fatalf("second: %v", err)
	}
	if d.Handshaking() != 1 || d.Idle() {
		t.Fatalf("handshaking %d, idle %v", d.Handshaking(), d.Idle())
	}
	d.Close(wire.RstShutdown, "test over")
	if err := d.Admit(b); err != ErrClosed {
		t.Fatalf("after Close: %v", err)
	}
}
