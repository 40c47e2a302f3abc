package relaytest

import (
	"encoding/json"
	"net"
	"testing"

	"github.com/mptp/mptp/outbound"
)

// Build makes a relay outbound of protocol ("socks", "http") from settings,
// tagged "relay" at outbounds[1]; a warning fails the test.
func Build(t testing.TB, protocol, settings string) (outbound.Outbound, error) {
	t.Helper()
	factory, ok := outbound.Lookup(protocol)
	if !ok {
		t.Fatalf("%s not registered", protocol)
	}
	ctx := &outbound.Context{Tag: "relay", Path: "outbounds[1]",
		Warn: func(msg string) { t.Errorf("unexpected warning: %s", msg) }}
	return factory(ctx, json.RawMessage(settings))
}

// Settings are a relay outbound's settings pointing at addr, with a login
// when user is not empty.
func Settings(t testing.TB, addr, user, pass string) string {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	s := `{"address": "` + host + `", "port": ` + port
	if user != "" {
		s += `, "username": "` + user + `", "password": "` + pass + `"`
	}
	return s + "}"
}
