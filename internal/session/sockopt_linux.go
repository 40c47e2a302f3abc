package session

import (
	"net"
	"syscall"
)

// tcpNotsentLowat is TCP_NOTSENT_LOWAT: it keeps the kernel's queue of
// unsent bytes short, so the scheduler, not the kernel, decides which path
// carries the next chunk.
const tcpNotsentLowat = 25

// lowWater is the most unsent bytes the kernel queues: a writer's whole
// batch, so that a fast path's writes seldom stop halfway to wait for room.
const lowWater = maxBatch

func setLowWater(c net.Conn) {
	setInt(c, tcpNotsentLowat, lowWater)
}

// quickAck asks the kernel to acknowledge at once again. A path's
// receiver also sends (ACK and PONG frames), so after each of its writes
// Linux takes the connection for an interactive one and holds its TCP ACKs
// back to ride on the next frame; the sender's ACK clock then slows down,
// and with it BBR's estimate of the path (the default on these kernels).
// It is a system call, so it follows only writes of control frames: after
// a write of DATA, the peer's frames coming back are control frames, and
// their TCP ACKs clock nothing.
func quickAck(c net.Conn) {
	setInt(c, syscall.TCP_QUICKACK, 1)
}

// setInt sets a TCP option on a TCP conn, or on the one under a secure
// channel; other conns are left alone.
func setInt(c net.Conn, opt, value int) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return
	}
	raw.Control(func(fd uintptr) {
		syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, opt, value)
	})
}
