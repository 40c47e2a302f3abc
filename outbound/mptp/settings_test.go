package mptp

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/mptp/mptp/outbound"
)

type nopActor struct{}

func (nopActor) Tag() string { return "a" }
func (nopActor) DialContext(context.Context, string, string) (net.Conn, error) {
	return nil, net.ErrClosed
}

func buildSettings(settings string) (outbound.Outbound, error) {
	ctx := &outbound.Context{Tag: "m", Path: "outbounds[0]", Logger: slog.New(slog.DiscardHandler),
		Warn:   func(string) {},
		Lookup: func(string) (outbound.Outbound, error) { return nopActor{}, nil }}
	return build(ctx, json.RawMessage(settings))
}

func TestPasswordSetting(t *testing.T) {
	ob, err := buildSettings(`{"actors": ["a"], "address": "198.18.0.1", "port": 3001, "password": "pw"}`)
	if err != nil || ob.(*Outbound).Client().Password != "pw" {
		t.Fatalf("%v", err)
	}
	_, err = buildSettings(`{"actors": ["a"], "address": "198.18.0.1", "port": 3001, "password": "pw", "version": 1}`)
	if err == nil || !strings.Contains(err.Error(), "outbounds[0].settings.password: Leaf v1 has no authentication") {
		t.Fatalf("v1 with a password: %v", err)
	}
}

func TestUDPCopiesSetting(t *testing.T) {
	for _, tc := range []struct {
		settings string
		want     bool
	}{
		{`{"actors": ["a"], "address": "198.18.0.1", "port": 3001, "udp_copies": true}`, true},
		{`{"actors": ["a"], "address": "198.18.0.1", "port": 3001, "udp_copies": false}`, false},
		{`{"actors": ["a"], "address": "198.18.0.1", "port": 3001}`, false},
	} {
		ob, err := buildSettings(tc.settings)
		if err != nil {
			t.Fatalf("%s: %v", tc.settings, err)
		}
		if got := ob.(*Outbound).Client().DatagramCopies; got != tc.want {
			t.Errorf("%s: DatagramCopies = %v, want %v", tc.settings, got, tc.want)
		}
	}
	for _, bad := range []string{`3`, `"yes"`} {
		_, err := buildSettings(`{"actors": ["a"], "address": "198.18.0.1", "port": 3001, "udp_copies": ` + bad + `}`)
		if err == nil || !strings.Contains(err.Error(), "outbounds[0].settings.udp_copies: want boolean") {
			t.Errorf("udp_copies %s: got %v, want \"outbounds[0].settings.udp_copies: want boolean\"", bad, err)
		}
	}
}
