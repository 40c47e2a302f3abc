package leaf

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Frame types. All but DATA are a single byte.
const (
	TypeData = 0x01
	TypePing = 0x02
	TypePong = 0x03
	TypeFin  = 0x04
	TypeRst  = 0x05
)

// DataHeaderLen is the size of a DATA header: TYPE, PN u64, LEN u32.
const DataHeaderLen = 1 + 8 + 4

// ErrFrameTooLarge is returned by ReadFrame for a DATA LEN above its limit.
var ErrFrameTooLarge = errors.New("mptp v1: DATA payload too large")

// Frame is one decoded frame. PN and Payload are set for DATA only.
type Frame struct {
	Type    byte
	PN      uint64
	Payload []byte
}

// AppendData appends a DATA frame to b. len(payload) must fit in a u32.
func AppendData(b []byte, pn uint64, payload []byte) []byte {
	b = append(b, TypeData)
	b = binary.BigEndian.AppendUint64(b, pn)
	b = binary.BigEndian.AppendUint32(b, uint32(len(payload)))
	return append(b, payload...)
}

// ReadFrame reads the next frame. Unknown type bytes are skipped one at a
// time, as Leaf does. A DATA payload longer than maxPayload is an error, and
// the returned payload is newly allocated.
func ReadFrame(r *bufio.Reader, maxPayload int) (Frame, error) {
	for {
		t, err := r.ReadByte()
		if err != nil {
			return Frame{}, err
		}
		switch t {
		case TypePing, TypePong, TypeFin, TypeRst:
			return Frame{Type: t}, nil
		case TypeData:
			return readData(r, maxPayload)
		}
	}
}

func readData(r *bufio.Reader, maxPayload int) (Frame, error) {
	var h [DataHeaderLen - 1]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return Frame{}, truncated(err)
	}
	n := binary.BigEndian.Uint32(h[8:])
	// Check before allocating: LEN comes from the peer.
	if int64(n) > int64(max(maxPayload, 0)) {
		return Frame{}, fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, n, maxPayload)
	}
	f := Frame{Type: TypeData, PN: binary.BigEndian.Uint64(h[:8]), Payload: make([]byte, n)}
	if _, err := io.ReadFull(r, f.Payload); err != nil {
		return Frame{}, truncated(err)
	}
	return f, nil
}
