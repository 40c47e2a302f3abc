package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	_ "embed"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	mptpout "github.com/mptp/mptp/outbound/mptp"

	"github.com/mptp/mptp/app"
	"github.com/mptp/mptp/config"
	"github.com/mptp/mptp/internal/socks5"
)

// The demo's configs are ordinary config files, with ports filled in.
var (
	//go:embed demo-server.json
	demoServer string
	//go:embed demo-client.json
	demoClient string
)

func demo(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("mptp demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	size := fs.Int("size", 64, "MiB to fetch")
	verbose := fs.Bool("v", false, "log sessions and paths")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	log := slog.New(slog.DiscardHandler)
	if *verbose {
		log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if err := runDemo(*size<<20, log, stdout); err != nil {
		fmt.Fprintln(stderr, "demo:", err)
		return 1
	}
	return 0
}

func runDemo(size int, log *slog.Logger, out io.Writer) error {
	blob := make([]byte, size)
	rand.Read(blob)
	target, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	web := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "blob", time.Time{}, bytes.NewReader(blob))
	})}
	go web.Serve(target)
	defer web.Close()

	serverPort, socksPort, err := freePorts()
	if err != nil {
		return err
	}
	server, err := startConfig("server", fmt.Sprintf(demoServer, serverPort), log.With("side", "server"))
	if err != nil {
		return err
	}
	defer server.Close()
	client, err := startConfig("client", fmt.Sprintf(demoClient, socksPort, serverPort), log.With("side", "client"))
	if err != nil {
		return err
	}
	defer client.Close()

	socks := net.JoinHostPort("127.0.0.1", strconv.Itoa(socksPort))
	fmt.Fprintf(out, "server   mptp inbound on 127.0.0.1:%d\n", serverPort)
	fmt.Fprintf(out, "client   socks inbound on %s, mptp outbound with actors direct1, direct2, direct3\n", socks)
	fmt.Fprintf(out, "target   http://%s/blob (%d MiB of random bytes)\n\n", target.Addr(), size>>20)
	fmt.Fprintf(out, "try it:  curl --socks5-hostname %s http://%s/blob | sha256sum\n\n", socks, target.Addr())

	httpc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", socks)
		if err != nil {
			return nil, err
		}
		if err := socks5.Connect(c, addr, "", ""); err != nil {
			c.Close()
			return nil, err
		}
		return c, nil
	}}}
	defer httpc.CloseIdleConnections()
	start := time.Now()
	resp, err := httpc.Get("http://" + target.Addr().String() + "/blob")
	if err != nil {
		return err
	}
	h := sha256.New()
	n, err := io.Copy(h, resp.Body)
	resp.Body.Close()
	elapsed := time.Since(start)
	if err != nil {
		return err
	}
	ok := bytes.Equal(h.Sum(nil), sumOf(blob))
	fmt.Fprintf(out, "fetched  %d bytes in %s: %.0f Mbit/s, sha256 %s\n\n", n, elapsed.Round(time.Millisecond),
		float64(n)*8/elapsed.Seconds()/1e6, map[bool]string{true: "matches", false: "DIFFERS"}[ok])
	httpc.CloseIdleConnections()

	ob := client.Outbound("mptp-out").(*mptpout.Outbound)
	fmt.Fprintf(out, "%-8s %14s %7s %12s\n", "path", "bytes in", "share", "Mbit/s")
	for _, ps := range ob.Client().Stats() {
		fmt.Fprintf(out, "%-8s %14d %6.1f%% %12.0f\n", ps.Name, ps.BytesReceived,
			100*float64(ps.BytesReceived)/float64(max(n, 1)), float64(ps.BytesReceived)*8/elapsed.Seconds()/1e6)
	}
	if !ok {
		return fmt.Errorf("the fetched bytes differ from the target's")
	}
	return nil
}

func sumOf(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:]
}

func startConfig(name, text string, log *slog.Logger) (*app.App, error) {
	cfg, warnings, err := config.Parse([]byte(text))
	if err == nil && len(warnings) > 0 {
		err = fmt.Errorf("%s", strings.Join(warnings, "; "))
	}
	if err != nil {
		return nil, fmt.Errorf("%s config: %w", name, err)
	}
	a, _, err := app.Build(cfg, log)
	if err != nil {
		return nil, fmt.Errorf("%s config: %w", name, err)
	}
	return a, a.Start()
}

func freePorts() (int, int, error) {
	var ports []int
	for range 2 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, 0, err
		}
		defer ln.Close()
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports[0], ports[1], nil
}
