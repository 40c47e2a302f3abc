package socks5

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"testing"
)

func TestReadGreeting(t *testing.T) {
	r := bytes.NewReader([]byte{Version, 2, MethodNoAuth, MethodUserPass, 0xAA})
	methods, err := ReadGreeting(r)
	if err != nil || !slices.Equal(methods, []byte{MethodNoAuth, MethodUserPass}) {
		t.Fatalf("got % x, %v", methods, err)
	}
	if r.Len() != 1 {
		t.Fatalf("read past the greeting: %d bytes left", r.Len())
	}
	for _, c := range []struct {
		in   []byte
		want error
	}{
		{nil, io.EOF},
		{[]byte{Version}, io.ErrUnexpectedEOF},
		{[]byte{Version, 2, MethodNoAuth}, io.ErrUnexpectedEOF},
		{[]byte{0x04, 1, 0}, ErrVersion},
	} {
		if _, err := ReadGreeting(bytes.NewReader(c.in)); !errors.Is(err, c.want) {
			t.Errorf("% x: got %v, want %v", c.in, err, c.want)
		}
	}
}

func TestReadUserPass(t *testing.T) {
	in := []byte{UserPassVersion, 5, 'a', 'l', 'i', 'c', 'e', 3, 'p', 'w', 'd'}
	user, pass, err := ReadUserPass(bytes.NewReader(in))
	if err != nil || user != "alice" || pass != "pwd" {
		t.Fatalf("got %q %q %v", user, pass, err)
	}
	for _, c := range []struct {
		in   []byte
		want error
	}{
		{nil, io.EOF},
		{[]byte{UserPassVersion, 5, 'a'}, io.ErrUnexpectedEOF},
		{[]byte{UserPassVersion, 1, 'a'}, io.ErrUnexpectedEOF},
		{[]byte{UserPassVersion, 1, 'a', 2, 'b'}, io.ErrUnexpectedEOF},
		{[]byte{Version, 1, 'a', 1, 'b'}, ErrVersion},
	} {
		if _, _, err := ReadUserPass(bytes.NewReader(c.in)); !errors.Is(err, c.want) {
			t.Errorf("% x: got %v, want %v", c.in, err, c.want)
		}
	}
}

func TestReadRequest(t *testing.T) {
	for _, c := range []struct {
		in   []byte
		cmd  byte
		addr string
	}{
		{[]byte{Version, CmdConnect, 0, 0x01, 127, 0, 0, 1, 0x1F, 0x90}, CmdConnect, "127.0.0.1:8080"},
		{[]byte{Version, CmdUDPAssociate, 0, 0x04, 19: 1, 0, 53}, CmdUDPAssociate, "[::1]:53"},
		{[]byte{Version, CmdBind, 0, 0x03, 4, 'h', 'o', 's', 't', 1, 0}, CmdBind, "host:256"},
	} {
		cmd, addr, err := ReadRequest(bytes.NewReader(c.in))
		if err != nil || cmd != c.cmd || addr != c.addr {
			t.Errorf("% x: got %d %q %v", c.in, cmd, addr, err)
		}
	}
	for _, c := range []struct {
		in   []byte
		want error
	}{
		{nil, io.EOF},
		{[]byte{Version, CmdConnect, 0}, io.ErrUnexpectedEOF},
		{[]byte{Version, CmdConnect, 0, 0x01, 127}, io.ErrUnexpectedEOF},
		{[]byte{0x04, CmdConnect, 0, 0x01, 127, 0, 0, 1, 0, 80}, ErrVersion},
		{[]byte{Version, CmdConnect, 0, 0x02, 0, 0}, ErrAddrType},
	} {
		if _, _, err := ReadRequest(bytes.NewReader(c.in)); !errors.Is(err, c.want) {
			t.Errorf("% x: got %v, want %v", c.in, err, c.want)
		}
	}
}

func TestWriteReply(t *testing.T) {
	var b bytes.Buffer
	if err := WriteReply(&b, RepRefused, "10.0.0.2:1080"); err != nil {
		t.Fatal(err)
	}
	want := []byte{Version, RepRefused, 0, 0x01, 10, 0, 0, 2, 0x04, 0x38}
	if !bytes.Equal(b.Bytes(), want) {
		t.Fatalf("got % x, want % x", b.Bytes(), want)
	}
	if err := WriteReply(&b, RepSucceeded, "no port"); err == nil {
		t.Fatal("bad bound address accepted")
	}
}

func TestWriteMethodAndStatus(t *testing.T) {
	var b bytes.Buffer
	if err := WriteMethod(&b, MethodUserPass); err != nil {
		t.Fatal(err)
	}
	if err := WriteUserPassStatus(&b, AuthFailure); err != nil {
		t.Fatal(err)
	}
	want := []byte{Version, MethodUserPass, UserPassVersion, AuthFailure}
	if !bytes.Equal(b.Bytes(), want) {
		t.Fatalf("got % x, want % x", b.Bytes(), want)
	}
}
