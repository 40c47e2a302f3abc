package socks_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/mptp/mptp/inbound"
)

func build(settings string) (warnings []string, err error) {
	factory, _ := inbound.Lookup("socks")
	ctx := &inbound.Context{
		Path: "inbounds[3]",
		Warn: func(msg string) { warnings = append(warnings, msg) },
	}
	_, err = factory(ctx, json.RawMessage(settings))
	return warnings, err
}

func TestSettingsUnknownKeys(t *testing.T) {
	warnings, err := build(`{"udp": false, "acounts": [], "Accounts": [], "zz": 1}`)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`inbounds[3].settings: unknown key "acounts"`,
		`inbounds[3].settings: unknown key "zz"`,
	}
	if !slices.Equal(warnings, want) {
		t.Fatalf("warnings %q, want %q", warnings, want)
	}
}

func TestSettingsErrors(t *testing.T) {
	for _, tc := range []struct{ settings, want string }{
		{`[]`, "inbounds[3].settings:"},
		{`{"udp": "yes"}`, "inbounds[3].settings.udp: want boolean"},
		{`{"accounts": [{"username": "", "password": "x"}]}`, "inbounds[3].settings.accounts[0]: username"},
		{`{"accounts": [{"username": "u", "password": ""}]}`, "inbounds[3].settings.accounts[0]: password"},
		{`{"accounts": [{"username": "u", "password": "` + strings.Repeat("x", 256) + `"}]}`, "password must be 1 to 255 bytes"},
		{`{"accounts": [{"username": "u", "password": "a"}, {"username": "u", "password": "b"}]}`, "accounts[1]: duplicate username"},
	} {
		if _, err := build(tc.settings); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error with %q", tc.settings, err, tc.want)
		}
	}
}

func TestSettingsAbsent(t *testing.T) {
	for _, s := range []string{``, `null`, `{}`, `{"accounts": []}`} {
		if w, err := build(s); err != nil || len(w) != 0 {
			t.Errorf("%q: %v %q", s, err, w)
		}
	}
}
