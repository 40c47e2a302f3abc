package config

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// sameJSON reports whether a and b hold equal JSON values (or are both
// absent).
func sameJSON(t *testing.T, a, b json.RawMessage) bool {
	t.Helper()
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		t.Fatalf("%s: %v", a, err)
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return reflect.DeepEqual(va, vb)
}

// checkOutbounds compares outbounds, their settings as JSON values.
func checkOutbounds(t *testing.T, got, want []Outbound) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d outbounds %+v, want %d", len(got), got, len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if !sameJSON(t, g.Settings, w.Settings) {
			t.Errorf("outbounds[%d] (%s) settings = %s, want %s", i, g.Tag, g.Settings, w.Settings)
		}
		g.Settings, w.Settings = nil, nil
		if !reflect.DeepEqual(g, w) {
			t.Errorf("outbounds[%d] = %+v, want %+v", i, g, w)
		}
	}
}

const seedConf = `[General]
socks-port = 1086

[Proxy]
actor1 = direct
actor2 = direct, interface=eth1
actor3 = direct, bind=10.0.0.2

[Proxy Group]
MptpOutTag = mptp, actor1, actor2, actor3, address=1.2.3.4, port=10000

[Rule]
FINAL, MptpOutTag
`

func TestConfLeafSeed(t *testing.T) {
	cfg, warns, err := ParseConf([]byte(seedConf))
	if err != nil || len(warns) > 0 {
		t.Fatalf("ParseConf: warnings %q, error %v", warns, err)
	}
	if cfg.Log != (Log{}) {
		t.Errorf("log = %+v", cfg.Log)
	}
	wantIn := []Inbound{{Protocol: "socks", Address: "127.0.0.1", Port: 1086, Path: `line 2 (General "socks-port")`}}
	if !reflect.DeepEqual(cfg.Inbounds, wantIn) {
		t.Errorf("inbounds = %+v, want %+v", cfg.Inbounds, wantIn)
	}
	checkOutbounds(t, cfg.Outbounds, []Outbound{
		{Protocol: "mptp", Tag: "MptpOutTag", Path: `line 10 (Proxy Group "MptpOutTag")`,
			Settings: json.RawMessage(`{"actors":["actor1","actor2","actor3"],"address":"1.2.3.4","port":10000}`)},
		{Protocol: "direct", Tag: "actor1", Path: `line 5 (Proxy "actor1")`},
		{Protocol: "direct", Tag: "actor2", Path: `line 6 (Proxy "actor2")`, Settings: json.RawMessage(`{"interface":"eth1"}`)},
		{Protocol: "direct", Tag: "actor3", Path: `line 7 (Proxy "actor3")`, Settings: json.RawMessage(`{"bind":"10.0.0.2"}`)},
	})
	// Byte for byte too: the keys in the order written, as Leaf's JSON.
	if got := string(cfg.Outbounds[0].Settings); got != `{"actors":["actor1","actor2","actor3"],"address":"1.2.3.4","port":10000}` {
		t.Errorf("settings %s", got)
	}
}

const exampleConf = `# comments start with # or ;
[General]
loglevel = info            # -> Log.Level (trace/debug/info/warn/error)
socks-interface = 127.0.0.1
socks-port = 1086          # -> an inbound
[Proxy]
Direct = direct
Wifi = direct, interface=wlan0
Lte = direct, bind=10.64.0.2            ; bind= is mptp's extension
Relay1 = socks, 198.18.0.1, 1080, username=u, password=p, interface=eth1
Relay2 = http, 198.18.0.2, 8888, username=u, password=p
[Proxy Group]
Mptp = mptp, Wifi, Lte, Relay1, address=203.0.113.7, port=3001, version=1, scheduler=redundant
[Rule]
FINAL, Mptp                # the default outbound
`

