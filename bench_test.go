package mptp

import (
	"fmt"
	"io"
	"net"
	"testing"
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
	for _, paths := range []int{1, 3} {
		b.Run(fmt.Sprintf("mptp-%dpaths", paths), func(b *testing.B) {
			addr := startServer(b, &Server{})
			b.SetBytes(size)
			c := &Client{Server: addr}
			for i := 0; i < paths; i++ {
				c.Paths = append(c.Paths, Path{Name: fmt.Sprint("p", i)})
			}
			for i := 0; i < b.N; i++ {
				conn, err := c.Dial("tcp", src)
				if err != nil {
					b.Fatal(err)
				}
				if n, _ := io.Copy(io.Discard, conn); n != size {
					b.Fatalf("got %d bytes", n)
				}
				conn.Close()
			}
		})
	}
}
