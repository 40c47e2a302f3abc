package wire

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"testing"
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
	r := bufio.NewReader(bytes.NewReader(b))
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
		f, err := ReadFrame(r, alloc)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if f.Type != w.Type || f.Flags != w.Flags || f.Seq != w.Seq || f.Ack != w.Ack || f.Wnd != w.Wnd ||
			f.PathRcvd != w.PathRcvd || f.Code != w.Code || f.TS != w.TS || !bytes.Equal(f.Payload, w.Payload) {
			t.Fatalf("frame %d: got %+v want %+v", i, f, w)
		}
	}
	if _, err := ReadFrame(r, alloc); err != io.EOF {
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
		_, err := ReadFrame(bufio.NewReader(bytes.NewReader(b)), alloc)
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
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bufio.NewReader(bytes.NewReader(b))
		for i := 0; i < 100; i++ {
			fr, err := ReadFrame(r, alloc)
			if err != nil {
				return
			}
			if fr.Type == TypeData && (len(fr.Payload) == 0 || len(fr.Payload) > MaxPayload) {
				t.Fatalf("payload of %d bytes", len(fr.Payload))
			}
			if fr.Type == TypeDatagram && (len(fr.Payload) > MaxDatagram || fr.Seq > 0xffffffff) {
				t.Fatalf("datagram of %d bytes, ID %d", len(fr.Payload), fr.Seq)
			}
		}
	})
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
