package mptp

import (
	"context"
	"io"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mptp/mptp/relaytest"
)

// sharedLink paces the writes of every connection through it together,
// like one uplink that a bulk upload and a UDP association share: each
// write waits for its turn at rate bytes per second.
type sharedLink struct {
	mu   sync.Mutex
	rate float64
	next time.Time
}

func (l *sharedLink) take(n int) {
	l.mu.Lock()
	now := time.Now()
	if l.next.Before(now) {
		l.next = now
	}
	l.next = l.next.Add(time.Duration(float64(n) / l.rate * float64(time.Second)))
	until := l.next
	l.mu.Unlock()
	time.Sleep(time.Until(until))
}

type linkConn struct {
	net.Conn
	l *sharedLink
}

// Write goes out in pieces of 16 KiB, the link's queue: a datagram waits
// behind at most one piece of someone else's.
func (c *linkConn) Write(b []byte) (int, error) {
	done := 0
	for done < len(b) {
		n := min(len(b)-done, 16<<10)
		c.l.take(n)
		m, err := c.Conn.Write(b[done : done+n])
		done += m
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

func (c *linkConn) CloseWrite() error { return c.Conn.(*net.TCPConn).CloseWrite() }

func (l *sharedLink) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return &linkConn{Conn: c, l: l}, nil
}

// BenchmarkUDPUnderLoad: 64-byte UDP echoes through an association over
// two paths, each path's uplink shared with a bulk upload through another
// session over the same actors (10 MB/s per link). It reports the median
// and 90th percentile round trip with the upload running, against the
// same echoes with the links idle, in the same run.
func BenchmarkUDPUnderLoad(b *testing.B) {
	echo := relaytest.UDPEcho(b, net.IPv4(127, 0, 0, 1))
	sink, got := resBenchSink(b)
	addr := startServer(b, &Server{})
	links := []*sharedLink{{rate: 10e6}, {rate: 10e6}}
	c := client(b, addr, Path{Name: "a", Dial: links[0].dial}, Path{Name: "b", Dial: links[1].dial})

	rtts := func(pc *PacketConn, n int, during func() bool) []float64 {
		var out []float64
		buf := make([]byte, 2048)
		msg := make([]byte, 64)
		for i := 0; i < n && during(); i++ {
			start := time.Now()
			pc.WriteTo(msg, echo)
			pc.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, _, err := pc.ReadFrom(buf); err != nil {
				continue // lost: counted by its absence
			}
			out = append(out, resMs(time.Since(start)))
			time.Sleep(5 * time.Millisecond)
		}
		return out
	}
	pct := func(xs []float64, p float64) float64 {
		s := slices.Clone(xs)
		slices.Sort(s)
		if len(s) == 0 {
			return 0
		}
		return s[int(p*float64(len(s)-1))]
	}
	var idleMed, loadMed, loadP90, mbps []float64
	for range resBenchReps {
		pc, err := c.ListenPacket(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		// Let both paths join and measure their RTT.
		rtts(pc, 20, func() bool { return true })
		idle := rtts(pc, 100, func() bool { return true })

		conn, err := c.Dial("tcp", sink)
		if err != nil {
			b.Fatal(err)
		}
		const size = 48 << 20
		start := time.Now()
		uploading := make(chan struct{})
		go func() {
			defer close(uploading)
			chunk := make([]byte, 256<<10)
			for sent := 0; sent < size; sent += len(chunk) {
				if _, err := conn.Write(chunk); err != nil {
					return
				}
			}
			resBenchFinish(conn)
		}()
		time.Sleep(200 * time.Millisecond) // the upload fills the links
		load := rtts(pc, 1000, func() bool {
			select {
			case <-uploading:
				return false
			default:
				return true
			}
		})
		<-uploading
		n := <-got
		mbps = append(mbps, float64(n)/time.Since(start).Seconds()/1e6)
		pc.Close()
		idleMed = append(idleMed, resMedian(idle))
		loadMed = append(loadMed, resMedian(load))
		loadP90 = append(loadP90, pct(load, 0.9))
	}
	b.ReportMetric(resMedian(idleMed), "idle-rtt-ms")
	b.ReportMetric(resMedian(loadMed), "load-rtt-ms")
	b.ReportMetric(resMedian(loadP90), "load-p90-ms")
	b.ReportMetric(resMedian(loadMed)/resMedian(idleMed), "load/idle")
	b.ReportMetric(resMedian(mbps), "upload-MB/s")
}

// BenchmarkSmallBesideBulk is the TCP counterpart: a small request on a
// new stream of the tunnel while another stream uploads in bulk over the
// same two 10 MB/s paths, against the same request with the links idle,
// and against the request on its own TCP connection over the first link
// beside the same upload (the baseline issue 16 sets its target by), in
// the same run. The stream scheduler serves the new stream first; what
// the session and the paths already hold of the bulk stream is ahead of
// it.
func BenchmarkSmallBesideBulk(b *testing.B) {
	echo := echoServer(b)
	sink, got := resBenchSink(b)
	addr := startServer(b, &Server{})
	links := []*sharedLink{{rate: 10e6}, {rate: 10e6}}
	c := client(b, addr, Path{Name: "a", Dial: links[0].dial}, Path{Name: "b", Dial: links[1].dial})
	msg := make([]byte, 1000)
	exchange := func(conn net.Conn) {
		defer conn.Close()
		conn.Write(msg)
		if _, err := io.ReadFull(conn, msg); err != nil {
			b.Fatal(err)
		}
	}
	request := func() float64 {
		start := time.Now()
		conn, err := c.Dial("tcp", echo)
		if err != nil {
			b.Fatal(err)
		}
		exchange(conn)
		return resMs(time.Since(start))
	}
	direct := func() float64 {
		start := time.Now()
		conn, err := links[0].dial(context.Background(), "tcp", echo)
		if err != nil {
			b.Fatal(err)
		}
		exchange(conn)
		return resMs(time.Since(start))
	}
	var idleMed, loadMed, tcpMed []float64
	for range resBenchReps {
		var idle, load, tcp []float64
		for range 20 {
			idle = append(idle, request())
		}
		conn, err := c.Dial("tcp", sink)
		if err != nil {
			b.Fatal(err)
		}
		uploading := make(chan struct{})
		go func() {
			defer close(uploading)
			chunk := make([]byte, 256<<10)
			for sent := 0; sent < 32<<20; sent += len(chunk) {
				if _, err := conn.Write(chunk); err != nil {
					return
				}
			}
			resBenchFinish(conn)
		}()
		time.Sleep(300 * time.Millisecond) // the upload fills the links
	loop:
		for {
			select {
			case <-uploading:
				break loop
			default:
				load = append(load, request())
				tcp = append(tcp, direct())
			}
		}
		<-got
		idleMed = append(idleMed, resMedian(idle))
		loadMed = append(loadMed, resMedian(load))
		tcpMed = append(tcpMed, resMedian(tcp))
	}
	b.ReportMetric(resMedian(idleMed), "idle-ms")
	b.ReportMetric(resMedian(loadMed), "beside-bulk-ms")
	b.ReportMetric(resMedian(tcpMed), "tcp-beside-bulk-ms")
	b.ReportMetric(resMedian(loadMed)/resMedian(tcpMed), "beside/tcp")
}
