// Package api serves what a running mptp is doing: Prometheus metrics at
// /metrics, a status page at /, and the JSON the page and `mptp status`
// read at /api/status and /api/history.
package api

import (
	"embed"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/mptp/mptp"
)

// Source is a part of the process that has sessions: an mptp outbound (a
// client) or an mptp inbound (a server).
type Source struct {
	Side   string // "client" or "server"
	Tag    string // the outbound's or inbound's tag
	Status func() mptp.Status
}

// Defaults of Server's sampling.
const (
	DefaultInterval = time.Second
	DefaultWindow   = 5 * time.Minute
)

//go:embed web
var web embed.FS

// Server is the HTTP server of the API.
type Server struct {
	Addr    string // "host:port" to listen on
	Sources []Source
	Logger  *slog.Logger
	// Interval is how often throughput is sampled, and Window how long
	// the chart's history is. Defaults DefaultInterval and DefaultWindow.
	Interval, Window time.Duration

	sampler *sampler
	ln      net.Listener
	http    *http.Server
	stop    chan struct{}
	wg      sync.WaitGroup
}

// Start listens and serves until Close.
func (s *Server) Start() error {
	if s.Interval <= 0 {
		s.Interval = DefaultInterval
	}
	if s.Window <= 0 {
		s.Window = DefaultWindow
	}
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp", s.Addr)
	if err != nil {
		return err
	}
	s.ln = ln
	s.sampler = newSampler(s.Interval, s.Window)
	s.http = &http.Server{Handler: s.handler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(s.Logger.Handler(), slog.LevelDebug)}
	s.stop = make(chan struct{})
	s.wg.Go(func() { s.sample() })
	s.wg.Go(func() {
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.Logger.Warn("api server stopped", "err", err)
		}
	})
	return nil
}

// Listener address, once started.
func (s *Server) ListenAddr() net.Addr {
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Close stops serving and sampling.
func (s *Server) Close() error {
	if s.http == nil {
		return nil
	}
	close(s.stop)
	err := s.http.Close()
	s.wg.Wait()
	s.http = nil
	return err
}

func (s *Server) sample() {
	t := time.NewTicker(s.Interval)
	defer t.Stop()
	s.sampler.sample(time.Now(), s.reports())
	for {
		select {
		case <-s.stop:
			return
		case now := <-t.C:
			s.sampler.sample(now, s.reports())
		}
	}
}

// reports takes every source's status now.
func (s *Server) reports() []SourceReport {
	out := make([]SourceReport, 0, len(s.Sources))
	for _, src := range s.Sources {
		out = append(out, sourceReport(src, src.Status()))
	}
	return out
}

func (s *Server) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", metricsType)
		writeMetrics(w, metrics(s.reports()))
	})
	mux.HandleFunc("GET /api/status", func(w http.ResponseWriter, r *http.Request) {
		reports := s.reports()
		s.sampler.fill(reports)
		writeJSON(w, Report{Time: time.Now(), Sources: reports})
	})
	mux.HandleFunc("GET /api/history", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, s.sampler.history())
	})
	files, _ := fs.Sub(web, "web")
	static := http.FileServerFS(files)
	mux.Handle("GET /", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		static.ServeHTTP(w, r)
	}))
	return mux
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(v)
}
