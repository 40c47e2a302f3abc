package mux

import (
	"context"
	"io"
	"testing"
	"time"
)

// BenchmarkStreamDownload moves 64 MiB over one stream of a tunnel on a
// loopback TCP connection: the stream layer's own cost, without paths.
func BenchmarkStreamDownload(b *testing.B) {
	const size = 64 << 20
	a, c := tcpPairTB(b)
	buf := make([]byte, 32<<10)
	srv := New(c, Config{RTT: func() time.Duration { return time.Millisecond }, Accept: func(st *Stream) {
		go func() {
			st.Accept()
			for left := size; left > 0; left -= len(buf) {
				if _, err := st.Write(buf[:min(left, len(buf))]); err != nil {
					return
				}
			}
			st.CloseWrite()
			io.Copy(io.Discard, st)
			st.Close()
		}()
	}})
	cli := New(a, Config{Client: true, RTT: func() time.Duration { return time.Millisecond }})
	defer srv.Close()
	defer cli.Close()
	b.SetBytes(size)
	for b.Loop() {
		st, err := cli.Open(context.Background(), 1, "x.test:1")
		if err != nil {
			b.Fatal(err)
		}
		if n, err := io.Copy(io.Discard, st); n != size || err != nil {
			b.Fatalf("%d bytes, %v", n, err)
		}
		st.Close()
	}
}
