package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mptp/mptp/api"
	"github.com/mptp/mptp/config"
)

const statusUsage = `Usage: mptp status [--api ADDR:PORT | -c FILE]

Shows the sessions, streams and paths of a running mptp, from the JSON
API its config's "api" section serves: with -c, the API of that config;
with neither option, ` + defaultAPI + `.

Options:
`

// defaultAPI is where mptp status looks without --api or -c.
const defaultAPI = "127.0.0.1:9090"

func status(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("mptp status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, statusUsage); fs.PrintDefaults() }
	addr := fs.String("api", "", "the API's `ADDR:PORT`")
	file := fs.String("c", "", "read the API's address from config `FILE`")
	if code, done := parse(fs, args); done {
		return code
	}
	target, err := apiAddress(*addr, *file)
	if err != nil {
		fmt.Fprintln(stderr, "mptp status:", err)
		return 2
	}
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get("http://" + target + "/api/status")
	if err != nil {
		fmt.Fprintf(stderr, "mptp status: %v (is the config's \"api\" section set, and mptp running?)\n", err)
		return 1
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "mptp status: %s answered %s\n", target, resp.Status)
		return 1
	}
	var report api.Report
	if err := json.NewDecoder(resp.Body).Decode(&report); err != nil {
		fmt.Fprintf(stderr, "mptp status: %s: %v\n", target, err)
		return 1
	}
	printReport(stdout, report)
	return 0
}

// apiAddress is the address to ask: --api, else the config's, else the
// default. A config's wildcard address is asked on loopback.
func apiAddress(flagAddr, file string) (string, error) {
	switch {
	case flagAddr != "" && file != "":
		return "", errors.New("give --api or -c, not both")
	case flagAddr != "":
		if _, _, err := splitPort(flagAddr); err != nil {
			return "", fmt.Errorf("--api: %w", err)
		}
		return flagAddr, nil
	case file == "":
		return defaultAPI, nil
	}
	cfg, _, err := config.Load(file)
	if err != nil {
		return "", err
	}
	if cfg.API == nil {
		return "", fmt.Errorf("%s has no \"api\" section", file)
	}
	host := cfg.API.Address
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
		if ip.To4() == nil {
			host = "::1"
		}
	}
	return net.JoinHostPort(host, strconv.Itoa(cfg.API.Port)), nil
}

func printReport(w io.Writer, r api.Report) {
	if len(r.Sources) == 0 {
		fmt.Fprintln(w, "no mptp client or server in this process")
	}
	for i, src := range r.Sources {
		if i > 0 {
			fmt.Fprintln(w)
		}
		line := fmt.Sprintf("%s %s: sessions open %d, total %d; streams open %d, total %d; UDP associations %d",
			src.Side, src.Tag, src.SessionsOpen, src.SessionsTotal, src.Streams.Open, src.Streams.Total, src.UDPAssociations)
		if src.Side == "server" {
			line += "; handshakes refused: " + refusals(src.Refusals) + "; streams refused: " + refusals(src.Streams.Refused)
		}
		fmt.Fprintln(w, line)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "PATH\tSTATE\tRTT\tSEND/s\tRECV/s\tSENT\tRECEIVED\tRETRANS\tFAILS\t")
		for _, p := range src.Paths {
			name := p.Name
			if p.Backup {
				name += " (backup)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t\n", name, p.State, rtt(p.RTTms),
				size(p.RateSent), size(p.RateReceived), size(float64(p.BytesSent)), size(float64(p.BytesReceived)),
				size(float64(p.Retransmitted)), p.Fails)
		}
		tw.Flush()
		if len(src.Sessions) == 0 {
			continue
		}
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "SESSION\tTARGET\tAGE\tSTREAMS\tSEND/s\tRECV/s\tSENT\tRECEIVED\tPATHS (RTT)")
		for _, s := range src.Sessions {
			var paths []string
			for _, p := range s.Paths {
				paths = append(paths, fmt.Sprintf("%s %s %s", p.Name, p.State, rtt(p.RTTms)))
			}
			streams := "-"
			if s.Tunnel {
				streams = strconv.Itoa(s.StreamsOpen)
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, s.Target,
				r.Time.Sub(s.Started).Round(time.Second), streams, size(s.RateSent), size(s.RateReceived),
				size(float64(s.BytesSent)), size(float64(s.BytesReceived)), strings.Join(paths, ", "))
		}
		tw.Flush()
		printStreams(w, src.Sessions)
	}
}

// printStreams lists the tunnels' open streams, one table for all, and
// says where a tunnel has more than it lists.
func printStreams(w io.Writer, sessions []api.SessionReport) {
	var more []string
	n := 0
	for _, s := range sessions {
		n += len(s.Streams)
		if s.StreamsOpen > len(s.Streams) {
			more = append(more, fmt.Sprintf("session %d has %d streams open, the oldest %d listed", s.ID, s.StreamsOpen, len(s.Streams)))
		}
	}
	if n == 0 {
		return
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SESSION\tSTREAM\tTARGET\tSENT\tRECEIVED")
	for _, s := range sessions {
		for _, st := range s.Streams {
			fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%s\n", s.ID, st.ID, st.Target,
				size(float64(st.BytesSent)), size(float64(st.BytesReceived)))
		}
	}
	tw.Flush()
	for _, line := range more {
		fmt.Fprintln(w, line)
	}
}

func refusals(m map[string]uint64) string {
	if len(m) == 0 {
		return "none"
	}
	var out []string
	for reason, n := range m {
		out = append(out, fmt.Sprintf("%s %d", reason, n))
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

func rtt(ms float64) string {
	if ms <= 0 {
		return "-"
	}
	if ms < 10 {
		return strconv.FormatFloat(ms, 'f', 2, 64) + "ms"
	}
	return strconv.FormatFloat(ms, 'f', 0, 64) + "ms"
}

// size writes a byte count (or rate) with a binary unit.
func size(n float64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for n >= 1024 && i < len(units)-1 {
		n /= 1024
		i++
	}
	if i == 0 {
		return strconv.FormatFloat(n, 'f', 0, 64) + "B"
	}
	return strconv.FormatFloat(n, 'f', 1, 64) + units[i]
}
