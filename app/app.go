// Package app builds a running mptp from a config: its outbounds, then its
// inbounds, which send what they accept to the first (default) outbound.
package app

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/mptp/mptp/api"
	"github.com/mptp/mptp/config"
	"github.com/mptp/mptp/inbound"
	"github.com/mptp/mptp/outbound"

	// The protocols mptp speaks register themselves.
	_ "github.com/mptp/mptp/inbound/mptp"
	_ "github.com/mptp/mptp/inbound/socks"
	_ "github.com/mptp/mptp/outbound/direct"
	_ "github.com/mptp/mptp/outbound/http"
	_ "github.com/mptp/mptp/outbound/mptp"
	_ "github.com/mptp/mptp/outbound/socks"
)

// errInvalidDep marks an error about an outbound whose own error is
// reported already.
var errInvalidDep = errors.New("is invalid (see its error)")

// App is a built config.
type App struct {
	Inbounds   []inbound.Inbound
	Outbounds  []outbound.Outbound
	byTag      map[string]outbound.Outbound
	log        *slog.Logger
	names      []string // of Inbounds, for logs: tag, else protocol
	started    []inbound.Inbound
	startedOut []outbound.Starter
	api        *api.Server // nil without an "api" section
	apiUp      bool
}

// Build constructs every inbound and outbound without starting anything, so
// that it doubles as the config check (-T). It returns warnings, and all
// errors joined.
func Build(cfg *config.Config, log *slog.Logger) (*App, []string, error) {
	a := &App{byTag: map[string]outbound.Outbound{}, log: log}
	var warnings []string
	warn := func(msg string) { warnings = append(warnings, msg) }
	var errs []error

	outs := map[string]*config.Outbound{}
	for i := range cfg.Outbounds {
		if t := cfg.Outbounds[i].Tag; t != "" {
			outs[t] = &cfg.Outbounds[i]
		}
	}
	building := map[string]bool{}
	failed := map[*config.Outbound]bool{}
	built := map[*config.Outbound]outbound.Outbound{}
	var buildOne func(o *config.Outbound) (outbound.Outbound, error)
	buildOne = func(o *config.Outbound) (outbound.Outbound, error) {
		if ob, ok := built[o]; ok {
			return ob, nil
		}
		if failed[o] {
			return nil, fmt.Errorf("outbound %q: %w", o.Tag, errInvalidDep)
		}
		factory, ok := outbound.Lookup(o.Protocol)
		if !ok {
			failed[o] = true
			return nil, fmt.Errorf("%s.protocol: %w", o.Path, outbound.Unknown(o.Protocol))
		}
		building[o.Tag] = true
		defer delete(building, o.Tag)
		ctx := &outbound.Context{Tag: o.Tag, Path: o.Path, Warn: warn, Logger: log.With("outbound", name(o.Tag, o.Protocol)),
			Lookup: func(tag string) (outbound.Outbound, error) {
				dep, ok := outs[tag]
				switch {
				case !ok:
					return nil, fmt.Errorf("no outbound has tag %q", tag)
				case building[tag]:
					return nil, fmt.Errorf("outbound %q refers back to itself (a cycle)", tag)
				}
				ob, err := buildOne(dep)
				if err != nil && !errors.Is(err, errInvalidDep) {
					// Report the actor's own error at its own path, once.
					errs = append(errs, err)
					err = fmt.Errorf("outbound %q: %w", tag, errInvalidDep)
				}
				return ob, err
			}}
		ob, err := factory(ctx, o.Settings)
		if err != nil {
			failed[o] = true
			return nil, err
		}
		built[o] = ob
		return ob, nil
	}
	for i := range cfg.Outbounds {
		o := &cfg.Outbounds[i]
		ob, err := buildOne(o)
		if err != nil {
			if !errors.Is(err, errInvalidDep) {
				errs = append(errs, err)
			}
			continue
		}
		a.Outbounds = append(a.Outbounds, ob)
		if o.Tag != "" {
			a.byTag[o.Tag] = ob
		}
	}
	if len(errs) > 0 {
		return nil, warnings, errors.Join(dedupe(errs)...)
	}

	def := a.Outbounds[0]
	for i := range cfg.Inbounds {
		in := &cfg.Inbounds[i]
		factory, ok := inbound.Lookup(in.Protocol)
		if !ok {
			errs = append(errs, fmt.Errorf("%s.protocol: unknown protocol %q (known: %v)", in.Path, in.Protocol, inbound.Protocols()))
			continue
		}
		ib, err := factory(&inbound.Context{Tag: in.Tag, Path: in.Path, Address: in.Address, Port: in.Port,
			Dialer: def, Logger: log.With("inbound", name(in.Tag, in.Protocol)), Warn: warn}, in.Settings)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		a.Inbounds = append(a.Inbounds, ib)
		a.names = append(a.names, name(in.Tag, in.Protocol))
	}
	if len(errs) > 0 {
		return nil, warnings, errors.Join(errs...)
	}
	a.buildAPI(cfg)
	return a, warnings, nil
}

func name(tag, protocol string) string {
	if tag != "" {
		return tag
	}
	return protocol
}

// dedupe drops repeated messages: an actor shared by two mptp outbounds
// reports its own error once.
func dedupe(errs []error) []error {
	seen := map[string]bool{}
	var out []error
	for _, e := range errs {
		if !seen[e.Error()] {
			seen[e.Error()] = true
			out = append(out, e)
		}
	}
	return out
}

// Outbound returns the outbound with the given tag.
func (a *App) Outbound(tag string) outbound.Outbound { return a.byTag[tag] }

// Start starts every outbound that has work to do before the first
// connection (an mptp client's warm tunnel), then every inbound; on
// failure the ones started are closed.
func (a *App) Start() error {
	for _, o := range a.Outbounds {
		if s, ok := o.(outbound.Starter); ok {
			s.Start()
			a.startedOut = append(a.startedOut, s)
		}
	}
	for i, in := range a.Inbounds {
		if err := in.Start(); err != nil {
			a.Close()
			return fmt.Errorf("inbound %s: %w", a.names[i], err)
		}
		a.started = append(a.started, in)
		a.log.Info("listening", "inbound", a.names[i], "address", in.Addr().String())
	}
	if a.api != nil {
		if err := a.api.Start(); err != nil {
			a.Close()
			return fmt.Errorf("api: %w", err)
		}
		a.apiUp = true
		a.log.Info("listening", "api", a.api.ListenAddr().String())
	}
	return nil
}

// Close stops every started inbound and waits for their sessions.
func (a *App) Close() error {
	var errs []error
	for _, in := range a.started {
		errs = append(errs, in.Close())
	}
	a.started = nil
	for _, s := range a.startedOut {
		errs = append(errs, s.Close())
	}
	a.startedOut = nil
	if a.apiUp {
		errs = append(errs, a.api.Close())
		a.apiUp = false
	}
	return errors.Join(errs...)
}
