package socks5

import (
	"fmt"
	"io"
)

// ReadUserPass reads an RFC 1929 request (VER ULEN UNAME PLEN PASSWD).
func ReadUserPass(r io.Reader) (user, pass string, err error) {
	var buf [255]byte
	if _, err := io.ReadFull(r, buf[:2]); err != nil {
		return "", "", err
	}
	if buf[0] != UserPassVersion {
		return "", "", fmt.Errorf("%w 0x%02x in username/password request", ErrVersion, buf[0])
	}
	n := int(buf[1])
	if _, err := io.ReadFull(r, buf[:n]); err != nil {
		return "", "", truncated(err)
	}
	user = string(buf[:n])
	if _, err := io.ReadFull(r, buf[:1]); err != nil {
		return "", "", truncated(err)
	}
	n = int(buf[0])
	if _, err := io.ReadFull(r, buf[:n]); err != nil {
		return "", "", truncated(err)
	}
	return user, string(buf[:n]), nil
}

// WriteUserPassStatus writes the RFC 1929 reply (VER STATUS).
func WriteUserPassStatus(w io.Writer, status byte) error {
	_, err := w.Write([]byte{UserPassVersion, status})
	return err
}
