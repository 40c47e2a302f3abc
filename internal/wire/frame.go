package wire

import (
	"bufio"
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

// ReadFrame reads one frame. DATA payloads are read into a buffer from
// alloc(n); DATAGRAM bodies and RST messages are newly allocated; other
// bodies use scratch space and must be used before the next call. Frames
// of unknown type are skipped.
func ReadFrame(r *bufio.Reader, alloc func(n int) []byte) (Frame, error) {
	for {
		hdr, err := r.Peek(HeaderLen)
		if err != nil {
			if err == io.EOF && len(hdr) > 0 {
				err = io.ErrUnexpectedEOF
			}
			return Frame{}, err
		}
		f := Frame{Type: hdr[0], Flags: hdr[1]}
		n := int(binary.BigEndian.Uint16(hdr[2:]))
		r.Discard(HeaderLen)
		if f.Type == TypeDatagram {
			if n < 4 {
				return f, fmt.Errorf("%w: DATAGRAM of %d bytes", ErrFrame, n)
			}
			var id [4]byte
			if _, err := io.ReadFull(r, id[:]); err != nil {
				return f, unexpected(err)
			}
			f.Seq = uint64(binary.BigEndian.Uint32(id[:]))
			// Not from alloc: a datagram is handed to the application,
			// which keeps it, and should hold no more than its size.
			f.Payload = make([]byte, n-4)
			if _, err := io.ReadFull(r, f.Payload); err != nil {
				return f, unexpected(err)
			}
			return f, nil
		}
		if f.Type == TypeData {
			if n <= 8 {
				return f, fmt.Errorf("%w: DATA of %d bytes", ErrFrame, n)
			}
			var seq [8]byte
			if _, err := io.ReadFull(r, seq[:]); err != nil {
				return f, unexpected(err)
			}
			f.Seq = binary.BigEndian.Uint64(seq[:])
			f.Payload = alloc(n - 8)
			if _, err := io.ReadFull(r, f.Payload); err != nil {
				return f, unexpected(err)
			}
			return f, nil
		}
		if !known(f.Type) {
			if _, err := r.Discard(n); err != nil {
				return f, unexpected(err)
			}
			continue
		}
		if n > maxControl {
			return f, fmt.Errorf("%w: type 0x%02x of %d bytes", ErrFrame, f.Type, n)
		}
		body, err := r.Peek(n)
		if err != nil {
			return f, unexpected(err)
		}
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
		r.Discard(n)
		return f, nil
	}
}

// maxControl bounds the body of a non-DATA frame; longer bodies leave room
// for fields added later while fitting any bufio.Reader of default size.
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
