package leaf

import (
	"bufio"
	"bytes"
	"testing"
)

func FuzzReadHandshake(f *testing.F) {
	for _, target := range []string{"10.0.0.1:443", "[2001:db8::1]:8080", "example.com:80"} {
		b, _ := AppendHandshake(nil, Handshake{CID: testCID, Cmd: CmdConnect, Target: target})
		f.Add(b)
	}
	f.Add([]byte{0x02})
	f.Add([]byte{0x01, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ReadHandshake(bytes.NewReader(b))
		if err != nil {
			return
		}
		// Re-encoding may canonicalise the address once, then it is stable.
		b1, err := AppendHandshake(nil, h)
		if err != nil {
			return
		}
		h1, err := ReadHandshake(bytes.NewReader(b1))
		if err != nil {
			t.Fatalf("re-read %+v: %v", h, err)
		}
		b2, err := AppendHandshake(nil, h1)
		if err != nil || !bytes.Equal(b1, b2) {
			t.Fatalf("unstable: % x then % x, %v", b1, b2, err)
		}
	})
}

func FuzzReadFrame(f *testing.F) {
	f.Add(AppendData(nil, 1, []byte("hello")))
	f.Add(append(AppendData([]byte{TypePing, 0x42}, 9, nil), TypeFin, TypeRst))
	f.Add([]byte{TypeData, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		const limit = 1024
		r := bufio.NewReader(bytes.NewReader(b))
		for {
			fr, err := ReadFrame(r, limit)
			if err != nil {
				return
			}
			switch fr.Type {
			case TypeData:
				if len(fr.Payload) > limit {
					t.Fatalf("payload %d over limit", len(fr.Payload))
				}
				again := AppendData(nil, fr.PN, fr.Payload)
				g, err := ReadFrame(bufio.NewReader(bytes.NewReader(again)), limit)
				if err != nil || g.PN != fr.PN || !bytes.Equal(g.Payload, fr.Payload) {
					t.Fatalf("round trip: %+v %v", g, err)
				}
			case TypePing, TypePong, TypeFin, TypeRst:
			default:
				t.Fatalf("unknown type %d returned", fr.Type)
			}
		}
	})
}

func FuzzReadDatagram(f *testing.F) {
	for _, addr := range []string{"1.2.3.4:53", "[::1]:53", "example.com:53"} {
		b, _ := AppendDatagram(nil, addr, []byte("payload"))
		f.Add(b)
	}
	f.Add([]byte{0, 0})
	f.Add([]byte{0xff, 0xff, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		const limit = 512
		r := bytes.NewReader(b)
		for {
			addr, p, err := ReadDatagram(r, limit)
			if err != nil {
				if r.Len() == 0 || err != ErrFragment {
					return
				}
				continue
			}
			if len(p) > limit {
				t.Fatalf("payload %d over limit", len(p))
			}
			again, err := AppendDatagram(nil, addr, p)
			if err != nil {
				continue // an odd domain that Append cannot split back
			}
			a2, p2, err := ReadDatagram(bytes.NewReader(again), MaxDatagram)
			if err != nil || !bytes.Equal(p2, p) {
				t.Fatalf("round trip %q: %q %v", addr, a2, err)
			}
		}
	})
}
