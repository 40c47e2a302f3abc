package dial

import (
	"bytes"
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/mptp/mptp/internal/failure"
	"github.com/mptp/mptp/internal/session"
	"github.com/mptp/mptp/internal/wire"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// frontDoor is the server's side of the handshake, by hand: it answers
// each request with answer and, when that is OK, runs the sub-connection
// as a path of one session (made by the first OPEN).
type frontDoor struct {
	t      *testing.T
	ln     net.Listener
	answer func(*wire.Request) *wire.Reply
	mu     sync.Mutex
	reqs   []*wire.Request
	sess   *session.Session
	wg     sync.WaitGroup
}

func newFrontDoor(t *testing.T, answer func(*wire.Request) *wire.Reply) *frontDoor {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &frontDoor{t: t, ln: ln, answer: answer}
	f.wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			f.wg.Go(func() { f.serve(conn) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		f.mu.Lock()
		s := f.sess
		f.mu.Unlock()
		if s != nil {
			s.Reset(wire.RstClosed, "test over")
			<-s.Done()
		}
		f.wg.Wait()
	})
	return f
}

func (f *frontDoor) serve(conn net.Conn) {
	req, err := wire.ReadRequest(conn)
	if err != nil {
		conn.Close()
		return
	}
	reply := f.answer(req)
	conn.Write(wire.AppendReply(nil, reply))
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqs = append(f.reqs, req)
	if reply.Status != wire.StatusOK {
		conn.Close()
		return
	}
	if f.sess == nil {
		f.sess = session.New(session.Config{PeerWindow: req.Window})
	}
	f.sess.AddPath(conn, session.PathConfig{Name: conn.RemoteAddr().String()})
}

func ok(req *wire.Request) *wire.Reply {
	r := &wire.Reply{Status: wire.StatusOK, Window: 1 << 20}
	if req.Kind == wire.KindOpen {
		r.Ext = wire.AppendExt(nil, wire.ExtJoinToken, []byte("token"))
	}
	return r
}

// One path OPENs, the other JOINs the same CID with the token the OPEN's
// reply gave; the session carries bytes.
func TestOpenThenJoin(t *testing.T) {
	f := newFrontDoor(t, ok)
	d := New(Config{Server: f.ln.Addr().String(), Paths: []Path{{Name: "a"}, {Name: "b"}}, Cmd: wire.CmdConnect, Target: "example.test:80"})
	sess, err := d.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sess.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	for sess.PathCount() < 2 {
		// both paths attach; the second one JOINs
		select {
		case <-sess.Done():
			t.Fatal(sess.Err())
		default:
		}
		time.Sleep(time.Millisecond)
	}
	f.mu.Lock()
	reqs := f.reqs
	f.mu.Unlock()
	if len(reqs) != 2 || reqs[0].Kind != wire.KindOpen || reqs[1].Kind != wire.KindJoin {
		t.Fatalf("requests %+v", reqs)
	}
	if reqs[0].CID != reqs[1].CID || reqs[0].Target != "example.test:80" {
		t.Fatalf("OPEN %+v, JOIN %+v", reqs[0], reqs[1])
	}
	if tok, _ := wire.Ext(reqs[1].Ext, wire.ExtJoinToken); !bytes.Equal(tok, []byte("token")) {
		t.Fatalf("JOIN token %q", tok)
	}
	sess.Reset(wire.RstClosed, "test over")
	d.Wait()
}

// The server's refusal of the OPEN ends the dial with it, as a Refusal
// that carries the reason.
func TestRefusalEndsDial(t *testing.T) {
	f := newFrontDoor(t, func(*wire.Request) *wire.Reply {
		return &wire.Reply{Status: byte(failure.CmdUnsupported), Msg: "no tunnels"}
	})
	d := New(Config{Server: f.ln.Addr().String(), Paths: []Path{{Name: "a"}, {Name: "b"}}, Cmd: wire.CmdMux, Target: "0.0.0.0:0"})
	_, err := d.Run(context.Background())
	var r *Refusal
	if !errors.As(err, &r) || r.Err.Reason != failure.CmdUnsupported {
		t.Fatalf("err %v", err)
	}
	d.Wait()
}

// When every path fails to connect, the dial fails with a path's error.
func TestAllPathsFail(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	d := New(Config{Server: addr, Paths: []Path{{Name: "a"}, {Name: "b", Backup: true}}, Cmd: wire.CmdConnect, Target: "x:1"})
	_, err = d.Run(context.Background())
	var op *net.OpError
	if !errors.As(err, &op) {
		t.Fatalf("err %v", err)
	}
	d.Wait()
}

// A canceled context ends a dial that has not opened.
func TestCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	d := New(Config{Server: "127.0.0.1:1", Paths: []Path{{Name: "a", Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}}}, Cmd: wire.CmdConnect, Target: "x:1"})
	if _, err := d.Run(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v", err)
	}
	d.Wait()
}
