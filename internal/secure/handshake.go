// Package secure is mptp's secure channel: an authenticated, encrypted
// net.Conn over one sub-connection, set up by a Noise NNpsk0 handshake
// keyed by a password (docs/SECURITY.md describes it).
package secure

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/flynn/noise"

	"github.com/mptp/mptp/internal/wire"
)

// Version is the first byte of a secure sub-connection, as 0x02 is of a
// plain v2 one and 0x01 of Leaf's v1.
const Version = 0x03

// MaxHandshake bounds a handshake message, so that an unauthenticated
// peer cannot make the server read much.
const MaxHandshake = 1024

var (
	// ErrAuth means the peer does not hold the password (or the message
	// was altered on the way).
	ErrAuth = errors.New("secure: authentication failed")
	// ErrMalformed is a handshake message that does not parse.
	ErrMalformed = errors.New("secure: malformed handshake")
)

// Refusal is a plain v2 refusal a server sent instead of its handshake
// message, for example because it has no password, or not this one.
type Refusal struct {
	Status byte
	Msg    string
}

func (r *Refusal) Error() string { return fmt.Sprintf("secure: refused (0x%02x): %s", r.Status, r.Msg) }

var suite = noise.NewCipherSuite(noise.DH25519, noise.CipherAESGCM, noise.HashSHA256)

// prologue binds the handshake to this protocol and its version.
var prologue = []byte("mptp v2 secure channel 1")

func handshakeState(key *Key, initiator bool) (*noise.HandshakeState, error) {
	return noise.NewHandshakeState(noise.Config{
		CipherSuite:           suite,
		Pattern:               noise.HandshakeNN,
		Initiator:             initiator,
		Prologue:              prologue,
		PresharedKey:          key[:],
		PresharedKeyPlacement: 0,
	})
}

// appendMessage frames a handshake message: VERSION, LEN u16, message.
func appendMessage(b, msg []byte) []byte {
	b = append(b, Version)
	b = binary.BigEndian.AppendUint16(b, uint16(len(msg)))
	return append(b, msg...)
}

// ReadMessage reads one framed handshake message, VERSION included.
func ReadMessage(r io.Reader) ([]byte, error) {
	var hdr [3]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, unexpected(err)
	}
	if hdr[0] != Version {
		return nil, fmt.Errorf("%w: version 0x%02x", ErrMalformed, hdr[0])
	}
	n := int(binary.BigEndian.Uint16(hdr[1:]))
	if n > MaxHandshake {
		return nil, fmt.Errorf("%w: message of %d bytes", ErrMalformed, n)
	}
	msg := make([]byte, n)
	if _, err := io.ReadFull(r, msg); err != nil {
		return nil, unexpected(err)
	}
	return msg, nil
}

// Client runs the initiator's side of the handshake on conn, within the
// caller's deadline. A server that refuses answers with a plain v2 reply,
// returned as a *Refusal.
func Client(conn net.Conn, key *Key) (*Conn, error) {
	hs, err := handshakeState(key, true)
	if err != nil {
		return nil, err
	}
	msg, _, _, err := hs.WriteMessage(nil, nil)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Write(appendMessage(nil, msg)); err != nil {
		return nil, err
	}
	var first [1]byte
	if _, err := io.ReadFull(conn, first[:]); err != nil {
		return nil, fmt.Errorf("secure: handshake: %w", err)
	}
	rd := io.MultiReader(bytes.NewReader(first[:]), conn)
	if first[0] == wire.Version {
		reply, err := wire.ReadReply(rd)
		if err != nil {
			return nil, fmt.Errorf("secure: handshake: %w", err)
		}
		return nil, &Refusal{Status: reply.Status, Msg: reply.Msg}
	}
	msg, err = ReadMessage(rd)
	if err != nil {
		return nil, err
	}
	_, send, recv, err := hs.ReadMessage(nil, msg)
	if err != nil || send == nil {
		return nil, ErrAuth
	}
	return newConn(conn, send, recv), nil
}

// Server runs the responder's side of the handshake on conn, whose bytes
// are read through r (it may hold the first one, peeked). A client sends
// nothing more until it has the server's answer, so r must be empty
// after the first message. On an error the caller refuses the client.
func Server(conn net.Conn, r *bufio.Reader, key *Key) (*Conn, error) {
	msg, err := ReadMessage(r)
	if err != nil {
		return nil, err
	}
	hs, err := handshakeState(key, false)
	if err != nil {
		return nil, err
	}
	if _, _, _, err := hs.ReadMessage(nil, msg); err != nil {
		return nil, ErrAuth
	}
	if r.Buffered() > 0 {
		return nil, fmt.Errorf("%w: data before the handshake reply", ErrMalformed)
	}
	msg, recv, send, err := hs.WriteMessage(nil, nil)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Write(appendMessage(nil, msg)); err != nil {
		return nil, err
	}
	return newConn(conn, send, recv), nil
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
