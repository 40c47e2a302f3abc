package leaf

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

func TestDatagramBytes(t *testing.T) {
	got, err := AppendDatagram([]byte{0xee}, "1.2.3.4:53", []byte("q"))
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{0xee, 0, 11, 0, 0, 0, 0x01, 1, 2, 3, 4, 0, 53, 'q'}
	if !bytes.Equal(got, want) {
		t.Fatalf("got % x\nwant % x", got, want)
	}
}

func TestDatagramRoundTrip(t *testing.T) {
	var b []byte
	in := []struct {
		addr    string
		payload []byte
	}{
		{"1.2.3.4:53", []byte("query")},
		{"[::1]:5353", nil},
		{"dns.example:53", bytes.Repeat([]byte{7}, 1000)},
	}
	for _, d := range in {
		var err error
		if b, err = AppendDatagram(b, d.addr, d.payload); err != nil {
			t.Fatal(err)
		}
	}
	r := bytes.NewReader(b)
	for _, d := range in {
		addr, p, err := ReadDatagram(r, MaxDatagram)
		if err != nil || addr != d.addr || !bytes.Equal(p, d.payload) {
			t.Fatalf("%s: got %q %d bytes, %v", d.addr, addr, len(p), err)
		}
	}
	if _, _, err := ReadDatagram(r, MaxDatagram); err != io.EOF {
		t.Fatalf("at end: %v", err)
	}
}

func TestDatagramErrors(t *testing.T) {
	good, _ := AppendDatagram(nil, "example.com:53", []byte("payload"))
	for n := 1; n < len(good); n++ {
		if _, _, err := ReadDatagram(bytes.NewReader(good[:n]), MaxDatagram); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("truncated to %d: %v", n, err)
		}
	}
	if _, _, err := ReadDatagram(bytes.NewReader(good), 10); !errors.Is(err, ErrDatagramTooLarge) {
		t.Fatalf("over limit: %v", err)
	}
	frag := bytes.Clone(good)
	frag[4] = 1
	r := bytes.NewReader(append(frag, good...))
	if _, _, err := ReadDatagram(r, MaxDatagram); !errors.Is(err, ErrFragment) {
		t.Fatalf("fragment: %v", err)
	}
	if addr, _, err := ReadDatagram(r, MaxDatagram); err != nil || addr != "example.com:53" {
		t.Fatalf("after fragment: %q %v", addr, err)
	}
	short := []byte{0, 5, 0, 0, 0, 0x01, 1} // LEN covers a cut IPv4 address
	if _, _, err := ReadDatagram(bytes.NewReader(short), MaxDatagram); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("short address: %v", err)
	}
	if _, err := AppendDatagram(nil, "1.2.3.4:53", make([]byte, MaxDatagram)); !errors.Is(err, ErrDatagramTooLarge) {
		t.Fatalf("oversize payload: %v", err)
	}
}
