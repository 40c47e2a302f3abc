package mux

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func frameAlloc(n int) []byte { return make([]byte, n) }

// frameReader reads frames from b.
func frameReader(b []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(b)) }

// frameReadOne reads the one frame in b and checks that nothing follows.
func frameReadOne(t *testing.T, b []byte) Frame {
	t.Helper()
	r := frameReader(b)
	f, err := ReadFrame(r, frameAlloc)
	if err != nil {
		t.Fatalf("ReadFrame(% x): %v", b, err)
	}
	if _, err := ReadFrame(r, frameAlloc); err != io.EOF {
		t.Fatalf("after the frame: got %v, want io.EOF", err)
	}
	return f
}

func frameMustOpen(t testing.TB, stream uint32, cmd byte, window uint32, target string) []byte {
	t.Helper()
	b, err := AppendOpen(nil, stream, cmd, window, target)
	if err != nil {
		t.Fatalf("AppendOpen(%q): %v", target, err)
	}
	return b
}

func frameData(stream uint32, payload []byte) []byte {
	return append(AppendDataHeader(nil, stream, len(payload)), payload...)
}

func frameHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestFrameRoundTrip(t *testing.T) {
	big := make([]byte, MaxData)
	for i := range big {
		big[i] = byte(i * 7)
	}
	tests := []struct {
		name string
		b    []byte
		want Frame
	}{
		{"open domain", frameMustOpen(t, 1, 0x01, 256<<10, "example.test:443"),
			Frame{Type: TypeOpen, Stream: 1, Cmd: 0x01, Window: 256 << 10, Target: "example.test:443"}},
		{"open ipv4", frameMustOpen(t, 3, 0x03, 1, "198.18.0.1:80"),
			Frame{Type: TypeOpen, Stream: 3, Cmd: 0x03, Window: 1, Target: "198.18.0.1:80"}},
		{"open ipv6", frameMustOpen(t, 0xffffffff, 0x01, 0xffffffff, "[::1]:8080"),
			Frame{Type: TypeOpen, Stream: 0xffffffff, Cmd: 0x01, Window: 0xffffffff, Target: "[::1]:8080"}},
		{"reply ok", AppendReply(nil, 2, 0, 1<<20, ""),
			Frame{Type: TypeReply, Stream: 2, Code: 0, Window: 1 << 20}},
		{"reply failure", AppendReply(nil, 2, 0x05, 0, "connection refused"),
			Frame{Type: TypeReply, Stream: 2, Code: 0x05, Window: 0, Msg: "connection refused"}},
		{"data 1 byte", frameData(4, []byte{0xab}),
			Frame{Type: TypeData, Stream: 4, Data: []byte{0xab}}},
		{"data max", frameData(6, big),
			Frame{Type: TypeData, Stream: 6, Data: big}},
		{"window tunnel", AppendWindow(nil, 0, 65536),
			Frame{Type: TypeWindow, Stream: 0, Window: 65536}},
		{"window stream", AppendWindow(nil, 5, 0xffffffff),
			Frame{Type: TypeWindow, Stream: 5, Window: 0xffffffff}},
		{"fin", AppendFin(nil, 7),
			Frame{Type: TypeFin, Stream: 7}},
		{"rst", AppendRst(nil, TypeRst, 9, RstTarget, "dial failed"),
			Frame{Type: TypeRst, Stream: 9, Code: RstTarget, Msg: "dial failed"}},
		{"rst empty", AppendRst(nil, TypeRst, 9, 0xfffe, ""),
			Frame{Type: TypeRst, Stream: 9, Code: 0xfffe}},
		{"goaway", AppendRst(nil, TypeGoaway, 0, RstShutdown, "stopping"),
			Frame{Type: TypeGoaway, Stream: 0, Code: RstShutdown, Msg: "stopping"}},
	}
	var all []byte
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := frameReadOne(t, tt.b); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v\nwant %+v", got, tt.want)
			}
		})
		all = append(all, tt.b...)
	}
	// The same frames back to back, then a clean EOF.
	r := frameReader(all)
	for _, tt := range tests {
		got, err := ReadFrame(r, frameAlloc)
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Fatalf("in sequence, %s: got %+v, %v", tt.name, got, err)
		}
	}
	if _, err := ReadFrame(r, frameAlloc); err != io.EOF {
		t.Fatalf("after the sequence: got %v, want io.EOF", err)
	}
}

