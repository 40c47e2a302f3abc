package mptp

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/mptp/mptp/internal/leaf"
	"github.com/mptp/mptp/internal/mux"
	"github.com/mptp/mptp/internal/session"
	"github.com/mptp/mptp/internal/socksaddr"
	"github.com/mptp/mptp/internal/wire"
)

// A UDP association is a session opened with CMD UDP. Over v2 its
// datagrams are DATAGRAM frames beside the (unused) byte stream; over
// Leaf's v1 they are framed inside the stream. Either end closing its
// side ends the association.

// datagrams carries one association's datagrams, each with the address
// it goes to (client to server) or came from (server to client).
type datagrams interface {
	send(addr string, payload []byte) error
	// receive returns the next datagram; payload is the caller's to keep.
	receive() (addr string, payload []byte, err error)
	SetReadDeadline(t time.Time) error
	Close() error
}

// maxUDP is the largest UDP payload there is (65535 less the IPv4 and UDP
// headers); larger reads are impossible and larger writes are refused.
const maxUDP = 65507

// frameDatagrams carries datagrams as v2 DATAGRAM frames: a session's, or
// a tunnel stream's (which adds its stream ID).
type frameDatagrams struct {
	s interface {
		SendDatagram(b []byte) error
		ReadDatagram() ([]byte, error)
		SetReadDeadline(t time.Time) error
		Close() error
	}
	mu  sync.Mutex
	buf []byte
}

func (d *frameDatagrams) send(addr string, payload []byte) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	b, err := socksaddr.Append(d.buf[:0], addr)
	if err != nil {
		return err
	}
	b = append(b, payload...)
	d.buf = b[:0]
	return d.s.SendDatagram(b)
}

func (d *frameDatagrams) receive() (string, []byte, error) {
	for {
		b, err := d.s.ReadDatagram()
		if err != nil {
			return "", nil, err
		}
		addr, n, err := socksaddr.Parse(b)
		if err != nil {
			continue // a malformed address: drop the datagram, as UDP would
		}
		return addr, b[n:], nil
	}
}

func (d *frameDatagrams) SetReadDeadline(t time.Time) error { return d.s.SetReadDeadline(t) }
func (d *frameDatagrams) Close() error                      { return d.s.Close() }

// streamDatagrams carries datagrams inside a v1 stream, as Leaf does.
type streamDatagrams struct {
	c   net.Conn
	r   *bufio.Reader
	mu  sync.Mutex
	buf []byte
}

func newStreamDatagrams(c net.Conn) *streamDatagrams {
	return &streamDatagrams{c: c, r: bufio.NewReaderSize(c, 64<<10)}
}

func (d *streamDatagrams) send(addr string, payload []byte) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	b, err := leaf.AppendDatagram(d.buf[:0], addr, payload)
	if err != nil {
		return err
	}
	d.buf = b[:0]
	_, err = d.c.Write(b)
	return err
}

func (d *streamDatagrams) receive() (string, []byte, error) {
	for {
		addr, payload, err := leaf.ReadDatagram(d.r, leaf.MaxDatagram)
		if errors.Is(err, leaf.ErrFragment) {
			continue // read whole: the stream is still in step
		}
		return addr, payload, err
	}
}

func (d *streamDatagrams) SetReadDeadline(t time.Time) error { return d.c.SetReadDeadline(t) }
func (d *streamDatagrams) Close() error                      { return d.c.Close() }

// PacketConn is a UDP association through an MPTP server: datagrams
// written to any address ("host:port", names resolved by the server) go
// out from the server, and replies come back with their real source
// address. It is a net.PacketConn.
type PacketConn struct {
	d      datagrams
	conn   net.Conn // the session, for its addresses
	closed func()   // once, on Close
	wdl    time.Time
	wdlMu  sync.Mutex
}

// ListenPacket opens a UDP association through the server over the
// client's paths. Datagrams are never sent again when lost and never wait
// behind each other; each goes on the path with the lowest delay (on the
// two best with Options.DatagramCopies).
func (c *Client) ListenPacket(ctx context.Context) (*PacketConn, error) {
	var conn net.Conn
	var err error
	if c.Version == 1 {
		conn, err = c.open(ctx, wire.CmdUDP, "0.0.0.0:0")
	} else {
		conn, err = c.openStream(ctx, wire.CmdUDP, "0.0.0.0:0")
	}
	if err != nil {
		return nil, err
	}
	c.obs.udp.Add(1)
	pc := &PacketConn{conn: conn, closed: sync.OnceFunc(func() { c.obs.udp.Add(-1) })}
	switch c := conn.(type) {
	case *mux.Stream:
		pc.d = &frameDatagrams{s: c}
	case *session.Session: // a server older than tunnels
		pc.d = &frameDatagrams{s: c}
	default: // Leaf v1
		pc.d = newStreamDatagrams(conn)
	}
	return pc, nil
}

// WriteTo sends p to addr. addr may be any net.Addr whose String is
// "host:port"; a host name is resolved by the server. A datagram the paths
// cannot take now is dropped, as UDP would drop it.
func (c *PacketConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	if len(p) > maxUDP {
		return 0, &net.OpError{Op: "write", Net: "mptp", Addr: addr, Err: session.ErrDatagramTooLarge}
	}
	c.wdlMu.Lock()
	wdl := c.wdl
	c.wdlMu.Unlock()
	if !wdl.IsZero() && !time.Now().Before(wdl) {
		return 0, os.ErrDeadlineExceeded
	}
	if err := c.d.send(addr.String(), p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// ReadFrom reads the next datagram into p; like UDP, the part of a
// datagram beyond len(p) is lost. addr is a *net.UDPAddr.
func (c *PacketConn) ReadFrom(p []byte) (int, net.Addr, error) {
	a, payload, err := c.d.receive()
	if err != nil {
		return 0, nil, err
	}
	return copy(p, payload), udpAddr(a), nil
}

// udpAddr turns "host:port" into a *net.UDPAddr when host is an IP (the
// server always reports IPs), else into an Addr.
func udpAddr(a string) net.Addr {
	if ap, err := netip.ParseAddrPort(a); err == nil {
		return net.UDPAddrFromAddrPort(ap)
	}
	return Addr(a)
}

// Close ends the association on both ends.
func (c *PacketConn) Close() error {
	c.closed()
	return c.d.Close()
}

// LocalAddr is the client end of the association.
func (c *PacketConn) LocalAddr() net.Addr { return c.conn.LocalAddr() }

func (c *PacketConn) SetDeadline(t time.Time) error {
	c.SetWriteDeadline(t)
	return c.d.SetReadDeadline(t)
}

func (c *PacketConn) SetReadDeadline(t time.Time) error { return c.d.SetReadDeadline(t) }

// SetWriteDeadline is honoured only between writes: a write never blocks.
func (c *PacketConn) SetWriteDeadline(t time.Time) error {
	c.wdlMu.Lock()
	c.wdl = t
	c.wdlMu.Unlock()
	return nil
}

var _ net.PacketConn = (*PacketConn)(nil)

// ListenPacketFunc opens the server's UDP socket for one association. Its
// WriteTo must take any net.Addr whose String is "host:port", resolving
// names.
type ListenPacketFunc func(ctx context.Context) (net.PacketConn, error)
