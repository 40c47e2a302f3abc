// Package socks is the SOCKS5 inbound (RFC 1928, with RFC 1929
// username/password authentication): it accepts CONNECT requests and hands
// them to the inbound's Dialer.
package socks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/mptp/mptp/inbound"
)

func init() {
	inbound.Register("socks", newServer)
}

// acceptRetry is the pause after a failed Accept (such as EMFILE), so that
// the loop does not spin while the condition lasts.
const acceptRetry = 100 * time.Millisecond

type server struct {
	ctx      *inbound.Context
	log      *slog.Logger
	accounts map[string]string // nil: no authentication
	udp      udpConfig

	// life is cancelled by Close, which aborts dials in progress.
	life   context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	ln      net.Listener
	conns   map[net.Conn]struct{} // client and outbound conns, for Close
	udpByIP map[string]int        // live UDP associations per client IP
	closed  bool

	wg sync.WaitGroup
}

func newServer(ctx *inbound.Context, raw json.RawMessage) (inbound.Inbound, error) {
	accounts, udp, err := parseSettings(raw, ctx.Path, ctx.Warn)
	if err != nil {
		return nil, err
	}
	// A config check builds inbounds without a logger.
	log := ctx.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	life, cancel := context.WithCancel(context.Background())
	return &server{
		ctx:      ctx,
		log:      log,
		accounts: accounts,
		udp:      udp,
		udpByIP:  map[string]int{},
		life:     life,
		cancel:   cancel,
		conns:    map[net.Conn]struct{}{},
	}, nil
}

func (s *server) Tag() string { return s.ctx.Tag }

func (s *server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.ln != nil {
		return errors.New(s.ctx.Path + ": socks inbound already started or closed")
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(s.ctx.Address, strconv.Itoa(s.ctx.Port)))
	if err != nil {
		return fmt.Errorf("%s: %w", s.ctx.Path, err)
	}
	s.ln = ln
	s.wg.Go(func() { s.accept(ln) })
	return nil
}

func (s *server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Close stops accepting, ends every session and returns once all of the
// inbound's goroutines have.
func (s *server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	var err error
	if s.ln != nil {
		err = s.ln.Close()
	}
	for c := range s.conns {
		c.Close()
	}
	// After the conns, so that an aborted dial finds its client gone and
	// sends no reply.
	s.cancel()
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

func (s *server) accept(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			s.log.Warn("socks accept failed", "err", err)
			select {
			case <-s.life.Done():
				return
			case <-time.After(acceptRetry):
			}
			continue
		}
		if !s.track(c) {
			return
		}
		s.wg.Go(func() {
			defer s.release(c)
			s.serve(c)
		})
	}
}

// track registers c so that Close can close it. It returns false, with c
// closed, when Close has already run.
func (s *server) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		c.Close()
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *server) release(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	c.Close()
}
