package session

import (
	"net"
	"syscall"
)

// tcpNotsentLowat is TCP_NOTSENT_LOWAT: it keeps the kernel's queue of
// unsent bytes short, so the scheduler, not the kernel, decides which path
// carries the next chunk.
const tcpNotsentLowat = 25

func setLowWater(c net.Conn) {
	// A TCP conn, or a secure channel over one.
	sc, ok := c.(syscall.Conn)
	if !ok {
		return
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return
	}
	raw.Control(func(fd uintptr) {
		syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, tcpNotsentLowat, 128<<10)
	})
}
