package socks

import (
	"encoding/json"
	"fmt"

	"github.com/mptp/mptp/config"
)

type account struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

type settings struct {
	Accounts []account `json:"accounts"`
	// UDP is accepted so that configs can carry it; UDP ASSOCIATE is not
	// implemented yet.
	UDP bool `json:"udp"`
}

// parseSettings returns the accounts as username to password, nil when
// clients need no authentication.
func parseSettings(raw json.RawMessage, path string, warn func(string)) (map[string]string, error) {
	var s settings
	if err := config.DecodeSettings(path+".settings", raw, &s, warn); err != nil {
		return nil, err
	}
	if len(s.Accounts) == 0 {
		return nil, nil
	}
	accounts := make(map[string]string, len(s.Accounts))
	for i, a := range s.Accounts {
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
