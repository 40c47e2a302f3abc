package api

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromium is Debian's browser, which the page is tested in.
const chromium = "/usr/bin/chromium"

// pageRow is what the page shows of a path: a row of a paths table, or an
// entry of the chart's legend.
type pageRow struct {
	Path  string  `json:"path"`
	State string  `json:"state"`
	Rate  float64 `json:"rate"`
}

// pageStream is a row of a tunnel's streams table: its target, and the
// bytes it moved both ways.
type pageStream struct {
	Target string  `json:"target"`
	Bytes  float64 `json:"bytes"`
}

// pageState is what the page shows: the paths tables' rows, the chart's
// legend, the streams tables' rows, and the text of the sources' part.
type pageState struct {
	Rows    []pageRow    `json:"rows"`
	Legend  []pageRow    `json:"legend"`
	Streams []pageStream `json:"streams"`
	Text    string       `json:"text"`
}

const readPage = `({
	rows: Array.from(document.querySelectorAll("table.paths tr.path")).map(
		(tr) => ({path: tr.dataset.path, state: tr.dataset.state, rate: Number(tr.dataset.rate)})),
	legend: Array.from(document.querySelectorAll("#legend li.series")).map(
		(li) => ({path: li.dataset.path, rate: Number(li.dataset.last)})),
	streams: Array.from(document.querySelectorAll("table.streams tr.stream")).map(
		(tr) => ({target: tr.dataset.target, bytes: Number(tr.dataset.bytes)})),
	text: document.getElementById("sources").innerText,
})`

// TestPageInBrowser loads the status page in headless Chromium during a
// download and waits until it shows both client paths up with throughput,
// in the table and in the chart's legend, and the download's stream with
// bytes in both sides' tunnels.
func TestPageInBrowser(t *testing.T) {
	if _, err := os.Stat(chromium); err != nil {
		t.Skipf("%s is missing (Debian package chromium): the status page is not tested in a browser", chromium)
	}
	r := newRig(t)
	stop := r.stream(t)

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.NoSandbox, // as root
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	// Bounds a broken page or browser, not a measurement.
	ctx, cancelTimeout := context.WithTimeout(ctx, 2*time.Minute)
	defer cancelTimeout()

	if _, err := chromedp.Run(ctx, chromedp.Navigate(r.base+"/")); err != nil {
		t.Fatal(err)
	}
	busy := func(list []pageRow, name string) bool {
		for _, row := range list {
			if row.Path == name && row.Rate > 0 {
				return true
			}
		}
		return false
	}
	var page pageState
	for {
		var err error
		page, err = chromedp.Run(ctx, chromedp.Evaluate[pageState](readPage))
		if err != nil {
			t.Fatalf("reading the page: %v (last read %+v)", err, page)
		}
		if busy(page.Rows, "a") && busy(page.Rows, "b") && busy(page.Legend, "a") && busy(page.Legend, "b") {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the page never showed throughput on both paths: %+v", page)
		case <-time.After(100 * time.Millisecond):
		}
	}
	t.Logf("the page shows paths %+v; legend %+v; streams %+v", page.Rows, page.Legend, page.Streams)
	for _, row := range page.Rows {
		if (row.Path == "a" || row.Path == "b") && row.State != "up" {
			t.Errorf("path %s shows %q, want up", row.Path, row.State)
		}
	}
	// Both tunnels, the client's and the server's, list the stream.
	target, listed := r.target.ln.Addr().String(), 0
	for _, st := range page.Streams {
		if st.Target == target && st.Bytes > 0 {
			listed++
		}
	}
	if listed != 2 {
		t.Errorf("the page does not list the stream to %s, with bytes, in both tunnels:\n%s", target, page.Text)
	}
	for _, want := range []string{"streams open 1, total 1", "tunnel #1: 1 stream open"} {
		if !strings.Contains(page.Text, want) {
			t.Errorf("the page does not say %q:\n%s", want, page.Text)
		}
	}
	cancel()
	t.Logf("the stream moved %d bytes", stop())
}
