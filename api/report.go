package api

import (
	"time"

	"github.com/mptp/mptp"
)

// The JSON that /api/status serves, and `mptp status` and the page read.

// Report is the state of every source at one moment.
type Report struct {
	Time    time.Time      `json:"time"`
	Sources []SourceReport `json:"sources"`
}

// SourceReport is one client (an mptp outbound) or server (an mptp inbound).
type SourceReport struct {
	Side            string            `json:"side"` // "client" or "server"
	Tag             string            `json:"tag"`
	SessionsOpen    int               `json:"sessions_open"`
	SessionsTotal   uint64            `json:"sessions_total"`
	Refusals        map[string]uint64 `json:"refusals"` // handshake refusals by reason
	UDPAssociations int64             `json:"udp_associations"`
	Streams         StreamsReport     `json:"streams"`
	Paths           []PathReport      `json:"paths"`
	Sessions        []SessionReport   `json:"sessions"`
}

// StreamsReport counts the connections carried in tunnels: open now,
// opened since the start, and (a server's) refused, by the limit that
// refused them or the target's answer.
type StreamsReport struct {
	Open    int64             `json:"open"`
	Total   uint64            `json:"total"`
	Refused map[string]uint64 `json:"refused"`
}

// PathReport is a path: its totals, its state and its throughput now.
type PathReport struct {
	Name          string  `json:"name"`
	State         string  `json:"state"` // up, standby, stale or down
	Backup        bool    `json:"backup"`
	RTTms         float64 `json:"rtt_ms"` // 0 when down
	BytesSent     uint64  `json:"bytes_sent"`
	BytesReceived uint64  `json:"bytes_received"`
	Retransmitted uint64  `json:"retransmitted"`
	Rescued       uint64  `json:"rescued"`    // of Retransmitted: copies of chunks another path held
	Duplicates    uint64  `json:"duplicates"` // received twice, dropped
	Joins         uint64  `json:"joins"`
	Fails         uint64  `json:"fails"`
	Stalls        uint64  `json:"stalls"`
	// RateSent and RateReceived are bytes per second over the last
	// sampling interval.
	RateSent     float64 `json:"rate_sent"`
	RateReceived float64 `json:"rate_received"`
}

// SessionReport is a live session.
type SessionReport struct {
	ID            uint64       `json:"id"`
	Target        string       `json:"target"` // "tunnel" for a tunnel
	Tunnel        bool         `json:"tunnel"`
	Started       time.Time    `json:"started"`
	BytesSent     uint64       `json:"bytes_sent"` // stream bytes
	BytesReceived uint64       `json:"bytes_received"`
	RateSent      float64      `json:"rate_sent"`
	RateReceived  float64      `json:"rate_received"`
	Paths         []PathReport `json:"paths"`
	// A tunnel's streams: how many are open, and the oldest of them (at
	// most 100).
	StreamsOpen int            `json:"streams_open"`
	Streams     []StreamReport `json:"streams"`
}

// StreamReport is an open stream of a tunnel: a connection to its target.
type StreamReport struct {
	ID            uint32 `json:"id"`
	Target        string `json:"target"`
	BytesSent     uint64 `json:"bytes_sent"`
	BytesReceived uint64 `json:"bytes_received"`
}

// History is each path's throughput over the last minutes, for the chart.
type History struct {
	Interval float64  `json:"interval"` // seconds between samples
	Window   float64  `json:"window"`   // seconds of history kept
	Times    []int64  `json:"times"`    // of the samples, Unix milliseconds, oldest first
	Series   []Series `json:"series"`
}

// Series is one path's throughput, sent plus received, in bytes per
// second: one value per sample time.
type Series struct {
	Side  string    `json:"side"`
	Tag   string    `json:"tag"`
	Path  string    `json:"path"`
	Rates []float64 `json:"rates"`
}

func sourceReport(src Source, st mptp.Status) SourceReport {
	r := SourceReport{Side: src.Side, Tag: src.Tag, SessionsOpen: st.SessionsOpen, SessionsTotal: st.SessionsTotal,
		Refusals: st.Refusals, UDPAssociations: st.UDPAssociations,
		Streams: StreamsReport{Open: st.Streams.Open, Total: st.Streams.Total, Refused: st.Streams.Refused},
		Paths:   []PathReport{}, Sessions: []SessionReport{}}
	// Empty maps, not null, for the page and scripts.
	if r.Refusals == nil {
		r.Refusals = map[string]uint64{}
	}
	if r.Streams.Refused == nil {
		r.Streams.Refused = map[string]uint64{}
	}
	for _, p := range st.Paths {
		r.Paths = append(r.Paths, pathReport(p))
	}
	for _, s := range st.Sessions {
		sr := SessionReport{ID: s.ID, Target: s.Target, Tunnel: s.Tunnel, Started: s.Started,
			BytesSent: s.Sent, BytesReceived: s.Received, Paths: []PathReport{},
			StreamsOpen: s.StreamsOpen, Streams: []StreamReport{}}
		for _, p := range s.Paths {
			sr.Paths = append(sr.Paths, pathReport(p))
		}
		for _, si := range s.Streams {
			sr.Streams = append(sr.Streams, StreamReport{ID: si.ID, Target: si.Target,
				BytesSent: si.Sent, BytesReceived: si.Received})
		}
		r.Sessions = append(r.Sessions, sr)
	}
	return r
}

func pathReport(p mptp.PathStatus) PathReport {
	return PathReport{Name: p.Name, State: p.State, Backup: p.Backup, RTTms: float64(p.RTT) / float64(time.Millisecond),
		BytesSent: p.BytesSent, BytesReceived: p.BytesReceived, Retransmitted: p.Retransmitted,
		Rescued: p.Rescued, Duplicates: p.Duplicates, Joins: p.Joins, Fails: p.Fails, Stalls: p.Stalls}
}
