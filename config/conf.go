package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// This file reads the subset of Leaf's conf format that mptp serves:
//
//	[General]
//	loglevel = info
//	socks-interface = 127.0.0.1
//	socks-port = 1086
//	[Proxy]
//	Wifi = direct, interface=wlan0
//	Relay = socks, 198.18.0.1, 1080, username=u, password=p
//	[Proxy Group]
//	Mptp = mptp, Wifi, Relay, address=203.0.113.7, port=3001
//	[Rule]
//	FINAL, Mptp
//
// Each proxy and group becomes an outbound tagged with its name whose
// settings are the JSON object a JSON config would have, so that protocol
// packages decode both alike. The FINAL rule's outbound comes first, as the
// default. What mptp does not serve is reported as a warning with its line
// number, never dropped silently.

// defaultSocksInterface is Leaf's default for socks-interface.
const defaultSocksInterface = "127.0.0.1"

// confValue is the kind of a key=value value, which decides its JSON type.
type confValue int

const (
	confString confValue = iota
	confPort             // a number, 1-65535
	confInt              // a number
	confBool             // true or false
)

// confKeys lists the keys each protocol takes after its positional values.
var confKeys = map[string]map[string]confValue{
	"direct": {"interface": confString, "bind": confString, "mptcp": confBool},
	"socks": {"username": confString, "password": confString, "interface": confString,
		"bind": confString, "mptcp": confBool},
	"http": {"username": confString, "password": confString, "interface": confString,
		"bind": confString, "mptcp": confBool},
	"mptp": {"address": confString, "port": confPort, "version": confInt, "scheduler": confString, "password": confString},
}

// confGroupProtocols are the protocols Leaf expects in [Proxy Group]; the
// others belong in [Proxy].
var confGroupProtocols = map[string]bool{"mptp": true}

// unsupportedGeneral are [General] keys of Leaf that mptp has no use for.
var unsupportedGeneral = map[string]bool{
	"dns-server": true, "dns-interface": true, "always-real-ip": true, "always-fake-ip": true,
	"routing-domain-resolve": true, "tun": true, "tun-fd": true, "interface": true, "port": true,
}

// ParseConf parses a config in Leaf's conf format. Like Parse, it returns
// warnings (lines, keys and sections mptp does not serve) and all errors
// joined, each naming its line; the Config is nil when there are errors.
// Outbound and inbound paths name lines, e.g. `line 7 (Proxy "Relay1")`.
func ParseConf(data []byte) (*Config, []string, error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	p := &confParser{general: map[string]int{}, names: map[string]int{}}
	for i, line := range strings.Split(string(data), "\n") {
		p.line(i+1, line)
	}
	p.endSection()
	cfg := p.config()
	if len(p.errs) > 0 {
		return nil, p.warns, errors.Join(p.errs...)
	}
	return cfg, p.warns, nil
}

// looksLikeJSON says whether the first character of data that is not
// space, a byte order mark or in a #/; comment line is '{'.
func looksLikeJSON(data []byte) bool {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	for len(data) > 0 {
		switch data[0] {
		case ' ', '\t', '\r', '\n', '\f', '\v':
			data = data[1:]
		case '#', ';':
			i := bytes.IndexByte(data, '\n')
			if i < 0 {
				return false
			}
			data = data[i+1:]
		default:
			return data[0] == '{'
		}
	}
	return false
}

type confParser struct {
	errs  []error
	warns []string

	section     string // "" before the first header
	sectionLine int
	ignored     []int // lines of the current section, when it is ignored
	rules       []int // lines of [Rule] entries other than FINAL

	log        Log
	general    map[string]int // [General] key -> its line
	socksIface string
	socksPort  int
	portLine   int // of socks-port, 0 if absent
	api        API // from api-interface and api-port
	apiPort    int // line of api-port, 0 if absent

	outs      []confOutbound // in document order
	names     map[string]int // proxy or group name -> its line
	final     string
	finalLine int
}

type confOutbound struct {
	Outbound
	line  int
	group bool
}

func (p *confParser) errorf(line int, format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf("line %d: %s", line, fmt.Sprintf(format, args...)))
}

func (p *confParser) warnf(line int, format string, args ...any) {
	p.warns = append(p.warns, fmt.Sprintf("line %d: %s", line, fmt.Sprintf(format, args...)))
}

