package secure

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"syscall"

	"github.com/flynn/noise"
)

// Records: after the handshake each direction is a sequence of LEN u16,
// then LEN bytes of AES-256-GCM ciphertext and tag. The nonce is the
// record's number in its direction, so a record that is dropped, repeated,
// reordered or moved from another connection fails authentication.
const (
	tagLen = 16
	// MaxPlain is the most plaintext one record carries: as TLS, 16 KiB,
	// so a receiver buffers little before it can check and pass bytes on.
	MaxPlain  = 16 << 10
	maxRecord = MaxPlain + tagLen
	// outSize is the pooled buffer a write seals into: a session's batch
	// of up to 256 KiB goes out in one or two system calls.
	outSize = 256 << 10
	// inSize holds several records, so one read system call takes many.
	inSize = 64 << 10
)

// ErrRecord means a record failed authentication: it was changed, cut,
// replayed, reordered or spliced in. The connection is unusable after it.
var ErrRecord = errors.New("secure: record failed authentication")

var outPool = sync.Pool{New: func() any {
	b := make([]byte, 0, outSize)
	return &b
}}

// Conn is a sub-connection after the handshake: every byte written is
// sealed and every byte read was checked.
type Conn struct {
	net.Conn // the raw sub-connection: addresses, deadlines, Close

	rmu   sync.Mutex
	recv  *noise.CipherState
	in    []byte // raw bytes: in[r:w] are not yet decrypted
	r, w  int
	plain []byte // decrypted bytes not yet returned, inside in
	rerr  error

	wmu  sync.Mutex
	send *noise.CipherState
	werr error
}

func newConn(raw net.Conn, send, recv *noise.CipherState) *Conn {
	return &Conn{Conn: raw, send: send, recv: recv}
}

// Read returns decrypted bytes.
func (c *Conn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if len(p) == 0 {
		return 0, nil
	}
	for len(c.plain) == 0 {
		if c.rerr != nil {
			return 0, c.rerr
		}
		rec, err := c.record()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return 0, err // a deadline: the stream is still in step
			}
			c.rerr = err
			continue
		}
		if len(rec)-tagLen <= len(p) {
			// Open straight into the caller's buffer: one copy fewer.
			out, err := c.recv.Decrypt(p[:0], nil, rec)
			if err != nil {
				c.rerr = ErrRecord
				continue
			}
			if len(out) > 0 {
				return len(out), nil
			}
			continue
		}
		out, err := c.recv.Decrypt(rec[:0], nil, rec)
		if err != nil {
			c.rerr = ErrRecord
			continue
		}
		c.plain = out
	}
	n := copy(p, c.plain)
	c.plain = c.plain[n:]
	return n, nil
}

// record returns the next whole record's ciphertext, inside c.in, reading
// as much as the socket has. Called with rmu held and c.plain empty.
func (c *Conn) record() ([]byte, error) {
	if c.in == nil {
		c.in = make([]byte, inSize)
	}
	for {
		if c.w-c.r >= 2 {
			n := int(binary.BigEndian.Uint16(c.in[c.r:]))
			if n < tagLen || n > maxRecord {
				return nil, ErrRecord
			}
			if c.w-c.r >= 2+n {
				rec := c.in[c.r+2 : c.r+2+n]
				c.r += 2 + n
				return rec, nil
			}
		}
		if c.r == c.w {
			c.r, c.w = 0, 0
		} else if len(c.in)-c.r < 2+maxRecord {
			// Not enough room after r for a whole record: move the part
			// read to the front (at most one record, seldom).
			c.w = copy(c.in, c.in[c.r:c.w])
			c.r = 0
		}
		n, err := c.Conn.Read(c.in[c.w:])
		c.w += n
		if err != nil && n == 0 {
			if err == io.EOF && c.r != c.w {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
}

// Write seals b and writes it.
func (c *Conn) Write(b []byte) (int, error) {
	n, err := c.WriteBuffers([][]byte{b})
	return int(n), err
}

// WriteBuffers seals the buffers, as one stream, into as few records as
// they fit and writes them with as few system calls as it can. A session
// hands its frames this way rather than one Write each.
func (c *Conn) WriteBuffers(bufs [][]byte) (int64, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil {
		return 0, c.werr
	}
	pb := outPool.Get().(*[]byte)
	defer outPool.Put(pb)
	out := (*pb)[:0]
	var total int64
	start := -1 // offset in out of the record being filled
	seal := func() error {
		pt := out[start+2:]
		ct, err := c.send.Encrypt(pt[:0], nil, pt) // in place: cap leaves room for the tag
		if err != nil {
			return err
		}
		binary.BigEndian.PutUint16(out[start:], uint16(len(ct)))
		out = out[:start+2+len(ct)]
		start = -1
		return nil
	}
	flush := func() error {
		if len(out) == 0 {
			return nil
		}
		_, err := c.Conn.Write(out)
		out = out[:0]
		return err
	}
	for _, b := range bufs {
		for len(b) > 0 {
			if start < 0 {
				if cap(out)-len(out) < 2+tagLen+1 {
					if err := flush(); err != nil {
						c.werr = err
						return total, err
					}
				}
				start = len(out)
				out = append(out, 0, 0)
			}
			room := min(MaxPlain-(len(out)-start-2), cap(out)-len(out)-tagLen)
			n := min(room, len(b))
			out = append(out, b[:n]...)
			b = b[n:]
			total += int64(n)
			if n == room {
				if err := seal(); err != nil {
					c.werr = err
					return 0, err
				}
			}
		}
	}
	if start >= 0 {
		if err := seal(); err != nil {
			c.werr = err
			return 0, err
		}
	}
	if err := flush(); err != nil {
		c.werr = err
		return total, err
	}
	return total, nil
}

// CloseWrite half-closes the raw connection: records are whole, so the
// peer reads a clean end of stream.
func (c *Conn) CloseWrite() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}

// SyscallConn reaches the socket under the channel, for socket options.
func (c *Conn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := c.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, errors.New("secure: no socket")
}

// NetConn is the raw sub-connection.
func (c *Conn) NetConn() net.Conn { return c.Conn }
