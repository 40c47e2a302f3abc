package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Frame types. Types not listed are skipped by receivers, so new ones can
// be added without a new version; 0x08-0x0f are kept for streams,
// 0x10-0x1f for security.
const (
	TypeData     = 0x01
	TypeAck      = 0x02
	TypeFin      = 0x03
	TypeRst      = 0x04
	TypePing     = 0x05
	TypePong     = 0x06
	TypeDatagram = 0x07 // a UDP datagram, outside the byte stream
)

// Flags.
const (
	FlagFinAcked = 0x01 // ACK: the sender has received the peer's FIN
	FlagStream   = 0x80 // reserved: a u32 stream ID follows the header
)

// RST codes.
const (
	RstClosed   = 0x0000 // the application aborted
	RstProtocol = 0x0001 // malformed or forbidden frame
	RstWindow   = 0x0002 // data beyond the advertised window
	RstGrace    = 0x0003 // every path was gone for the grace period
	RstTarget   = 0x0004 // the target connection failed
	RstInternal = 0x0005
	RstShutdown = 0x0006 // the process is stopping
	RstLinger   = 0x0007 // a closed session did not finish in time
)

const (
	HeaderLen  = 4     // TYPE, FLAGS, LEN u16
	MaxBody    = 65535 // LEN is a u16
	MaxPayload = MaxBody - 8
	DataHeader = HeaderLen + 8
	// MaxDatagram is the largest DATAGRAM body after its ID: the SOCKS5
	// address and the payload.
	MaxDatagram    = MaxBody - 4
	DatagramHeader = HeaderLen + 4
)

// Frame is one decoded frame. For DATA, Payload aliases the buffer given to
// ReadFrame.
type Frame struct {
	Type  byte
	Flags byte
	Seq   uint64 // DATA: offset of the first byte; FIN: final offset; DATAGRAM: ID
	Ack   uint64 // ACK: next byte expected (cumulative)
	Wnd   uint32 // ACK: bytes the receiver can take beyond Ack
	// PathRcvd is in ACK frames: DATA payload bytes this sub-connection has
	// carried so far in the acked direction. It gives each path's in-flight
	// bytes and delivery rate, whatever the other paths do.
	PathRcvd uint64
	Code     uint16 // RST
	TS       uint64 // PING, PONG
	Payload  []byte // DATA payload, RST message, DATAGRAM address and payload
}

var ErrFrame = errors.New("wire: malformed frame")

// AppendDataHeader appends the header of a DATA frame whose payload of n
// bytes the caller writes next (vectored writes avoid copying payloads).
func AppendDataHeader(b []byte, seq uint64, n int) []byte {
	b = append(b, TypeData, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(8+n))
	return binary.BigEndian.AppendUint64(b, seq)
}

// AppendDatagramHeader appends the header of a DATAGRAM frame whose body
// of n bytes (address and payload, at most MaxDatagram) the caller writes
// next.
func AppendDatagramHeader(b []byte, id uint32, n int) []byte {
	b = append(b, TypeDatagram, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(4+n))
	return binary.BigEndian.AppendUint32(b, id)
}

// AppendAck appends an ACK frame.
func AppendAck(b []byte, flags byte, ack uint64, wnd uint32, pathRcvd uint64) []byte {
	b = append(b, TypeAck, flags, 0, 20)
	b = binary.BigEndian.AppendUint64(b, ack)
	b = binary.BigEndian.AppendUint32(b, wnd)
	return binary.BigEndian.AppendUint64(b, pathRcvd)
}

// AppendFin appends a FIN frame carrying the final offset.
func AppendFin(b []byte, final uint64) []byte {
	b = append(b, TypeFin, 0, 0, 8)
	return binary.BigEndian.AppendUint64(b, final)
}

// AppendRst appends an RST frame.
func AppendRst(b []byte, code uint16, msg string) []byte {
	if len(msg) > 200 {
		msg = msg[:200]
	}
	b = append(b, TypeRst, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(2+len(msg)))
	b = binary.BigEndian.AppendUint16(b, code)
	return append(b, msg...)
}

// AppendPing appends a PING (typ TypePing) or PONG (TypePong) frame.
func AppendPing(b []byte, typ byte, ts uint64) []byte {
	b = append(b, typ, 0, 0, 8)
	return binary.BigEndian.AppendUint64(b, ts)
}

// Reader reads frames through a small buffer of its own. DATA payloads
// are read straight into the buffers alloc gives; when such a buffer has
// room past the payload, the same read takes what follows too (the next
// frame's header, as a rule), which saves a system call per frame.
type Reader struct {
	rd   io.Reader
	buf  []byte
	r, w int // buf[r:w] is read and not yet used
	err  error
}

// NewReader returns a Reader with a buffer of size bytes (at least what a
// control frame needs).
func NewReader(rd io.Reader, size int) *Reader {
	return &Reader{rd: rd, buf: make([]byte, max(size, HeaderLen+maxControl))}
}

// Buffered is how many bytes were read from the connection and not used.
func (r *Reader) Buffered() int { return r.w - r.r }