// line handles one line of input; n counts from 1.
func (p *confParser) line(n int, line string) {
	if !utf8.ValidString(line) {
		p.errorf(n, "not valid UTF-8")
		return
	}
	line = stripComment(strings.TrimSpace(line))
	if line == "" {
		return
	}
	if strings.HasPrefix(line, "[") {
		p.endSection()
		if !strings.HasSuffix(line, "]") {
			p.errorf(n, "%q: want a section header like [Proxy]", line)
			p.section, p.sectionLine = "?", n // ignore its lines: errors enough
			return
		}
		p.section = strings.TrimSpace(line[1 : len(line)-1])
		p.sectionLine = n
		return
	}
	switch p.section {
	case "":
		p.warnf(n, "outside any section, ignored")
	case "?":
	case "General":
		p.generalLine(n, line)
	case "Proxy", "Proxy Group":
		p.outbound(n, line)
	case "Rule":
		p.rule(n, line)
	default:
		p.ignored = append(p.ignored, n)
	}
}

// stripComment drops a # or ; comment: a whole line, or the rest of a line
// from one that follows a space or tab. (So a password may contain # or ;,
// just not right after a space.)
func stripComment(line string) string {
	for i := 0; i < len(line); i++ {
		if (line[i] == '#' || line[i] == ';') && (i == 0 || line[i-1] == ' ' || line[i-1] == '\t') {
			return strings.TrimSpace(line[:i])
		}
	}
	return line
}

// endSection reports a section that mptp does not serve, once its extent
// is known.
func (p *confParser) endSection() {
	switch p.section {
	case "", "?", "General", "Proxy", "Proxy Group", "Rule":
		return
	}
	lines := fmt.Sprintf("line %d", p.sectionLine)
	if len(p.ignored) > 0 {
		lines = fmt.Sprintf("lines %d-%d", p.sectionLine, p.ignored[len(p.ignored)-1])
	}
	p.warns = append(p.warns, fmt.Sprintf("%s: section [%s] is not supported by mptp, ignored", lines, p.section))
	p.ignored = nil
}

func (p *confParser) generalLine(n int, line string) {
	k, v, ok := strings.Cut(line, "=")
	if !ok {
		p.errorf(n, "%q: want key = value", line)
		return
	}
	k, v = strings.TrimSpace(k), strings.TrimSpace(v)
	if first, dup := p.general[k]; dup {
		p.errorf(n, "duplicate key %q (also line %d)", k, first)
		return
	}
	p.general[k] = n
	switch {
	case k == "loglevel":
		if v == "" {
			return
		}
		p.log.Level = levels[v]
		if p.log.Level == "" {
			p.errorf(n, "loglevel: unknown level %q (want trace, debug, info, warn, error or none)", v)
		}
	case k == "logoutput":
		p.log.Output = v
	case k == "socks-interface":
		if msg := hostProblem(v); msg != "" {
			p.errorf(n, "socks-interface: %s", strings.Replace(msg, `(use "port")`, "(use socks-port)", 1))
		}
		p.socksIface = v
	case k == "socks-port":
		p.portLine = n
		if port, msg := confPortValue(v); msg != "" {
			p.errorf(n, "socks-port: %s", msg)
		} else {
			p.socksPort = port
		}
	case k == "mptp-port" || k == "mptp-interface":
		p.warnf(n, "%s: an mptp server is configured in JSON, not conf; ignored", k)
	case k == "api-interface" || k == "api-port":
		p.apiLine(n, k, v)
	case unsupportedGeneral[k]:
		p.warnf(n, "%s: not supported by mptp, ignored", k)
	default:
		p.warnf(n, "unknown key %q in [General], ignored", k)
	}
}

