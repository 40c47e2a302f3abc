package config

import (
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const leafClient = `{"inbounds":[{"protocol":"socks","address":"127.0.0.1","port":1086}],"outbounds":[{"protocol":"mptp","settings":{"actors":["direct1","direct2"],"address":"127.0.0.1","port":3001}},{"protocol":"direct","tag":"direct1"},{"protocol":"direct","tag":"direct2"}]}`

const leafServer = `{"inbounds":[{"protocol":"mptp","address":"0.0.0.0","port":3001}],"outbounds":[{"protocol":"direct"}]}`

func TestLeafClient(t *testing.T) {
	cfg, warns, err := Parse([]byte(leafClient))
	if err != nil || len(warns) > 0 {
		t.Fatalf("Parse: warnings %q, error %v", warns, err)
	}
	wantIn := []Inbound{{Protocol: "socks", Address: "127.0.0.1", Port: 1086, Path: "inbounds[0]"}}
	if !reflect.DeepEqual(cfg.Inbounds, wantIn) {
		t.Errorf("inbounds = %+v, want %+v", cfg.Inbounds, wantIn)
	}
	wantOut := []Outbound{
		{Protocol: "mptp", Settings: json.RawMessage(`{"actors":["direct1","direct2"],"address":"127.0.0.1","port":3001}`), Path: "outbounds[0]"},
		{Protocol: "direct", Tag: "direct1", Path: "outbounds[1]"},
		{Protocol: "direct", Tag: "direct2", Path: "outbounds[2]"},
	}
	if !reflect.DeepEqual(cfg.Outbounds, wantOut) {
		t.Errorf("outbounds = %+v, want %+v", cfg.Outbounds, wantOut)
	}
}

func TestLeafServer(t *testing.T) {
	cfg, warns, err := Parse([]byte(leafServer))
	if err != nil || len(warns) > 0 {
		t.Fatalf("Parse: warnings %q, error %v", warns, err)
	}
	want := &Config{
		Inbounds:  []Inbound{{Protocol: "mptp", Address: "0.0.0.0", Port: 3001, Path: "inbounds[0]"}},
		Outbounds: []Outbound{{Protocol: "direct", Path: "outbounds[0]"}},
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("got %+v, want %+v", cfg, want)
	}
}

// okIn and okOut are valid sections to build test configs from.
const (
	okIn  = `"inbounds":[{"protocol":"socks","address":"127.0.0.1","port":1086}]`
	okOut = `"outbounds":[{"protocol":"direct"}]`
)

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string // each must be in the error text
	}{
		{"syntax", "{\n  \"inbounds\": [],\n  \"outbounds\": [],\n}",
			[]string{"line 4, column 1: invalid character '}' looking for beginning of object key string"}},
		{"syntax column", "{\n  \"log\": {\"level\" \"info\"}\n}",
			[]string{"line 2, column 19: invalid character '\"' after object key"}},
		{"syntax column after unicode", "{\"tag\": \"é\" x}",
			[]string{"line 1, column 13: invalid character 'x'"}},
		{"truncated", "{\n  \"inbounds\": [",
			[]string{"line 2, column 16: unexpected end of JSON input"}},
		{"empty", "", []string{"line 1, column 1: unexpected end of JSON input"}},
		{"trailing data", `{} {}`, []string{"line 1, column 4: invalid character '{' after top-level value"}},
		{"top level", `[1]`, []string{"line 1, column 1: the top level must be an object, got array"}},
		{"inbounds type", `{"inbounds":{},` + okOut + `}`,
			[]string{"line 1, column 13: inbounds: want array, got object"}},
		{"outbounds type", `{` + okIn + `,"outbounds":"direct"}`,
			[]string{"outbounds: want array, got string"}},
		{"inbound type", `{"inbounds":[1],` + okOut + `}`,
			[]string{"line 1, column 14: inbounds[0]: want object, got number"}},
		{"port type", "{\n" + okOut + ",\n\"inbounds\":[{\"protocol\":\"socks\",\"address\":\"::1\",\"port\":\"1086\"}]}",
			[]string{"line 3, column 56: inbounds[0].port: want number, got string"}},
		{"protocol type", `{` + okIn + `,"outbounds":[{"protocol":true}]}`,
			[]string{"outbounds[0].protocol: want string, got boolean"}},
		{"tag type", `{` + okIn + `,"outbounds":[{"protocol":"direct","tag":7}]}`,
			[]string{"outbounds[0].tag: want string, got number"}},
		{"log type", `{"log":"debug",` + okIn + `,` + okOut + `}`,
			[]string{"line 1, column 8: log: want object, got string"}},
		{"duplicate key", "{" + okIn + ",\n" + okOut + ",\n" + okOut + "}",
			[]string{`line 3, column 1: duplicate key "outbounds"`}},
		{"duplicate key in inbound", `{"inbounds":[{"protocol":"socks","address":"127.0.0.1","port":1,"port":2}],` + okOut + `}`,
			[]string{`inbounds[0]: duplicate key "port"`}},
		{"inbound protocol missing", `{"inbounds":[{"address":"127.0.0.1","port":1086}],` + okOut + `}`,
			[]string{"inbounds[0].protocol: required"}},
		{"inbound protocol empty", `{"inbounds":[{"protocol":"","address":"127.0.0.1","port":1086}],` + okOut + `}`,
			[]string{"inbounds[0].protocol: required"}},
		{"outbound protocol missing", `{` + okIn + `,"outbounds":[{"protocol":"direct"},{"tag":"x"}]}`,
			[]string{"outbounds[1].protocol: required"}},
		{"port missing", `{"inbounds":[{"protocol":"socks","address":"127.0.0.1"}],` + okOut + `}`,
			[]string{"inbounds[0].port: required"}},
		{"port too big", `{"inbounds":[{"protocol":"socks","address":"127.0.0.1","port":70000}],` + okOut + `}`,
			[]string{"inbounds[0].port: 70000 is out of range 1-65535"}},
		{"port zero", `{"inbounds":[{"protocol":"socks","address":"127.0.0.1","port":0}],` + okOut + `}`,
			[]string{"inbounds[0].port: 0 is out of range 1-65535"}},
		{"port negative", `{"inbounds":[{"protocol":"socks","address":"127.0.0.1","port":-1}],` + okOut + `}`,
			[]string{"inbounds[0].port: -1 is out of range 1-65535"}},
		{"port huge", `{"inbounds":[{"protocol":"socks","address":"127.0.0.1","port":99999999999999999999}],` + okOut + `}`,
			[]string{"inbounds[0].port: 99999999999999999999 is out of range 1-65535"}},
		{"port fraction", `{"inbounds":[{"protocol":"socks","address":"127.0.0.1","port":1086.5}],` + okOut + `}`,
			[]string{"inbounds[0].port: want integer, got 1086.5"}},
		{"address missing", `{"inbounds":[{"protocol":"socks","port":1086}],` + okOut + `}`,
			[]string{"inbounds[0].address: required"}},
		{"address with port", `{"inbounds":[{"protocol":"socks","address":"127.0.0.1:1086","port":1086}],` + okOut + `}`,
			[]string{`inbounds[0].address: "127.0.0.1:1086" must not include a port`}},
		{"address with space", `{"inbounds":[{"protocol":"socks","address":"local host","port":1086}],` + okOut + `}`,
			[]string{`inbounds[0].address: "local host" is not an IP address or host name`}},
		{"address in brackets", `{"inbounds":[{"protocol":"socks","address":"[::1]","port":1086}],` + okOut + `}`,
			[]string{`inbounds[0].address: "[::1]": write IPv6 addresses without brackets`}},
		{"duplicate outbound tag", `{` + okIn + `,"outbounds":[{"protocol":"mptp"},{"protocol":"direct","tag":"direct1"},{"protocol":"direct","tag":"direct1"}]}`,
			[]string{`outbounds[2].tag: duplicate tag "direct1" (also outbounds[1])`}},
		{"tag shared by inbound and outbound", `{"inbounds":[{"protocol":"socks","tag":"a","address":"127.0.0.1","port":1086}],"outbounds":[{"protocol":"direct","tag":"a"}]}`,
			[]string{`outbounds[0].tag: duplicate tag "a" (also inbounds[0])`}},
		{"no outbounds key", `{` + okIn + `}`,
			[]string{"outbounds: at least one outbound is needed (the first is the default)"}},
		{"empty outbounds", `{` + okIn + `,"outbounds":[]}`,
			[]string{"outbounds: at least one outbound is needed (the first is the default)"}},
		{"no inbounds", `{` + okOut + `}`, []string{"inbounds: at least one inbound is needed"}},
		{"null inbounds", `{"inbounds":null,` + okOut + `}`, []string{"inbounds: at least one inbound is needed"}},
		{"log level", `{"log":{"level":"verbose"},` + okIn + `,` + okOut + `}`,
			[]string{`log.level: unknown level "verbose"`}},
		{"log level type", `{"log":{"level":3},` + okIn + `,` + okOut + `}`,
			[]string{"log.level: want string, got number"}},
		{"outbound settings array", `{` + okIn + `,"outbounds":[{"protocol":"direct","settings":[]}]}`,
			[]string{"outbounds[0].settings: want object, got array"}},
		{"inbound settings string", `{"inbounds":[{"protocol":"socks","address":"127.0.0.1","port":1086,"settings":"x"}],` + okOut + `}`,
			[]string{"inbounds[0].settings: want object, got string"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, _, err := Parse([]byte(tt.in))
			if err == nil {
				t.Fatalf("no error; config %+v", cfg)
			}
			if cfg != nil {
				t.Errorf("config %+v returned with an error", cfg)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%v\ndoes not contain\n%s", err, w)
				}
			}
		})
	}
}

