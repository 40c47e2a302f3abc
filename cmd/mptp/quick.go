package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/mptp/mptp/config"
)

// The quick command lines build the same config a file would hold, so
// they are checked and run by the same code; --print shows that config.

const clientUsage = `Usage: mptp client --server HOST:PORT --path SPEC [--path SPEC ...] [options]

Runs a SOCKS5 inbound whose connections go over MPTP to the server, one
path per --path. A SPEC is one of:
  direct                         plain TCP
  direct?bind=198.18.2.1         from a local address
  direct?interface=wlan0         through a network device (Linux, root)
  socks5://user:pass@relay:1080  through a SOCKS5 relay
  http://user:pass@relay:8888    through an HTTP CONNECT relay
Any SPEC takes ?bind=, ?interface=, ?mptcp=1 (kernel MPTCP on that path's
first hop) and ?name= (the path's name in logs; default path1, path2, ...).

Options:
`

const serverUsage = `Usage: mptp server --listen ADDR:PORT [options]

Runs an MPTP server (mptp v2 and Leaf v1 clients) that connects sessions
directly to their targets.

Options:
`

// pathList collects repeated --path flags.
type pathList []string

func (p *pathList) String() string     { return strings.Join(*p, " ") }
func (p *pathList) Set(v string) error { *p = append(*p, v); return nil }

func quickClient(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("mptp client", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, clientUsage); fs.PrintDefaults() }
	socks := fs.String("socks", "127.0.0.1:1080", "SOCKS5 `ADDR:PORT` to listen on")
	server := fs.String("server", "", "the MPTP server's `HOST:PORT`")
	var paths pathList
	fs.Var(&paths, "path", "a path `SPEC` (repeat for each path)")
	redundant := fs.Bool("redundant", false, "send every chunk on every path")
	version := fs.Int("version", 2, "protocol: 2, or 1 for a Leaf server")
	level := fs.String("log", "info", "log `LEVEL`: debug, info, warn, error")
	apiAddr := fs.String("api", "", "serve metrics, the status page and the JSON API on `ADDR:PORT`")
	printCfg := fs.Bool("print", false, "print the equivalent config file and exit")
	password := passwordFlag(fs)
	if code, done := parse(fs, args); done {
		return code
	}
	doc, err := clientDoc(*socks, *server, paths, *redundant, *version, *level)
	if err == nil {
		err = addAPI(doc, *apiAddr)
	}
	if err != nil {
		fmt.Fprintln(stderr, "mptp client:", err)
		return 2
	}
	if *password != "" {
		doc["outbounds"].([]any)[0].(map[string]any)["settings"].(map[string]any)["password"] = *password
	}
	return runDoc("mptp client", doc, *printCfg, stdout, stderr)
}

func quickServer(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("mptp server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, serverUsage); fs.PrintDefaults() }
	listen := fs.String("listen", "0.0.0.0:3001", "`ADDR:PORT` to listen on")
	grace := fs.Float64("grace", 30, "`SECONDS` a session with no path waits for one")
	mptcp := fs.Bool("mptcp", false, "accept kernel MPTCP sub-connections too")
	level := fs.String("log", "info", "log `LEVEL`: debug, info, warn, error")
	apiAddr := fs.String("api", "", "serve metrics, the status page and the JSON API on `ADDR:PORT`")
	printCfg := fs.Bool("print", false, "print the equivalent config file and exit")
	password := passwordFlag(fs)
	denyPrivate := fs.Bool("deny-private", false, "refuse targets in loopback, private and link-local ranges")
	if code, done := parse(fs, args); done {
		return code
	}
	host, port, err := splitPort(*listen)
	if err != nil {
		fmt.Fprintln(stderr, "mptp server: --listen:", err)
		return 2
	}
	settings := map[string]any{"grace": *grace}
	if *mptcp {
		settings["mptcp"] = true
	}
	if *password != "" {
		settings["password"] = *password
	}
	if *denyPrivate {
		settings["deny_private"] = true
	}
	doc := map[string]any{
		"log":       map[string]any{"level": *level},
		"inbounds":  []any{map[string]any{"protocol": "mptp", "tag": "mptp-in", "address": host, "port": port, "settings": settings}},
		"outbounds": []any{map[string]any{"protocol": "direct", "tag": "direct"}},
	}
	if err := addAPI(doc, *apiAddr); err != nil {
		fmt.Fprintln(stderr, "mptp server:", err)
		return 2
	}
	return runDoc("mptp server", doc, *printCfg, stdout, stderr)
}

// passwordFlag is --password, which defaults to $MPTP_PASSWORD: a flag's
// value shows in the process list, the environment's does not.
func passwordFlag(fs *flag.FlagSet) *string {
	return fs.String("password", os.Getenv("MPTP_PASSWORD"), "authenticate and encrypt every path with this `PASSWORD` (default $MPTP_PASSWORD)")
}

// parse parses flags; done is set when the command should exit with code.
func parse(fs *flag.FlagSet, args []string) (code int, done bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, true
		}
		return 2, true
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "%s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return 2, true
	}
	return 0, false
}

