package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"image/color"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/mptp/mptp/api"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

func init() { register("plot", plotCase) }

const apiPort = 9090

// sample is one reading of the mptp client's /api/status: the bytes each
// path has received so far.
type sample struct {
	T     float64           `json:"t"`
	Paths map[string]uint64 `json:"paths"`
}

// roleSample polls an mptp API and prints one sample per line.
func roleSample(args []string) error {
	fs := flag.NewFlagSet("sample", flag.ContinueOnError)
	url := fs.String("url", "", "the API's /api/status")
	every := fs.Duration("every", 250*time.Millisecond, "how often")
	seconds := fs.Float64("seconds", 30, "for how long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	start := time.Now()
	end := start.Add(time.Duration(*seconds * float64(time.Second)))
	enc := json.NewEncoder(os.Stdout)
	for t := start; t.Before(end); t = t.Add(*every) {
		time.Sleep(time.Until(t))
		resp, err := http.Get(*url)
		if err != nil {
			continue
		}
		var rep api.Report
		err = json.NewDecoder(resp.Body).Decode(&rep)
		resp.Body.Close()
		if err != nil {
			return err
		}
		s := sample{T: time.Since(start).Seconds(), Paths: map[string]uint64{}}
		for _, src := range rep.Sources {
			for _, p := range src.Paths {
				s.Paths[p.Name] += p.BytesReceived
			}
		}
		enc.Encode(s)
	}
	return nil
}

// plotCase downloads over 40 + 20 Mbit/s links while link 2 fails (its far
// end goes down) and comes back, samples what each path receives from the
// client's API, checks every byte, and draws each path's throughput over
// time.
func plotCase(o *opts) ([]Row, error) {
	if err := canLab(); err != nil {
		log.Printf("plot: skipped: %v", err)
		return nil, nil
	}
	phase := 10 * time.Second // both links; link 2 down; both again
	if o.smoke {
		phase = 2 * time.Second
	}
	total := 4 * phase
	m, err := startMptp(o, []link{{Mbit: 40}, {Mbit: 20}}, fmt.Sprintf(`
  "api": {"address": "127.0.0.1", "port": %d},`, apiPort))
	if err != nil {
		return nil, err
	}
	defer m.close()
	l := m.lab
	sampler, err := start("sampler", l.cli, o.self, "sample", "-url", fmt.Sprintf("http://127.0.0.1:%d/api/status", apiPort),
		"-every", "250ms", "-seconds", fmt.Sprint(total.Seconds()))
	if err != nil {
		return nil, err
	}
	defer sampler.stop()
	dl, err := start("download", l.cli, o.self, "fetch", "-target", sourceAddr, "-socks", fmt.Sprintf("127.0.0.1:%d", socksPort),
		"-verify", "-seconds", fmt.Sprint(total.Seconds()-0.5))
	if err != nil {
		return nil, err
	}
	time.Sleep(phase)
	if err := l.setLink(2, false); err != nil {
		return nil, err
	}
	time.Sleep(phase)
	if err := l.setLink(2, true); err != nil {
		return nil, err
	}
	<-dl.done
	<-sampler.done
	var res fetchResult
	if err := json.Unmarshal([]byte(dl.log.String()), &res); err != nil || dl.cmd.ProcessState.ExitCode() != 0 {
		return nil, fmt.Errorf("the download through a failing path failed: %s (client log: %s)", dl.log, m.client.log)
	}
	samples, err := readSamples(sampler.log.String())
	if err != nil {
		return nil, err
	}
	png := filepath.Join(o.out, "failover.png")
	if err := drawFailover(png, samples, phase); err != nil {
		return nil, err
	}
	log.Printf("plot: wrote %s", png)

	name := "40+20 Mbit/s, link 2 down for " + phase.String()
	rate := func(from, to time.Duration) float64 { return totalRate(samples, from.Seconds(), to.Seconds()) }
	both := rate(time.Second, phase)
	rows := []Row{
		{Group: "failover", Case: name, What: "both links", Value: both, Unit: "Mbit/s"},
		{Group: "failover", Case: name, What: "link 2 down", Value: rate(phase+time.Second, 2*phase), Unit: "Mbit/s", Base: "both links"},
		{Group: "failover", Case: name, What: "link 2 back", Value: rate(3*phase, 4*phase), Unit: "Mbit/s", Base: "both links"},
		{Group: "failover", Case: name, What: "bytes checked, none lost", Value: float64(res.Bytes) / 1e6, Unit: "MB"},
		{Group: "failover", Case: name, What: "link 2 carries again after", Value: backAfter(samples, "link2", 2*phase.Seconds()), Unit: "s"},
	}
	ratios(rows)
	return rows, nil
}

func readSamples(out string) ([]sample, error) {
	var ss []sample
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if !strings.HasPrefix(sc.Text(), "{") {
			continue
		}
		var s sample
		if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
			return nil, err
		}
		ss = append(ss, s)
	}
	if len(ss) < 4 {
		return nil, fmt.Errorf("only %d samples from the API: %s", len(ss), out)
	}
	return ss, nil
}

