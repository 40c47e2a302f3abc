package mux

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/mptp/mptp/internal/socksaddr"
)

// Frame types of the stream layer (docs/PROTOCOL.md section 15). They use
// the values v2 reserved for streams; inside a tunnel's byte stream no
// other frame layer exists, so they cannot be confused with path frames.
const (
	TypeOpen   = 0x08 // open a stream to a target
	TypeReply  = 0x09 // the target's connect result
	TypeData   = 0x0a // stream bytes
	TypeWindow = 0x0b // more receive window (stream 0: the tunnel's)
	TypeFin    = 0x0c // no more DATA on the stream from the sender
	TypeRst    = 0x0d // the stream is aborted
	TypeGoaway = 0x0e // stream 0: no new streams will be accepted
)

// RST and GOAWAY codes.
const (
	RstClosed   = 0x00 // the application closed with data unread, or aborted
	RstProtocol = 0x01 // a frame broke the rules
	RstWindow   = 0x02 // DATA beyond the window
	RstTarget   = 0x04 // the target's connection failed
	RstLinger   = 0x07 // a closed stream's peer did not finish in time
	RstShutdown = 0x06 // the process is stopping
	RstTunnel   = 0x08 // the tunnel under the stream ended
)

const (
	// HeaderLen is TYPE u8, FLAGS u8, LEN u16, STREAM u32.
	HeaderLen = 8
	// MaxData is the largest DATA payload.
	MaxData = 65535
	// maxControl bounds the body of any other frame.
	maxControl = 512
	// maxMsg bounds the text of a REPLY, RST or GOAWAY.
	maxMsg = 200
)

// ErrFrame is wrapped by the errors of malformed frames.
var ErrFrame = errors.New("mux: malformed frame")

// Frame is one decoded frame.
type Frame struct {
	Type   byte
	Flags  byte
	Stream uint32
	// OPEN: the command and target; OPEN and REPLY: the sender's initial
	// receive window for the stream; WINDOW: the increment.
	Cmd    byte
	Target string
	Window uint32
	// REPLY: the status (0 OK, else a failure.Reason); RST, GOAWAY: the code.
	Code uint16
	Msg  string // REPLY, RST, GOAWAY
	Data []byte // DATA
	// block is where Data lies when the tunnel's reader pooled it.
	block block
}

func appendHeader(b []byte, typ byte, stream uint32, n int) []byte {
	b = append(b, typ, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(n))
	return binary.BigEndian.AppendUint32(b, stream)
}

// AppendOpen appends an OPEN frame.
func AppendOpen(b []byte, stream uint32, cmd byte, window uint32, target string) ([]byte, error) {
	addr, err := socksaddr.Append(nil, target)
	if err != nil {
		return b, err
	}
	b = appendHeader(b, TypeOpen, stream, 5+len(addr))
	b = append(b, cmd)
	b = binary.BigEndian.AppendUint32(b, window)
	return append(b, addr...), nil
}

// AppendReply appends a REPLY frame.
func AppendReply(b []byte, stream uint32, status byte, window uint32, msg string) []byte {
	msg = clip(msg)
	b = appendHeader(b, TypeReply, stream, 5+len(msg))
	b = append(b, status)
	b = binary.BigEndian.AppendUint32(b, window)
	return append(b, msg...)
}

// AppendDataHeader appends the header of a DATA frame whose n payload
// bytes (1 to MaxData) the caller appends next.
func AppendDataHeader(b []byte, stream uint32, n int) []byte {
	return appendHeader(b, TypeData, stream, n)
}

// AppendWindow appends a WINDOW frame.
func AppendWindow(b []byte, stream uint32, inc uint32) []byte {
	b = appendHeader(b, TypeWindow, stream, 4)
	return binary.BigEndian.AppendUint32(b, inc)
}

// AppendFin appends a FIN frame.
func AppendFin(b []byte, stream uint32) []byte {
	return appendHeader(b, TypeFin, stream, 0)
}

// AppendRst appends an RST frame (stream > 0) or a GOAWAY (typ TypeGoaway,
// stream 0).
func AppendRst(b []byte, typ byte, stream uint32, code uint16, msg string) []byte {
	msg = clip(msg)
	b = appendHeader(b, typ, stream, 2+len(msg))
	b = binary.BigEndian.AppendUint16(b, code)
	return append(b, msg...)
}

func clip(msg string) string {
	if len(msg) > maxMsg {
		return msg[:maxMsg]
	}
	return msg
}

// ReadFrame reads one frame. A DATA payload is read into a buffer from
// alloc(n). Frames of unknown type are skipped, so that later versions can
// add frames that old receivers may ignore.
func ReadFrame(r *bufio.Reader, alloc func(n int) []byte) (Frame, error) {
	for {
		hdr, err := r.Peek(HeaderLen)
		if err != nil {
			if err == io.EOF && len(hdr) > 0 {
				err = io.ErrUnexpectedEOF
			}
			return Frame{}, err
		}
		f := Frame{Type: hdr[0], Flags: hdr[1], Stream: binary.BigEndian.Uint32(hdr[4:])}
		n := int(binary.BigEndian.Uint16(hdr[2:]))
		r.Discard(HeaderLen)
		if f.Type == TypeData {
			if n == 0 {
				return f, fmt.Errorf("%w: empty DATA", ErrFrame)
			}
			if f.Stream == 0 {
				return f, fmt.Errorf("%w: DATA on stream 0", ErrFrame)
			}
			f.Data = alloc(n)[:n]
			if _, err := io.ReadFull(r, f.Data); err != nil {
				return f, unexpected(err)
			}
			return f, nil
		}
		if f.Type < TypeOpen || f.Type > TypeGoaway {
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
		err = f.parse(body)
		r.Discard(n)
		if err != nil {
			return f, err
		}
		return f, nil
	}
}

// parse decodes the body of a control frame.
func (f *Frame) parse(body []byte) error {
	short := func(min int) error {
		if len(body) < min {
			return fmt.Errorf("%w: type 0x%02x of %d bytes", ErrFrame, f.Type, len(body))
		}
		return nil
	}
	onStream := func(want bool) error {
		if (f.Stream != 0) != want {
			return fmt.Errorf("%w: type 0x%02x on stream %d", ErrFrame, f.Type, f.Stream)
		}
		return nil
	}
	switch f.Type {
	case TypeOpen:
		if err := errors.Join(short(6), onStream(true)); err != nil {
			return err
		}
		f.Cmd = body[0]
		f.Window = binary.BigEndian.Uint32(body[1:])
		target, _, err := socksaddr.Parse(body[5:])
		if err != nil {
			return fmt.Errorf("%w: OPEN target: %v", ErrFrame, err)
		}
		f.Target = target
	case TypeReply:
		if err := errors.Join(short(5), onStream(true)); err != nil {
			return err
		}
		f.Code = uint16(body[0])
		f.Window = binary.BigEndian.Uint32(body[1:])
		f.Msg = string(body[5:])
	case TypeWindow:
		if err := short(4); err != nil {
			return err
		}
		f.Window = binary.BigEndian.Uint32(body)
	case TypeFin:
		return onStream(true)
	case TypeRst, TypeGoaway:
		if err := errors.Join(short(2), onStream(f.Type == TypeRst)); err != nil {
			return err
		}
		f.Code = binary.BigEndian.Uint16(body)
		f.Msg = string(body[2:])
	}
	return nil
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
