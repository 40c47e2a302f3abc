package mptp

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/mptp/mptp/internal/faultnet"
	"github.com/mptp/mptp/internal/secure"
)

// sourceServer sends size bytes to each connection.
func sourceServer(b *testing.B, size int) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 256<<10)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				for sent := 0; sent < size; sent += len(buf) {
					if _, err := c.Write(buf[:min(len(buf), size-sent)]); err != nil {
						return
					}
				}
			}()
		}
	}()
	b.Cleanup(func() { ln.Close() })
	return ln.Addr().String()
}

// BenchmarkDownload measures one 64 MiB download through MPTP on
// loopback, with 1 and 3 paths, against plain TCP in the same run.
func BenchmarkDownload(b *testing.B) {
	const size = 64 << 20
	src := sourceServer(b, size)
	b.Run("tcp", func(b *testing.B) {
		b.SetBytes(size)
		for i := 0; i < b.N; i++ {
			c, err := net.Dial("tcp", src)
			if err != nil {
				b.Fatal(err)
			}
			if n, _ := io.Copy(io.Discard, c); n != size {
				b.Fatalf("got %d bytes", n)
			}
			c.Close()
		}
	})
	// "secure": with a password, every path authenticated and encrypted.
	for _, v := range []struct{ name, password string }{{"mptp", ""}, {"mptp-secure", "bench password"}} {
		for _, paths := range []int{1, 3} {
			b.Run(fmt.Sprintf("%s-%dpaths", v.name, paths), func(b *testing.B) {
				downloads(b, src, size, paths, Options{Password: v.password})
			})
		}
	}
}

// downloads dials src through a fresh server over paths paths, b.N times,
// and reads size bytes each time.
func downloads(b *testing.B, src string, size, paths int, o Options) {
	if o.Password != "" {
		secure.KeyFromPassword(o.Password) // once per process, not per session
	}
	addr := startServer(b, &Server{Options: o})
	b.SetBytes(int64(size))
	c := &Client{Server: addr, Options: o}
	defer c.Close()
	for i := 0; i < paths; i++ {
		c.Paths = append(c.Paths, Path{Name: fmt.Sprint("p", i)})
	}
	for i := 0; i < b.N; i++ {
		conn, err := c.Dial("tcp", src)
		if err != nil {
			b.Fatal(err)
		}
		if n, _ := io.Copy(io.Discard, conn); n != int64(size) {
			b.Fatalf("got %d bytes", n)
		}
		conn.Close()
	}
}

// BenchmarkSlowPath uploads 32 MiB over a fast loopback path alone, and
// over the same path plus one throttled to 2 MB/s: the second must not be
// slower than the first.
func BenchmarkSlowPath(b *testing.B) {
	const size = 32 << 20
	sink := sinkServer(b)
	addr := startServer(b, &Server{})
	var d net.Dialer
	slow := func(ctx context.Context, network, address string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, address)
		if err != nil {
			return nil, err
		}
		return faultnet.Throttle(c, 2<<20), nil
	}
	data := make([]byte, size)
	for _, tc := range []struct {
		name  string
		paths []Path
	}{
		{"fast-alone", []Path{{Name: "fast"}}},
		{"fast+slow", []Path{{Name: "fast"}, {Name: "slow", Dial: slow}}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(size)
			c := &Client{Server: addr, Paths: tc.paths}
			defer c.Close()
			for i := 0; i < b.N; i++ {
				conn, err := c.Dial("tcp", sink)
				if err != nil {
					b.Fatal(err)
				}
				conn.Write(data)
				conn.(interface{ CloseWrite() error }).CloseWrite()
				io.Copy(io.Discard, conn) // the sink closes once it has it all
				conn.Close()
			}
			for _, ps := range c.Stats() {
				b.ReportMetric(float64(ps.BytesSent)/float64(b.N)/size*100, ps.Name+"-%")
			}
		})
	}
}

// sinkServer reads each connection to the end, then closes it.
func sinkServer(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				io.Copy(io.Discard, c)
				c.Close()
			}()
		}
	}()
	b.Cleanup(func() { ln.Close() })
	return ln.Addr().String()
}

// BenchmarkManyEchoes runs many sessions at once, each echoing 64 KiB
// blocks (the scale group's busy case, in one process for pprof), against
// plain TCP to the same echo server in the same run.
func BenchmarkManyEchoes(b *testing.B) {
	const sessions, block = 500, 64 << 10
	echo := echoServer(b)
	addr := startServer(b, &Server{Limits: Limits{MaxMemory: 1 << 40}})
	c := &Client{Server: addr, Paths: []Path{{Name: "p0"}}}
	defer c.Close()
	dials := map[string]func() (net.Conn, error){
		"tcp":  func() (net.Conn, error) { return net.Dial("tcp", echo) },
		"mptp": func() (net.Conn, error) { return c.Dial("tcp", echo) },
	}
	for _, name := range []string{"tcp", "mptp"} {
		b.Run(name, func(b *testing.B) {
			conns := make([]net.Conn, sessions)
			for i := range conns {
				conn, err := dials[name]()
				if err != nil {
					b.Fatal(err)
				}
				defer conn.Close()
				conns[i] = conn
			}
			b.SetBytes(block)
			b.ResetTimer()
			var left atomic.Int64
			left.Store(int64(b.N))
			var wg sync.WaitGroup
			for _, conn := range conns {
				wg.Go(func() {
					buf := make([]byte, block)
					for left.Add(-1) >= 0 {
						if _, err := conn.Write(buf); err != nil {
							b.Error(err)
							return
						}
						if _, err := io.ReadFull(conn, buf); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
		})
	}
}