func TestConfExample(t *testing.T) {
	// CRLF line ends and a byte order mark change nothing.
	for _, in := range []string{exampleConf, "\ufeff" + strings.ReplaceAll(exampleConf, "\n", "\r\n")} {
		cfg, warns, err := ParseConf([]byte(in))
		if err != nil || len(warns) > 0 {
			t.Fatalf("ParseConf: warnings %q, error %v", warns, err)
		}
		if cfg.Log != (Log{Level: "info"}) {
			t.Errorf("log = %+v", cfg.Log)
		}
		wantIn := []Inbound{{Protocol: "socks", Address: "127.0.0.1", Port: 1086, Path: `line 5 (General "socks-port")`}}
		if !reflect.DeepEqual(cfg.Inbounds, wantIn) {
			t.Errorf("inbounds = %+v, want %+v", cfg.Inbounds, wantIn)
		}
		checkOutbounds(t, cfg.Outbounds, []Outbound{
			{Protocol: "mptp", Tag: "Mptp", Path: `line 13 (Proxy Group "Mptp")`,
				Settings: json.RawMessage(`{"actors":["Wifi","Lte","Relay1"],"address":"203.0.113.7","port":3001,"version":1,"scheduler":"redundant"}`)},
			{Protocol: "direct", Tag: "Direct", Path: `line 7 (Proxy "Direct")`},
			{Protocol: "direct", Tag: "Wifi", Path: `line 8 (Proxy "Wifi")`, Settings: json.RawMessage(`{"interface":"wlan0"}`)},
			{Protocol: "direct", Tag: "Lte", Path: `line 9 (Proxy "Lte")`, Settings: json.RawMessage(`{"bind":"10.64.0.2"}`)},
			{Protocol: "socks", Tag: "Relay1", Path: `line 10 (Proxy "Relay1")`,
				Settings: json.RawMessage(`{"address":"198.18.0.1","port":1080,"username":"u","password":"p","interface":"eth1"}`)},
			{Protocol: "http", Tag: "Relay2", Path: `line 11 (Proxy "Relay2")`,
				Settings: json.RawMessage(`{"address":"198.18.0.2","port":8888,"username":"u","password":"p"}`)},
		})
	}
}

// TestConfSettingsDecode checks that the settings decode as the protocol
// packages decode JSON ones: same keys, same JSON types.
func TestConfSettingsDecode(t *testing.T) {
	in := `[General]
socks-port = 1
[Proxy]
A = direct, interface = eth0 , bind=10.0.0.1, mptcp=true
B = socks, example.com, 1080, username=u, password=p#;=x, bind=::1, mptcp=false
[Proxy Group]
M = mptp, A, B, address=example.net, port=65535, version=2, scheduler=lowest-delay
[Rule]
FINAL, M
`
	cfg, warns, err := ParseConf([]byte(in))
	if err != nil || len(warns) > 0 {
		t.Fatalf("ParseConf: warnings %q, error %v", warns, err)
	}
	type direct struct {
		Interface string `json:"interface"`
		Bind      string `json:"bind"`
		MPTCP     bool   `json:"mptcp"`
	}
	type proxy struct {
		direct
		Address  string `json:"address"`
		Port     int    `json:"port"`
		Username string `json:"username"`
		Password string `json:"password"`
	}
	type mptp struct {
		Actors    []string `json:"actors"`
		Address   string   `json:"address"`
		Port      int      `json:"port"`
		Version   int      `json:"version"`
		Scheduler string   `json:"scheduler"`
	}
	warn := func(w string) { t.Errorf("warning %q", w) }
	var m mptp
	if err := DecodeSettings("m", cfg.Outbounds[0].Settings, &m, warn); err != nil {
		t.Fatal(err)
	}
	if want := (mptp{[]string{"A", "B"}, "example.net", 65535, 2, "lowest-delay"}); !reflect.DeepEqual(m, want) {
		t.Errorf("mptp %+v, want %+v", m, want)
	}
	var d direct
	if err := DecodeSettings("d", cfg.Outbounds[1].Settings, &d, warn); err != nil {
		t.Fatal(err)
	}
	if want := (direct{"eth0", "10.0.0.1", true}); d != want {
		t.Errorf("direct %+v, want %+v", d, want)
	}
	var p proxy
	if err := DecodeSettings("p", cfg.Outbounds[2].Settings, &p, warn); err != nil {
		t.Fatal(err)
	}
	if want := (proxy{direct{"", "::1", false}, "example.com", 1080, "u", "p#;=x"}); p != want {
		t.Errorf("socks %+v, want %+v", p, want)
	}
}