func TestParseReportsAllErrors(t *testing.T) {
	in := `{
  "log": {"level": "loud"},
  "inbounds": [
    {"protocol": "socks", "port": 70000},
    {"address": "127.0.0.1", "port": 1087, "tag": "x"}
  ],
  "outbounds": [
    {"protocol": "direct", "tag": "x", "settings": 5}
  ]
}`
	_, _, err := Parse([]byte(in))
	if err == nil {
		t.Fatal("no error")
	}
	want := []string{
		`log.level: unknown level "loud" (want debug, info, warn, error, trace, none or off)`,
		`inbounds[0].port: 70000 is out of range 1-65535`,
		`inbounds[0].address: required`,
		`inbounds[1].protocol: required`,
		`outbounds[0].tag: duplicate tag "x" (also inbounds[1])`,
		`line 8, column 52: outbounds[0].settings: want object, got number`,
	}
	if got := strings.Split(err.Error(), "\n"); !reflect.DeepEqual(got, want) {
		t.Errorf("got errors\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestParseWarnings(t *testing.T) {
	in := `{
  "dns": {"servers": ["1.1.1.1"]},
  "log": {"level": "info", "color": true},
  "inbounds": [{"protocol": "socks", "address": "localhost", "port": 1086, "extra": 1}],
  "outbounds": [{"protocol": "direct", "address": "x", "port": 1}],
  "router": {},
  "rules": []
}`
	cfg, warns, err := Parse([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"dns: not supported by mptp, ignored",
		`log: unknown key "color"`,
		`inbounds[0]: unknown key "extra"`,
		`outbounds[0]: unknown key "address"`,
		`outbounds[0]: unknown key "port"`,
		"router: not supported by mptp, ignored",
		`unknown key "rules"`,
	}
	if !reflect.DeepEqual(warns, want) {
		t.Errorf("got warnings\n%s\nwant\n%s", strings.Join(warns, "\n"), strings.Join(want, "\n"))
	}
	if cfg.Log.Level != "info" || cfg.Inbounds[0].Address != "localhost" {
		t.Errorf("config %+v", cfg)
	}
}

func TestParseLog(t *testing.T) {
	for level, want := range map[string]string{
		"debug": "debug", "info": "info", "warn": "warn", "error": "error",
		"trace": "debug", "none": "off", "off": "off", "": "",
	} {
		in := `{"log":{"level":"` + level + `","output":"/var/log/mptp.log"},` + okIn + `,` + okOut + `}`
		cfg, _, err := Parse([]byte(in))
		if err != nil {
			t.Fatalf("level %q: %v", level, err)
		}
		if cfg.Log != (Log{Level: want, Output: "/var/log/mptp.log"}) {
			t.Errorf("level %q: got %+v", level, cfg.Log)
		}
	}
}

func TestParseSettings(t *testing.T) {
	in := "\ufeff" + `{"inbounds":[{"protocol":"socks","address":"::","port":1,"settings":null}],
"outbounds":[{"protocol":"direct","settings": { "a" : [1, {}] } }]}`
	cfg, _, err := Parse([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Inbounds[0].Settings != nil {
		t.Errorf("null settings = %q, want nil", cfg.Inbounds[0].Settings)
	}
	if got := string(cfg.Outbounds[0].Settings); got != `{ "a" : [1, {}] }` {
		t.Errorf("settings = %q", got)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	if err := os.WriteFile(good, []byte(`{"x":1,`+okIn+`,`+okOut+`}`), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, warns, err := Load(good)
	if err != nil || len(cfg.Outbounds) != 1 {
		t.Fatalf("Load: %+v, %v", cfg, err)
	}
	if want := []string{good + `: unknown key "x"`}; !reflect.DeepEqual(warns, want) {
		t.Errorf("warnings %q, want %q", warns, want)
	}

	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"inbounds":[]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err = Load(bad)
	if err == nil {
		t.Fatal("no error")
	}
	for _, line := range strings.Split(err.Error(), "\n") {
		if !strings.HasPrefix(line, bad+": ") {
			t.Errorf("error line %q lacks the file name", line)
		}
	}
	if !strings.Contains(err.Error(), "inbounds: at least one") || !strings.Contains(err.Error(), "outbounds: at least one") {
		t.Errorf("error %q", err)
	}

	syntax := filepath.Join(dir, "syntax.json")
	if err := os.WriteFile(syntax, []byte("{\n,"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Load(syntax); err == nil || !strings.HasPrefix(err.Error(), syntax+": line 2, column 1: ") {
		t.Errorf("error %v", err)
	}

	if _, _, err := Load(filepath.Join(dir, "missing.json")); err == nil || !strings.Contains(err.Error(), "missing.json") {
		t.Errorf("error %v", err)
	}
}

type account struct {
	User string `json:"user"`
	Pass string `json:"password"`
}

type limits struct {
	Max int `json:"max"`
}

type common struct {
	Timeout int `json:"timeout"`
}

type testSettings struct {
	common
	Address  string            `json:"address"`
	Port     uint16            `json:"port"`
	Actors   []string          `json:"actors"`
	Accounts []account         `json:"accounts"`
	Limits   *limits           `json:"limits"`
	Named    map[string]limits `json:"named"`
	Bind     netip.Addr        `json:"bind"`
	Count    int               `json:"count,string"`
	Extra    json.RawMessage   `json:"extra"`
	Any      any               `json:"any"`
	Ignored  string            `json:"-"`
}

func TestDecodeSettings(t *testing.T) {
	raw := json.RawMessage(`{
		"timeout": 5,
		"address": "example.com", "port": 3001, "actors": ["a", "b"],
		"accounts": [{"user": "u1", "password": "p1"}, {"user": "u2", "pass": "p2", "id": 3}],
		"limits": {"max": 7, "min": 1},
		"named": {"x": {"max": 1, "zzz": 0}},
		"bind": "::1", "count": "12", "extra": {"anything": [1]}, "any": [true],
		"zeta": 1, "alpha": 2, "Ignored": "x"
	}`)
	var s testSettings
	var warns []string
	err := DecodeSettings("outbounds[0].settings", raw, &s, func(w string) { warns = append(warns, w) })
	if err != nil {
		t.Fatal(err)
	}
	want := testSettings{
		common:   common{Timeout: 5},
		Address:  "example.com",
		Port:     3001,
		Actors:   []string{"a", "b"},
		Accounts: []account{{"u1", "p1"}, {User: "u2"}},
		Limits:   &limits{Max: 7},
		Named:    map[string]limits{"x": {Max: 1}},
		Bind:     netip.MustParseAddr("::1"),
		Count:    12,
		Extra:    json.RawMessage(`{"anything": [1]}`),
		Any:      []any{true},
	}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("got %+v\nwant %+v", s, want)
	}
	wantWarns := []string{
		`outbounds[0].settings.accounts[1]: unknown key "id"`,
		`outbounds[0].settings.accounts[1]: unknown key "pass"`,
		`outbounds[0].settings.limits: unknown key "min"`,
		`outbounds[0].settings.named.x: unknown key "zzz"`,
		`outbounds[0].settings: unknown key "Ignored"`,
		`outbounds[0].settings: unknown key "alpha"`,
		`outbounds[0].settings: unknown key "zeta"`,
	}
	if !reflect.DeepEqual(warns, wantWarns) {
		t.Errorf("got warnings\n%s\nwant\n%s", strings.Join(warns, "\n"), strings.Join(wantWarns, "\n"))
	}
}

func TestDecodeSettingsErrors(t *testing.T) {
	tests := []struct {
		raw  string
		want []string
	}{
		{`{"port": "3001"}`, []string{"s.port: want number, got string"}},
		{`{"port": 70000}`, []string{"s.port: 70000 is out of range for uint16"}},
		{`{"port": -1}`, []string{"s.port: -1 is out of range for uint16"}},
		{`{"port": 1.5}`, []string{"s.port: want integer, got 1.5"}},
		{`{"timeout": "5"}`, []string{"s.timeout: want number, got string"}},
		{`{"actors": "a"}`, []string{"s.actors: want array, got string"}},
		{`{"actors": ["a", 1]}`, []string{"s.actors[1]: want string, got number"}},
		{`{"accounts": [{"user": "u"}, {"user": ["u"]}]}`, []string{"s.accounts[1].user: want string, got array"}},
		{`{"accounts": [1]}`, []string{"s.accounts[0]: want object, got number"}},
		{`{"limits": {"max": true}}`, []string{"s.limits.max: want number, got boolean"}},
		{`{"named": {"x": []}}`, []string{"s.named.x: want object, got array"}},
		{`{"bind": "nope"}`, []string{`s.bind: ParseAddr("nope")`}},
		{`{"bind": 1}`, []string{"s.bind: want string, got number"}},
		{`{"count": 12}`, []string{"s.count: want string, got number"}},
		{`{"address": 1, "port": "x"}`, []string{"s.address: want string, got number", "s.port: want number, got string"}},
		{`{"address": "a", "address": "b"}`, []string{`s: duplicate key "address"`}},
		{`[]`, []string{"s: want object, got array"}},
		{`{"a":}`, []string{"s: line 1, column 6: invalid character '}'"}},
	}
	for _, tt := range tests {
		var s testSettings
		err := DecodeSettings("s", json.RawMessage(tt.raw), &s, nil)
		if err == nil {
			t.Errorf("%s: no error", tt.raw)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error\n%v\ndoes not contain\n%s", tt.raw, err, w)
			}
		}
	}
}

func TestDecodeSettingsEmpty(t *testing.T) {
	for _, raw := range []json.RawMessage{nil, json.RawMessage("null"), json.RawMessage(" null ")} {
		s := testSettings{Address: "kept"}
		if err := DecodeSettings("s", raw, &s, nil); err != nil {
			t.Errorf("%q: %v", raw, err)
		}
		if s.Address != "kept" {
			t.Errorf("%q: settings changed to %+v", raw, s)
		}
	}
	var s testSettings
	if err := DecodeSettings("s", json.RawMessage(`{}`), s, nil); err == nil {
		t.Error("no error for a non-pointer")
	}
}
