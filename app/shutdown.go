package app

import (
	"context"
	"sync"
)

// drainer is an inbound that can stop accepting and let its sessions end.
type drainer interface {
	// Shutdown stops accepting, waits for the live sessions to end or ctx
	// to be done, then closes the inbound.
	Shutdown(ctx context.Context) error
}

// Shutdown stops every inbound from accepting and lets live sessions
// finish until ctx is done; then it closes everything, cutting the
// sessions left. The API keeps serving until the end, so the drain can be
// watched. It reports whether every session finished in time.
func (a *App) Shutdown(ctx context.Context) bool {
	var wg sync.WaitGroup
	var mu sync.Mutex
	clean := true
	// a.started is in the order of a.Inbounds, and so of a.names.
	for i, in := range a.started {
		d, ok := in.(drainer)
		if !ok {
			continue
		}
		wg.Go(func() {
			if err := d.Shutdown(ctx); err != nil {
				a.log.Info("sessions cut", "inbound", a.names[i], "reason", err)
				mu.Lock()
				clean = false
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	a.Close()
	return clean
}
