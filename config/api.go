package config

import (
	"net"
	"strconv"
)

// API is the "api" section: where the metrics, the status page and the
// JSON API are served.
type API struct {
	Address string
	Port    int
}

// HostPort is the address to listen on.
func (a *API) HostPort() string { return net.JoinHostPort(a.Address, strconv.Itoa(a.Port)) }

func (e *envelope) api(n *node) *API {
	if n.kind == "null" {
		return nil
	}
	if n.kind != "object" {
		e.typeErr("api", n, "object")
		return nil
	}
	a := &API{}
	addrOK, portOK := true, true
	e.members("api", n, func(k string, v *node) {
		switch k {
		case "address":
			a.Address, addrOK = e.str("api.address", v)
		case "port":
			a.Port, portOK = e.port("api.port", v)
		default:
			e.warnf("api: unknown key %q", k)
		}
	})
	if addrOK {
		if a.Address == "" {
			e.errorf("api.address: required (127.0.0.1 serves this machine only)")
		} else if msg := hostProblem(a.Address); msg != "" {
			e.errorf("api.address: %s", msg)
		}
	}
	if portOK && a.Port == 0 {
		e.errorf("api.port: required")
	}
	return a
}

// apiLine reads Leaf's api-interface and api-port in [General].
func (p *confParser) apiLine(n int, k, v string) {
	if k == "api-interface" {
		if msg := hostProblem(v); v == "" || msg != "" {
			if v == "" {
				msg = "missing"
			}
			p.errorf(n, "api-interface: %s", msg)
		}
		p.api.Address = v
		return
	}
	p.apiPort = n
	port, msg := confPortValue(v)
	if msg != "" {
		p.errorf(n, "api-port: %s", msg)
	}
	p.api.Port = port
}

// apiConfig is the API section api-port asks for, on api-interface
// (default 127.0.0.1, as Leaf).
func (p *confParser) apiConfig() *API {
	if p.apiPort == 0 {
		if n, ok := p.general["api-interface"]; ok {
			p.warnf(n, "api-interface without api-port, ignored")
		}
		return nil
	}
	a := p.api
	if a.Address == "" {
		a.Address = "127.0.0.1"
	}
	return &a
}