// Append functions add to what b holds.
func TestFrameAppendKeepsPrefix(t *testing.T) {
	pre := []byte{0xee, 0xff}
	for _, b := range [][]byte{
		AppendReply(bytes.Clone(pre), 1, 0, 0, "m"),
		AppendDataHeader(bytes.Clone(pre), 1, 1),
		AppendWindow(bytes.Clone(pre), 1, 1),
		AppendFin(bytes.Clone(pre), 1),
		AppendRst(bytes.Clone(pre), TypeRst, 1, 0, "m"),
	} {
		if !bytes.HasPrefix(b, pre) || len(b) < len(pre)+HeaderLen {
			t.Fatalf("got % x", b)
		}
	}
	b, err := AppendOpen(bytes.Clone(pre), 1, 1, 0, "a.test:1")
	if err != nil || !bytes.HasPrefix(b, pre) {
		t.Fatalf("AppendOpen: % x, %v", b, err)
	}
	// A target that cannot be encoded leaves b as it was.
	for _, target := range []string{"no-port", "a.test:65536", ":80", strings.Repeat("a", 256) + ":1"} {
		b, err := AppendOpen(bytes.Clone(pre), 1, 1, 0, target)
		if err == nil || !bytes.Equal(b, pre) {
			t.Fatalf("AppendOpen(%q): % x, %v", target, b, err)
		}
	}
}

func TestFrameMsgClipped(t *testing.T) {
	long := strings.Repeat("abcdefghij", 30) // 300 bytes
	for _, tt := range []struct {
		name string
		b    []byte
		typ  byte
	}{
		{"reply", AppendReply(nil, 1, 0x03, 0, long), TypeReply},
		{"rst", AppendRst(nil, TypeRst, 1, RstClosed, long), TypeRst},
		{"goaway", AppendRst(nil, TypeGoaway, 0, RstShutdown, long), TypeGoaway},
	} {
		f := frameReadOne(t, tt.b)
		if f.Type != tt.typ || f.Msg != long[:200] {
			t.Errorf("%s: got type 0x%02x msg of %d bytes, want 200", tt.name, f.Type, len(f.Msg))
		}
	}
	// Exactly 200 bytes is kept whole.
	if f := frameReadOne(t, AppendReply(nil, 1, 1, 0, long[:200])); f.Msg != long[:200] {
		t.Errorf("200-byte message: got %d bytes", len(f.Msg))
	}
}

// The exact bytes: header TYPE u8, FLAGS u8, LEN u16, STREAM u32, then
// the body.
func TestFrameBytes(t *testing.T) {
	tests := []struct {
		name string
		got  []byte
		want string
	}{
		// CMD u8, WINDOW u32, then the SOCKS5 address form.
		{"open ipv4", frameMustOpen(t, 1, 0x01, 0x00010000, "198.18.0.1:80"),
			"08 00 000c 00000001  01 00010000  01 c6120001 0050"},
		{"open domain", frameMustOpen(t, 0x01020304, 0x03, 0xa0b0c0d0, "example.test:443"),
			"08 00 0015 01020304  03 a0b0c0d0  03 0c 6578616d706c652e74657374 01bb"},
		{"open ipv6", frameMustOpen(t, 5, 0x01, 0, "[::1]:8080"),
			"08 00 0018 00000005  01 00000000  04 00000000000000000000000000000001 1f90"},
		// STATUS u8, WINDOW u32, then the message.
		{"reply ok", AppendReply(nil, 3, 0, 0x00040000, ""),
			"09 00 0005 00000003  00 00040000"},
		{"reply failure", AppendReply(nil, 3, 0x05, 0, "no"),
			"09 00 0007 00000003  05 00000000 6e6f"},
		// The payload follows the header.
		{"data", frameData(7, []byte("abc")),
			"0a 00 0003 00000007  616263"},
		{"data header max", AppendDataHeader(nil, 0x80000000, MaxData),
			"0a 00 ffff 80000000"},
		// INCREMENT u32.
		{"window", AppendWindow(nil, 0, 0x00010000),
			"0b 00 0004 00000000  00010000"},
		{"window stream", AppendWindow(nil, 5, 0xdeadbeef),
			"0b 00 0004 00000005  deadbeef"},
		// No body.
		{"fin", AppendFin(nil, 9),
			"0c 00 0000 00000009"},
		// CODE u16, then the message.
		{"rst", AppendRst(nil, TypeRst, 9, RstTarget, "x"),
			"0d 00 0003 00000009  0004 78"},
		{"goaway", AppendRst(nil, TypeGoaway, 0, RstShutdown, ""),
			"0e 00 0002 00000000  0006"},
	}
	for _, tt := range tests {
		if want := frameHex(t, tt.want); !bytes.Equal(tt.got, want) {
			t.Errorf("%s:\n got % x\nwant % x", tt.name, tt.got, want)
		}
	}
}

