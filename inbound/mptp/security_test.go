package mptp_test

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/mptp/mptp"
	"github.com/mptp/mptp/inbound"
	"github.com/mptp/mptp/internal/failure"
	"github.com/mptp/mptp/relaytest"
)

func build(t *testing.T, address, settings string, log *logBuffer) (inbound.Inbound, []string, error) {
	t.Helper()
	factory, _ := inbound.Lookup("mptp")
	var d net.Dialer
	var warnings []string
	in, err := factory(&inbound.Context{Tag: "in", Path: "inbounds[0]", Address: address,
		Dialer: dialFunc(d.DialContext), Logger: slog.New(slog.NewTextHandler(log, nil)),
		Warn: func(msg string) { warnings = append(warnings, msg) }}, json.RawMessage(settings))
	return in, warnings, err
}

// A server with no password on an address others can reach warns, at -T
// (a build warning) and in its log when it starts.
func TestOpenRelayWarning(t *testing.T) {
	for _, tc := range []struct {
		address, settings string
		warn              bool
	}{
		{"0.0.0.0", `{}`, true},
		{"::", `{}`, true},
		{"198.18.0.1", `{}`, true},
		{"127.0.0.1", `{}`, false},
		{"::1", `{}`, false},
		{"localhost", `{}`, false},
		{"0.0.0.0", `{"password": "p"}`, false},
	} {
		var log logBuffer
		in, warnings, err := build(t, tc.address, tc.settings, &log)
		if err != nil {
			t.Fatal(err)
		}
		if got := len(warnings) == 1 && strings.Contains(warnings[0], "OPEN RELAY") && strings.Contains(warnings[0], "inbounds[0].settings.password"); got != tc.warn {
			t.Errorf("%s %s: warnings %q", tc.address, tc.settings, warnings)
		}
		if tc.address == "0.0.0.0" {
			// Port 0: the listener opens and closes; nothing is sent.
			if err := in.Start(); err != nil {
				t.Fatal(err)
			}
			in.Close()
			if strings.Contains(log.String(), "OPEN RELAY") != tc.warn {
				t.Errorf("%s: log:\n%s", tc.settings, log.String())
			}
		}
	}
}

func TestSettingsErrors(t *testing.T) {
	for settings, want := range map[string]string{
		`{"max_handshakes": -1}`:                   "inbounds[0].settings.max_handshakes",
		`{"max_sessions": -5}`:                     "inbounds[0].settings.max_sessions",
		`{"max_memory": -1}`:                       "inbounds[0].settings.max_memory",
		`{"max_memory": 1000}`:                     "inbounds[0].settings.max_memory: 1000 bytes is less than one tunnel's",
		`{"password": 5}`:                          "inbounds[0].settings.password",
		`{"deny_private": "yes"}`:                  "inbounds[0].settings.deny_private",
		`{"recv_window": 1024, "max_memory": 100}`: "max_memory",
	} {
		var log logBuffer
		if _, _, err := build(t, "127.0.0.1", settings, &log); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want %q", settings, err, want)
		}
	}
}

// With deny_private, a target on loopback is refused as "not allowed"
// (after the password was checked); the server stays up.
func TestDenyPrivate(t *testing.T) {
	var log logBuffer
	server := start(t, `{"password": "pw", "deny_private": true}`, &log)
	c := &mptp.Client{Server: server, Paths: []mptp.Path{{Name: "a"}}}
	c.Password = "pw"
	for _, target := range []string{relaytest.Echo(t), "localhost:9"} {
		_, err := c.Dial("tcp", target)
		var fe *failure.Error
		if !errors.As(err, &fe) || fe.Reason != failure.NotAllowed {
			t.Fatalf("%s: got %v", target, err)
		}
	}
	if !strings.Contains(log.String(), "local address refused") {
		t.Fatalf("log:\n%s", log.String())
	}
}