// totalRate is the Mbit/s all paths received between from and to seconds.
func totalRate(ss []sample, from, to float64) float64 {
	var a, b *sample
	for i := range ss {
		if a == nil && ss[i].T >= from {
			a = &ss[i]
		}
		if ss[i].T <= to {
			b = &ss[i]
		}
	}
	if a == nil || b == nil || b.T <= a.T {
		return 0
	}
	var n float64
	for name, v := range b.Paths {
		n += float64(v - a.Paths[name])
	}
	return n * 8 / (b.T - a.T) / 1e6
}

// backAfter is how long after at the path first received bytes again.
func backAfter(ss []sample, name string, at float64) float64 {
	for i := 1; i < len(ss); i++ {
		if ss[i].T > at && ss[i].Paths[name] > ss[i-1].Paths[name] {
			return ss[i].T - at
		}
	}
	return -1
}

func drawFailover(file string, ss []sample, phase time.Duration) error {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("mptp: 40 + 20 Mbit/s links, link 2 down from %gs to %gs", phase.Seconds(), 2*phase.Seconds())
	p.X.Label.Text = "seconds"
	p.Y.Label.Text = "Mbit/s"
	var names []string
	for name := range ss[len(ss)-1].Paths {
		names = append(names, name)
	}
	sort.Strings(names)
	colors := []color.Color{color.RGBA{0x1f, 0x77, 0xb4, 255}, color.RGBA{0xd6, 0x27, 0x28, 255},
		color.RGBA{0x2c, 0xa0, 0x2c, 255}, color.RGBA{0x70, 0x70, 0x70, 255}}
	series := func(rate func(a, b sample) float64) plotter.XYs {
		var xy plotter.XYs
		for i := 1; i < len(ss); i++ {
			xy = append(xy, plotter.XY{X: ss[i].T, Y: rate(ss[i-1], ss[i])})
		}
		return xy
	}
	for i, name := range append(names, "total") {
		xy := series(func(a, b sample) float64 {
			var n float64
			for _, k := range names {
				if name == "total" || k == name {
					n += float64(b.Paths[k] - a.Paths[k])
				}
			}
			return n * 8 / (b.T - a.T) / 1e6
		})
		line, err := plotter.NewLine(xy)
		if err != nil {
			return err
		}
		line.Color = colors[min(i, len(colors)-1)]
		line.Width = vg.Points(1.5)
		if name == "total" {
			line.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		}
		p.Add(line)
		p.Legend.Add(name, line)
	}
	p.Legend.Top = true
	p.Y.Min = 0
	p.Add(plotter.NewGrid())
	return p.Save(8*vg.Inch, 4*vg.Inch, file)
}
