package api

import (
	"bufio"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// Metrics in the Prometheus text exposition format (version 0.0.4).

const metricsType = "text/plain; version=0.0.4; charset=utf-8"

// pathStates are the values of a path's state label, one series each.
var pathStates = []string{"up", "standby", "stale", "down"}

type label struct{ name, value string }

type sample struct {
	labels []label
	value  float64
}

type family struct {
	name, typ, help string
	samples         []sample
}

// metrics lays out reports as metric families.
func metrics(reports []SourceReport) []*family {
	fam := func(name, typ, help string) *family { return &family{name: name, typ: typ, help: help} }
	var (
		sent           = fam("mptp_path_sent_bytes_total", "counter", "DATA payload bytes sent on the path, retransmissions included.")
		rcvd           = fam("mptp_path_received_bytes_total", "counter", "DATA payload bytes received on the path.")
		retrans        = fam("mptp_path_retransmitted_bytes_total", "counter", "Bytes the path had carried that were sent again (the path failed or went silent).")
		rtt            = fam("mptp_path_rtt_seconds", "gauge", "Smoothed round-trip time of the path's live sub-connections (absent while down).")
		state          = fam("mptp_path_state", "gauge", "1 for the path's state now: up, standby (a backup while a primary works), stale (silent, skipped) or down.")
		fails          = fam("mptp_path_failures_total", "counter", "Times a sub-connection of the path failed.")
		joins          = fam("mptp_path_joins_total", "counter", "Sub-connections of the path that joined a session.")
		stalls         = fam("mptp_path_stalls_total", "counter", "Times the path was found stale.")
		rescued        = fam("mptp_path_rescued_bytes_total", "counter", "Payload bytes the path sent as copies of chunks another path still held (part of the retransmitted bytes).")
		dups           = fam("mptp_path_duplicate_bytes_total", "counter", "Payload bytes the path received that had arrived already, dropped.")
		open           = fam("mptp_sessions_open", "gauge", "Sessions open now.")
		total          = fam("mptp_sessions_total", "counter", "Sessions opened since the start.")
		refused        = fam("mptp_handshake_refusals_total", "counter", "Handshakes the server refused, by reason.")
		udp            = fam("mptp_udp_associations", "gauge", "UDP associations open now.")
		streamsOpen    = fam("mptp_streams_open", "gauge", "Streams open now: the connections carried in tunnels.")
		streamsTotal   = fam("mptp_streams_total", "counter", "Streams opened since the start.")
		streamsRefused = fam("mptp_streams_refused_total", "counter", "Streams the server refused, by reason: a limit (max_streams, stream_rate, draining) or the target's answer (connection_refused, ...).")
	)
	for _, r := range reports {
		src := []label{{"side", r.Side}, {"tag", r.Tag}}
		open.add(src, float64(r.SessionsOpen))
		total.add(src, float64(r.SessionsTotal))
		udp.add(src, float64(r.UDPAssociations))
		streamsOpen.add(src, float64(r.Streams.Open))
		streamsTotal.add(src, float64(r.Streams.Total))
		byReason(refused, src, r.Refusals)
		byReason(streamsRefused, src, r.Streams.Refused)
		for _, p := range r.Paths {
			pl := with(src, label{"path", p.Name})
			sent.add(pl, float64(p.BytesSent))
			rcvd.add(pl, float64(p.BytesReceived))
			retrans.add(pl, float64(p.Retransmitted))
			rescued.add(pl, float64(p.Rescued))
			dups.add(pl, float64(p.Duplicates))
			fails.add(pl, float64(p.Fails))
			joins.add(pl, float64(p.Joins))
			stalls.add(pl, float64(p.Stalls))
			if p.State != "down" {
				rtt.add(pl, p.RTTms/1000)
			}
			for _, s := range pathStates {
				v := 0.0
				if p.State == s {
					v = 1
				}
				state.add(with(pl, label{"state", s}), v)
			}
		}
	}
	return []*family{sent, rcvd, retrans, rescued, dups, rtt, state, fails, joins, stalls, open, total, refused, udp,
		streamsOpen, streamsTotal, streamsRefused}
}

// byReason adds a sample to f per reason of counts, sorted.
func byReason(f *family, src []label, counts map[string]uint64) {
	for _, reason := range slices.Sorted(maps.Keys(counts)) {
		f.add(with(src, label{"reason", reason}), float64(counts[reason]))
	}
}

func (f *family) add(labels []label, v float64) {
	f.samples = append(f.samples, sample{labels, v})
}

func with(labels []label, l label) []label {
	return append(slices.Clip(labels), l)
}

// writeMetrics writes families in the text format.
func writeMetrics(w io.Writer, fams []*family) error {
	bw := bufio.NewWriter(w)
	for _, f := range fams {
		bw.WriteString("# HELP " + f.name + " " + f.help + "\n")
		bw.WriteString("# TYPE " + f.name + " " + f.typ + "\n")
		for _, s := range f.samples {
			bw.WriteString(f.name)
			if len(s.labels) > 0 {
				bw.WriteByte('{')
				for i, l := range s.labels {
					if i > 0 {
						bw.WriteByte(',')
					}
					bw.WriteString(l.name + `="` + escapeLabel(l.value) + `"`)
				}
				bw.WriteByte('}')
			}
			bw.WriteString(" " + strconv.FormatFloat(s.value, 'f', -1, 64) + "\n")
		}
	}
	return bw.Flush()
}

var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

func escapeLabel(s string) string { return labelEscaper.Replace(s) }
