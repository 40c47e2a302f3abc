package leaf

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

var testCID = [16]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}

func cidBytes() []byte { return testCID[:] }

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestHandshakeBytes(t *testing.T) {
	tests := []struct {
		h    Handshake
		want []byte
	}{
		{
			Handshake{CID: testCID, Cmd: CmdConnect, Target: "10.0.0.1:443"},
			cat([]byte{0x01}, cidBytes(), []byte{0x01, 0x01, 10, 0, 0, 1, 0x01, 0xbb}),
		},
		{
			Handshake{CID: testCID, Cmd: CmdConnect, Target: "[2001:db8::1]:8080"},
			cat([]byte{0x01}, cidBytes(), []byte{0x01, 0x04,
				0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,
				0x1f, 0x90}),
		},
		{
			Handshake{CID: testCID, Cmd: CmdUDP, Target: "example.com:80"},
			cat([]byte{0x01}, cidBytes(), []byte{0x03, 0x03, 11}, []byte("example.com"), []byte{0x00, 0x50}),
		},
	}
	for _, tt := range tests {
		got, err := AppendHandshake([]byte{0xaa}, tt.h)
		if err != nil {
			t.Fatalf("%s: %v", tt.h.Target, err)
		}
		if !bytes.Equal(got, append([]byte{0xaa}, tt.want...)) {
			t.Fatalf("%s:\n got % x\nwant % x", tt.h.Target, got[1:], tt.want)
		}
		r := bytes.NewReader(append(tt.want, 0x77))
		back, err := ReadHandshake(r)
		if err != nil || back != tt.h {
			t.Fatalf("%s: read back %+v, %v", tt.h.Target, back, err)
		}
		if r.Len() != 1 {
			t.Fatalf("%s: ReadHandshake left %d bytes, want 1", tt.h.Target, r.Len())
		}
	}
}

func TestHandshakeErrors(t *testing.T) {
	good, _ := AppendHandshake(nil, Handshake{CID: testCID, Cmd: CmdConnect, Target: "example.com:80"})

	bad := append([]byte{0x02}, good[1:]...)
	if _, err := ReadHandshake(bytes.NewReader(bad)); !errors.Is(err, ErrVersion) {
		t.Fatalf("version 2: %v", err)
	}
	if _, err := ReadHandshake(bytes.NewReader(nil)); err != io.EOF {
		t.Fatalf("empty: %v", err)
	}
	for n := 1; n < len(good); n++ {
		if _, err := ReadHandshake(bytes.NewReader(good[:n])); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("truncated to %d: %v", n, err)
		}
	}
	badAtyp := cat(good[:18], []byte{0x09, 1, 2, 3, 4, 0, 80})
	if _, err := ReadHandshake(bytes.NewReader(badAtyp)); err == nil {
		t.Fatal("bad ATYP accepted")
	}
	b, err := AppendHandshake([]byte{1, 2}, Handshake{Target: "no-port"})
	if err == nil || !bytes.Equal(b, []byte{1, 2}) {
		t.Fatalf("bad target: % x, %v", b, err)
	}
}
