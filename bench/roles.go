package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"golang.org/x/net/proxy"
)

// roles are the parts of a run that the harness starts as subprocesses of
// itself, often inside a network namespace: "bench ROLE flags...".
var roles = map[string]func(args []string) error{
	"source": roleSource,
	"fetch":  roleFetch,
	"delay":  roleDelay,
	"sample": roleSample,
}

// The source protocol: the client sends a big-endian uint64, the number of
// bytes it wants (0: until it closes), and the source sends them: a block
// of blockSize bytes again and again, byte i of the stream pattern(i).
const blockSize = 256 << 10

func pattern(off uint64) byte { return byte(off % blockSize * 7) }

// roleSource serves bytes on every -listen address until it is stopped.
func roleSource(args []string) error {
	fs := flag.NewFlagSet("source", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:9000", "addresses to listen on, comma-separated")
	mptcp := fs.Bool("mptcp", false, "listen with kernel MPTCP (plain TCP clients are served too)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var lc net.ListenConfig
	lc.SetMultipathTCP(*mptcp)
	block := make([]byte, blockSize)
	for i := range block {
		block[i] = pattern(uint64(i))
	}
	for _, a := range strings.Split(*listen, ",") {
		ln, err := lc.Listen(context.Background(), "tcp", a)
		if err != nil {
			return err
		}
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go serveSource(c, block)
			}
		}()
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	return nil
}

func serveSource(c net.Conn, block []byte) {
	defer c.Close()
	var req [8]byte
	if _, err := io.ReadFull(c, req[:]); err != nil {
		return
	}
	want := binary.BigEndian.Uint64(req[:])
	for sent := uint64(0); want == 0 || sent < want; {
		n := uint64(len(block))
		if want != 0 {
			n = min(n, want-sent)
		}
		if _, err := c.Write(block[:n]); err != nil {
			return
		}
		sent += n
	}
}

// roleFetch downloads from a source and prints a fetchResult as JSON.
func roleFetch(args []string) error {
	fs := flag.NewFlagSet("fetch", flag.ContinueOnError)
	target := fs.String("target", "", "the source's host:port")
	socks := fs.String("socks", "", "reach it through this SOCKS5 proxy")
	bind := fs.String("bind", "", "local address to connect from")
	mptcp := fs.Bool("mptcp", false, "connect with kernel MPTCP")
	seconds := fs.Float64("seconds", 10, "download for this long")
	verify := fs.Bool("verify", false, "check every byte received")
	ttfb := fs.Int("ttfb", 0, "instead: this many short requests, one after another, each timed to its first byte")
	if err := fs.Parse(args); err != nil {
		return err
	}
	d := &net.Dialer{}
	if *bind != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(*bind)}
	}
	d.SetMultipathTCP(*mptcp)
	var dial func() (net.Conn, error) = func() (net.Conn, error) { return d.Dial("tcp", *target) }
	if *socks != "" {
		p, err := proxy.SOCKS5("tcp", *socks, nil, d)
		if err != nil {
			return err
		}
		dial = func() (net.Conn, error) { return p.Dial("tcp", *target) }
	}
	var r fetchResult
	var err error
	if *ttfb > 0 {
		r, err = timeFirstBytes(dial, *ttfb)
	} else {
		r, err = download(dial, time.Duration(*seconds*float64(time.Second)), *verify)
	}
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(r)
}

// download reads for d and reports the rate over its steady part: after
// the first quarter (at most 1 s), which slow start and path setup take.
func download(dial func() (net.Conn, error), d time.Duration, verify bool) (fetchResult, error) {
	var r fetchResult
	start := time.Now()
	c, err := dial()
	if err != nil {
		return r, err
	}
	defer c.Close()
	if _, err := c.Write(make([]byte, 8)); err != nil {
		return r, err
	}
	warm := min(d/4, time.Second)
	buf := make([]byte, 256<<10)
	var warmBytes int64
	var warmAt time.Time
	c.SetReadDeadline(start.Add(d))
	for {
		n, err := c.Read(buf)
		if verify {
			for i, b := range buf[:n] {
				if b != pattern(uint64(r.Bytes)+uint64(i)) {
					return r, fmt.Errorf("byte %d of the stream is %d, want %d", r.Bytes+int64(i), b, pattern(uint64(r.Bytes)+uint64(i)))
				}
			}
		}
		r.Bytes += int64(n)
		if warmAt.IsZero() && time.Since(start) >= warm {
			warmAt, warmBytes = time.Now(), r.Bytes
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			break
		}
		if err != nil {
			return r, fmt.Errorf("after %d bytes: %w", r.Bytes, err)
		}
	}
	end := time.Now()
	r.Seconds = end.Sub(start).Seconds()
	if !warmAt.IsZero() && end.After(warmAt) {
		r.Mbps = float64(r.Bytes-warmBytes) * 8 / end.Sub(warmAt).Seconds() / 1e6
	}
	return r, nil
}

// timeFirstBytes makes n requests for one byte, each on a new connection,
// and times each from the dial to the byte.
func timeFirstBytes(dial func() (net.Conn, error), n int) (fetchResult, error) {
	var r fetchResult
	req := make([]byte, 8)
	binary.BigEndian.PutUint64(req, 1)
	var one [1]byte
	for i := 0; i < n; i++ {
		start := time.Now()
		c, err := dial()
		if err != nil {
			return r, err
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		_, err = c.Write(req)
		if err == nil {
			_, err = io.ReadFull(c, one[:])
		}
		took := time.Since(start)
		c.Close()
		if err != nil {
			return r, fmt.Errorf("request %d: %w", i, err)
		}
		r.TTFB = append(r.TTFB, float64(took)/float64(time.Millisecond))
		r.Bytes++
	}
	return r, nil
}
