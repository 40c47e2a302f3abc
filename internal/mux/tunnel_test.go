package mux

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"testing/iotest"
	"time"

	"go.uber.org/goleak"

	"github.com/mptp/mptp/internal/failure"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t *testing.T) (net.Conn, net.Conn) { return tcpPairTB(t) }

func tcpPairTB(t testing.TB) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ch := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			ch <- nil
			return
		}
		ch <- c
	}()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b := <-ch
	if b == nil {
		t.Fatal("accept failed")
	}
	return a, b
}

// echoPair returns a client tunnel and a server tunnel whose accepted
// streams are handled by serve (nil: echo every byte, then close).
func echoPair(t *testing.T, ccfg, scfg Config, serve func(*Stream)) (*Tunnel, *Tunnel) {
	t.Helper()
	a, b := tcpPair(t)
	if serve == nil {
		serve = echo
	}
	if scfg.Accept == nil {
		scfg.Accept = func(st *Stream) { go serve(st) }
	}
	ccfg.Client = true
	c := New(a, ccfg)
	s := New(b, scfg)
	t.Cleanup(func() {
		c.Close()
		s.Close()
	})
	return c, s
}

func echo(st *Stream) {
	if st.Accept() != nil {
		return
	}
	io.Copy(st, st)
	st.CloseWrite()
	io.Copy(io.Discard, st)
	st.Close()
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// roundTrip writes data on a new stream, half-closes, and returns what
// comes back.
func roundTrip(ctx context.Context, c *Tunnel, data []byte) ([]byte, error) {
	st, err := c.Open(ctx, 1, "echo.test:7")
	if err != nil {
		return nil, err
	}
	defer st.Close()
	werr := make(chan error, 1)
	go func() {
		_, err := st.Write(data)
		if err == nil {
			err = st.CloseWrite()
		}
		werr <- err
	}()
	got, err := io.ReadAll(st)
	if err != nil {
		return got, err
	}
	return got, <-werr
}

func TestEchoManyStreams(t *testing.T) {
	c, s := echoPair(t, Config{}, Config{}, nil)
	const streams = 200
	var wg sync.WaitGroup
	errs := make(chan error, streams)
	for i := range streams {
		wg.Go(func() {
			data := randBytes(1000 + i*997)
			got, err := roundTrip(context.Background(), c, data)
			if err == nil && sha256.Sum256(got) != sha256.Sum256(data) {
				err = errors.New("echo differs")
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	st := c.Stats()
	if st.OpenedLocal != streams {
		t.Fatalf("opened %d, want %d", st.OpenedLocal, streams)
	}
	if ss := s.Stats(); ss.OpenedRemote != streams {
		t.Fatalf("server took %d, want %d", ss.OpenedRemote, streams)
	}
}

func TestBulkGrowsWindow(t *testing.T) {
	rtt := func() time.Duration { return time.Second } // every grant is "soon"
	c, _ := echoPair(t, Config{RTT: rtt}, Config{RTT: rtt}, nil)
	data := randBytes(24 << 20)
	got, err := roundTrip(context.Background(), c, data)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("echo differs")
	}
}

func TestRefusal(t *testing.T) {
	c, _ := echoPair(t, Config{}, Config{}, func(st *Stream) {
		st.Refuse(failure.Refused, "connect: connection refused")
	})
	_, err := c.Open(context.Background(), 1, "refused.test:1")
	var fe *failure.Error
	if !errors.As(err, &fe) || fe.Reason != failure.Refused {
		t.Fatalf("got %v, want a refusal", err)
	}
	if c.Stats().Open != 0 {
		t.Fatal("a refused stream stays in the table")
	}
}

func TestMaxStreams(t *testing.T) {
	hold := make(chan struct{})
	c, s := echoPair(t, Config{}, Config{MaxStreams: 3}, func(st *Stream) {
		st.Accept()
		<-hold
		st.Close()
	})
	var open []*Stream
	for range 3 {
		st, err := c.Open(context.Background(), 1, "x.test:1")
		if err != nil {
			t.Fatal(err)
		}
		open = append(open, st)
	}
	_, err := c.Open(context.Background(), 1, "x.test:1")
	var fe *failure.Error
	if !errors.As(err, &fe) || fe.Reason != failure.General || fe.Msg != "limit=max_streams" {
		t.Fatalf("got %v, want the max_streams refusal", err)
	}
	if s.Stats().Refused != 1 {
		t.Fatalf("refused %d, want 1", s.Stats().Refused)
	}
	close(hold)
	for _, st := range open {
		st.Close()
	}
}

// A stream whose reader stops holds its own window; another stream's
// download goes on and arrives whole.
func TestStalledStreamDoesNotBlockOthers(t *testing.T) {
	big := randBytes(16 << 20)
	c, _ := echoPair(t, Config{}, Config{}, func(st *Stream) {
		st.Accept()
		defer st.Close()
		if st.Target() == "stalled.test:1" {
			st.Write(randBytes(4 << 20)) // blocks when the window is full
			return
		}
		st.Write(big)
		st.CloseWrite()
	})
	stalled, err := c.Open(context.Background(), 1, "stalled.test:1")
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	bulk, err := c.Open(context.Background(), 1, "bulk.test:1")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(bulk)
	if err != nil {
		t.Fatal(err)
	}
	if sha256.Sum256(got) != sha256.Sum256(big) {
		t.Fatal("bulk stream differs")
	}
	bulk.Close()
	if u := c.Stats().BufferedUnread; u > DefaultStreamWindow {
		t.Fatalf("%d bytes unread, more than one stream window", u)
	}
}

func TestHalfCloseAndReset(t *testing.T) {
	got := make(chan []byte, 1)
	read := make(chan struct{})
	c, _ := echoPair(t, Config{}, Config{}, func(st *Stream) {
		st.Accept()
		b, _ := io.ReadAll(st) // until the client's FIN
		got <- b
		st.Write([]byte("after your FIN"))
		<-read // a reset drops bytes not yet sent, as TCP's does
		st.Reset(RstTarget, "target failed")
	})
	st, err := c.Open(context.Background(), 1, "x.test:1")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	st.Write([]byte("request"))
	st.CloseWrite()
	if b := <-got; string(b) != "request" {
		t.Fatalf("server read %q", b)
	}
	b := make([]byte, 100)
	n, _ := io.ReadFull(st, b[:14])
	if string(b[:n]) != "after your FIN" {
		t.Fatalf("read %q", b[:n])
	}
	close(read)
	if _, err := st.Read(b); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read after reset: %v, want ECONNRESET", err)
	}
	if _, err := st.Write(b); err == nil {
		t.Fatal("write after reset succeeded")
	}
}

func TestTunnelLossFailsStreams(t *testing.T) {
	a, b := tcpPair(t)
	c := New(a, Config{Client: true})
	s := New(b, Config{Accept: func(st *Stream) { st.Accept() }})
	defer s.Close()
	st, err := c.Open(context.Background(), 1, "x.test:1")
	if err != nil {
		t.Fatal(err)
	}
	b.Close() // the transport under the tunnel goes away
	if _, err := st.Read(make([]byte, 1)); !errors.Is(err, ErrTunnelClosed) {
		t.Fatalf("read: %v, want ErrTunnelClosed", err)
	}
	<-c.Done()
	if _, err := c.Open(context.Background(), 1, "x.test:1"); !errors.Is(err, ErrTunnelClosed) {
		t.Fatalf("open on a dead tunnel: %v", err)
	}
}

func TestOpenCanceled(t *testing.T) {
	accepted := make(chan *Stream, 1)
	c, _ := echoPair(t, Config{}, Config{}, func(st *Stream) {
		if st.Target() == "slow.test:1" {
			accepted <- st
			return
		}
		echo(st)
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.Open(ctx, 1, "slow.test:1")
		done <- err
	}()
	st := <-accepted // the server is "dialing"
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("open: %v, want canceled", err)
	}
	// A stream opened after the RST is answered after the server read the
	// RST: then the server's late Accept fails.
	if _, err := roundTrip(context.Background(), c, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if st.Accept() == nil {
		t.Fatal("accept after the opener gave up succeeded")
	}
}

// A draining tunnel refuses new streams, serves the open ones to their
// end, then closes.
func TestDrain(t *testing.T) {
	c, s := echoPair(t, Config{}, Config{}, nil)
	st, err := c.Open(context.Background(), 1, "x.test:1")
	if err != nil {
		t.Fatal(err)
	}
	s.Drain(RstShutdown, "draining")
	for c.Usable() {
		// The GOAWAY is on its way: wait on the flag (no timing assertion).
		time.Sleep(time.Millisecond)
	}
	if _, err := c.Open(context.Background(), 1, "x.test:1"); !errors.Is(err, ErrGoaway) {
		t.Fatalf("open after GOAWAY: %v", err)
	}
	data := randBytes(1 << 20)
	go func() {
		st.Write(data)
		st.CloseWrite()
	}()
	got, err := io.ReadAll(st)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("the open stream after GOAWAY: %d bytes, %v", len(got), err)
	}
	st.Close()
	<-s.Done() // closed once its last stream ended
	<-c.Done()
}

func TestWriteDeadline(t *testing.T) {
	c, _ := echoPair(t, Config{StreamWindow: 64 << 10}, Config{StreamWindow: 64 << 10}, func(st *Stream) {
		st.Accept() // and never read
	})
	st, err := c.Open(context.Background(), 1, "x.test:1")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// The window and the send buffer take this much, then nothing more.
	if n, err := st.Write(make([]byte, 64<<10+sendBuffer)); err != nil {
		t.Fatalf("wrote %d of the window and the send buffer: %v", n, err)
	}
	st.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
	n, err := st.Write(make([]byte, 1<<10))
	if !errors.Is(err, syscall.ETIMEDOUT) && !isTimeout(err) {
		t.Fatalf("write: %v, want a timeout", err)
	}
	if n != 0 {
		t.Fatalf("wrote %d past the window and the send buffer", n)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// rawPeer is a hostile peer: a tunnel's client end, written by hand.
type rawPeer struct {
	conn net.Conn
	br   *bufio.Reader
}

func hostile(t *testing.T, cfg Config) (*rawPeer, *Tunnel) {
	a, b := tcpPair(t)
	if cfg.Accept == nil {
		cfg.Accept = func(st *Stream) { go echo(st) }
	}
	s := New(b, cfg)
	t.Cleanup(func() {
		a.Close()
		s.Close()
	})
	p := &rawPeer{conn: a, br: bufio.NewReader(a)}
	p.send(AppendWindow(nil, 0, 1<<30))
	return p, s
}

func (p *rawPeer) send(b []byte) { p.conn.Write(b) }

// next returns the next frame that is not a WINDOW.
func (p *rawPeer) next(t *testing.T) Frame {
	t.Helper()
	for {
		f, err := ReadFrame(p.br, func(n int) []byte { return make([]byte, n) })
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if f.Type != TypeWindow {
			return f
		}
	}
}

func openFrame(id uint32, window uint32) []byte {
	b, _ := AppendOpen(nil, id, 1, window, "x.test:1")
	return b
}

func TestHostileReusedID(t *testing.T) {
	p, s := hostile(t, Config{})
	p.send(openFrame(1, 1<<20))
	if f := p.next(t); f.Type != TypeReply || f.Code != 0 {
		t.Fatalf("got %+v, want an OK REPLY", f)
	}
	p.send(openFrame(1, 1<<20))
	<-s.Done()
	var pe *protoError
	if !errors.As(s.Err(), &pe) {
		t.Fatalf("tunnel ended with %v, want a protocol error", s.Err())
	}
}

func TestHostileWrongParity(t *testing.T) {
	p, s := hostile(t, Config{})
	p.send(openFrame(2, 1<<20)) // even IDs are the server's
	<-s.Done()
	var pe *protoError
	if !errors.As(s.Err(), &pe) {
		t.Fatalf("tunnel ended with %v, want a protocol error", s.Err())
	}
}

func TestHostileDataOnUnknownStream(t *testing.T) {
	p, s := hostile(t, Config{})
	p.send(append(AppendDataHeader(nil, 99, 3), "abc"...))
	<-s.Done()
	var pe *protoError
	if !errors.As(s.Err(), &pe) {
		t.Fatalf("tunnel ended with %v, want a protocol error", s.Err())
	}
}

func TestHostileStreamWindowOverflow(t *testing.T) {
	hold := make(chan struct{})
	p, s := hostile(t, Config{StreamWindow: 1024, Accept: func(st *Stream) {
		st.Accept() // and reads nothing
		go func() {
			<-hold
			st.Close()
		}()
	}})
	defer close(hold)
	p.send(openFrame(1, 1<<20))
	if f := p.next(t); f.Type != TypeReply || f.Window != 1024 {
		t.Fatalf("got %+v, want a REPLY with window 1024", f)
	}
	p.send(append(AppendDataHeader(nil, 1, 2000), make([]byte, 2000)...))
	f := p.next(t)
	if f.Type != TypeRst || f.Stream != 1 || f.Code != RstWindow {
		t.Fatalf("got %+v, want RST window on stream 1", f)
	}
	// Frames after the reset are ignored, the tunnel lives on.
	p.send(append(AppendDataHeader(nil, 1, 10), make([]byte, 10)...))
	p.send(AppendFin(nil, 1))
	p.send(openFrame(3, 1<<20))
	if f := p.next(t); f.Type != TypeReply || f.Stream != 3 || f.Code != 0 {
		t.Fatalf("got %+v, want an OK REPLY for stream 3", f)
	}
	if s.Err() != nil {
		t.Fatalf("tunnel ended: %v", s.Err())
	}
	if u := s.Stats().BufferedUnread; u != 0 {
		t.Fatalf("%d bytes held for a reset stream", u)
	}
}

func TestHostileTunnelWindowOverflow(t *testing.T) {
	hold := make(chan struct{})
	defer close(hold)
	p, s := hostile(t, Config{TunnelWindow: 4096, StreamWindow: 1 << 20, Accept: func(st *Stream) {
		st.Accept()
	}})
	p.send(openFrame(1, 1<<20))
	p.next(t)
	p.send(append(AppendDataHeader(nil, 1, 5000), make([]byte, 5000)...))
	<-s.Done()
	var pe *protoError
	if !errors.As(s.Err(), &pe) {
		t.Fatalf("tunnel ended with %v, want a protocol error", s.Err())
	}
}

// A flood of OPENs past the limit: each refused at once, memory bounded by
// the limit, the tunnel lives.
func TestHostileOpenFlood(t *testing.T) {
	hold := make(chan struct{})
	p, s := hostile(t, Config{MaxStreams: 100, Accept: func(st *Stream) {
		st.Accept()
		go func() {
			<-hold
			st.Close()
		}()
	}})
	defer close(hold)
	var b []byte
	for id := uint32(1); id < 2000; id += 2 {
		b = append(b, openFrame(id, 1<<20)...)
	}
	go p.send(b)
	ok, refused := 0, 0
	for ok+refused < 1000 {
		f := p.next(t)
		if f.Type != TypeReply {
			t.Fatalf("got %+v", f)
		}
		if f.Code == 0 {
			ok++
		} else {
			refused++
		}
	}
	if ok != 100 || refused != 900 {
		t.Fatalf("%d accepted, %d refused; want 100 and 900", ok, refused)
	}
	if n := s.Stats().Open; n != 100 {
		t.Fatalf("%d streams open, want 100", n)
	}
}

// A peer that grants every window and reads nothing cannot make this end
// hold more than TunnelSendBuffer in its streams' send buffers.
func TestHostileGrantsAndDoesNotRead(t *testing.T) {
	a, b := tcpPair(t)
	c := New(a, Config{Client: true})
	defer c.Close()
	defer b.Close()
	// The peer: grant the tunnel, then accept every stream with a huge
	// window, then stop reading.
	br := bufio.NewReader(b)
	b.Write(AppendWindow(nil, 0, 1<<31))
	const streams = 40
	accepted := make(chan struct{})
	go func() {
		for n := 0; n < streams; {
			f, err := ReadFrame(br, func(n int) []byte { return make([]byte, n) })
			if err != nil {
				return
			}
			if f.Type == TypeOpen {
				b.Write(AppendReply(nil, f.Stream, 0, 1<<30, ""))
				n++
			}
		}
		close(accepted)
	}()
	var sts []*Stream
	for range streams {
		st, err := c.Open(context.Background(), 1, "x.test:1")
		if err != nil {
			t.Fatal(err)
		}
		sts = append(sts, st)
	}
	<-accepted
	var wg sync.WaitGroup
	for _, st := range sts {
		wg.Go(func() {
			st.SetWriteDeadline(time.Now().Add(300 * time.Millisecond))
			st.Write(make([]byte, 1<<20))
		})
	}
	wg.Wait()
	if q := c.Stats().BufferedUnsent; q > TunnelSendBuffer {
		t.Fatalf("%d bytes queued, more than the tunnel's %d", q, TunnelSendBuffer)
	}
}

// ReadFrom and WriteTo (io.Copy's fast paths) carry the same bytes as
// Write and Read, for reads of every size.
func TestCopyPaths(t *testing.T) {
	c, _ := echoPair(t, Config{}, Config{}, nil)
	data := randBytes(3<<20 + 1234)
	for _, r := range []func() io.Reader{
		func() io.Reader { return iotest.HalfReader(bytes.NewReader(data)) },
		func() io.Reader { return iotest.OneByteReader(bytes.NewReader(data[:5000])) },
		func() io.Reader { return io.LimitReader(bytes.NewReader(data), int64(len(data))) },
	} {
		src := r()
		want, _ := io.ReadAll(r())
		st, err := c.Open(context.Background(), 1, "x.test:1")
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			st.ReadFrom(src)
			st.CloseWrite()
		}()
		var got bytes.Buffer
		if _, err := st.WriteTo(&got); err != nil {
			t.Fatal(err)
		}
		st.Close()
		if !bytes.Equal(got.Bytes(), want) {
			t.Fatalf("%d bytes came back for %d", got.Len(), len(want))
		}
	}
}
