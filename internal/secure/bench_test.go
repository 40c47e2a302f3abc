package secure

import (
	"io"
	"net"
	"testing"
)

// BenchmarkStream is one direction of a secure channel over loopback TCP,
// written as a session writes: 256 KiB batches of 64 KiB frames.
func BenchmarkStream(b *testing.B) {
	for _, name := range []string{"plain", "secure"} {
		b.Run(name, func(b *testing.B) {
			cRaw, sRaw := tcpPair(b)
			var w interface {
				WriteBuffers([][]byte) (int64, error)
			}
			var r io.Reader = sRaw
			if name == "secure" {
				c, s, cerr, serr := handshake(b, cRaw, sRaw, testKey, testKey)
				if cerr != nil || serr != nil {
					b.Fatal(cerr, serr)
				}
				w, r = c, s
			} else {
				w = plainWriter{cRaw}
			}
			frame := make([]byte, 65527)
			hdr := make([]byte, 12)
			batch := [][]byte{hdr, frame, hdr, frame, hdr, frame, hdr, frame}
			done := make(chan struct{})
			go func() {
				io.Copy(io.Discard, r)
				close(done)
			}()
			b.SetBytes(4 * (65527 + 12))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := w.WriteBuffers(batch); err != nil {
					b.Fatal(err)
				}
			}
			cRaw.(*net.TCPConn).CloseWrite()
			<-done
		})
	}
}

type plainWriter struct{ c net.Conn }

func (p plainWriter) WriteBuffers(b [][]byte) (int64, error) {
	nb := append(net.Buffers(nil), b...) // WriteTo consumes its receiver
	return nb.WriteTo(p.c)
}