func TestFrameTypeValues(t *testing.T) {
	got := []int{TypeOpen, TypeReply, TypeData, TypeWindow, TypeFin, TypeRst, TypeGoaway}
	want := []int{0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("types %x, want %x", got, want)
	}
	if HeaderLen != 8 || MaxData != 65535 {
		t.Fatalf("HeaderLen %d MaxData %d", HeaderLen, MaxData)
	}
}

func TestFrameMalformed(t *testing.T) {
	tests := []struct {
		name string
		b    string
	}{
		{"empty data", "0a 00 0000 00000001"},
		{"data on stream 0", "0a 00 0001 00000000  ff"},
		{"open on stream 0", "08 00 000c 00000000  01 00010000 01 c6120001 0050"},
		{"open of 5 bytes", "08 00 0005 00000001  01 00010000"},
		{"open of 0 bytes", "08 00 0000 00000001"},
		{"open bad address type", "08 00 000c 00000001  01 00010000 05 c6120001 0050"},
		{"open empty domain", "08 00 0009 00000001  01 00010000 03 00 0050"},
		{"open short ipv4", "08 00 000a 00000001  01 00010000 01 c61200 01"},
		{"open short ipv6", "08 00 000c 00000001  01 00010000 04 0000000000 01"},
		{"open short domain", "08 00 000a 00000001  01 00010000 03 05 6162 63"},
		{"open domain with brackets", "08 00 000c 00000001  01 00010000 03 03 5b3a5d 0050"},
		{"reply of 4 bytes", "09 00 0004 00000001  00 000100"},
		{"reply of 0 bytes", "09 00 0000 00000001"},
		{"reply on stream 0", "09 00 0005 00000000  00 00010000"},
		{"window of 3 bytes", "0b 00 0003 00000000  000100"},
		{"window of 0 bytes", "0b 00 0000 00000005"},
		{"fin on stream 0", "0c 00 0000 00000000"},
		{"rst of 1 byte", "0d 00 0001 00000001  00"},
		{"rst of 0 bytes", "0d 00 0000 00000001"},
		{"rst on stream 0", "0d 00 0002 00000000  0001"},
		{"goaway of 1 byte", "0e 00 0001 00000000  00"},
		{"goaway on stream 1", "0e 00 0002 00000001  0006"},
		{"goaway on stream 0x80000000", "0e 00 0002 80000000  0006"},
	}
	for _, tt := range tests {
		b := frameHex(t, tt.b)
		f, err := ReadFrame(frameReader(b), frameAlloc)
		if !errors.Is(err, ErrFrame) {
			t.Errorf("%s: got %+v, %v; want ErrFrame", tt.name, f, err)
		}
	}
}

