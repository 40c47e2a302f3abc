package leaf

import (
	"github.com/mptp/mptp/internal/deadline"

	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// Errors a Conn fails with.
var (
	ErrAllLost     = fmt.Errorf("mptp v1: all sub-connections lost: %w", io.ErrUnexpectedEOF)
	ErrDataLost    = fmt.Errorf("mptp v1: data lost with a dead sub-connection: %w", io.ErrUnexpectedEOF)
	ErrReset       = fmt.Errorf("mptp v1: connection reset by peer: %w", syscall.ECONNRESET)
	ErrProtocol    = errors.New("mptp v1: protocol error")
	ErrWriteClosed = errors.New("mptp v1: write after CloseWrite")
)

const (
	// pathLimit is Leaf's per-sub-connection buffer: a path holding more
	// queued bytes skips new frames.
	pathLimit = 64 << 10
	// maxFramePayload splits large Writes.
	maxFramePayload = 64 << 10
	// maxBuffered in-order bytes, or maxBufferedFrames payloads, waiting
	// for Read pause the path readers, so a slow reader pushes back on the
	// peer through TCP (and tiny frames cannot cost more than their bytes).
	maxBuffered       = 1 << 20
	maxBufferedFrames = 4096
	// defaultMaxHeldBytes: Leaf holds up to 1024 frames of any size; a
	// bound in bytes keeps a session's memory known (16 MiB is a second
	// of 128 Mbit/s ahead on one path).
	defaultMaxHeldBytes = 16 << 20
	// DefaultMemory is the most received data a Conn with default
	// options holds: in order and out of order.
	DefaultMemory = maxBuffered + defaultMaxHeldBytes
	// flushTimeout bounds how long Close waits for queued frames.
	flushTimeout = 5 * time.Second
)

// Options configure a Conn. The zero value is usable.
type Options struct {
	MaxHeld int // out-of-order frames held before failing; default 1024
	// MaxHeldBytes bounds the bytes of those frames; default 16 MiB.
	MaxHeldBytes int
	MaxPayload   int // largest DATA payload accepted; default 64 KiB
	// Grace is how long the Conn survives with no sub-connection, waiting
	// for AddPath; 0 fails at once, as Leaf does.
	Grace                 time.Duration
	Logger                *slog.Logger
	LocalAddr, RemoteAddr net.Addr
}

// Conn is one v1 session: a byte stream carried over any number of
// sub-connections, each of which gets a copy of every frame (as Leaf does).
// It works the same on the client and the server side.
type Conn struct {
	opts     Options
	log      *slog.Logger
	rdl, wdl *deadline.Deadline
	wmu      sync.Mutex     // one Write at a time, so Writes don't interleave
	wg       sync.WaitGroup // path goroutines

	mu       sync.Mutex
	changed  chan struct{}      // closed at the next state change
	paths    map[*path]struct{} // live sub-connections
	toClose  []net.Conn         // closed by unlock, outside mu
	grace    *time.Timer        // running while there is no path
	graceGen uint64             // ignores a grace timer that was stopped
	closed   bool               // Close was called
	err      error              // the Conn failed
	reset    bool               // err came from the peer's RST: drop buffered data
	pn       uint64             // last PN sent
	wclosed  bool               // CloseWrite was called
	rq       reorder            // received frames not yet in order
	ready    [][]byte           // scratch for rq.push
	rbuf     [][]byte           // in-order payloads waiting for Read
	rlen     int                // bytes in rbuf
	finSeen  bool               // a FIN arrived on some path
	eof      bool               // every live path has sent FIN
}

// NewConn returns a Conn with no sub-connection yet; Reads and Writes wait
// for the first AddPath.
func NewConn(opts Options) *Conn {
	if opts.MaxHeld <= 0 {
		opts.MaxHeld = 1024
	}
	if opts.MaxHeldBytes <= 0 {
		opts.MaxHeldBytes = defaultMaxHeldBytes
	}
	if opts.MaxPayload <= 0 {
		opts.MaxPayload = 64 << 10
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Conn{
		opts:  opts,
		log:   opts.Logger,
		rdl:   deadline.New(),
		wdl:   deadline.New(),
		paths: make(map[*path]struct{}),
		rq:    newReorder(opts.MaxHeld, opts.MaxHeldBytes),
	}
}

// AddPath adds a sub-connection whose handshake is done. The Conn owns sub
// from now on and closes it.
func (c *Conn) AddPath(sub net.Conn) {
	c.mu.Lock()
	defer c.unlock()
	if c.closed || c.err != nil {
		c.toClose = append(c.toClose, sub)
		return
	}
	p := newPath(c, sub)
	c.paths[p] = struct{}{}
	c.stopGraceLocked()
	if c.wclosed {
		p.queueFinLocked()
	}
	c.wg.Add(2)
	go p.readLoop()
	go p.writeLoop()
	c.wakeLocked()
}

// Read reads in-order bytes. After a failure it still returns the bytes
// already in order, except after an RST.
func (c *Conn) Read(b []byte) (int, error) {
	c.mu.Lock()
	defer c.unlock()
	for {
		switch {
		case c.closed:
			return 0, net.ErrClosed
		case c.reset:
			return 0, c.err
		case c.rdl.Expired():
			return 0, os.ErrDeadlineExceeded
		case c.rlen > 0:
			return c.readLocked(b), nil
		case c.eof:
			return 0, io.EOF
		case c.err != nil:
			return 0, c.err
		case len(b) == 0:
			return 0, nil
		}
		c.waitLocked(c.rdl.Done())
	}
}

// paused reports whether the path readers wait for Read.
func (c *Conn) paused() bool { return c.rlen >= maxBuffered || len(c.rbuf) >= maxBufferedFrames }

func (c *Conn) readLocked(b []byte) int {
	was := c.paused()
	n := 0
	for n < len(b) && len(c.rbuf) > 0 {
		m := copy(b[n:], c.rbuf[0])
		n += m
		if m < len(c.rbuf[0]) {
			c.rbuf[0] = c.rbuf[0][m:]
			break
		}
		c.rbuf[0] = nil
		c.rbuf = c.rbuf[1:]
	}
	c.rlen -= n
	if was && !c.paused() {
		c.wakeLocked() // paused path readers may go on
	}
	return n
}

// Write queues b as DATA frames on every path with room and returns; it
// blocks only while every path is over its limit.
func (c *Conn) Write(b []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if len(b) == 0 {
		c.mu.Lock()
		defer c.unlock()
		return 0, c.writeErrLocked()
	}
	n := 0
	for n < len(b) {
		m := min(len(b)-n, maxFramePayload)
		frame := AppendData(make([]byte, 0, DataHeaderLen+m), 0, b[n:n+m])
		if err := c.send(frame); err != nil {
			return n, err
		}
		n += m
	}
	return n, nil
}

// send numbers frame and queues it on every path that has room.
func (c *Conn) send(frame []byte) error {
	c.mu.Lock()
	defer c.unlock()
	for {
		if err := c.writeErrLocked(); err != nil {
			return err
		}
		if c.wdl.Expired() {
			return os.ErrDeadlineExceeded
		}
		if c.canSendLocked() {
			break
		}
		c.waitLocked(c.wdl.Done())
	}
	c.pn++
	binary.BigEndian.PutUint64(frame[1:], c.pn)
	for p := range c.paths {
		if p.canSendLocked() {
			p.queueLocked(frame)
		}
	}
	return nil
}

func (c *Conn) canSendLocked() bool {
	for p := range c.paths {
		if p.canSendLocked() {
			return true
		}
	}
	return false
}

func (c *Conn) writeErrLocked() error {
	switch {
	case c.closed:
		return net.ErrClosed
	case c.err != nil:
		return c.err
	case c.wclosed:
		return ErrWriteClosed
	}
	return nil
}

// CloseWrite sends FIN on every path after the queued data and then shuts
// the sub-connections' write side. Reading goes on.
func (c *Conn) CloseWrite() error {
	c.mu.Lock()
	defer c.unlock()
	if c.closed {
		return net.ErrClosed
	}
	c.closeWriteLocked()
	return c.err
}

func (c *Conn) closeWriteLocked() {
	if c.wclosed {
		return
	}
	c.wclosed = true
	if c.err != nil {
		return
	}
	for p := range c.paths {
		p.queueFinLocked()
	}
	c.wakeLocked()
}

// Close sends FIN if CloseWrite was not called, waits up to flushTimeout
// for the queued frames to be written, then closes every sub-connection and
// waits for the path goroutines.
func (c *Conn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.unlock()
		return net.ErrClosed
	}
	c.closeWriteLocked()
	c.closed = true
	c.stopGraceLocked()
	var flushed []<-chan struct{}
	for p := range c.paths {
		flushed = append(flushed, p.flushed)
	}
	c.wakeLocked()
	c.unlock()

	timer := time.NewTimer(flushTimeout)
	defer timer.Stop()
wait:
	for _, ch := range flushed {
		select {
		case <-ch:
		case <-timer.C:
			break wait
		}
	}

	c.mu.Lock()
	for p := range c.paths {
		c.dropPathLocked(p, nil)
	}
	c.unlock()
	c.wg.Wait()
	c.rdl.Set(time.Time{})
	c.wdl.Set(time.Time{})
	return nil
}

func (c *Conn) SetDeadline(t time.Time) error {
	c.SetReadDeadline(t)
	return c.SetWriteDeadline(t)
}

func (c *Conn) SetReadDeadline(t time.Time) error {
	c.rdl.Set(t)
	c.wake()
	return nil
}

func (c *Conn) SetWriteDeadline(t time.Time) error {
	c.wdl.Set(t)
	c.wake()
	return nil
}

func (c *Conn) LocalAddr() net.Addr {
	if c.opts.LocalAddr != nil {
		return c.opts.LocalAddr
	}
	return addr{}
}

func (c *Conn) RemoteAddr() net.Addr {
	if c.opts.RemoteAddr != nil {
		return c.opts.RemoteAddr
	}
	return addr{}
}

// addr stands in when Options give no address.
type addr struct{}

func (addr) Network() string { return "mptp" }
func (addr) String() string  { return "mptp-v1" }