func clientDoc(socks, server string, specs []string, redundant bool, version int, level string) (map[string]any, error) {
	if server == "" {
		return nil, errors.New("--server is required")
	}
	if len(specs) == 0 {
		return nil, errors.New("at least one --path is required")
	}
	shost, sport, err := splitPort(server)
	if err != nil {
		return nil, fmt.Errorf("--server: %w", err)
	}
	lhost, lport, err := splitPort(socks)
	if err != nil {
		return nil, fmt.Errorf("--socks: %w", err)
	}
	var actors []string
	var outbounds []any
	for i, spec := range specs {
		ob, err := pathOutbound(spec, fmt.Sprintf("path%d", i+1))
		if err != nil {
			return nil, fmt.Errorf("--path %q: %w", spec, err)
		}
		actors = append(actors, ob["tag"].(string))
		outbounds = append(outbounds, ob)
	}
	mptp := map[string]any{"actors": actors, "address": shost, "port": sport, "version": version}
	if redundant {
		mptp["scheduler"] = "redundant"
	}
	return map[string]any{
		"log":       map[string]any{"level": level},
		"inbounds":  []any{map[string]any{"protocol": "socks", "tag": "socks-in", "address": lhost, "port": lport}},
		"outbounds": append([]any{map[string]any{"protocol": "mptp", "tag": "mptp-out", "settings": mptp}}, outbounds...),
	}, nil
}

// addAPI adds the "api" section for --api, unless it is empty.
func addAPI(doc map[string]any, addr string) error {
	if addr == "" {
		return nil
	}
	host, port, err := splitPort(addr)
	if err != nil {
		return fmt.Errorf("--api: %w", err)
	}
	doc["api"] = map[string]any{"address": host, "port": port}
	return nil
}

// pathOutbound turns a path SPEC into the outbound that dials it.
func pathOutbound(spec, name string) (map[string]any, error) {
	u, err := url.Parse(spec)
	if err != nil {
		return nil, err
	}
	settings := map[string]any{}
	protocol := ""
	switch {
	case u.Scheme == "" && (u.Path == "direct" || u.Opaque == "direct"):
		protocol = "direct"
	case u.Scheme == "socks5" || u.Scheme == "socks5h" || u.Scheme == "socks":
		protocol = "socks"
	case u.Scheme == "http":
		protocol = "http"
	default:
		return nil, errors.New("want direct, socks5://HOST:PORT or http://HOST:PORT")
	}
	if protocol != "direct" {
		host, port, err := splitPort(u.Host)
		if err != nil {
			return nil, err
		}
		settings["address"], settings["port"] = host, port
		if u.User != nil {
			settings["username"] = u.User.Username()
			settings["password"], _ = u.User.Password()
		}
	}
	for key, vals := range u.Query() {
		v := vals[len(vals)-1]
		switch key {
		case "name":
			name = v
		case "bind", "interface":
			settings[key] = v
		case "mptcp":
			on, err := strconv.ParseBool(v)
			if err != nil {
				return nil, fmt.Errorf("mptcp=%q: want 1 or 0", v)
			}
			settings["mptcp"] = on
		default:
			return nil, fmt.Errorf("unknown option %q (know bind, interface, mptcp, name)", key)
		}
	}
	return map[string]any{"protocol": protocol, "tag": name, "settings": settings}, nil
}

func splitPort(hostport string) (string, int, error) {
	host, p, err := net.SplitHostPort(hostport)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 1 || port > 65535 {
		return "", 0, fmt.Errorf("port %q is not 1-65535", p)
	}
	return host, port, nil
}

// runDoc prints or runs a config built from flags.
func runDoc(name string, doc map[string]any, print bool, stdout, stderr io.Writer) int {
	text, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		fmt.Fprintln(stderr, name+":", err)
		return 1
	}
	if print {
		fmt.Fprintf(stdout, "%s\n", text)
		return 0
	}
	cfg, warnings, err := config.Parse(text)
	for _, w := range warnings {
		fmt.Fprintln(stderr, "warning:", w)
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	return serve(name, cfg, defaultDrain, stdout, stderr)
}
