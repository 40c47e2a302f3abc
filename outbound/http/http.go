// Package http is the outbound that connects through an HTTP proxy with
// CONNECT (RFC 9110, section 9.3.6), optionally logging in with Basic
// authentication (RFC 7617): as an mptp actor it puts a path through a
// proxy.
package http

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/mptp/mptp/config"
	"github.com/mptp/mptp/internal/netdial"
	"github.com/mptp/mptp/outbound"
)

func init() { outbound.Register("http", build) }

// HTTP dials targets through an HTTP CONNECT relay.
type HTTP struct {
	tag    string
	relay  string
	auth   string // the Proxy-Authorization value, or ""
	dialer *netdial.Dialer
}

func build(ctx *outbound.Context, raw json.RawMessage) (outbound.Outbound, error) {
	var st netdial.Relay
	path := ctx.Path + ".settings"
	if err := config.DecodeSettings(path, raw, &st, ctx.Warn); err != nil {
		return nil, err
	}
	relay, err := st.Check(path, "HTTP")
	if err != nil {
		return nil, err
	}
	if strings.Contains(st.Username, ":") {
		// Basic joins them with a colon (RFC 7617, section 2).
		return nil, fmt.Errorf("%s.username: cannot contain \":\"", path)
	}
	d, err := netdial.New(path, st.Options, ctx.Warn, ctx.Logger)
	if err != nil {
		return nil, err
	}
	h := &HTTP{tag: ctx.Tag, relay: relay, dialer: d}
	if st.Username != "" {
		h.auth = "Basic " + base64.StdEncoding.EncodeToString([]byte(st.Username+":"+st.Password))
	}
	return h, nil
}

func (h *HTTP) Tag() string { return h.tag }

// DialContext connects to address through the relay.
func (h *HTTP) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return nil, fmt.Errorf("http relay %s: network %q not supported", h.relay, network)
	}
	if err := checkTarget(address); err != nil {
		return nil, fmt.Errorf("http relay %s: %w", h.relay, err)
	}
	conn, err := h.dialer.DialContext(ctx, "tcp", h.relay)
	if err != nil {
		var oe *net.OpError
		if errors.As(err, &oe) {
			err = oe.Err // "connect: connection refused", without repeating the address
		}
		return nil, fmt.Errorf("http relay %s: dial relay: %w", h.relay, err)
	}
	var tunnel net.Conn
	err = netdial.Handshake(ctx, conn, func() error {
		var err error
		tunnel, err = connect(conn, address, h.auth)
		return err
	})
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("http relay %s: %w", h.relay, err)
	}
	return tunnel, nil
}
