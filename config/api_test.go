package config

import (
	"strings"
	"testing"
)

func TestParseAPI(t *testing.T) {
	cfg, warns, err := Parse([]byte(`{"api": {"address": "127.0.0.1", "port": 9090, "secret": 1},` + okIn + `,` + okOut + `}`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.API == nil || *cfg.API != (API{Address: "127.0.0.1", Port: 9090}) || cfg.API.HostPort() != "127.0.0.1:9090" {
		t.Errorf("api %+v", cfg.API)
	}
	if len(warns) != 1 || warns[0] != `api: unknown key "secret"` {
		t.Errorf("warnings %q", warns)
	}
	cfg, _, err = Parse([]byte(`{` + okIn + `,` + okOut + `}`))
	if err != nil || cfg.API != nil {
		t.Errorf("no api section: api %+v, err %v", cfg.API, err)
	}
}

func TestParseAPIErrors(t *testing.T) {
	for _, tc := range []struct{ api, want string }{
		{`{"port": 9090}`, "api.address: required"},
		{`{"address": "127.0.0.1"}`, "api.port: required"},
		{`{"address": "127.0.0.1", "port": 0}`, "api.port: 0 is out of range 1-65535"},
		{`{"address": "127.0.0.1", "port": 70000}`, "api.port: 70000 is out of range 1-65535"},
		{`{"address": "127.0.0.1", "port": "9090"}`, "api.port: want number, got string"},
		{`{"address": "127.0.0.1:9090", "port": 9090}`, `api.address: "127.0.0.1:9090" must not include a port`},
		{`{"address": "local host", "port": 9090}`, `api.address: "local host" is not an IP address or host name`},
		{`{"address": 1, "port": 9090}`, "api.address: want string, got number"},
		{`[]`, "api: want object, got array"},
	} {
		_, _, err := Parse([]byte(`{"api": ` + tc.api + `,` + okIn + `,` + okOut + `}`))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("api %s: error %v, want one containing %q", tc.api, err, tc.want)
		}
	}
}

func TestConfAPI(t *testing.T) {
	base := "[General]\nsocks-port = 1086\n%s[Proxy]\nD = direct\n[Rule]\nFINAL, D\n"
	conf := func(general string) string { return strings.Replace(base, "%s", general, 1) }
	cfg, _, err := ParseConf([]byte(conf("api-port = 9090\n")))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.API == nil || *cfg.API != (API{Address: "127.0.0.1", Port: 9090}) {
		t.Errorf("api-port alone: api %+v, want 127.0.0.1:9090", cfg.API)
	}
	cfg, _, err = ParseConf([]byte(conf("api-interface = 0.0.0.0\napi-port = 9091\n")))
	if err != nil || cfg.API == nil || *cfg.API != (API{Address: "0.0.0.0", Port: 9091}) {
		t.Errorf("api %+v, err %v", cfg.API, err)
	}
	cfg, warns, err := ParseConf([]byte(conf("api-interface = 0.0.0.0\n")))
	if err != nil || cfg.API != nil || len(warns) != 1 || warns[0] != "line 3: api-interface without api-port, ignored" {
		t.Errorf("api-interface alone: api %+v, warnings %q, err %v", cfg.API, warns, err)
	}
	for general, want := range map[string]string{
		"api-port = 0\n":                      "line 3: api-port: 0 is out of range 1-65535",
		"api-port = x\n":                      `line 3: api-port: want a number, got "x"`,
		"api-interface = a b\napi-port = 1\n": `line 3: api-interface: "a b" is not an IP address or host name`,
	} {
		_, _, err := ParseConf([]byte(conf(general)))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want one containing %q", general, err, want)
		}
	}
}
