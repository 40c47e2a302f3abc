package socks

import "context"

// Shutdown stops accepting, lets the live sessions finish until ctx is
// done, then closes the inbound, cutting those left. It returns ctx's error
// when sessions were cut.
func (s *server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.ln != nil && !s.closed {
		s.ln.Close() // the accept loop ends
		s.ln = nil
	}
	s.mu.Unlock()
	idle := make(chan struct{})
	go func() { // ends once Close below has run, at the latest
		s.wg.Wait()
		close(idle)
	}()
	var err error
	select {
	case <-idle:
	case <-ctx.Done():
		err = ctx.Err()
	}
	s.Close()
	<-idle
	return err
}
