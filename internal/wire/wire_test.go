package wire

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
	"testing/iotest"
)

func alloc(n int) []byte { return make([]byte, n) }

func TestRequestRoundTrip(t *testing.T) {
	cid := [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	for _, r := range []*Request{
		{Kind: KindOpen, CID: cid, Cmd: CmdConnect, Target: "127.0.0.1:80", Window: 4 << 20},
		{Kind: KindOpen, CID: cid, Cmd: CmdConnect, Target: "example.test:443", Window: 1},
		{Kind: KindOpen, CID: cid, Cmd: CmdConnect, Target: "[::1]:8080", Ext: []byte{9, 1, 7}},
		{Kind: KindJoin, CID: cid, Window: 65536},
	} {
		b, err := AppendRequest(nil, r)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ReadRequest(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		if got.Kind != r.Kind || got.CID != r.CID || got.Cmd != r.Cmd || got.Target != r.Target || got.Window != r.Window || !bytes.Equal(got.Ext, r.Ext) {
			t.Fatalf("got %+v want %+v", got, r)
		}
	}
}

func TestRequestBytes(t *testing.T) {
	r := &Request{Kind: KindOpen, CID: [16]byte{0xaa}, Cmd: CmdConnect, Target: "198.18.0.1:80", Window: 0x00400000}
	b, _ := AppendRequest(nil, r)
	want := "0201001c" + "aa000000000000000000000000000000" + "00400000" + "01" + "01c612000100" + "50"
	if hex.EncodeToString(b) != want {
		t.Fatalf("got %x\nwant %s", b, want)
	}
}

func TestReplyRoundTrip(t *testing.T) {
	token := AppendExt(nil, ExtJoinToken, bytes.Repeat([]byte{7}, 16))
	for _, r := range []*Reply{{Status: StatusOK, Window: 123456}, {Status: StatusOK, Window: 1, Ext: token}, {Status: 0x05, Msg: "connection refused"}, {Status: StatusUnknownSession}} {
		got, err := ReadReply(bytes.NewReader(AppendReply(nil, r)))
		if err != nil || got.Status != r.Status || got.Window != r.Window || got.Msg != r.Msg || !bytes.Equal(got.Ext, r.Ext) {
			t.Fatalf("got %+v %v want %+v", got, err, r)
		}
	}
}

func TestRequestErrors(t *testing.T) {
	cases := map[string][]byte{
		"v1":        {0x01, 0x00},
		"kind":      {0x02, 0x09, 0x00, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		"short":     {0x02, 0x02, 0x00, 0x04, 0, 0, 0, 0},
		"huge":      {0x02, 0x01, 0xff, 0xff},
		"truncated": {0x02, 0x02, 0x00, 0x14, 1, 2},
	}
	for name, b := range cases {
		if _, err := ReadRequest(bytes.NewReader(b)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestFrames(t *testing.T) {
	var b []byte
	b = AppendDataHeader(b, 1<<40, 5)
	b = append(b, "hello"...)
	b = AppendAck(b, FlagFinAcked, 77, 4<<20, 99)
	b = append(b, 0x7f, 0, 0, 3, 1, 2, 3) // unknown type: skipped
	b = AppendFin(b, 12345)
	b = AppendRst(b, RstGrace, "grace")
	b = AppendPing(b, TypePing, 42)
	b = AppendPing(b, TypePong, 43)
	b = AppendDatagramHeader(b, 0xfeedf00d, 9)
	b = append(b, 0x01, 198, 18, 0, 1, 0, 53, 'h', 'i')
	r := NewReader(bytes.NewReader(b), 0)
	want := []Frame{
		{Type: TypeData, Seq: 1 << 40, Payload: []byte("hello")},
		{Type: TypeAck, Flags: FlagFinAcked, Ack: 77, Wnd: 4 << 20, PathRcvd: 99},
		{Type: TypeFin, Seq: 12345},
		{Type: TypeRst, Code: RstGrace, Payload: []byte("grace")},
		{Type: TypePing, TS: 42},
		{Type: TypePong, TS: 43},
		{Type: TypeDatagram, Seq: 0xfeedf00d, Payload: []byte{0x01, 198, 18, 0, 1, 0, 53, 'h', 'i'}},
	}
	for i, w := range want {
		f, err := r.ReadFrame(alloc)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if f.Type != w.Type || f.Flags != w.Flags || f.Seq != w.Seq || f.Ack != w.Ack || f.Wnd != w.Wnd ||
			f.PathRcvd != w.PathRcvd || f.Code != w.Code || f.TS != w.TS || !bytes.Equal(f.Payload, w.Payload) {
			t.Fatalf("frame %d: got %+v want %+v", i, f, w)
		}
	}
	if _, err := r.ReadFrame(alloc); err != io.EOF {
		t.Fatalf("want EOF, got %v", err)
	}
}

func TestDataBytes(t *testing.T) {
	b := append(AppendDataHeader(nil, 0, 5), "hello"...)
	if got := hex.EncodeToString(b); got != "0100000d0000000000000000"+"68656c6c6f" {
		t.Fatalf("got %s", got)
	}
}

func TestDatagramBytes(t *testing.T) {
	b := append(AppendDatagramHeader(nil, 1, 9), 0x01, 198, 18, 0, 1, 0, 53, 'h', 'i')
	if got := hex.EncodeToString(b); got != "0700000d00000001"+"01c61200010035"+"6869" {
		t.Fatalf("got %s", got)
	}
}

func TestFrameErrors(t *testing.T) {
	cases := map[string][]byte{
		"empty data":  {TypeData, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0},
		"short ack":   {TypeAck, 0, 0, 4, 0, 0, 0, 0},
		"huge ack":    {TypeAck, 0, 0xff, 0xff},
		"cut data":    {TypeData, 0, 0, 20, 0, 0},
		"cut header":  {TypeData, 0},
		"cut unknown": {0x30, 0, 0, 9, 1},
		"short dgram": {TypeDatagram, 0, 0, 3, 0, 0, 0},
		"cut dgram":   {TypeDatagram, 0, 0, 9, 0, 0, 0, 1, 1},
	}
	for name, b := range cases {
		_, err := NewReader(bytes.NewReader(b), 0).ReadFrame(alloc)
		if err == nil || err == io.EOF {
			t.Errorf("%s: got %v", name, err)
		}
		if name == "short ack" && !errors.Is(err, ErrFrame) {
			t.Errorf("%s: got %v", name, err)
		}
	}
}

func FuzzReadFrame(f *testing.F) {
	f.Add(append(AppendDataHeader(nil, 9, 3), 1, 2, 3))
	f.Add(AppendAck(nil, 0, 1, 2, 3))
	f.Add(AppendRst(nil, 1, "x"))
	f.Add([]byte{0x30, 0, 0, 1, 0})
	f.Add(append(AppendDatagramHeader(nil, 7, 2), 9, 9))
	f.Add(append(append(AppendDataHeader(nil, 9, 3), 1, 2, 3), AppendAck(nil, 0, 1, 2, 3)...))
	f.Fuzz(func(t *testing.T, b []byte) {
		var fs []Frame
		for mode := range uint8(12) {
			fs = sameAsReference(t, b, mode)
		}
		for _, fr := range fs {
			if fr.Type == TypeData && (len(fr.Payload) == 0 || len(fr.Payload) > MaxPayload) {
				t.Fatalf("payload of %d bytes", len(fr.Payload))
			}
			if fr.Type == TypeDatagram && (len(fr.Payload) > MaxDatagram || fr.Seq > 0xffffffff) {
				t.Fatalf("datagram of %d bytes, ID %d", len(fr.Payload), fr.Seq)
			}
		}
	})
}

// A long stream of mixed frames decodes the same whatever the reads
// return and whatever spare room payload buffers have.
func TestReaderStream(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var b []byte
	for len(b) < 4<<20 {
		switch r.IntN(6) {
		case 0, 1:
			n := 1 + r.IntN(MaxPayload)
			if r.IntN(2) == 0 {
				n = MaxPayload
			}
			b = AppendDataHeader(b, r.Uint64(), n)
			for range n {
				b = append(b, byte(r.Uint32()))
			}
		case 2:
			b = AppendAck(b, 0, r.Uint64(), r.Uint32(), r.Uint64())
		case 3:
			b = AppendPing(b, TypePing, r.Uint64())
		case 4:
			b = append(AppendDatagramHeader(b, r.Uint32(), 3), 1, 2, 3)
		case 5:
			b = append(b, 0x7e, 0, 0, 5, 1, 2, 3, 4, 5)
		}
	}
	for mode := range uint8(12) {
		sameAsReference(t, b, mode)
	}
}

// sameAsReference decodes b with a Reader, reading as mode says, and with
// the old bufio decoder, and fails unless both give the same frames and
// the same error.
func sameAsReference(t *testing.T, b []byte, mode uint8) []Frame {
	t.Helper()
	br := bufio.NewReader(bytes.NewReader(b))
	want, wantErr := decodeAll(func() (Frame, error) { return refReadFrame(br, alloc) })
	var src io.Reader = bytes.NewReader(b)
	switch mode % 3 {
	case 1:
		src = iotest.OneByteReader(src)
	case 2:
		src = iotest.HalfReader(src)
	}
	spare := []int{0, 9, 4096, 1 << 16}[mode/3%4]
	rd := NewReader(src, 8<<10)
	got, err := decodeAll(func() (Frame, error) {
		return rd.ReadFrame(func(n int) []byte { return make([]byte, n, n+spare) })
	})
	if fmt.Sprint(err) != fmt.Sprint(wantErr) || len(got) != len(want) {
		t.Fatalf("mode %d: %d frames, %v; want %d frames, %v", mode, len(got), err, len(want), wantErr)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Type != w.Type || g.Flags != w.Flags || g.Seq != w.Seq || g.Ack != w.Ack || g.Wnd != w.Wnd ||
			g.PathRcvd != w.PathRcvd || g.Code != w.Code || g.TS != w.TS || !bytes.Equal(g.Payload, w.Payload) {
			t.Fatalf("mode %d: frame %d: got %+v want %+v", mode, i, g, w)
		}
		if g.Type == TypeData && cap(g.Payload) != len(g.Payload) {
			t.Fatalf("mode %d: frame %d: payload has room past it", mode, i)
		}
	}
	return got
}

func decodeAll(next func() (Frame, error)) ([]Frame, error) {
	var fs []Frame
	for len(fs) < 1000 {
		f, err := next()
		if err != nil {
			return fs, err
		}
		fs = append(fs, f)
	}
	return fs, nil
}

func FuzzReadRequest(f *testing.F) {
	b, _ := AppendRequest(nil, &Request{Kind: KindOpen, Cmd: CmdConnect, Target: "a.test:1"})
	f.Add(b)
	b, _ = AppendRequest(nil, &Request{Kind: KindJoin})
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ReadRequest(bytes.NewReader(b))
		if err != nil {
			return
		}
		again, err := AppendRequest(nil, r)
		if err != nil {
			t.Fatalf("decoded request does not encode: %v", err)
		}
		if _, err := ReadRequest(bytes.NewReader(again)); err != nil {
			t.Fatalf("re-encoded request does not decode: %v", err)
		}
	})
}

func FuzzReadReply(f *testing.F) {
	f.Add(AppendReply(nil, &Reply{Status: StatusOK, Window: 9}))
	f.Add(AppendReply(nil, &Reply{Status: 5, Msg: "no"}))
	f.Fuzz(func(t *testing.T, b []byte) {
		ReadReply(bytes.NewReader(b))
	})
}

func TestPathFlags(t *testing.T) {
	r := &Request{Kind: KindJoin, Ext: AppendExt(AppendExt(nil, 0x7e, []byte{1, 2}), ExtPathFlags, []byte{PathBackup})}
	b, _ := AppendRequest(nil, r)
	got, err := ReadRequest(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if f, err := got.PathFlags(); err != nil || f != PathBackup {
		t.Fatalf("flags %v %v", f, err)
	}
	if f, err := got.SessionFlags(); err != nil || f != 0 {
		t.Fatalf("session flags %v %v", f, err)
	}
	r.Ext = AppendExt(r.Ext, ExtSessionFlags, []byte{SessionDatagramCopies})
	if f, err := r.SessionFlags(); err != nil || f != SessionDatagramCopies {
		t.Fatalf("session flags %v %v", f, err)
	}
	if _, err := (&Request{Ext: []byte{ExtPathFlags, 5, 1}}).PathFlags(); err == nil {
		t.Fatal("cut extension accepted")
	}
}

// FuzzExts: extension TLVs either split cleanly, each value inside the
// input, or fail; PathFlags and Ext agree with Exts.
func FuzzExts(f *testing.F) {
	f.Add(AppendExt(AppendExt(nil, ExtPathFlags, []byte{PathBackup}), ExtJoinToken, make([]byte, 16)))
	f.Add([]byte{ExtJoinToken, 16, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		exts, err := Exts(b)
		if err != nil {
			return
		}
		total := 0
		for _, v := range exts {
			total += len(v)
		}
		if total > len(b) {
			t.Fatalf("values of %d bytes from %d", total, len(b))
		}
		if tok, err := Ext(b, ExtJoinToken); err != nil || !bytes.Equal(tok, exts[ExtJoinToken]) {
			t.Fatalf("Ext %x %v", tok, err)
		}
	})
}

// refReadFrame is the decoder Reader replaced, kept as a reference.
//
// ReadFrame reads one frame. DATA payloads are read into a buffer from
// alloc(n); DATAGRAM bodies and RST messages are newly allocated; other
// bodies use scratch space and must be used before the next call. Frames
// of unknown type are skipped.
func refReadFrame(r *bufio.Reader, alloc func(n int) []byte) (Frame, error) {
	for {
		hdr, err := r.Peek(HeaderLen)
		if err != nil {
			if err == io.EOF && len(hdr) > 0 {
				err = io.ErrUnexpectedEOF
			}
			return Frame{}, err
		}
		f := Frame{Type: hdr[0], Flags: hdr[1]}
		n := int(binary.BigEndian.Uint16(hdr[2:]))
		r.Discard(HeaderLen)
		if f.Type == TypeDatagram {
			if n < 4 {
				return f, fmt.Errorf("%w: DATAGRAM of %d bytes", ErrFrame, n)
			}
			var id [4]byte
			if _, err := io.ReadFull(r, id[:]); err != nil {
				return f, unexpected(err)
			}
			f.Seq = uint64(binary.BigEndian.Uint32(id[:]))
			// Not from alloc: a datagram is handed to the application,
			// which keeps it, and should hold no more than its size.
			f.Payload = make([]byte, n-4)
			if _, err := io.ReadFull(r, f.Payload); err != nil {
				return f, unexpected(err)
			}
			return f, nil
		}
		if f.Type == TypeData {
			if n <= 8 {
				return f, fmt.Errorf("%w: DATA of %d bytes", ErrFrame, n)
			}
			var seq [8]byte
			if _, err := io.ReadFull(r, seq[:]); err != nil {
				return f, unexpected(err)
			}
			f.Seq = binary.BigEndian.Uint64(seq[:])
			f.Payload = alloc(n - 8)
			if _, err := io.ReadFull(r, f.Payload); err != nil {
				return f, unexpected(err)
			}
			return f, nil
		}
		if !known(f.Type) {
			if _, err := r.Discard(n); err != nil {
				return f, unexpected(err)
			}
			continue
		}
		if n > maxControl {
			return f, fmt.Errorf("%w: type 0x%02x of %d bytes", ErrFrame, f.Type, n)
		}
		body, err := r.Peek(n)
		if err != nil {
			return f, unexpected(err)
		}
		switch f.Type {
		case TypeAck:
			if n < 20 {
				return f, fmt.Errorf("%w: ACK of %d bytes", ErrFrame, n)
			}
			f.Ack = binary.BigEndian.Uint64(body)
			f.Wnd = binary.BigEndian.Uint32(body[8:])
			f.PathRcvd = binary.BigEndian.Uint64(body[12:])
		case TypeFin:
			if n < 8 {
				return f, fmt.Errorf("%w: FIN of %d bytes", ErrFrame, n)
			}
			f.Seq = binary.BigEndian.Uint64(body)
		case TypeRst:
			if n < 2 {
				return f, fmt.Errorf("%w: RST of %d bytes", ErrFrame, n)
			}
			f.Code = binary.BigEndian.Uint16(body)
			f.Payload = append([]byte(nil), body[2:]...)
		case TypePing, TypePong:
			if n < 8 {
				return f, fmt.Errorf("%w: PING of %d bytes", ErrFrame, n)
			}
			f.TS = binary.BigEndian.Uint64(body)
		}
		r.Discard(n)
		return f, nil
	}
}
