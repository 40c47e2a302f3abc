package leaf

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"testing"
)

func TestHelloFrame(t *testing.T) {
	want := []byte{0x01, 0, 0, 0, 0, 0, 0, 0, 0x01, 0, 0, 0, 0x05, 0x68, 0x65, 0x6c, 0x6c, 0x6f}
	got := AppendData(nil, 1, []byte("hello"))
	if !bytes.Equal(got, want) {
		t.Fatalf("got % x\nwant % x", got, want)
	}
	f, err := ReadFrame(bufio.NewReader(bytes.NewReader(want)), 64)
	if err != nil || f.Type != TypeData || f.PN != 1 || string(f.Payload) != "hello" {
		t.Fatalf("read %+v, %v", f, err)
	}
}

func TestFrameRoundTrip(t *testing.T) {
	var b []byte
	b = AppendData(b, 7, []byte("abc"))
	b = append(b, TypePing, 0x99, TypePong, 0x00, 0xff, TypeFin)
	b = AppendData(b, 1<<40, nil)
	b = append(b, TypeRst)
	big := bytes.Repeat([]byte{0x5a}, 70000)
	b = AppendData(b, 8, big)

	r := bufio.NewReader(bytes.NewReader(b))
	want := []Frame{
		{TypeData, 7, []byte("abc")},
		{Type: TypePing},
		{Type: TypePong}, // 0x99 before it is skipped
		{Type: TypeFin},  // so are 0x00 and 0xff
		{TypeData, 1 << 40, []byte{}},
		{Type: TypeRst},
		{TypeData, 8, big},
	}
	for i, w := range want {
		f, err := ReadFrame(r, len(big))
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if f.Type != w.Type || f.PN != w.PN || !bytes.Equal(f.Payload, w.Payload) {
			t.Fatalf("frame %d: got type %d pn %d len %d, want %d %d %d", i, f.Type, f.PN, len(f.Payload), w.Type, w.PN, len(w.Payload))
		}
	}
	if _, err := ReadFrame(r, 10); err != io.EOF {
		t.Fatalf("at end: %v", err)
	}
}

func TestFrameErrors(t *testing.T) {
	hello := AppendData(nil, 1, []byte("hello"))
	for n := 1; n < len(hello); n++ {
		_, err := ReadFrame(bufio.NewReader(bytes.NewReader(hello[:n])), 64)
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("truncated to %d: %v", n, err)
		}
	}
	if _, err := ReadFrame(bufio.NewReader(bytes.NewReader(hello)), 4); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("over limit: %v", err)
	}
	// A hostile LEN must fail without waiting for, or allocating, 4 GiB.
	huge := []byte{TypeData, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff}
	if _, err := ReadFrame(bufio.NewReader(bytes.NewReader(huge)), 64<<10); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("huge LEN: %v", err)
	}
	if _, err := ReadFrame(bufio.NewReader(bytes.NewReader(hello)), -1); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("negative limit: %v", err)
	}
}

func TestPayloadIsOwned(t *testing.T) {
	b := AppendData(nil, 1, []byte("hello"))
	r := bufio.NewReader(bytes.NewReader(b))
	f, _ := ReadFrame(r, 64)
	copy(b[DataHeaderLen:], "XXXXX")
	if string(f.Payload) != "hello" {
		t.Fatal("payload aliases the input")
	}
}
