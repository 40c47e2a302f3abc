package session

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"os"
	"testing"
	"time"
)

// Datagrams of every size up to the largest cross intact over three paths,
// each once, while the byte stream carries its own data.
func TestDatagrams(t *testing.T) {
	for _, copies := range []bool{false, true} {
		a, b, _, _ := connected(t, 3, Config{DatagramCopies: copies})
		const n = 300
		sizes := func(i int) int { return 4 + (i*997)%(64<<10-4-4) }
		// The reader lets the sender have at most 16 datagrams under way:
		// an unpaced sender overruns bounded queues, which drop by design.
		credit := make(chan struct{}, 16)
		for range cap(credit) {
			credit <- struct{}{}
		}
		go func() {
			for i := range n {
				<-credit
				d := make([]byte, sizes(i))
				binary.BigEndian.PutUint32(d, uint32(i))
				for j := 4; j < len(d); j++ {
					d[j] = byte(i + j)
				}
				if err := a.SendDatagram(d); err != nil {
					t.Error(err)
					return
				}
			}
		}()
		seen := map[uint32]bool{}
		b.SetReadDeadline(time.Now().Add(10 * time.Second))
		for len(seen) < n {
			d, err := b.ReadDatagram()
			if err != nil {
				t.Fatalf("copies=%v: after %d datagrams: %v (stats %+v)", copies, len(seen), err, a.DatagramStats())
			}
			i := binary.BigEndian.Uint32(d)
			if seen[i] {
				t.Fatalf("datagram %d delivered twice", i)
			}
			seen[i] = true
			credit <- struct{}{}
			want := make([]byte, sizes(int(i)))
			binary.BigEndian.PutUint32(want, i)
			for j := 4; j < len(want); j++ {
				want[j] = byte(int(i) + j)
			}
			if sha256.Sum256(d) != sha256.Sum256(want) {
				t.Fatalf("datagram %d: %d bytes differ from the %d sent", i, len(d), len(want))
			}
		}
		st := b.DatagramStats()
		if st.Received != n || st.Dropped != 0 {
			t.Fatalf("receiver stats %+v", st)
		}
		if copies {
			var frames uint64
			for _, c := range a.Stats() {
				frames += c.DatagramsSent
			}
			// Two copies each while two paths are usable; a path found
			// stale under a loaded machine takes none for a while.
			if frames < n*3/2 || frames > 2*n {
				t.Fatalf("copies: %d frames sent for %d datagrams", frames, n)
			}
		}
		closeBoth(t, a, b)
	}
}

func TestDatagramLimits(t *testing.T) {
	a, b, _, _ := connected(t, 1, Config{})
	if err := a.SendDatagram(make([]byte, 65532)); err != ErrDatagramTooLarge {
		t.Fatalf("oversized datagram: %v", err)
	}
	if st := a.DatagramStats(); st.Dropped != 1 {
		t.Fatalf("sender stats %+v: want the oversized one dropped", st)
	}
	// Nobody reads: the receiver holds a bounded number, drops the rest.
	b.mu.Lock()
	for i := range 3 * recvDatagrams {
		b.receiveDatagram(uint32(i), []byte("x"))
	}
	b.receiveDatagram(7, []byte("copy"))
	b.mu.Unlock()
	if st := b.DatagramStats(); st.Received != recvDatagrams || st.Dropped != 2*recvDatagrams {
		t.Fatalf("receiver stats %+v", st)
	}
	b.SetReadDeadline(time.Now().Add(-time.Second))
	got := 0
	for {
		d, err := b.ReadDatagram()
		if err == os.ErrDeadlineExceeded {
			break
		}
		if err != nil || !bytes.Equal(d, []byte("x")) {
			t.Fatalf("got %q %v", d, err)
		}
		got++
	}
	if got != recvDatagrams {
		t.Fatalf("read %d", got)
	}
	b.SetReadDeadline(time.Time{})
	closeBoth(t, a, b)
}

func TestDedup(t *testing.T) {
	var d dedup
	for _, c := range []struct {
		id    uint32
		fresh bool
	}{
		{0xfffffffe, true}, {0xfffffffe, false}, {0xffffffff, true}, {0, true}, {3, true}, {1, true},
		{1, false}, {3, false}, {2, true}, {5000, true}, {4000, true}, {3000, false}, {4999, true}, {5000, false},
	} {
		if got := d.fresh(c.id); got != c.fresh {
			t.Fatalf("fresh(%d) = %v, want %v", c.id, got, c.fresh)
		}
	}
}
