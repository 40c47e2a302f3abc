package mux

import (
	"io"
	"os"
)

// ReadFrom sends what r yields until EOF, reading it straight into pooled
// blocks of the send buffer (io.Copy uses it: it saves a copy of every
// byte).
func (st *Stream) ReadFrom(r io.Reader) (int64, error) {
	t := st.t
	var total int64
	for {
		t.mu.Lock()
		err := st.writableLocked()
		room := min(sendBuffer-st.sendq.len(), TunnelSendBuffer-t.queued)
		troom := t.room
		t.mu.Unlock()
		if err != nil {
			return total, err
		}
		if room <= 0 {
			select {
			case <-st.wdone:
			case <-troom:
			case <-st.wdl.Done():
				return total, os.ErrDeadlineExceeded
			}
			continue
		}
		pb := blockPool.Get().(*[]byte)
		n, rerr := r.Read((*pb)[:min(room, blockSize)])
		if n > 0 {
			t.mu.Lock()
			if err := st.writableLocked(); err != nil {
				t.mu.Unlock()
				blockPool.Put(pb)
				return total, err
			}
			if n < blockSize/4 {
				// Small reads share blocks: a block each would hold
				// far more memory than bytes.
				st.sendq.write((*pb)[:n])
				blockPool.Put(pb)
			} else {
				st.sendq.push(block{data: (*pb)[:n], pool: pb})
			}
			t.queued += n
			t.readyLocked(st)
			t.mu.Unlock()
			total += int64(n)
		} else {
			blockPool.Put(pb)
		}
		if rerr == io.EOF {
			return total, nil
		}
		if rerr != nil {
			return total, rerr
		}
	}
}

// WriteTo writes the peer's bytes to w until EOF, handing w the received
// blocks themselves (io.Copy uses it: it saves a copy of every byte).
func (st *Stream) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		st.mu.Lock()
		if st.rq.len() > 0 {
			b := st.rq.pop()
			st.mu.Unlock()
			size := len(b.data)
			n, err := w.Write(b.data)
			b.release()
			total += int64(n)
			st.mu.Lock()
			st.consumed(size)
			st.mu.Unlock()
			if err != nil {
				return total, err
			}
			continue
		}
		err := st.readErrLocked()
		st.mu.Unlock()
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
		select {
		case <-st.readable:
		case <-st.rdl.Done():
			return total, os.ErrDeadlineExceeded
		}
	}
}
