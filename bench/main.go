// Command bench is mptp's benchmark lab. It measures mptp against its
// anchors in one run and prints one table: every figure beside the baseline
// it is compared with, measured in the same run.
//
//	go run ./bench                  # every case (the lab needs root)
//	go run ./bench -cases loopback  # some of them
//	go run ./bench -smoke           # seconds: that the harness still works
//
// It runs its own parts as subprocesses of itself (roles: source, fetch,
// delay, connrate, scale-app, scale-target), the real mptp binary,
// Debian's danted and the kernel's MPTCP.
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// opts are the harness's settings, shared by every case.
type opts struct {
	smoke   bool
	runs    int
	seconds float64 // length of one timed transfer in the lab
	out     string  // folder for the plot and raw results
	work    string  // scratch folder
	mptp    string  // the mptp binary
	self    string  // this program, for its roles
	lab     string  // lab link sets to run, as the table names them; "" all
}

// caseFunc runs one group of cases and returns its rows.
type caseFunc func(o *opts) ([]Row, error)

var cases = map[string]caseFunc{}

// order is how the groups are run and printed.
var order = []string{"lab", "loopback", "ttfb", "connrate", "scale", "plot"}

func register(name string, f caseFunc) { cases[name] = f }

func main() {
	if len(os.Args) > 1 {
		if role, ok := roles[os.Args[1]]; ok {
			if err := role(os.Args[2:]); err != nil {
				fmt.Fprintf(os.Stderr, "bench %s: %v\n", os.Args[1], err)
				os.Exit(1)
			}
			return
		}
	}
	var o opts
	var which string
	flag.BoolVar(&o.smoke, "smoke", false, "a run of seconds: each case once, tiny")
	flag.IntVar(&o.runs, "runs", 5, "repetitions of each measurement; the table gives medians")
	flag.Float64Var(&o.seconds, "seconds", 10, "length of each timed transfer in the lab")
	flag.StringVar(&which, "cases", strings.Join(order, ","), "groups to run: "+strings.Join(order, ", "))
	flag.StringVar(&o.lab, "lab", "", "only these lab link sets, comma-separated, as the table names them (40+20, 40@4ms+20@40ms)")
	flag.StringVar(&o.out, "out", "bench/out", "folder for the plot and the raw results")
	flag.Parse()
	log.SetFlags(log.Ltime)
	log.SetPrefix("bench: ")
	if o.smoke {
		o.runs, o.seconds = 1, 2
	}
	var err error
	if o.self, err = os.Executable(); err != nil {
		log.Fatal(err)
	}
	if o.work, err = os.MkdirTemp("", "mptp-bench-"); err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(o.work)
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		log.Fatal(err)
	}
	if o.mptp, err = buildMptp(o.work); err != nil {
		log.Fatal(err)
	}
	var all []Row
	failed := false
	for _, name := range strings.Split(which, ",") {
		f, ok := cases[name]
		if !ok {
			log.Fatalf("no case group %q (have %s)", name, strings.Join(order, ", "))
		}
		log.Printf("%s: start", name)
		start := time.Now()
		rows, err := f(&o)
		if err != nil {
			log.Printf("%s: %v", name, err)
			failed = true
		}
		log.Printf("%s: done in %v", name, time.Since(start).Round(time.Second))
		all = append(all, rows...)
		printTable(os.Stdout, all[len(all)-len(rows):])
	}
	fmt.Printf("\n## All results (%s, %s)\n\n", time.Now().Format("2006-01-02"), strings.Join(os.Args[1:], " "))
	printTable(os.Stdout, all)
	if failed {
		os.Exit(1)
	}
}

// buildMptp builds the command under test from this checkout.
func buildMptp(dir string) (string, error) {
	bin := filepath.Join(dir, "mptp")
	out, err := command("go", "build", "-o", bin, "./cmd/mptp").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build ./cmd/mptp (run the harness from the repository's root): %v\n%s", err, out)
	}
	return bin, nil
}

// Row is one figure of the table.
type Row struct {
	Group, Case, What string
	Value             float64
	Unit              string
	// Base names the row of the same Group and Case this one is compared
	// with; Ratio is Value / that row's Value.
	Base   string
	Ratio  float64
	Target string // the target for this ratio, if any
	Met    string // "yes", "no" or ""
}

// ratios fills Ratio for every row with a Base in the same case.
func ratios(rows []Row) {
	for i := range rows {
		r := &rows[i]
		if r.Base == "" {
			continue
		}
		for _, b := range rows {
			if b.Group == r.Group && b.Case == r.Case && b.What == r.Base && b.Value != 0 {
				r.Ratio = r.Value / b.Value
			}
		}
	}
}

func printTable(w io.Writer, rows []Row) {
	if len(rows) == 0 {
		return
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| group | case | what | value | ratio | target | met |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|")
	for _, r := range rows {
		ratio, value := "", num(r.Value)
		if r.Base != "" {
			ratio = fmt.Sprintf("%.2f of %s", r.Ratio, r.Base)
		}
		if r.Unit == "bytes/byte" {
			// Overheads of a fraction of a percent: four decimals.
			value = fmt.Sprintf("%.4f", r.Value)
			if r.Base != "" {
				ratio = fmt.Sprintf("%.4f of %s", r.Ratio, r.Base)
			}
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s %s | %s | %s | %s |\n", r.Group, r.Case, r.What, value, r.Unit, ratio, r.Target, r.Met)
	}
}

func num(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.3g", v)
	}
}

// median of xs; 0 for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// check marks whether r meets "ratio >= min".
func check(r *Row, min float64, target string) {
	r.Target = target
	r.Met = "no"
	if r.Ratio >= min {
		r.Met = "yes"
	}
}

// checkAtMost marks r met when its ratio is at most max.
func checkAtMost(r *Row, max float64, target string) {
	r.Target = target
	r.Met = "no"
	if r.Ratio > 0 && r.Ratio <= max {
		r.Met = "yes"
	}
}
