package socks5

import (
	"bytes"
	"errors"
	"testing"
)

// The fuzz targets check, besides not panicking, that a message that
// decodes used exactly its own bytes: these are stream protocols, and a
// reader that takes one byte too many corrupts what follows.

func FuzzReadGreeting(f *testing.F) {
	f.Add([]byte{Version, 1, MethodNoAuth})
	f.Add([]byte{Version, 2, MethodNoAuth, MethodUserPass, 0xFF})
	f.Add([]byte{Version, 0})
	f.Add([]byte{Version, 3, 0})
	f.Add([]byte{0x04, 1, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		methods, err := ReadGreeting(r)
		if len(data) >= 2 && data[0] != Version {
			if !errors.Is(err, ErrVersion) {
				t.Fatalf("version 0x%02x: got %v", data[0], err)
			}
			return
		}
		if err != nil {
			return
		}
		n := int(data[1])
		if !bytes.Equal(methods, data[2:2+n]) || r.Len() != len(data)-2-n {
			t.Fatalf("% x: got methods % x, %d bytes left", data, methods, r.Len())
		}
	})
}

func FuzzReadUserPass(f *testing.F) {
	f.Add([]byte{UserPassVersion, 1, 'u', 1, 'p'})
	f.Add([]byte{UserPassVersion, 0, 0})
	f.Add([]byte{UserPassVersion, 2, 'u'})
	f.Add([]byte{Version, 1, 'u', 1, 'p'})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		user, pass, err := ReadUserPass(r)
		if len(data) >= 2 && data[0] != UserPassVersion {
			if !errors.Is(err, ErrVersion) {
				t.Fatalf("version 0x%02x: got %v", data[0], err)
			}
			return
		}
		if err != nil {
			return
		}
		ulen := int(data[1])
		plen := int(data[2+ulen])
		if user != string(data[2:2+ulen]) || pass != string(data[3+ulen:3+ulen+plen]) ||
			r.Len() != len(data)-3-ulen-plen {
			t.Fatalf("% x: got %q %q, %d bytes left", data, user, pass, r.Len())
		}
	})
}

func FuzzReadRequest(f *testing.F) {
	f.Add([]byte{Version, CmdConnect, 0, 0x01, 127, 0, 0, 1, 0, 80})
	f.Add([]byte{Version, CmdConnect, 0, 0x03, 9, 'l', 'o', 'c', 'a', 'l', 'h', 'o', 's', 't', 0x1F, 0x90})
	f.Add([]byte{Version, CmdUDPAssociate, 0, 0x04, 19: 1, 0, 53})
	f.Add([]byte{Version, CmdBind, 0, 0x03, 0, 0, 80})
	f.Add([]byte{Version, CmdConnect, 0, 0x02, 0})
	f.Add([]byte{0x04, CmdConnect, 0, 0x01})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		cmd, addr, err := ReadRequest(r)
		switch {
		case len(data) >= 3 && data[0] != Version:
			if !errors.Is(err, ErrVersion) {
				t.Fatalf("version 0x%02x: got %v", data[0], err)
			}
			return
		case len(data) > 3 && data[3] != 0x01 && data[3] != 0x03 && data[3] != 0x04:
			if !errors.Is(err, ErrAddrType) {
				t.Fatalf("ATYP 0x%02x: got %v", data[3], err)
			}
			return
		case err != nil:
			return
		}
		size := 4 + 4 + 2
		switch data[3] {
		case 0x03:
			size = 4 + 1 + int(data[4]) + 2
		case 0x04:
			size = 4 + 16 + 2
		}
		if cmd != data[1] || addr == "" || r.Len() != len(data)-size {
			t.Fatalf("% x: got %d %q, %d bytes left", data, cmd, addr, r.Len())
		}
	})
}
