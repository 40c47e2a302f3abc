// Package config reads mptp config files, which have the shape of Leaf's
// JSON configs. Only the envelope is checked here; protocol settings stay
// raw, and each protocol package decodes its own with DecodeSettings.
package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
)

// Config is the envelope of a config file. Protocol-specific settings stay
// raw; each protocol package decodes its own with DecodeSettings.
type Config struct {
	Log       Log
	API       *API // nil when absent
	Inbounds  []Inbound
	Outbounds []Outbound // the first one is the default
}

// Log is the "log" section.
type Log struct {
	// Level is "", "debug", "info", "warn", "error" or "off". Parse maps
	// Leaf's "trace" to "debug" and "none" to "off"; "" means the default.
	Level string
	// Output is "console", "stderr" or "" for stderr, "stdout", otherwise
	// a file path.
	Output string
}

// Inbound is one entry of "inbounds".
type Inbound struct {
	Protocol string
	Tag      string
	Address  string
	Port     int
	Settings json.RawMessage // nil when absent
	Path     string          // "inbounds[0]", used to prefix errors
}

// Outbound is one entry of "outbounds".
type Outbound struct {
	Protocol string
	Tag      string
	Settings json.RawMessage // nil when absent
	Path     string          // "outbounds[1]"
}

// Parse parses a JSON config. It returns warnings (unknown keys, ignored
// Leaf sections) and an error that names what is wrong. All problems found
// are reported, joined with errors.Join; the Config is nil when there are
// any.
func Parse(data []byte) (*Config, []string, error) {
	// Some editors on Windows save a byte order mark; it is not JSON.
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	root, err := parse(data)
	if err != nil {
		return nil, nil, err
	}
	e := &envelope{data: data, tags: map[string]string{}}
	cfg := e.config(root)
	if len(e.errs) > 0 {
		return nil, e.warns, errors.Join(e.errs...)
	}
	return cfg, e.warns, nil
}

// Load reads a file and calls Parse if it is JSON (its first character
// that is not space or in a # or ; comment line is '{'), otherwise
// ParseConf. Errors and warnings are prefixed with the file name.
func Load(path string) (*Config, []string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err // already names the file
	}
	parse := ParseConf
	if looksLikeJSON(data) {
		parse = Parse
	}
	cfg, warns, err := parse(data)
	for i, w := range warns {
		warns[i] = path + ": " + w
	}
	if err != nil {
		list := []error{err}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			list = j.Unwrap()
		}
		prefixed := make([]error, len(list))
		for i, e := range list {
			prefixed[i] = fmt.Errorf("%s: %w", path, e)
		}
		return nil, warns, errors.Join(prefixed...)
	}
	return cfg, warns, nil
}

// envelope checks the parsed tree of a whole config file.
type envelope struct {
	data  []byte
	errs  []error
	warns []string
	tags  map[string]string // tag -> path of the entry that has it first
}

func (e *envelope) errorf(format string, args ...any) {
	e.errs = append(e.errs, fmt.Errorf(format, args...))
}

func (e *envelope) warnf(format string, args ...any) {
	e.warns = append(e.warns, fmt.Sprintf(format, args...))
}

// typeErr reports a value of the wrong JSON type, with its position since
// the path alone may be hard to spot in a long file.
func (e *envelope) typeErr(path string, n *node, want string) {
	e.errorf("%s: %s: want %s, got %s", position(e.data, n.off), path, want, n.kind)
}

// members calls f for each key of obj in document order. A repeated key is
// an error (Leaf rejects it too) rather than a silent override.
func (e *envelope) members(path string, obj *node, f func(key string, v *node)) {
	seen := map[string]bool{}
	for i, k := range obj.keys {
		if seen[k] {
			where := position(e.data, obj.keyOffs[i])
			if path != "" {
				where += ": " + path
			}
			e.errorf("%s: duplicate key %q", where, k)
			continue
		}
		seen[k] = true
		f(k, obj.elems[i])
	}
}

func (e *envelope) config(root *node) *Config {
	cfg := &Config{}
	if root.kind != "object" {
		e.errorf("%s: the top level must be an object, got %s", position(e.data, root.off), root.kind)
		return cfg
	}
	// A wrong type is reported where it is; don't also complain that the
	// list is empty.
	inOK, outOK := true, true
	e.members("", root, func(k string, v *node) {
		switch k {
		case "log":
			cfg.Log = e.log(v)
		case "inbounds":
			var elems []*node
			elems, inOK = e.array(k, v)
			for i, el := range elems {
				cfg.Inbounds = append(cfg.Inbounds, e.inbound(fmt.Sprintf("inbounds[%d]", i), el))
			}
		case "outbounds":
			var elems []*node
			elems, outOK = e.array(k, v)
			for i, el := range elems {
				cfg.Outbounds = append(cfg.Outbounds, e.outbound(fmt.Sprintf("outbounds[%d]", i), el))
			}
		case "api":
			cfg.API = e.api(v)
		case "dns", "router":
			e.warnf("%s: not supported by mptp, ignored", k)
		default:
			e.warnf("unknown key %q", k)
		}
	})
	if inOK && len(cfg.Inbounds) == 0 {
		e.errorf("inbounds: at least one inbound is needed")
	}
	if outOK && len(cfg.Outbounds) == 0 {
		e.errorf("outbounds: at least one outbound is needed (the first is the default)")
	}
	return cfg
}