func TestConfDefaults(t *testing.T) {
	tests := []struct {
		name, in    string
		wantTags    []string
		wantWarning string
		wantIn      Inbound
	}{
		{"first group without FINAL", "[General]\nsocks-port=1\nsocks-interface=::1\n[Proxy]\nA = direct\nB = direct\n[Proxy Group]\nG = mptp, A, B\nH = mptp, B\n",
			[]string{"G", "A", "B", "H"}, `no FINAL rule in [Rule]; the default outbound is "G" (line 8)`,
			Inbound{Protocol: "socks", Address: "::1", Port: 1, Path: `line 2 (General "socks-port")`}},
		{"first proxy without groups", "[Proxy]\nA = direct\nB = direct\n[General]\nsocks-port=65535\n",
			[]string{"A", "B"}, `no FINAL rule in [Rule]; the default outbound is "A" (line 2)`,
			Inbound{Protocol: "socks", Address: "127.0.0.1", Port: 65535, Path: `line 5 (General "socks-port")`}},
		{"FINAL a proxy", "[Rule]\nFINAL,B\n[General]\nsocks-port=2\n[Proxy Group]\nG = mptp, A\n[Proxy]\nA = direct\nB = direct\n",
			[]string{"B", "G", "A"}, "",
			Inbound{Protocol: "socks", Address: "127.0.0.1", Port: 2, Path: `line 4 (General "socks-port")`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, warns, err := ParseConf([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			var tags []string
			for _, o := range cfg.Outbounds {
				tags = append(tags, o.Tag)
			}
			if !reflect.DeepEqual(tags, tt.wantTags) {
				t.Errorf("outbounds %q, want %q", tags, tt.wantTags)
			}
			var want []string
			if tt.wantWarning != "" {
				want = []string{tt.wantWarning}
			}
			if !reflect.DeepEqual(warns, want) {
				t.Errorf("warnings %q, want %q", warns, want)
			}
			if !reflect.DeepEqual(cfg.Inbounds, []Inbound{tt.wantIn}) {
				t.Errorf("inbounds %+v, want %+v", cfg.Inbounds, tt.wantIn)
			}
		})
	}
}

func TestConfErrors(t *testing.T) {
	const general = "[General]\nsocks-port = 1086\n" // lines 1-2
	const proxy = "[Proxy]\nA = direct\n"            // lines 3-4 after general
	tests := []struct {
		name string
		in   string
		want []string // each must be in the error text
	}{
		{"proxy line without =", general + proxy + "B direct\n",
			[]string{`line 5: "B direct": want Name = protocol, ...`}},
		{"general line without =", general + "loglevel info\n" + proxy,
			[]string{`line 3: "loglevel info": want key = value`}},
		{"empty name", general + proxy + " = direct\n",
			[]string{`line 5: missing name before '='`}},
		{"missing protocol", general + proxy + "B =\n",
			[]string{`line 5 (Proxy "B"): missing protocol after '='`}},
		{"non-numeric port", general + proxy + "R = socks, 198.18.0.1, 10x80\n",
			[]string{`line 5 (Proxy "R"): port: want a number, got "10x80"`}},
		{"port out of range", general + proxy + "R = http, 198.18.0.1, 65536\n",
			[]string{`line 5 (Proxy "R"): port: 65536 is out of range 1-65535`}},
		{"port zero", general + proxy + "R = http, h, 0\n",
			[]string{`line 5 (Proxy "R"): port: 0 is out of range 1-65535`}},
		{"group port out of range", general + proxy + "[Proxy Group]\nM = mptp, A, address=h, port=-1\n",
			[]string{`line 6 (Proxy Group "M"): port: -1 is out of range 1-65535`}},
		{"group port not a number", general + proxy + "[Proxy Group]\nM = mptp, A, address=h, port=\n",
			[]string{`line 6 (Proxy Group "M"): port: missing`}},
		{"socks without port", general + proxy + "R = socks, 198.18.0.1, username=u\n",
			[]string{`line 5 (Proxy "R"): socks needs a host and a port`}},
		{"http without host", general + proxy + "R = http\n",
			[]string{`line 5 (Proxy "R"): http needs a host and a port`}},
		{"socks extra positional", general + proxy + "R = socks, h, 1, x\n",
			[]string{`line 5 (Proxy "R"): unexpected value "x" after host and port`}},
		{"direct positional", general + proxy + "B = direct, eth0\n",
			[]string{`line 5 (Proxy "B"): direct takes no positional values, got "eth0"`}},
		{"group without actors", general + proxy + "[Proxy Group]\nM = mptp, address=1.2.3.4, port=1\n",
			[]string{`line 6 (Proxy Group "M"): a group with no actors`}},
		{"FINAL unknown", general + proxy + "[Rule]\nFINAL, Nope\n",
			[]string{`line 6: FINAL: no proxy or group is named "Nope"`}},
		{"FINAL without name", general + proxy + "[Rule]\nFINAL\n",
			[]string{`line 6: "FINAL": want FINAL, <name of a proxy or group>`}},
		{"second FINAL", general + proxy + "[Rule]\nFINAL, A\nFINAL, A\n",
			[]string{`line 7: a second FINAL rule (also line 6)`}},
		{"duplicate proxy", general + proxy + "A = direct, interface=eth0\n",
			[]string{`line 5 (Proxy "A"): duplicate name "A" (also line 4)`}},
		{"group named like a proxy", general + proxy + "[Proxy Group]\nA = mptp, A\n",
			[]string{`line 6 (Proxy Group "A"): duplicate name "A" (also line 4)`}},
		{"key without =", general + proxy + "R = socks, h, 1, username=u, password\n",
			[]string{`line 5 (Proxy "R"): "password": want key=value (positional values come first)`}},
		{"empty key", general + proxy + "R = direct, =x\n",
			[]string{`line 5 (Proxy "R"): "=x": missing key before '='`}},
		{"duplicate key", general + proxy + "R = direct, bind=1.1.1.1, bind=2.2.2.2\n",
			[]string{`line 5 (Proxy "R"): duplicate key "bind"`}},
		{"empty value", general + proxy + "[Proxy Group]\nM = mptp, A, , A\n",
			[]string{`line 6 (Proxy Group "M"): empty value between commas`}},
		{"mptcp not a bool", general + proxy + "R = direct, mptcp=yes\n",
			[]string{`line 5 (Proxy "R"): mptcp: want true or false, got "yes"`}},
		{"version not a number", general + proxy + "[Proxy Group]\nM = mptp, A, version=v1\n",
			[]string{`line 6 (Proxy Group "M"): version: want an integer, got "v1"`}},
		{"no proxies", general + "[Proxy]\n[Proxy Group]\n# none\n",
			[]string{"no [Proxy] or [Proxy Group] entries: at least one outbound is needed"}},
		{"empty", "", []string{"no [Proxy] or [Proxy Group] entries", "socks-port is needed"}},
		{"socks-port out of range", "[General]\nsocks-port = 70000\n" + proxy,
			[]string{`line 2: socks-port: 70000 is out of range 1-65535`}},
		{"socks-port not a number", "[General]\nsocks-port = 1086/tcp\n" + proxy,
			[]string{`line 2: socks-port: want a number, got "1086/tcp"`}},
		{"no socks-port", "[General]\nsocks-interface = 0.0.0.0\n" + proxy,
			[]string{`[General]: socks-port is needed`}},
		{"socks-interface with port", general + "socks-interface = 127.0.0.1:1086\n" + proxy,
			[]string{`line 3: socks-interface: "127.0.0.1:1086" must not include a port (use socks-port)`}},
		{"duplicate general key", general + "socks-port = 1087\n" + proxy,
			[]string{`line 3: duplicate key "socks-port" (also line 2)`}},
		{"log level", general + "loglevel = verbose\n" + proxy,
			[]string{`line 3: loglevel: unknown level "verbose"`}},
		{"bad header", general + "[Proxy\nA = direct\n",
			[]string{`line 3: "[Proxy": want a section header like [Proxy]`}},
		{"invalid UTF-8", general + proxy + "B = direct, interface=\xff\n",
			[]string{`line 5: not valid UTF-8`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, _, err := ParseConf([]byte(tt.in))
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

func TestConfReportsAllErrors(t *testing.T) {
	in := `[General]
socks-port = 0
loglevel = loud
[Proxy]
R = socks, h
R = http, h, x
[Proxy Group]
M = mptp, port=99999
[Rule]
FINAL, Q
`
	_, _, err := ParseConf([]byte(in))
	if err == nil {
		t.Fatal("no error")
	}
	want := []string{
		`line 2: socks-port: 0 is out of range 1-65535`,
		`line 3: loglevel: unknown level "loud" (want trace, debug, info, warn, error or none)`,
		`line 5 (Proxy "R"): socks needs a host and a port: Name = socks, host, port, ...`,
		`line 6 (Proxy "R"): duplicate name "R" (also line 5)`,
		`line 8 (Proxy Group "M"): a group with no actors: Name = mptp, actor1, actor2, ..., address=..., port=...`,
		`line 8 (Proxy Group "M"): port: 99999 is out of range 1-65535`,
		`line 10: FINAL: no proxy or group is named "Q"`,
	}
	if got := strings.Split(err.Error(), "\n"); !reflect.DeepEqual(got, want) {
		t.Errorf("got errors\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestConfWarnings(t *testing.T) {
	in := `title = mine
[General]
loglevel = trace
logoutput = /var/log/mptp.log
dns-server = 1.1.1.1
mptp-port = 3001
color = yes
socks-port = 1086
[Env]
A=1
B=2
[Proxy]
D = direct, interface=eth0, udp=true
M = mptp, D, address=h, port=1
SS = ss, 1.2.3.4, 8388, encrypt-method=chacha20-ietf-poly1305, password=x
Reject = reject
[Host]
[Proxy Group]
G = mptp, D, M, address=h, port=2, tls=true
F = failover, D, M
[Rule]
DOMAIN-SUFFIX, example.com, D
GEOIP, CN, D
; a comment
IP-CIDR, 10.0.0.0/8, D
FINAL, G
EXTERNAL, site:cn, D
`
	cfg, warns, err := ParseConf([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"line 1: outside any section, ignored",
		`line 5: dns-server: not supported by mptp, ignored`,
		`line 6: mptp-port: an mptp server is configured in JSON, not conf; ignored`,
		`line 7: unknown key "color" in [General], ignored`,
		"lines 9-11: section [Env] is not supported by mptp, ignored",
		`line 13 (Proxy "D"): unknown key "udp" for direct, ignored`,
		`line 14 (Proxy "M"): Leaf expects mptp in [Proxy Group]`,
		`line 15 (Proxy "SS"): protocol "ss" is unknown to mptp's conf reader; its values are ignored`,
		"line 17: section [Host] is not supported by mptp, ignored",
		`line 19 (Proxy Group "G"): unknown key "tls" for mptp, ignored`,
		`line 20 (Proxy Group "F"): protocol "failover" is unknown to mptp's conf reader; its values are ignored`,
		"lines 22-23, 25, 27: rules other than FINAL are not supported by mptp (everything goes to the default outbound), ignored",
	}
	if !reflect.DeepEqual(warns, want) {
		t.Errorf("got warnings\n%s\nwant\n%s", strings.Join(warns, "\n"), strings.Join(want, "\n"))
	}
	if cfg.Log != (Log{Level: "debug", Output: "/var/log/mptp.log"}) {
		t.Errorf("log %+v", cfg.Log)
	}
	// Unknown protocols are kept, for the app to report with their lines.
	checkOutbounds(t, cfg.Outbounds, []Outbound{
		{Protocol: "mptp", Tag: "G", Path: `line 19 (Proxy Group "G")`, Settings: json.RawMessage(`{"actors":["D","M"],"address":"h","port":2}`)},
		{Protocol: "direct", Tag: "D", Path: `line 13 (Proxy "D")`, Settings: json.RawMessage(`{"interface":"eth0"}`)},
		{Protocol: "mptp", Tag: "M", Path: `line 14 (Proxy "M")`, Settings: json.RawMessage(`{"actors":["D"],"address":"h","port":1}`)},
		{Protocol: "ss", Tag: "SS", Path: `line 15 (Proxy "SS")`},
		{Protocol: "reject", Tag: "Reject", Path: `line 16 (Proxy "Reject")`},
		{Protocol: "failover", Tag: "F", Path: `line 20 (Proxy Group "F")`},
	})
}

func TestLooksLikeJSON(t *testing.T) {
	for in, want := range map[string]bool{
		`{}`:                         true,
		" \t\r\n {":                  true,
		"\ufeff{":                    true,
		"# a comment\n; another\n{}": true,
		"#{\n[General]":              false,
		"[General]\n{":               false,
		"":                           false,
		"# only a comment {":         false,
		"[1]":                        false,
	} {
		if got := looksLikeJSON([]byte(in)); got != want {
			t.Errorf("looksLikeJSON(%q) = %v", in, got)
		}
	}
}

func TestLoadSniffs(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		t.Helper()
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}

	// The content decides, not the name.
	jsonFile := write("client.conf", "\n\t  \r\n"+leafClient)
	cfg, warns, err := Load(jsonFile)
	if err != nil || len(warns) > 0 {
		t.Fatalf("Load JSON: warnings %q, error %v", warns, err)
	}
	if cfg.Outbounds[0].Path != "outbounds[0]" {
		t.Errorf("JSON read as conf: %+v", cfg.Outbounds[0])
	}

	confFile := write("client.json", "# Leaf conf\n; second comment\n"+seedConf)
	cfg, warns, err = Load(confFile)
	if err != nil || len(warns) > 0 {
		t.Fatalf("Load conf: warnings %q, error %v", warns, err)
	}
	if want := `line 12 (Proxy Group "MptpOutTag")`; cfg.Outbounds[0].Path != want {
		t.Errorf("path %q, want %q", cfg.Outbounds[0].Path, want)
	}

	// Warnings and errors name the file, then the line.
	warnFile := write("warn.conf", "[General]\nsocks-port=1\n[Proxy]\nA = direct, x=1\n")
	_, warns, err = Load(warnFile)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		warnFile + `: line 4 (Proxy "A"): unknown key "x" for direct, ignored`,
		warnFile + `: no FINAL rule in [Rule]; the default outbound is "A" (line 4)`,
	}
	if !reflect.DeepEqual(warns, want) {
		t.Errorf("warnings %q, want %q", warns, want)
	}
	badFile := write("bad.conf", "[General]\nsocks-port=x\n[Proxy]\nA = socks\n")
	_, _, err = Load(badFile)
	if err == nil {
		t.Fatal("no error")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], badFile+": line 2: ") || !strings.HasPrefix(lines[1], badFile+": line 4 (Proxy \"A\"): ") {
		t.Errorf("error %q", err)
	}
}

func FuzzParseConf(f *testing.F) {
	f.Add([]byte(seedConf))
	f.Add([]byte(exampleConf))
	f.Add([]byte("[General]\nsocks-port=1\nsocks-interface=[::1]\n[Proxy]\nA=direct,mptcp=true,\n[Proxy Group]\nG=mptp,A,,port=x,version=99999999999\n[Rule]\nFINAL\nFINAL,G,A\n[Host]\nx=y"))
	f.Add([]byte("\ufeff[Proxy\n=\n[ ]\nA=\xff\n;\n#\n[Rule]\n,\n"))
	f.Add([]byte("[Proxy]\nA = socks, h, 1, username=a=b, password=\"x,y\" # c\nB = http,h,65535,bind=::1\n[General]\nsocks-port=65535\n[Rule]\nFINAL,B"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, warns, err := ParseConf(data)
		if err != nil {
			if cfg != nil {
				t.Fatalf("config with error %v", err)
			}
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		for _, w := range warns {
			if w == "" {
				t.Fatal("empty warning")
			}
		}
		if len(cfg.Inbounds) != 1 || len(cfg.Outbounds) == 0 {
			t.Fatalf("accepted %+v", cfg)
		}
		in := cfg.Inbounds[0]
		if in.Protocol != "socks" || in.Address == "" || hostProblem(in.Address) != "" || in.Port < 1 || in.Port > 65535 {
			t.Fatalf("accepted %+v", in)
		}
		tags := map[string]bool{}
		for _, out := range cfg.Outbounds {
			if out.Protocol == "" || out.Tag == "" || tags[out.Tag] || !strings.HasPrefix(out.Path, "line ") {
				t.Fatalf("accepted %+v", out)
			}
			tags[out.Tag] = true
			if out.Settings != nil && (!json.Valid(out.Settings) || out.Settings[0] != '{') {
				t.Fatalf("settings %q", out.Settings)
			}
			var s testSettings
			_ = DecodeSettings("s", out.Settings, &s, func(string) {})
		}
	})
}
