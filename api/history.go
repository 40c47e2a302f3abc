package api

import (
	"strconv"
	"sync"
	"time"
)

// maxSeries bounds the paths the chart follows; a server sees a new path
// name for each new peer address.
const maxSeries = 64

// sampler takes a Report every interval, from which it derives each path's
// and session's throughput, and keeps the paths' throughput for the chart.
type sampler struct {
	interval time.Duration
	window   time.Duration
	keep     int // samples kept: window / interval

	mu       sync.Mutex
	prevAt   time.Time
	prev     map[string][2]uint64  // bytes sent and received, by path or session key
	rates    map[string][2]float64 // bytes per second, by the same keys
	times    []int64
	series   map[string]*Series
	order    []string // series keys, first seen first
	lastSeen map[string]bool
}

func newSampler(interval, window time.Duration) *sampler {
	return &sampler{interval: interval, window: window, keep: max(2, int(window/interval)),
		prev: map[string][2]uint64{}, rates: map[string][2]float64{}, series: map[string]*Series{}}
}

func pathKey(r *SourceReport, name string) string { return r.Side + "\x00" + r.Tag + "\x00" + name }

func sessionKey(r *SourceReport, id uint64) string {
	return r.Side + "\x00" + r.Tag + "\x00#" + strconv.FormatUint(id, 10)
}

// sample records the report taken at now.
func (s *sampler) sample(now time.Time, reports []SourceReport) {
	s.mu.Lock()
	defer s.mu.Unlock()
	dt := now.Sub(s.prevAt).Seconds()
	first := s.prevAt.IsZero()
	prev := s.prev
	s.prev, s.rates = map[string][2]uint64{}, map[string][2]float64{}
	rate := func(key string, sent, rcvd uint64) [2]float64 {
		s.prev[key] = [2]uint64{sent, rcvd}
		p, ok := prev[key]
		if first || !ok || dt <= 0 {
			return [2]float64{}
		}
		r := [2]float64{perSecond(sent, p[0], dt), perSecond(rcvd, p[1], dt)}
		s.rates[key] = r
		return r
	}
	cur := map[string]float64{}
	for i := range reports {
		r := &reports[i]
		for _, p := range r.Paths {
			k := pathKey(r, p.Name)
			rt := rate(k, p.BytesSent, p.BytesReceived)
			cur[k] = rt[0] + rt[1]
			if s.series[k] == nil && len(s.series) < maxSeries {
				s.series[k] = &Series{Side: r.Side, Tag: r.Tag, Path: p.Name, Rates: make([]float64, len(s.times))}
				s.order = append(s.order, k)
			}
		}
		for _, ss := range r.Sessions {
			k := sessionKey(r, ss.ID)
			rate(k, ss.BytesSent, ss.BytesReceived)
			for _, p := range ss.Paths {
				rate(k+"\x00"+p.Name, p.BytesSent, p.BytesReceived)
			}
		}
	}
	s.prevAt = now
	s.times = append(s.times, now.UnixMilli())
	drop := len(s.times) > s.keep
	if drop {
		s.times = s.times[1:]
	}
	kept := s.order[:0]
	for _, k := range s.order {
		se := s.series[k]
		se.Rates = append(se.Rates, cur[k])
		if drop {
			se.Rates = se.Rates[1:]
		}
		if _, present := cur[k]; !present && allZero(se.Rates) {
			delete(s.series, k) // a path gone for the whole window
			continue
		}
		kept = append(kept, k)
	}
	s.order = kept
}

func perSecond(cur, prev uint64, dt float64) float64 {
	if cur < prev {
		return 0
	}
	return float64(cur-prev) / dt
}

func allZero(v []float64) bool {
	for _, x := range v {
		if x != 0 {
			return false
		}
	}
	return true
}

// fill sets the rates of reports from the last sample.
func (s *sampler) fill(reports []SourceReport) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range reports {
		r := &reports[i]
		for j := range r.Paths {
			p := &r.Paths[j]
			rt := s.rates[pathKey(r, p.Name)]
			p.RateSent, p.RateReceived = rt[0], rt[1]
		}
		for j := range r.Sessions {
			ss := &r.Sessions[j]
			k := sessionKey(r, ss.ID)
			rt := s.rates[k]
			ss.RateSent, ss.RateReceived = rt[0], rt[1]
			for n := range ss.Paths {
				p := &ss.Paths[n]
				rt := s.rates[k+"\x00"+p.Name]
				p.RateSent, p.RateReceived = rt[0], rt[1]
			}
		}
	}
}

func (s *sampler) history() History {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := History{Interval: s.interval.Seconds(), Window: s.window.Seconds(), Times: append([]int64{}, s.times...), Series: []Series{}}
	for _, k := range s.order {
		se := *s.series[k]
		se.Rates = append([]float64{}, se.Rates...)
		h.Series = append(h.Series, se)
	}
	return h
}
