package session

import (
	"slices"
	"time"
)

// Path states, as Info reports them for each path name.
const (
	StateUp      = "up"      // a live path of this name carries data
	StateStandby = "standby" // only backup paths are live, and a primary carries the data
	StateStale   = "stale"   // the live paths of this name owe answers and are skipped
	StateDown    = "down"    // no live path has this name
)

// PathInfo is one path name's counters and its state now.
type PathInfo struct {
	Counters
	State  string
	Backup bool
	// Sub is the number of live sub-connections with this name.
	Sub int
}

// Info is a snapshot of a session for status displays and metrics.
type Info struct {
	Started time.Time
	// Written and Read count the stream bytes: those the application wrote
	// (not yet all delivered), and those received in order.
	Written, Read uint64
	Paths         []PathInfo // sorted by name
}

// Info returns a snapshot of the session and its paths.
func (s *Session) Info() Info {
	s.mu.Lock()
	defer s.mu.Unlock()
	info := Info{Started: s.start, Written: s.send.end, Read: s.recv.Next()}
	names := make([]string, 0, len(s.counters))
	for name := range s.counters {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		pi := PathInfo{Counters: *s.counters[name], State: StateDown}
		pi.Live, pi.SRTT = false, 0
		var srtt time.Duration
		for _, p := range s.paths {
			if p.name != name {
				continue
			}
			pi.Sub++
			pi.Backup = p.backup
			srtt += p.est.srtt
			switch {
			case !p.stale && !(p.backup && s.primaryUp()):
				pi.State = StateUp
			case !p.stale && pi.State != StateUp:
				pi.State = StateStandby
			case pi.State == StateDown:
				pi.State = StateStale
			}
		}
		if pi.Sub > 0 {
			pi.Live, pi.SRTT = true, srtt/time.Duration(pi.Sub)
		}
		info.Paths = append(info.Paths, pi)
	}
	return info
}

// RTT is the largest smoothed round-trip time of the live paths that carry
// data: a stream over the session waits for its slowest path, so flow
// control windows must cover that one. 0 with no such path.
func (s *Session) RTT() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	var rtt time.Duration
	for _, p := range s.paths {
		if p.usable() {
			rtt = max(rtt, p.est.srtt)
		}
	}
	return rtt
}
