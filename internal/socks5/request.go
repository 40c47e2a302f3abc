package socks5

import (
	"fmt"
	"io"

	"github.com/mptp/mptp/internal/socksaddr"
)

// ReadRequest reads a request (VER CMD RSV ATYP DST.ADDR DST.PORT) and
// returns its command and destination as "host:port". An unknown address
// type gives an error wrapping ErrAddrType; the rest of such a request
// cannot be framed, so the connection is unusable afterwards.
func ReadRequest(r io.Reader) (cmd byte, address string, err error) {
	// RSV is not checked: it carries nothing, and clients fill it loosely.
	var hdr [3]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, "", err
	}
	if hdr[0] != Version {
		return 0, "", fmt.Errorf("%w 0x%02x in request", ErrVersion, hdr[0])
	}
	address, err = socksaddr.Read(r)
	if err != nil {
		return 0, "", truncated(err)
	}
	return hdr[1], address, nil
}

// WriteReply writes a reply (VER REP RSV ATYP BND.ADDR BND.PORT); bound is
// "host:port".
func WriteReply(w io.Writer, code byte, bound string) error {
	b, err := socksaddr.Append([]byte{Version, code, 0x00}, bound)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}
