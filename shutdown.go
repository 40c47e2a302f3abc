package mptp

import (
	"context"
	"time"

	"github.com/mptp/mptp/internal/mux"
)

// drainPoll is how often Shutdown looks whether the sessions have ended.
const drainPoll = 50 * time.Millisecond

// Shutdown stops accepting sub-connections (so no new session starts and
// no path joins), waits until every session has ended or ctx is done, and
// then closes the server, resetting the sessions left. It returns ctx's
// error when sessions had to be cut.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.init()
	s.draining = true
	for _, ln := range s.lns {
		ln.Close()
	}
	// Tunnels take no new streams and close once their streams end; the
	// clients open new tunnels elsewhere.
	for t := range s.tunnels {
		t.Drain(mux.RstShutdown, "server draining")
	}
	s.mu.Unlock()
	tick := time.NewTicker(drainPoll)
	defer tick.Stop()
	for !s.idle() {
		select {
		case <-ctx.Done():
			s.Close()
			return ctx.Err()
		case <-tick.C:
		}
	}
	return s.Close()
}

// idle reports whether no session lives and no handshake is under way.
func (s *Server) idle() bool {
	return s.v1Count.Load() == 0 && s.door.Idle()
}