// Control bodies longer than 512 bytes are refused, whatever their type;
// 512 is allowed.
func TestFrameControlLimit(t *testing.T) {
	for _, typ := range []byte{TypeOpen, TypeReply, TypeWindow, TypeFin, TypeRst, TypeGoaway} {
		stream := uint32(1)
		if typ == TypeGoaway {
			stream = 0
		}
		for _, n := range []int{513, 1024, 65535} {
			hdr := appendHeader(nil, typ, stream, n)
			b := append(hdr, make([]byte, n)...)
			if _, err := ReadFrame(frameReader(b), frameAlloc); !errors.Is(err, ErrFrame) {
				t.Errorf("type 0x%02x of %d bytes: got %v, want ErrFrame", typ, n, err)
			}
		}
	}
	// An RST of 512 bytes is read whole: receivers do not clip messages.
	msg := strings.Repeat("m", 510)
	b := appendHeader(nil, TypeRst, 3, 512)
	b = append(b, 0x00, 0x01)
	b = append(b, msg...)
	f := frameReadOne(t, b)
	if f.Type != TypeRst || f.Code != 1 || f.Msg != msg {
		t.Fatalf("512-byte RST: got type 0x%02x code %d msg of %d bytes", f.Type, f.Code, len(f.Msg))
	}
	// A WINDOW of 512 bytes: the increment is the first 4.
	b = appendHeader(nil, TypeWindow, 0, 512)
	b = append(b, 0, 0, 0x10, 0)
	b = append(b, make([]byte, 508)...)
	if f := frameReadOne(t, b); f.Type != TypeWindow || f.Window != 0x1000 {
		t.Fatalf("512-byte WINDOW: got %+v", f)
	}
}

