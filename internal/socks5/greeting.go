package socks5

import (
	"fmt"
	"io"
)

// ReadGreeting reads the client's first message (VER NMETHODS METHODS) and
// returns the methods it offers.
func ReadGreeting(r io.Reader) (methods []byte, err error) {
	var hdr [2]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	if hdr[0] != Version {
		return nil, fmt.Errorf("%w 0x%02x in greeting", ErrVersion, hdr[0])
	}
	methods = make([]byte, hdr[1])
	if _, err := io.ReadFull(r, methods); err != nil {
		return nil, truncated(err)
	}
	return methods, nil
}

// WriteMethod writes the server's method choice (VER METHOD).
func WriteMethod(w io.Writer, method byte) error {
	_, err := w.Write([]byte{Version, method})
	return err
}