func (e *envelope) array(path string, n *node) ([]*node, bool) {
	switch n.kind {
	case "null":
		return nil, true
	case "array":
		return n.elems, true
	}
	e.typeErr(path, n, "array")
	return nil, false
}

// str returns a string value; ok is false when a type error was reported.
// null counts as absent.
func (e *envelope) str(path string, n *node) (s string, ok bool) {
	switch n.kind {
	case "null":
		return "", true
	case "string":
		return n.text, true
	}
	e.typeErr(path, n, "string")
	return "", false
}

func (e *envelope) settings(path string, n *node) json.RawMessage {
	switch n.kind {
	case "null":
		return nil
	case "object":
		return bytes.Clone(e.data[n.off:n.end])
	}
	e.typeErr(path, n, "object")
	return nil
}

func (e *envelope) tag(path, tag, owner string) {
	if tag == "" {
		return
	}
	if first, dup := e.tags[tag]; dup {
		e.errorf("%s: duplicate tag %q (also %s)", path, tag, first)
		return
	}
	e.tags[tag] = owner
}

var levels = map[string]string{
	"debug": "debug",
	"info":  "info",
	"warn":  "warn",
	"error": "error",
	"trace": "debug",
	"none":  "off",
	"off":   "off",
}

func (e *envelope) log(n *node) Log {
	var l Log
	if n.kind == "null" {
		return l
	}
	if n.kind != "object" {
		e.typeErr("log", n, "object")
		return l
	}
	e.members("log", n, func(k string, v *node) {
		switch k {
		case "level":
			s, ok := e.str("log.level", v)
			if !ok || s == "" {
				return
			}
			l.Level = levels[s]
			if l.Level == "" {
				e.errorf("log.level: unknown level %q (want debug, info, warn, error, trace, none or off)", s)
			}
		case "output":
			l.Output, _ = e.str("log.output", v)
		default:
			e.warnf("log: unknown key %q", k)
		}
	})
	return l
}

func (e *envelope) inbound(path string, n *node) Inbound {
	in := Inbound{Path: path}
	if n.kind != "object" {
		e.typeErr(path, n, "object")
		return in
	}
	// false once a type error was reported for the field
	protoOK, addrOK, portOK := true, true, true
	e.members(path, n, func(k string, v *node) {
		p := path + "." + k
		switch k {
		case "protocol":
			in.Protocol, protoOK = e.str(p, v)
		case "tag":
			in.Tag, _ = e.str(p, v)
			e.tag(p, in.Tag, path)
		case "address":
			in.Address, addrOK = e.str(p, v)
		case "port":
			in.Port, portOK = e.port(p, v)
		case "settings":
			in.Settings = e.settings(p, v)
		default:
			e.warnf("%s: unknown key %q", path, k)
		}
	})
	if protoOK && in.Protocol == "" {
		e.errorf("%s.protocol: required", path)
	}
	if addrOK {
		if in.Address == "" {
			e.errorf("%s.address: required", path)
		} else if msg := hostProblem(in.Address); msg != "" {
			e.errorf("%s.address: %s", path, msg)
		}
	}
	if portOK && in.Port == 0 {
		e.errorf("%s.port: required", path)
	}
	return in
}

func (e *envelope) outbound(path string, n *node) Outbound {
	out := Outbound{Path: path}
	if n.kind != "object" {
		e.typeErr(path, n, "object")
		return out
	}
	protoOK := true
	e.members(path, n, func(k string, v *node) {
		p := path + "." + k
		switch k {
		case "protocol":
			out.Protocol, protoOK = e.str(p, v)
		case "tag":
			out.Tag, _ = e.str(p, v)
			e.tag(p, out.Tag, path)
		case "settings":
			out.Settings = e.settings(p, v)
		default:
			e.warnf("%s: unknown key %q", path, k)
		}
	})
	if protoOK && out.Protocol == "" {
		e.errorf("%s.protocol: required", path)
	}
	return out
}

// port returns 0, true for null (absent); ok is false when an error was
// reported.
func (e *envelope) port(path string, n *node) (port int, ok bool) {
	if n.kind == "null" {
		return 0, true
	}
	if n.kind != "number" {
		e.typeErr(path, n, "number")
		return 0, false
	}
	p, err := strconv.ParseInt(n.text, 10, 64)
	if errors.Is(err, strconv.ErrSyntax) {
		e.errorf("%s: %s: want integer, got %s", position(e.data, n.off), path, n.text)
		return 0, false
	}
	if err != nil || p < 1 || p > 65535 {
		e.errorf("%s: %s is out of range 1-65535", path, n.text)
		return 0, false
	}
	return int(p), true
}

// hostProblem says what is wrong with a listen address, or "" if it is an
// IP literal or looks like a host name.
func hostProblem(s string) string {
	if _, err := netip.ParseAddr(s); err == nil {
		return ""
	}
	if _, _, err := net.SplitHostPort(s); err == nil {
		return fmt.Sprintf("%q must not include a port (use \"port\")", s)
	}
	if strings.HasPrefix(s, "[") {
		return fmt.Sprintf("%q: write IPv6 addresses without brackets", s)
	}
	if strings.Contains(s, ":") {
		return fmt.Sprintf("%q is not a valid IP address", s)
	}
	for _, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
			r == '-' || r == '.' || r == '_'
		if !ok {
			return fmt.Sprintf("%q is not an IP address or host name", s)
		}
	}
	return ""
}
