package leaf

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
)

// Frames with no body, shared by every path (never modified).
var (
	finFrame  = []byte{TypeFin}
	rstFrame  = []byte{TypeRst}
	pongFrame = []byte{TypePong}
)

// path is one sub-connection of a Conn, with one reader and one writer
// goroutine.
type path struct {
	c       *Conn
	sub     net.Conn
	kick    chan struct{} // wakes the writer
	quit    chan struct{} // closed when the path is dropped
	flushed chan struct{} // closed once FIN or RST is written, or on drop

	// Guarded by c.mu.
	queue, spare [][]byte // frames to write; spare is reused
	queued       int      // bytes queued or being written
	finQueued    bool     // nothing may follow FIN
	rstQueued    bool     // nor RST
	finRecv      bool
	dead         bool
	isFlushed    bool
}

func newPath(c *Conn, sub net.Conn) *path {
	return &path{
		c:       c,
		sub:     sub,
		kick:    make(chan struct{}, 1),
		quit:    make(chan struct{}),
		flushed: make(chan struct{}),
	}
}

// canSendLocked reports whether new DATA goes on this path.
func (p *path) canSendLocked() bool {
	return !p.finQueued && !p.rstQueued && p.queued <= pathLimit
}

func (p *path) queueLocked(frame []byte) {
	p.queue = append(p.queue, frame)
	p.queued += len(frame)
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

func (p *path) queueFinLocked() {
	if p.finQueued || p.rstQueued {
		return
	}
	p.queueLocked(finFrame)
	p.finQueued = true
}

// queueRstLocked replaces the unsent frames with an RST.
func (p *path) queueRstLocked() {
	for _, f := range p.queue {
		p.queued -= len(f)
	}
	clear(p.queue)
	p.queue = p.queue[:0]
	p.queueLocked(rstFrame)
	p.rstQueued = true
}

func (p *path) markFlushedLocked() {
	if !p.isFlushed {
		p.isFlushed = true
		close(p.flushed)
	}
}

// writeLoop writes the queue in batches, one vectored write each, so small
// frames coalesce. It ends after FIN or RST, or when the path dies.
func (p *path) writeLoop() {
	c := p.c
	defer c.wg.Done()
	for {
		c.mu.Lock()
		for len(p.queue) == 0 && !p.dead {
			c.unlock()
			select {
			case <-p.kick:
			case <-p.quit:
			}
			c.mu.Lock()
		}
		if p.dead {
			c.unlock()
			return
		}
		batch := p.queue
		p.queue, p.spare = p.spare, nil
		// FIN and RST come last, so they are in this batch if queued.
		fin, rst := p.finQueued, p.rstQueued
		c.unlock()

		size := 0
		for _, f := range batch {
			size += len(f)
		}
		bufs := net.Buffers(batch)
		_, err := bufs.WriteTo(p.sub)
		clear(batch)

		c.mu.Lock()
		p.queued -= size
		p.spare = batch[:0]
		c.wakeLocked() // a Write may be waiting for room
		switch {
		case err != nil:
			c.dropPathLocked(p, fmt.Errorf("write: %w", err))
		case rst:
			c.dropPathLocked(p, nil)
		case fin:
			p.markFlushedLocked()
		}
		c.unlock()
		if err != nil || rst {
			return
		}
		if fin {
			if cw, ok := p.sub.(interface{ CloseWrite() error }); ok {
				cw.CloseWrite()
			}
			return
		}
	}
}

// readLoop reads frames until the path ends.
func (p *path) readLoop() {
	c := p.c
	defer c.wg.Done()
	br := bufio.NewReaderSize(p.sub, 32<<10)
	for {
		f, err := ReadFrame(br, c.opts.MaxPayload)
		if err != nil {
			c.readDone(p, err)
			return
		}
		if !c.handle(p, f) {
			return
		}
	}
}

// handle takes one frame from p; false stops p's reader.
func (c *Conn) handle(p *path, f Frame) bool {
	c.mu.Lock()
	defer c.unlock()
	if p.dead {
		return false
	}
	switch f.Type {
	case TypeData:
		return c.dataLocked(p, f)
	case TypePing:
		// A PONG right behind another adds nothing: a peer that pings
		// and does not read must not grow the queue.
		if n := len(p.queue); !p.finQueued && !p.rstQueued && (n == 0 || &p.queue[n-1][0] != &pongFrame[0]) {
			p.queueLocked(pongFrame)
		}
	case TypeFin:
		p.finRecv = true
		c.finSeen = true
		c.checkEOFLocked()
	case TypeRst:
		c.failLocked(ErrReset, false)
	}
	return !p.dead
}

// readDone ends p's read side.
func (c *Conn) readDone(p *path, err error) {
	c.mu.Lock()
	defer c.unlock()
	switch {
	case p.dead:
	case errors.Is(err, ErrFrameTooLarge):
		c.failLocked(fmt.Errorf("%w: %w", ErrProtocol, err), true)
	case err == io.EOF && p.finRecv:
		// The peer shut this direction after FIN: keep the path for writing.
	default:
		c.dropPathLocked(p, fmt.Errorf("read: %w", err))
	}
}
