package session

import "net"

// buffersWriter is a conn that takes a vector of frames itself: the
// secure channel seals it into few records instead of one per frame.
type buffersWriter interface {
	WriteBuffers([][]byte) (int64, error)
}

// writeBuffers writes bufs, as one vectored write where the conn allows.
func writeBuffers(c net.Conn, bufs net.Buffers) (int64, error) {
	if bw, ok := c.(buffersWriter); ok {
		return bw.WriteBuffers(bufs)
	}
	return bufs.WriteTo(c) // WriteTo consumes its receiver, a copy of bufs
}