// fill reads until n bytes (at most len(r.buf)) are buffered.
func (r *Reader) fill(n int) error {
	if r.w-r.r >= n {
		return nil
	}
	if len(r.buf)-r.r < n {
		r.w = copy(r.buf, r.buf[r.r:r.w])
		r.r = 0
	}
	for empty := 0; r.w-r.r < n; {
		if r.err != nil {
			return r.err
		}
		k, err := r.rd.Read(r.buf[r.w:])
		r.w += k
		r.err = err
		if k > 0 {
			empty = 0
		} else if empty++; empty >= 100 && err == nil {
			r.err = io.ErrNoProgress
		}
	}
	return nil
}

// readFull fills p, buffered bytes first. Past len(p), up to cap(p), it
// reads what the connection has at hand and keeps it in r.buf.
func (r *Reader) readFull(p []byte) error {
	c := copy(p, r.buf[r.r:r.w])
	r.r += c
	if c == len(p) {
		return nil
	}
	r.r, r.w = 0, 0 // empty: p took everything
	room := p[:min(cap(p), len(p)+len(r.buf))]
	for empty := 0; c < len(p); {
		if r.err != nil {
			return r.err
		}
		k, err := r.rd.Read(room[c:])
		c += k
		r.err = err
		if k > 0 {
			empty = 0
		} else if empty++; empty >= 100 && err == nil {
			r.err = io.ErrNoProgress
		}
	}
	r.w = copy(r.buf, room[len(p):c])
	return nil
}

// discard drops n bytes.
func (r *Reader) discard(n int) error {
	for n > 0 {
		if r.r == r.w {
			if err := r.fill(1); err != nil {
				return err
			}
		}
		k := min(n, r.w-r.r)
		r.r += k
		n -= k
	}
	return nil
}

// ReadFrame reads one frame. DATA payloads are read into a buffer from
// alloc(n), which returns n bytes, and may have spare capacity for the
// reader to use; DATAGRAM bodies and RST messages are newly allocated.
// Frames of unknown type are skipped.
func (r *Reader) ReadFrame(alloc func(n int) []byte) (Frame, error) {
	for {
		if err := r.fill(HeaderLen); err != nil {
			if err == io.EOF && r.w > r.r {
				err = io.ErrUnexpectedEOF
			}
			return Frame{}, err
		}
		hdr := r.buf[r.r : r.r+HeaderLen]
		f := Frame{Type: hdr[0], Flags: hdr[1]}
		n := int(binary.BigEndian.Uint16(hdr[2:]))
		r.r += HeaderLen
		switch {
		case f.Type == TypeDatagram:
			if n < 4 {
				return f, fmt.Errorf("%w: DATAGRAM of %d bytes", ErrFrame, n)
			}
			if err := r.fill(4); err != nil {
				return f, unexpected(err)
			}
			f.Seq = uint64(binary.BigEndian.Uint32(r.buf[r.r:]))
			r.r += 4
			// Not from alloc: a datagram is handed to the application,
			// which keeps it, and should hold no more than its size.
			f.Payload = make([]byte, n-4)
			if err := r.readFull(f.Payload); err != nil {
				return f, unexpected(err)
			}
			return f, nil
		case f.Type == TypeData:
			if n <= 8 {
				return f, fmt.Errorf("%w: DATA of %d bytes", ErrFrame, n)
			}
			if err := r.fill(8); err != nil {
				return f, unexpected(err)
			}
			f.Seq = binary.BigEndian.Uint64(r.buf[r.r:])
			r.r += 8
			p := alloc(n - 8)
			if err := r.readFull(p); err != nil {
				return f, unexpected(err)
			}
			f.Payload = p[:len(p):len(p)]
			return f, nil
		case !known(f.Type):
			if err := r.discard(n); err != nil {
				return f, unexpected(err)
			}
			continue
		case n > maxControl:
			return f, fmt.Errorf("%w: type 0x%02x of %d bytes", ErrFrame, f.Type, n)
		}
		if err := r.fill(n); err != nil {
			return f, unexpected(err)
		}
		body := r.buf[r.r : r.r+n]
		switch f.Type {
		case TypeAck:
			if n < 20 {
				return f, fmt.Errorf("%w: ACK of %d bytes", ErrFrame, n)
			}
			f.Ack = binary.BigEndian.Uint64(body)
			f.Wnd = binary.BigEndian.Uint32(body[8:])
			f.PathRcvd = binary.BigEndian.Uint64(body[12:])
		case TypeFin:
			if n < 8 {
				return f, fmt.Errorf("%w: FIN of %d bytes", ErrFrame, n)
			}
			f.Seq = binary.BigEndian.Uint64(body)
		case TypeRst:
			if n < 2 {
				return f, fmt.Errorf("%w: RST of %d bytes", ErrFrame, n)
			}
			f.Code = binary.BigEndian.Uint16(body)
			f.Payload = append([]byte(nil), body[2:]...)
		case TypePing, TypePong:
			if n < 8 {
				return f, fmt.Errorf("%w: PING of %d bytes", ErrFrame, n)
			}
			f.TS = binary.BigEndian.Uint64(body)
		}
		r.r += n
		return f, nil
	}
}

// maxControl bounds the body of a non-DATA frame; longer bodies leave room
// for fields added later while fitting a Reader's buffer.
const maxControl = 1024

func known(t byte) bool {
	return t >= TypeData && t <= TypeDatagram
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
