package netdial

import (
	"fmt"
	"net"
	"strconv"
)

// Relay is the settings of an outbound that goes through a proxy (socks,
// http): where the relay is, the login, and how it is reached.
type Relay struct {
	Address  string `json:"address"`
	Port     int    `json:"port"`
	Username string `json:"username"`
	Password string `json:"password"`
	Options
}

// Check validates the settings at path; kind names the relay in messages
// ("SOCKS5"). It returns the relay's address.
func (r *Relay) Check(path, kind string) (string, error) {
	switch {
	case r.Address == "":
		return "", fmt.Errorf("%s.address: required (the %s relay)", path, kind)
	case r.Port < 1 || r.Port > 65535:
		return "", fmt.Errorf("%s.port: %d is out of range 1-65535", path, r.Port)
	case (r.Username == "") != (r.Password == ""):
		return "", fmt.Errorf("%s: username and password go together", path)
	}
	return net.JoinHostPort(r.Address, strconv.Itoa(r.Port)), nil
}
