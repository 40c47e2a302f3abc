package app

import (
	"github.com/mptp/mptp"
	"github.com/mptp/mptp/api"
	"github.com/mptp/mptp/config"
)

// buildAPI prepares the "api" section's server, if any: its sources are
// the mptp outbounds (clients) and mptp inbounds (servers).
func (a *App) buildAPI(cfg *config.Config) {
	if cfg.API == nil {
		return
	}
	var sources []api.Source
	used := map[string]bool{}
	// A source is named by its tag, else its protocol, else (when that is
	// taken) its place in the config.
	add := func(side, tag, path string, status func() mptp.Status) {
		name := side + "/" + tag
		if tag == "" || used[name] {
			tag = path
		}
		used[side+"/"+tag] = true
		sources = append(sources, api.Source{Side: side, Tag: tag, Status: status})
	}
	for i, ob := range a.Outbounds {
		if c, ok := ob.(interface{ Client() *mptp.Client }); ok {
			o := cfg.Outbounds[i]
			add("client", name(o.Tag, o.Protocol), o.Path, c.Client().Status)
		}
	}
	for i, in := range a.Inbounds {
		if s, ok := in.(interface{ Server() *mptp.Server }); ok {
			c := cfg.Inbounds[i]
			add("server", name(c.Tag, c.Protocol), c.Path, s.Server().Status)
		}
	}
	a.api = &api.Server{Addr: cfg.API.HostPort(), Sources: sources, Logger: a.log.With("api", cfg.API.HostPort())}
}

// API is the API server, nil without an "api" section.
func (a *App) API() *api.Server { return a.api }
