// Package wire encodes mptp's own protocol, v2, as docs/PROTOCOL.md
// specifies it: the handshake at the start of every sub-connection and the
// frames that follow.
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/mptp/mptp/internal/socksaddr"
)

// Version is the first byte of every v2 sub-connection. Leaf's v1 starts
// with 0x01, which is how a server tells the two apart.
const Version = 0x02

// Handshake kinds.
const (
	KindOpen = 0x01 // create a session and connect its target
	KindJoin = 0x02 // add this sub-connection to an existing session
)

// Commands of an OPEN.
const (
	CmdConnect = 0x01 // TCP stream
	CmdUDP     = 0x03 // a UDP association: DATAGRAM frames
	CmdMux     = 0x05 // reserved: many streams over one session
)

// Status codes in the server's reply. 0x00-0x08 are SOCKS5's reply codes
// (see package failure), so a client can pass them on unchanged.
const (
	StatusOK             = 0x00
	StatusUnknownSession = 0x10
	StatusTooManyPaths   = 0x11
	StatusSessionExists  = 0x12
	StatusAuthFailed     = 0x13 // no or wrong password, or join token
	StatusBusy           = 0x14
	StatusBadRequest     = 0x15
)

// MaxHandshakeBody bounds what a peer can make us read before it is known.
const MaxHandshakeBody = 1024

// Request is the client's handshake.
type Request struct {
	Kind   byte
	CID    [16]byte
	Cmd    byte   // OPEN only
	Target string // OPEN only: "host:port"
	// Window is the sender's initial receive window in bytes (OPEN and JOIN).
	Window uint32
	// Ext holds extension TLVs, unparsed; reserved for authentication.
	Ext []byte
}

// Reply is the server's answer to a Request.
type Reply struct {
	Status byte
	Window uint32 // OK only: the server's receive window for this session
	Msg    string // refusals: a human-readable reason, for logs
	// Ext holds extension TLVs after WINDOW in an OK reply (the join
	// token of a secure session).
	Ext []byte
}

var (
	ErrVersion = errors.New("wire: not an mptp v2 handshake")
	ErrBadBody = errors.New("wire: malformed handshake")
)

// AppendRequest encodes r after b.
func AppendRequest(b []byte, r *Request) ([]byte, error) {
	body := make([]byte, 0, 64)
	body = append(body, r.CID[:]...)
	body = binary.BigEndian.AppendUint32(body, r.Window)
	if r.Kind == KindOpen {
		body = append(body, r.Cmd)
		var err error
		if body, err = socksaddr.Append(body, r.Target); err != nil {
			return b, err
		}
	}
	body = append(body, r.Ext...)
	if len(body) > MaxHandshakeBody {
		return b, fmt.Errorf("wire: handshake body %d bytes, max %d", len(body), MaxHandshakeBody)
	}
	b = append(b, Version, r.Kind)
	b = binary.BigEndian.AppendUint16(b, uint16(len(body)))
	return append(b, body...), nil
}

// ReadRequest reads a client's handshake, version byte included.
func ReadRequest(rd io.Reader) (*Request, error) {
	kind, body, err := readMessage(rd)
	if err != nil {
		return nil, err
	}
	return ParseRequest(kind, body)
}