// Receivers ignore FLAGS and the bytes a known body does not use; the
// flags are reported as read.
func TestFrameLenientBodies(t *testing.T) {
	tests := []struct {
		name string
		b    string
		want Frame
	}{
		{"fin with body", "0c 00 0003 00000002  010203", Frame{Type: TypeFin, Stream: 2}},
		{"window with more", "0b 00 0006 00000002  00000010 ffff", Frame{Type: TypeWindow, Stream: 2, Window: 16}},
		{"flags", "0c 81 0000 00000002", Frame{Type: TypeFin, Flags: 0x81, Stream: 2}},
		{"data flags", "0a 80 0001 00000002  41", Frame{Type: TypeData, Flags: 0x80, Stream: 2, Data: []byte("A")}},
	}
	for _, tt := range tests {
		if got := frameReadOne(t, frameHex(t, tt.b)); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: got %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

// A stream that ends inside a frame gives io.ErrUnexpectedEOF; one that
// ends between frames gives io.EOF.
func TestFrameTruncated(t *testing.T) {
	frames := [][]byte{
		frameMustOpen(t, 1, 1, 1000, "example.test:443"),
		frameMustOpen(t, 1, 1, 1000, "[::1]:8080"),
		AppendReply(nil, 1, 2, 3, "msg"),
		frameData(1, []byte("hello")),
		frameData(1, make([]byte, MaxData)),
		AppendWindow(nil, 0, 7),
		AppendFin(nil, 1),
		AppendRst(nil, TypeRst, 1, RstProtocol, "bad"),
		AppendRst(nil, TypeGoaway, 0, RstShutdown, ""),
		frameHex(t, "30 00 0004 00000000  01020304"), // unknown type
	}
	for _, fr := range frames {
		cuts := []int{1, HeaderLen - 1, HeaderLen, HeaderLen + 1, len(fr) - 1}
		if len(fr) < 300 {
			cuts = cuts[:0]
			for n := 1; n < len(fr); n++ {
				cuts = append(cuts, n)
			}
		}
		for _, n := range cuts {
			if n <= 0 || n >= len(fr) {
				continue
			}
			// Alone, and after a whole frame.
			for _, b := range [][]byte{fr[:n], append(AppendFin(nil, 3), fr[:n]...)} {
				r := frameReader(b)
				if len(b) > n {
					if f, err := ReadFrame(r, frameAlloc); err != nil || f.Type != TypeFin {
						t.Fatalf("first frame: %+v, %v", f, err)
					}
				}
				if _, err := ReadFrame(r, frameAlloc); err != io.ErrUnexpectedEOF {
					t.Fatalf("type 0x%02x cut at %d of %d: got %v, want io.ErrUnexpectedEOF", fr[0], n, len(fr), err)
				}
			}
		}
	}
	if _, err := ReadFrame(frameReader(nil), frameAlloc); err != io.EOF {
		t.Fatalf("empty input: got %v, want io.EOF", err)
	}
}

// Another read error is passed on as it is.
func TestFrameReadError(t *testing.T) {
	errBoom := errors.New("boom")
	fin := AppendFin(nil, 1)
	data := frameData(1, []byte("hello"))
	for _, b := range [][]byte{nil, fin[:3], data[:10]} {
		r := bufio.NewReader(io.MultiReader(bytes.NewReader(b), frameErrReader{errBoom}))
		if _, err := ReadFrame(r, frameAlloc); err != errBoom {
			t.Errorf("after % x: got %v, want %v", b, err, errBoom)
		}
	}
}

type frameErrReader struct{ err error }

func (r frameErrReader) Read([]byte) (int, error) { return 0, r.err }

// Frames of unknown type are skipped, whatever their length, and the next
// frame is returned.
func TestFrameUnknownSkipped(t *testing.T) {
	var b []byte
	b = append(b, frameHex(t, "30 00 0004 00000000  deadbeef")...)
	b = append(b, frameHex(t, "00 00 0000 00000001")...)
	b = append(b, frameHex(t, "07 00 0002 00000001  0000")...) // a path DATAGRAM type
	b = append(b, frameHex(t, "0f 80 0001 00000001  00")...)   // reserved stream type
	b = append(b, frameHex(t, "ff ff 0401 ffffffff")...)
	b = append(b, make([]byte, 0x401)...) // longer than a control frame
	b = append(b, AppendWindow(nil, 5, 42)...)
	b = append(b, frameHex(t, "01 00 0009 00000000  000000000000000041")...) // path DATA
	b = append(b, frameHex(t, "10 00 ffff 00000000")...)
	b = append(b, make([]byte, 0xffff)...)
	r := frameReader(b)
	f, err := ReadFrame(r, frameAlloc)
	if err != nil || !reflect.DeepEqual(f, Frame{Type: TypeWindow, Stream: 5, Window: 42}) {
		t.Fatalf("got %+v, %v; want the WINDOW", f, err)
	}
	// Only unknown frames remain: the end is a clean EOF.
	if _, err := ReadFrame(r, frameAlloc); err != io.EOF {
		t.Fatalf("got %v, want io.EOF", err)
	}
}

// The DATA payload goes into the buffer alloc returns.
func TestFrameDataAlloc(t *testing.T) {
	buf := make([]byte, 0, 100)
	var asked []int
	alloc := func(n int) []byte { asked = append(asked, n); return buf }
	f, err := ReadFrame(frameReader(frameData(1, []byte("xyz"))), alloc)
	if err != nil || string(f.Data) != "xyz" || &f.Data[0] != &buf[:1][0] {
		t.Fatalf("got %+v, %v", f, err)
	}
	if !reflect.DeepEqual(asked, []int{3}) {
		t.Fatalf("alloc asked for %v", asked)
	}
	// Control frames do not allocate.
	asked = nil
	if _, err := ReadFrame(frameReader(AppendWindow(nil, 0, 1)), alloc); err != nil || asked != nil {
		t.Fatalf("WINDOW: %v, alloc asked for %v", err, asked)
	}
}

// frameEncode encodes f again with the Append function of its type.
func frameEncode(t *testing.T, f Frame) []byte {
	t.Helper()
	switch f.Type {
	case TypeOpen:
		b, err := AppendOpen(nil, f.Stream, f.Cmd, f.Window, f.Target)
		if err != nil {
			t.Fatalf("parsed OPEN target %q does not encode: %v", f.Target, err)
		}
		return b
	case TypeReply:
		if f.Code > 0xff {
			t.Fatalf("REPLY status %d does not fit a byte", f.Code)
		}
		return AppendReply(nil, f.Stream, byte(f.Code), f.Window, f.Msg)
	case TypeData:
		return frameData(f.Stream, f.Data)
	case TypeWindow:
		return AppendWindow(nil, f.Stream, f.Window)
	case TypeFin:
		return AppendFin(nil, f.Stream)
	case TypeRst, TypeGoaway:
		return AppendRst(nil, f.Type, f.Stream, f.Code, f.Msg)
	}
	t.Fatalf("ReadFrame returned type 0x%02x", f.Type)
	return nil
}

// frameSameTarget tells whether two "host:port" name the same target: the
// same string, or the same IP address written two ways (a domain-form
// address may hold a non-canonical IP literal, which comes back canonical).
func frameSameTarget(a, b string) bool {
	if a == b {
		return true
	}
	ha, pa, err1 := net.SplitHostPort(a)
	hb, pb, err2 := net.SplitHostPort(b)
	if err1 != nil || err2 != nil || pa != pb {
		return false
	}
	ia, err1 := netip.ParseAddr(ha)
	ib, err2 := netip.ParseAddr(hb)
	return err1 == nil && err2 == nil && ia.Zone() == "" && ib.Zone() == "" && ia.Unmap() == ib.Unmap()
}

func FuzzReadFrame(f *testing.F) {
	seed := func(b []byte, err error) {
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	seed(AppendOpen(nil, 1, 0x01, 256<<10, "example.test:443"))
	seed(AppendOpen(nil, 3, 0x03, 0, "198.18.0.1:80"))
	seed(AppendOpen(nil, 5, 0x01, 1, "[::1]:8080"))
	f.Add(AppendReply(nil, 1, 0, 1<<20, ""))
	f.Add(AppendReply(nil, 1, 5, 0, "refused"))
	f.Add(frameData(1, []byte("hello")))
	f.Add(AppendWindow(nil, 0, 1<<16))
	f.Add(AppendWindow(nil, 5, 1))
	f.Add(AppendFin(nil, 7))
	f.Add(AppendRst(nil, TypeRst, 9, RstTarget, "dial failed"))
	f.Add(AppendRst(nil, TypeGoaway, 0, RstShutdown, "bye"))
	f.Add([]byte{0x30, 0, 0, 2, 0, 0, 0, 0, 1, 2})
	var all []byte
	all, _ = AppendOpen(all, 1, 1, 100, "a.test:1")
	all = AppendReply(all, 1, 0, 100, "")
	all = append(all, frameData(1, []byte("x"))...)
	all = AppendWindow(all, 0, 10)
	all = append(all, 0x30, 0, 0, 0, 0, 0, 0, 0)
	all = AppendFin(all, 1)
	all = AppendRst(all, TypeRst, 1, RstClosed, "")
	all = AppendRst(all, TypeGoaway, 0, RstShutdown, "")
	f.Add(all)

	f.Fuzz(func(t *testing.T, in []byte) {
		r := frameReader(in)
		for {
			fr, err := ReadFrame(r, frameAlloc)
			if err != nil {
				if errors.Is(err, ErrFrame) || err == io.EOF || err == io.ErrUnexpectedEOF {
					return
				}
				t.Fatalf("unexpected error %v", err)
			}
			if fr.Type == TypeData && (len(fr.Data) == 0 || fr.Stream == 0) {
				t.Fatalf("accepted %+v", fr)
			}
			enc := frameEncode(t, fr)
			back := frameReadOne(t, enc)
			// What the Append functions cannot carry: FLAGS (senders
			// write 0) and messages past 200 bytes (senders clip them).
			want := fr
			want.Flags = 0
			want.Msg = clip(want.Msg)
			if want.Type == TypeOpen {
				if !frameSameTarget(fr.Target, back.Target) {
					t.Fatalf("OPEN target %q came back as %q", fr.Target, back.Target)
				}
				want.Target = back.Target
			}
			if !reflect.DeepEqual(back, want) {
				t.Fatalf("re-encoded\n% x\nparsed as %+v\nwant %+v", enc, back, want)
			}
			// From then on, the encoding is stable.
			if enc2 := frameEncode(t, back); !bytes.Equal(enc2, enc) {
				t.Fatalf("encoding not stable:\n% x\n% x", enc, enc2)
			}
		}
	})
}
