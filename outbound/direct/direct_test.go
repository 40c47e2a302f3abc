package direct_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/mptp/mptp/outbound"
	_ "github.com/mptp/mptp/outbound/direct"
	"github.com/mptp/mptp/relaytest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func build(settings string) (outbound.Outbound, []string, error) {
	factory, _ := outbound.Lookup("direct")
	var warnings []string
	ctx := &outbound.Context{Tag: "wifi", Path: "outbounds[1]", Warn: func(msg string) { warnings = append(warnings, msg) }}
	ob, err := factory(ctx, json.RawMessage(settings))
	return ob, warnings, err
}

func TestSettings(t *testing.T) {
	_, _, err := build(`{"bind": "wlan0"}`)
	if want := `outbounds[1].settings.bind: "wlan0" is not an IP address`; err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
	_, _, err = build(`{"mptcp": 1}`)
	if want := `outbounds[1].settings.mptcp: want boolean, got number`; err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
	_, warnings, err := build(`{"interface": "nosuchif0", "mtu": 1}`)
	if err != nil || len(warnings) != 2 ||
		!strings.HasPrefix(warnings[0], `outbounds[1].settings: unknown key "mtu"`) ||
		!strings.HasPrefix(warnings[1], `outbounds[1].settings.interface: "nosuchif0" is not on this machine now`) {
		t.Errorf("got %v, warnings %q", err, warnings)
	}
}

func TestDial(t *testing.T) {
	target := relaytest.Echo(t)
	for _, settings := range []string{``, `{"bind": "127.0.0.1"}`, `{"mptcp": true}`, `{"bind": "127.0.0.1", "mptcp": true}`} {
		ob, warnings, err := build(settings)
		if err != nil || len(warnings) > 0 {
			t.Fatalf("%s: %v %q", settings, err, warnings)
		}
		c, err := ob.DialContext(context.Background(), "tcp", target)
		if err != nil {
			t.Fatalf("%s: %v", settings, err)
		}
		relaytest.RoundTrip(t, c, 1<<20)
		c.Close()
	}
}