// readMessage reads VER, a type or status byte, LEN and the body, the
// framing that requests and replies share.
func readMessage(rd io.Reader) (byte, []byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(rd, hdr[:]); err != nil {
		return 0, nil, err
	}
	if hdr[0] != Version {
		return 0, nil, ErrVersion
	}
	n := int(binary.BigEndian.Uint16(hdr[2:]))
	if n > MaxHandshakeBody {
		return 0, nil, fmt.Errorf("%w: body of %d bytes", ErrBadBody, n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(rd, body); err != nil {
		return 0, nil, err
	}
	return hdr[1], body, nil
}

// ParseRequest decodes a request body of the given kind.
func ParseRequest(kind byte, body []byte) (*Request, error) {
	r := &Request{Kind: kind}
	if len(body) < 20 {
		return nil, fmt.Errorf("%w: body of %d bytes", ErrBadBody, len(body))
	}
	copy(r.CID[:], body)
	r.Window = binary.BigEndian.Uint32(body[16:])
	rest := body[20:]
	switch kind {
	case KindOpen:
		if len(rest) < 1 {
			return nil, fmt.Errorf("%w: no command", ErrBadBody)
		}
		r.Cmd = rest[0]
		target, n, err := socksaddr.Parse(rest[1:])
		if err != nil {
			return nil, fmt.Errorf("%w: target: %v", ErrBadBody, err)
		}
		r.Target = target
		rest = rest[1+n:]
	case KindJoin:
	default:
		return nil, fmt.Errorf("%w: kind 0x%02x", ErrBadBody, kind)
	}
	if len(rest) > 0 {
		r.Ext = rest
	}
	return r, nil
}

// AppendReply encodes r after b.
func AppendReply(b []byte, r *Reply) []byte {
	msg := r.Msg
	if len(msg) > 255 {
		msg = msg[:255]
	}
	body := make([]byte, 0, 8+len(msg))
	if r.Status == StatusOK {
		body = binary.BigEndian.AppendUint32(body, r.Window)
		body = append(body, r.Ext...)
	} else {
		body = append(body, byte(len(msg)))
		body = append(body, msg...)
	}
	b = append(b, Version, r.Status)
	b = binary.BigEndian.AppendUint16(b, uint16(len(body)))
	return append(b, body...)
}

// ReadReply reads the server's answer.
func ReadReply(rd io.Reader) (*Reply, error) {
	status, body, err := readMessage(rd)
	if err != nil {
		return nil, err
	}
	r := &Reply{Status: status}
	if r.Status == StatusOK {
		if len(body) < 4 {
			return nil, fmt.Errorf("%w: short reply", ErrBadBody)
		}
		r.Window = binary.BigEndian.Uint32(body)
		if len(body) > 4 {
			r.Ext = body[4:]
		}
		return r, nil
	}
	if len(body) > 0 {
		m := int(body[0])
		if 1+m > len(body) {
			return nil, fmt.Errorf("%w: reply message", ErrBadBody)
		}
		r.Msg = string(body[1 : 1+m])
	}
	return r, nil
}

// Extensions: the bytes after a request's fixed fields are TLVs, TYPE u8,
// LEN u8, VALUE. Receivers skip types they do not know.
const (
	ExtPathFlags = 0x01 // VALUE: one byte of path flags
	// ExtJoinToken is, in a secure session, the secret the OK reply to
	// an OPEN gives and every JOIN must show (docs/PROTOCOL.md 4.8).
	ExtJoinToken = 0x10
	// PathBackup marks a backup path: it carries data only while no other
	// path of the session can.
	PathBackup = 0x01

	ExtSessionFlags = 0x02 // VALUE: one byte of session flags, in an OPEN
	// SessionDatagramCopies asks the server to send each datagram on its
	// two best paths, as the client does.
	SessionDatagramCopies = 0x01
)

// AppendExt appends one extension TLV.
func AppendExt(b []byte, typ byte, val []byte) []byte {
	b = append(b, typ, byte(len(val)))
	return append(b, val...)
}

// Exts splits extension TLVs by type; a later TLV of a type wins.
func Exts(ext []byte) (map[byte][]byte, error) {
	out := map[byte][]byte{}
	for len(ext) > 0 {
		if len(ext) < 2 || len(ext) < 2+int(ext[1]) {
			return nil, fmt.Errorf("%w: extension cut short", ErrBadBody)
		}
		out[ext[0]] = ext[2 : 2+int(ext[1])]
		ext = ext[2+int(ext[1]):]
	}
	return out, nil
}

// Ext returns the value of the last TLV of type typ in ext, nil if none.
func Ext(ext []byte, typ byte) ([]byte, error) {
	exts, err := Exts(ext)
	if err != nil {
		return nil, err
	}
	return exts[typ], nil
}

// PathFlags returns the path flags of a request (0 when absent).
func (r *Request) PathFlags() (byte, error) { return r.flags(ExtPathFlags) }

// SessionFlags returns the session flags of a request (0 when absent).
func (r *Request) SessionFlags() (byte, error) { return r.flags(ExtSessionFlags) }

func (r *Request) flags(typ byte) (byte, error) {
	exts, err := Exts(r.Ext)
	if err != nil {
		return 0, err
	}
	if v := exts[typ]; len(v) > 0 {
		return v[0], nil
	}
	return 0, nil
}
