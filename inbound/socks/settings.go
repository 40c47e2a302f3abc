package socks

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/mptp/mptp/config"
)

type account struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

type settings struct {
	Accounts []account `json:"accounts"`
	// UDP turns UDP ASSOCIATE on (the default) or off.
	UDP *bool `json:"udp"`
	// UDPTimeout, in seconds, ends an association idle for that long.
	UDPTimeout float64 `json:"udp_timeout"`
	// UDPMaxPerClient bounds the live associations of one client IP.
	UDPMaxPerClient int `json:"udp_max_per_client"`
}

// udpConfig is what the settings say about UDP ASSOCIATE.
type udpConfig struct {
	on       bool
	idle     time.Duration
	maxPerIP int
}

// parseSettings returns the accounts as username to password, nil when
// clients need no authentication, and the UDP settings.
func parseSettings(raw json.RawMessage, path string, warn func(string)) (map[string]string, udpConfig, error) {
	var s settings
	udp := udpConfig{on: true, idle: 2 * time.Minute, maxPerIP: 64}
	if err := config.DecodeSettings(path+".settings", raw, &s, warn); err != nil {
		return nil, udp, err
	}
	if s.UDP != nil {
		udp.on = *s.UDP
	}
	switch {
	case s.UDPTimeout < 0:
		return nil, udp, fmt.Errorf("%s.settings.udp_timeout: cannot be negative", path)
	case s.UDPTimeout > 0:
		udp.idle = time.Duration(s.UDPTimeout * float64(time.Second))
	}
	switch {
	case s.UDPMaxPerClient < 0:
		return nil, udp, fmt.Errorf("%s.settings.udp_max_per_client: cannot be negative", path)
	case s.UDPMaxPerClient > 0:
		udp.maxPerIP = s.UDPMaxPerClient
	}
	accounts, err := parseAccounts(s.Accounts, path)
	return accounts, udp, err
}

func parseAccounts(list []account, path string) (map[string]string, error) {
	if len(list) == 0 {
		return nil, nil
	}
	accounts := make(map[string]string, len(list))
	for i, a := range list {
		at := fmt.Sprintf("%s.settings.accounts[%d]", path, i)
		// RFC 1929 sends each as one length byte and at least one byte.
		if len(a.Username) == 0 || len(a.Username) > 255 {
			return nil, fmt.Errorf("%s: username must be 1 to 255 bytes", at)
		}
		if len(a.Password) == 0 || len(a.Password) > 255 {
			return nil, fmt.Errorf("%s: password must be 1 to 255 bytes", at)
		}
		if _, dup := accounts[a.Username]; dup {
			return nil, fmt.Errorf("%s: duplicate username %q", at, a.Username)
		}
		accounts[a.Username] = a.Password
	}
	return accounts, nil
}
