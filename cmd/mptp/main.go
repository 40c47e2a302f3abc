// Command mptp runs the multipath transport proxy from a Leaf-shaped
// config, checks configs, and shows the whole thing on one machine (demo).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/mptp/mptp/config"
	"github.com/mptp/mptp/internal/app"
)

const usage = `mptp: multipath transport proxy, compatible with Leaf's MPTP

Usage:
  mptp -c FILE        run the inbounds and outbounds of a config file
  mptp -c FILE -T     check a config file and exit (0 when it is valid)
  mptp client ...     run a client from flags, no file (mptp client -h)
  mptp server ...     run a server from flags, no file (mptp server -h)
  mptp demo           run a server, a three-path client and a target in
                      this process, fetch through them, show each path's share
  mptp version        print the version

Options:
`

var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "demo":
			return demo(args[1:], stdout, stderr)
		case "client":
			return quickClient(args[1:], stdout, stderr)
		case "server":
			return quickServer(args[1:], stdout, stderr)
		case "version":
			fmt.Fprintln(stdout, "mptp", version)
			return 0
		}
	}
	fs := flag.NewFlagSet("mptp", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	file := fs.String("c", "", "config `FILE` (Leaf JSON or conf)")
	check := fs.Bool("T", false, "check the config and exit")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *file == "" || fs.NArg() > 0 {
		fs.Usage()
		return 2
	}
	cfg, warnings, err := config.Load(*file)
	for _, w := range warnings {
		fmt.Fprintln(stderr, "warning:", w)
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return serve(*file, cfg, *check, stdout, stderr)
}

// serve builds cfg and, unless check is set, runs it until SIGINT or
// SIGTERM. name prefixes its messages (the config file).
func serve(name string, cfg *config.Config, check bool, stdout, stderr io.Writer) int {
	log, closer, err := app.Logger(cfg.Log)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	defer closer.Close()
	a, warnings, err := app.Build(cfg, log)
	for _, w := range warnings {
		fmt.Fprintf(stderr, "warning: %s: %s\n", name, w)
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	if check {
		fmt.Fprintf(stdout, "%s: ok\n", name)
		return 0
	}
	// Signals are caught before the listeners open, so that a stop request
	// that comes as soon as they accept is a clean stop too.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := a.Start(); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	<-ctx.Done()
	log.Info("stopping")
	a.Close()
	return 0
}
