package relaytest

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"io"
	"net"
	"sync"
	"testing"
)

// Echo starts a loopback TCP server that sends every connection's bytes
// back, until the end of the test, and returns its address.
func Echo(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	Serve(t, ln, func(c *net.TCPConn) {
		if _, err := io.Copy(c, c); err == nil {
			c.CloseWrite()
		}
	})
	return ln.Addr().String()
}

// Serve runs handle for every TCP connection accepted on ln until the end
// of the test, which closes ln and the connections and waits for the
// handlers.
func Serve(t testing.TB, ln net.Listener, handle func(*net.TCPConn)) {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				handle(c.(*net.TCPConn))
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
}

// RoundTrip sends size random bytes through c, a connection to an echo
// server, reads size bytes back, and fails the test unless their SHA-256
// sums match.
func RoundTrip(t testing.TB, c net.Conn, size int) {
	t.Helper()
	data := make([]byte, size)
	rand.Read(data)
	writeErr := make(chan error, 1)
	go func() {
		_, err := c.Write(data)
		writeErr <- err
	}()
	h := sha256.New()
	n, err := io.CopyN(h, c, int64(size))
	if err != nil {
		c.Close() // unblocks the writer
	}
	if werr := <-writeErr; werr != nil && err == nil {
		t.Fatalf("write: %v", werr)
	}
	if err != nil {
		t.Fatalf("read %d of %d bytes back: %v", n, size, err)
	}
	if want := sha256.Sum256(data); !bytes.Equal(h.Sum(nil), want[:]) {
		t.Fatalf("%d bytes came back different", size)
	}
}
