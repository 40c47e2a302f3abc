package api

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/mptp/mptp"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// rig is an mptp server, a client with two paths ("a" and "b") to it, a
// target the server connects, and the API serving both.
type rig struct {
	client *mptp.Client
	server *mptp.Server
	srvLn  net.Listener
	target *target
	api    *Server
	base   string // the API's "http://host:port"
}

func newRig(t *testing.T) *rig {
	t.Helper()
	r := &rig{target: newTarget(t)}
	var d net.Dialer
	r.server = &mptp.Server{Dial: d.DialContext}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.srvLn = ln
	served := make(chan struct{})
	go func() {
		defer close(served)
		r.server.Serve(ln)
	}()
	t.Cleanup(func() {
		r.server.Close()
		<-served
	})
	r.client = &mptp.Client{Server: ln.Addr().String(), Paths: []mptp.Path{{Name: "a"}, {Name: "b"}}}
	// The tunnel outlives the connections: it ends with the client,
	// before the server (cleanups run last first).
	t.Cleanup(func() { r.client.Close() })
	r.api = &Server{Addr: "127.0.0.1:0", Interval: 100 * time.Millisecond, Sources: []Source{
		{Side: "client", Tag: "out", Status: r.client.Status},
		{Side: "server", Tag: "in", Status: r.server.Status},
	}}
	if err := r.api.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.api.Close() })
	r.base = "http://" + r.api.ListenAddr().String()
	return r
}

// get fetches path from the API.
func (r *rig) get(t *testing.T, path string) []byte {
	t.Helper()
	resp, err := http.Get(r.base + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s\n%s", path, resp.Status, body)
	}
	return body
}

func (r *rig) status(t *testing.T) Report {
	t.Helper()
	var rep Report
	if err := json.Unmarshal(r.get(t, "/api/status"), &rep); err != nil {
		t.Fatal(err)
	}
	return rep
}

// source returns the report of side in rep.
func source(t *testing.T, rep Report, side string) SourceReport {
	t.Helper()
	for _, s := range rep.Sources {
		if s.Side == side {
			return s
		}
	}
	t.Fatalf("no %s in %+v", side, rep)
	return SourceReport{}
}

// waitFor polls cond until it holds, for at most a minute (which only a
// broken build takes).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 3000 {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("gave up waiting for %s", what)
}

// download fetches one stream from the target through the rig: size bytes,
// or, with size 0, until stop is closed. It returns the bytes' count, and
// an error unless their sha256 is that of what the target sent.
func (r *rig) download(size int64, stop <-chan struct{}) (int64, error) {
	r.target.next <- order{size: size, stop: stop}
	conn, err := r.client.Dial("tcp", r.target.ln.Addr().String())
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	h := sha256.New()
	n, err := io.Copy(h, conn)
	if err != nil {
		return n, fmt.Errorf("download: %w after %d bytes", err, n)
	}
	sent := <-r.target.sums
	if sent.n != n || string(sent.sum) != string(h.Sum(nil)) {
		return n, fmt.Errorf("received %d bytes, sha256 %x; the target sent %d, sha256 %x", n, h.Sum(nil), sent.n, sent.sum)
	}
	return n, nil
}

// stream runs a download until the returned function is called, which
// returns the bytes moved once their sha256 is checked.
func (r *rig) stream(t *testing.T) (stop func() int64) {
	t.Helper()
	quit := make(chan struct{})
	type result struct {
		n   int64
		err error
	}
	done := make(chan result, 1)
	go func() {
		n, err := r.download(0, quit)
		done <- result{n, err}
	}()
	var once sync.Once
	var res result
	stop = func() int64 {
		once.Do(func() {
			close(quit)
			res = <-done
		})
		if res.err != nil {
			t.Fatal(res.err)
		}
		return res.n
	}
	t.Cleanup(func() { once.Do(func() { close(quit); <-done }) })
	return stop
}

// order tells the target what its next connection gets: size random bytes,
// or with size 0 a stream paced to some MB/s until stop is closed.
type order struct {
	size int64
	stop <-chan struct{}
}

type sent struct {
	n   int64
	sum []byte
}

// target serves one order per connection, in turn.
type target struct {
	ln   net.Listener
	next chan order
	sums chan sent
	wg   sync.WaitGroup
}

func newTarget(t *testing.T) *target {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tg := &target{ln: ln, next: make(chan order, 1), sums: make(chan sent, 1)}
	tg.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			o := <-tg.next
			tg.wg.Go(func() {
				defer c.Close()
				h := sha256.New()
				n, _ := o.write(c, h)
				tg.sums <- sent{n, h.Sum(nil)}
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		tg.wg.Wait()
	})
	return tg
}

func (o order) write(c net.Conn, h hash.Hash) (int64, error) {
	buf := make([]byte, 32<<10)
	var n int64
	for o.size == 0 || n < o.size {
		chunk := buf
		if o.size > 0 {
			chunk = buf[:min(int64(len(buf)), o.size-n)]
		} else {
			select {
			case <-o.stop:
				return n, nil
			case <-time.After(2 * time.Millisecond): // about 16 MB/s at most
			}
		}
		rand.Read(chunk)
		h.Write(chunk)
		m, err := c.Write(chunk)
		n += int64(m)
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
