// Command mptp runs the multipath transport proxy from a Leaf-shaped
// config, checks configs, and shows the whole thing on one machine (demo).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/mptp/mptp/app"
	"github.com/mptp/mptp/config"
)

const usage = `mptp: multipath transport proxy, compatible with Leaf's MPTP

Usage:
  mptp -c FILE        run the inbounds and outbounds of a config file
  mptp -c FILE -T     check a config file and exit (0 when it is valid)
  mptp status         show sessions and paths of a running mptp (mptp status -h)
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
		case "status":
			return status(args[1:], stdout, stderr)
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
	drain := fs.Duration("drain", defaultDrain, "on SIGTERM or SIGINT, how long live sessions may take to finish")
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
	if *check {
		return checkOnly(*file, cfg, stdout, stderr)
	}
	return serve(*file, cfg, *drain, stdout, stderr)
}

// defaultDrain is how long live sessions may take to finish once a stop
// is asked for.
const defaultDrain = 10 * time.Second

// checkOnly builds cfg, reports what is wrong, and starts nothing. name
// prefixes its messages (the config file).
func checkOnly(name string, cfg *config.Config, stdout, stderr io.Writer) int {
	log, closer, err := app.Logger(cfg.Log)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	defer closer.Close()
	if _, ok := build(name, cfg, log, stderr); !ok {
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok\n", name)
	return 0
}

func build(name string, cfg *config.Config, log *slog.Logger, stderr io.Writer) (*app.App, bool) {
	a, warnings, err := app.Build(cfg, log)
	for _, w := range warnings {
		fmt.Fprintf(stderr, "warning: %s: %s\n", name, w)
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return nil, false
	}
	return a, true
}

// serve builds cfg and runs it until SIGINT or SIGTERM; then it stops
// accepting, lets live sessions finish for up to drain (a second signal
// cuts them at once), and returns 0. name prefixes its messages.
func serve(name string, cfg *config.Config, drain time.Duration, stdout, stderr io.Writer) int {
	log, closer, err := app.Logger(cfg.Log)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	defer closer.Close()
	a, ok := build(name, cfg, log, stderr)
	if !ok {
		return 1
	}
	// Signals are caught before the listeners open, so that a stop request
	// that comes as soon as they accept is a clean stop too.
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sig)
	if err := a.Start(); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	got := <-sig
	log.Info("stopping", "signal", got.String(), "drain", drain)
	ctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	go func() { // ends with the drain
		select {
		case got := <-sig:
			log.Info("stopping now", "signal", got.String())
			cancel()
		case <-ctx.Done():
		}
	}()
	if a.Shutdown(ctx) {
		log.Info("stopped", "sessions", "all finished")
	} else {
		log.Info("stopped", "sessions", "some cut")
	}
	return 0
}
