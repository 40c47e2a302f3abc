// Package relay joins two connections.
package relay

import (
	"io"
	"net"
	"sync"
)

// Copy copies a to b and b to a until both directions end, then closes both
// conns. An EOF in one direction is passed on as a half-close (CloseWrite,
// where the conn has it), so the other direction keeps flowing. An error in
// either direction closes both at once, and is the error returned.
func Copy(a, b net.Conn) (aToB, bToA int64, err error) {
	var once sync.Once
	fail := func(e error) {
		once.Do(func() {
			err = e
			a.Close()
			b.Close()
		})
	}
	var wg sync.WaitGroup
	wg.Go(func() { aToB = copyHalf(b, a, fail) })
	bToA = copyHalf(a, b, fail)
	wg.Wait()
	a.Close()
	b.Close()
	return aToB, bToA, err
}

// copyHalf uses io.Copy so that the conns' ReadFrom/WriteTo fast paths
// (splice between TCP conns) apply.
func copyHalf(dst, src net.Conn, fail func(error)) int64 {
	n, err := io.Copy(dst, src)
	if err == nil {
		if cw, ok := dst.(interface{ CloseWrite() error }); ok {
			err = cw.CloseWrite()
		}
	}
	if err != nil {
		fail(err)
	}
	return n
}