// outbound handles a [Proxy] or [Proxy Group] entry:
// Name = protocol, positional..., key=value...
func (p *confParser) outbound(n int, line string) {
	name, value, ok := strings.Cut(line, "=")
	if !ok {
		p.errorf(n, "%q: want Name = protocol, ...", line)
		return
	}
	name = strings.TrimSpace(name)
	if name == "" {
		p.errorf(n, "missing name before '='")
		return
	}
	path := fmt.Sprintf("line %d (%s %q)", n, p.section, name)
	fail := func(format string, args ...any) {
		p.errs = append(p.errs, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
	}
	if first, dup := p.names[name]; dup {
		fail("duplicate name %q (also line %d)", name, first)
		return
	}
	p.names[name] = n

	items := strings.Split(value, ",")
	for i := range items {
		items[i] = strings.TrimSpace(items[i])
	}
	if len(items) > 1 && items[len(items)-1] == "" {
		items = items[:len(items)-1] // a trailing comma
	}
	proto := items[0]
	if proto == "" {
		fail("missing protocol after '='")
		return
	}
	group := p.section == "Proxy Group"
	if _, known := confKeys[proto]; known && confGroupProtocols[proto] != group {
		want := "[Proxy]"
		if confGroupProtocols[proto] {
			want = "[Proxy Group]"
		}
		p.warns = append(p.warns, fmt.Sprintf("%s: Leaf expects %s in %s", path, proto, want))
	}

	var positional []string
	type keyValue struct{ key, value string }
	var kvs []keyValue
	seen := map[string]bool{}
	for _, it := range items[1:] {
		k, v, hasEq := strings.Cut(it, "=")
		switch {
		case it == "":
			fail("empty value between commas")
		case !hasEq && len(seen) == 0:
			positional = append(positional, it)
		case !hasEq:
			fail("%q: want key=value (positional values come first)", it)
		default:
			k, v = strings.TrimSpace(k), strings.TrimSpace(v)
			switch {
			case k == "":
				fail("%q: missing key before '='", it)
			case seen[k]:
				fail("duplicate key %q", k)
			default:
				kvs = append(kvs, keyValue{k, v})
			}
			seen[k] = true
		}
	}

	var obj jsonObject
	switch proto {
	case "direct":
		if len(positional) > 0 {
			fail("direct takes no positional values, got %q", positional[0])
		}
	case "socks", "http":
		if len(positional) < 2 {
			fail("%s needs a host and a port: Name = %s, host, port, ...", proto, proto)
		} else if len(positional) > 2 {
			fail("unexpected value %q after host and port", positional[2])
		}
		if len(positional) > 0 {
			obj.add("address", positional[0])
		}
		if len(positional) > 1 {
			if port, msg := confPortValue(positional[1]); msg != "" {
				fail("port: %s", msg)
			} else {
				obj.add("port", port)
			}
		}
	case "mptp":
		if len(positional) == 0 {
			fail("a group with no actors: Name = mptp, actor1, actor2, ..., address=..., port=...")
		} else {
			obj.add("actors", positional)
		}
	default:
		if len(positional) > 0 || len(kvs) > 0 {
			p.warns = append(p.warns, fmt.Sprintf("%s: protocol %q is unknown to mptp's conf reader; its values are ignored", path, proto))
		}
	}
	if keys, known := confKeys[proto]; known {
		for _, kv := range kvs {
			kind, ok := keys[kv.key]
			if !ok {
				p.warns = append(p.warns, fmt.Sprintf("%s: unknown key %q for %s, ignored", path, kv.key, proto))
				continue
			}
			switch kind {
			case confString:
				obj.add(kv.key, kv.value)
			case confPort:
				if port, msg := confPortValue(kv.value); msg != "" {
					fail("%s: %s", kv.key, msg)
				} else {
					obj.add(kv.key, port)
				}
			case confInt:
				if i, err := strconv.ParseInt(kv.value, 10, 32); err != nil {
					fail("%s: want an integer, got %q", kv.key, kv.value)
				} else {
					obj.add(kv.key, i)
				}
			case confBool:
				if kv.value != "true" && kv.value != "false" {
					fail("%s: want true or false, got %q", kv.key, kv.value)
				} else {
					obj.add(kv.key, kv.value == "true")
				}
			}
		}
	}
	p.outs = append(p.outs, confOutbound{
		Outbound: Outbound{Protocol: proto, Tag: name, Settings: obj.raw(), Path: path},
		line:     n,
		group:    group,
	})
}

// rule handles a [Rule] entry. mptp sends everything to the default
// outbound, so only FINAL, which names it, is served.
func (p *confParser) rule(n int, line string) {
	items := strings.Split(line, ",")
	for i := range items {
		items[i] = strings.TrimSpace(items[i])
	}
	if items[0] != "FINAL" {
		p.rules = append(p.rules, n)
		return
	}
	if p.finalLine != 0 {
		p.errorf(n, "a second FINAL rule (also line %d)", p.finalLine)
		return
	}
	p.finalLine = n
	if len(items) != 2 || items[1] == "" {
		p.errorf(n, "%q: want FINAL, <name of a proxy or group>", line)
		return
	}
	p.final = items[1]
}

// config assembles what the lines said and checks what needs all of them.
func (p *confParser) config() *Config {
	cfg := &Config{Log: p.log, API: p.apiConfig()}
	if len(p.rules) > 0 {
		p.warns = append(p.warns, fmt.Sprintf("%s: rules other than FINAL are not supported by mptp (everything goes to the default outbound), ignored",
			lineList(p.rules)))
	}

	if p.portLine == 0 {
		p.errs = append(p.errs, errors.New("[General]: socks-port is needed: it is the only inbound a conf file sets up (an mptp server is configured in JSON)"))
	} else if p.socksPort != 0 {
		addr := p.socksIface
		if addr == "" {
			addr = defaultSocksInterface
		}
		cfg.Inbounds = []Inbound{{Protocol: "socks", Address: addr, Port: p.socksPort,
			Path: fmt.Sprintf("line %d (General \"socks-port\")", p.portLine)}}
	}

	if len(p.outs) == 0 {
		p.errs = append(p.errs, errors.New("no [Proxy] or [Proxy Group] entries: at least one outbound is needed (the FINAL one is the default)"))
		return cfg
	}
	def := -1
	switch {
	case p.final != "":
		for i, o := range p.outs {
			if o.Tag == p.final {
				def = i
			}
		}
		if def < 0 {
			p.errorf(p.finalLine, "FINAL: no proxy or group is named %q", p.final)
		}
	case p.finalLine != 0:
		// A malformed FINAL was reported.
	default:
		def = 0
		for i, o := range p.outs {
			if o.group {
				def = i
				break
			}
		}
		o := p.outs[def]
		p.warns = append(p.warns, fmt.Sprintf("no FINAL rule in [Rule]; the default outbound is %q (line %d)", o.Tag, o.line))
	}
	if def >= 0 {
		cfg.Outbounds = append(cfg.Outbounds, p.outs[def].Outbound)
	}
	for i, o := range p.outs {
		if i != def {
			cfg.Outbounds = append(cfg.Outbounds, o.Outbound)
		}
	}
	return cfg
}

// confPortValue parses a port, or says what is wrong with it in the words
// the JSON path uses.
func confPortValue(s string) (int, string) {
	if s == "" {
		return 0, "missing"
	}
	p, err := strconv.ParseInt(s, 10, 64)
	if errors.Is(err, strconv.ErrSyntax) {
		return 0, fmt.Sprintf("want a number, got %q", s)
	}
	if err != nil || p < 1 || p > 65535 {
		return 0, fmt.Sprintf("%s is out of range 1-65535", s)
	}
	return int(p), ""
}

// lineList writes sorted line numbers compactly: "line 3" or
// "lines 3-5, 9".
func lineList(lines []int) string {
	if len(lines) == 1 {
		return fmt.Sprintf("line %d", lines[0])
	}
	var b strings.Builder
	b.WriteString("lines ")
	for i := 0; i < len(lines); {
		j := i
		for j+1 < len(lines) && lines[j+1] == lines[j]+1 {
			j++
		}
		if i > 0 {
			b.WriteString(", ")
		}
		if j > i {
			fmt.Fprintf(&b, "%d-%d", lines[i], lines[j])
		} else {
			fmt.Fprintf(&b, "%d", lines[i])
		}
		i = j + 1
	}
	return b.String()
}

// jsonObject builds a JSON object with keys in the order added.
type jsonObject struct{ buf []byte }

func (o *jsonObject) add(key string, value any) {
	if o.buf == nil {
		o.buf = []byte{'{'}
	} else {
		o.buf = append(o.buf, ',')
	}
	k, _ := json.Marshal(key)   // strings always marshal
	v, _ := json.Marshal(value) // so do the ints, bools and []string used here
	o.buf = append(append(append(o.buf, k...), ':'), v...)
}

// raw returns the object, or nil when nothing was added: no settings, as a
// JSON config without "settings".
func (o *jsonObject) raw() json.RawMessage {
	if o.buf == nil {
		return nil
	}
	return append(o.buf, '}')
}
