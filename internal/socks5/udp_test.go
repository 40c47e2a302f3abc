package socks5

import (
	"bytes"
	"net/netip"
	"testing"
)

func TestUDPHeader(t *testing.T) {
	for _, addr := range []string{"198.18.0.1:53", "[2001:db8::1]:443", "dns.test:53"} {
		b, err := AppendUDP([]byte{0xee}, addr, []byte("query"))
		if err != nil {
			t.Fatal(err)
		}
		frag, got, payload, err := ParseUDP(b[1:])
		if err != nil || frag != 0 || got != addr || string(payload) != "query" {
			t.Fatalf("%s: got frag %d %q %q %v", addr, frag, got, payload, err)
		}
	}
	// RFC 1928: 00 00 | FRAG 01 | IPv4 198.18.0.1 | port 53 | "x"
	frag, addr, payload, err := ParseUDP([]byte{0, 0, 1, 1, 198, 18, 0, 1, 0, 53, 'x'})
	if err != nil || frag != 1 || addr != "198.18.0.1:53" || string(payload) != "x" {
		t.Fatalf("got frag %d %q %q %v", frag, addr, payload, err)
	}
	for _, bad := range [][]byte{{0, 0, 0}, {0, 0, 0, 9, 1, 2}, {0, 0, 0, 1, 198, 18}, {0, 0, 0, 3, 0, 0, 53}} {
		if _, _, _, err := ParseUDP(bad); err == nil {
			t.Errorf("% x: no error", bad)
		}
	}
}

func FuzzParseUDP(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 198, 18, 0, 1, 0, 53, 'x'})
	f.Add([]byte{0, 0, 0, 3, 4, 'a', '.', 't', 'e', 0, 53})
	f.Add([]byte{0, 0, 0, 4, 0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0xbb})
	f.Fuzz(func(t *testing.T, b []byte) {
		frag, addr, payload, err := ParseUDP(b)
		if err != nil {
			return
		}
		// What parsed must encode back to the same bytes. Two exceptions
		// are skipped: a domain that looks like an IP literal, and an IPv6
		// address that is IPv4-mapped (::ffff:a.b.c.d), which is encoded
		// as IPv4 (docs/PROTOCOL.md, 4.2; the fuzzer found it).
		again, err := AppendUDP(nil, addr, payload)
		if err != nil {
			return
		}
		mapped := b[3] == 4 && netip.AddrFrom16([16]byte(b[4:20])).Is4In6()
		canonical := b[0] == 0 && b[1] == 0 && frag == 0 && b[3] != 3 && !mapped
		if canonical && !bytes.Equal(again, b) {
			t.Fatalf("% x parsed as %q % x, encodes as % x", b, addr, payload, again)
		}
	})
}
