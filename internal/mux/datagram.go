package mux

import (
	"encoding/binary"
	"errors"
	"os"
)

// Datagrams carries a tunnel's datagrams beside its byte stream: neither
// resent nor ordered (a session's DATAGRAM frames). Each body starts with
// the STREAM u32 of the association it belongs to.
type Datagrams interface {
	SendDatagram(b []byte) error
	ReadDatagram() ([]byte, error)
}

// Bounds of a stream's queue of datagrams received and not yet read; past
// them new ones are dropped, as a full UDP socket buffer drops them.
const (
	maxQueuedDatagrams = 512
	maxQueuedBytes     = 1 << 20
)

// ErrNoDatagrams is returned by SendDatagram on a tunnel that has no
// datagram carrier.
var ErrNoDatagrams = errors.New("mux: this tunnel carries no datagrams")

// SendDatagram sends b as one datagram of the stream's association. It
// never blocks: a datagram that cannot go out now is dropped, as UDP
// would drop it.
func (st *Stream) SendDatagram(b []byte) error {
	t := st.t
	t.mu.Lock()
	err := st.writableLocked()
	t.mu.Unlock()
	if err != nil {
		return err
	}
	if t.cfg.Datagrams == nil {
		return ErrNoDatagrams
	}
	body := make([]byte, 4, 4+len(b))
	binary.BigEndian.PutUint32(body, st.id)
	return t.cfg.Datagrams.SendDatagram(append(body, b...))
}

// ReadDatagram returns the next datagram of the stream's association. It
// returns io.EOF once the peer ended the stream.
func (st *Stream) ReadDatagram() ([]byte, error) {
	for {
		st.mu.Lock()
		if len(st.dq) > 0 {
			b := st.dq[0]
			st.dq[0] = nil
			st.dq = st.dq[1:]
			st.dqBytes -= len(b)
			st.mu.Unlock()
			return b, nil
		}
		err := st.readErrLocked()
		st.mu.Unlock()
		if err != nil {
			return nil, err
		}
		select {
		case <-st.readable:
		case <-st.rdl.Done():
			return nil, os.ErrDeadlineExceeded
		}
	}
}

// DatagramsDropped counts the datagrams dropped because the stream's
// queue was full.
func (st *Stream) DatagramsDropped() uint64 {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.dqDropped
}

// datagramLoop hands the peer's datagrams to their streams until the
// carrier ends.
func (t *Tunnel) datagramLoop() {
	defer t.exit()
	for {
		b, err := t.cfg.Datagrams.ReadDatagram()
		if err != nil {
			return
		}
		if len(b) < 4 {
			continue
		}
		t.mu.Lock()
		st := t.streams[binary.BigEndian.Uint32(b)]
		t.mu.Unlock()
		if st == nil {
			continue // an association that ended: UDP drops it
		}
		st.mu.Lock()
		if st.readShut || st.rerr != nil || len(st.dq) >= maxQueuedDatagrams || st.dqBytes+len(b) > maxQueuedBytes {
			st.dqDropped++
		} else {
			st.dq = append(st.dq, b[4:])
			st.dqBytes += len(b) - 4
			signal(st.readable)
		}
		st.mu.Unlock()
	}
}
