package config

import (
	"encoding/json"
	"testing"
)

func FuzzParse(f *testing.F) {
	f.Add([]byte(leafClient))
	f.Add([]byte(leafServer))
	f.Add([]byte(`{"log":{"level":"trace","output":"console"},"dns":{},"inbounds":[{"protocol":"socks","tag":"in","address":"::1","port":1,"settings":{"accounts":[{"user":"u","x":1}]}}],"outbounds":[{"protocol":"direct","tag":"in","settings":null}]}`))
	f.Add([]byte("{\n  \"inbounds\": [{\"port\": \"x\", \"port\": 1e9}],\n}"))
	f.Add([]byte(`[{"a":[1,2,{"b":null}]}]`))
	f.Add([]byte("\ufeff{\"outbounds\":[{\"settings\":{\"port\":-0.5e3,\"actors\":[\"\\u00e9\"]}}]}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, warns, err := Parse(data)
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
		if len(cfg.Inbounds) == 0 || len(cfg.Outbounds) == 0 {
			t.Fatalf("accepted %+v", cfg)
		}
		var settings []json.RawMessage
		for _, in := range cfg.Inbounds {
			if in.Protocol == "" || in.Address == "" || in.Port < 1 || in.Port > 65535 {
				t.Fatalf("accepted %+v", in)
			}
			settings = append(settings, in.Settings)
		}
		for _, out := range cfg.Outbounds {
			if out.Protocol == "" {
				t.Fatalf("accepted %+v", out)
			}
			settings = append(settings, out.Settings)
		}
		for _, raw := range settings {
			if raw != nil && (!json.Valid(raw) || raw[0] != '{') {
				t.Fatalf("settings %q", raw)
			}
			var s testSettings
			_ = DecodeSettings("s", raw, &s, func(string) {})
		}
	})
}
