// Package socks is the outbound that connects through a SOCKS5 relay
// (RFC 1928, with RFC 1929 username/password login): as an mptp actor it
// puts a path through a proxy.
package socks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"

	"github.com/mptp/mptp/config"
	"github.com/mptp/mptp/internal/netdial"
	"github.com/mptp/mptp/internal/socks5"
	"github.com/mptp/mptp/outbound"
)

func init() { outbound.Register("socks", build) }

// Socks dials targets through a SOCKS5 relay.
type Socks struct {
	tag        string
	relay      string
	user, pass string
	dialer     *netdial.Dialer
}

func build(ctx *outbound.Context, raw json.RawMessage) (outbound.Outbound, error) {
	var st netdial.Relay
	path := ctx.Path + ".settings"
	if err := config.DecodeSettings(path, raw, &st, ctx.Warn); err != nil {
		return nil, err
	}
	relay, err := st.Check(path, "SOCKS5")
	if err != nil {
		return nil, err
	}
	if len(st.Username) > 255 || len(st.Password) > 255 {
		// RFC 1929 gives each one length byte.
		return nil, fmt.Errorf("%s: username and password are at most 255 bytes", path)
	}
	d, err := netdial.New(path, st.Options, ctx.Warn, ctx.Logger)
	if err != nil {
		return nil, err
	}
	return &Socks{tag: ctx.Tag, relay: relay,
		user: st.Username, pass: st.Password, dialer: d}, nil
}

func (s *Socks) Tag() string { return s.tag }

// DialContext connects to address through the relay. The conn it returns
// is the relay connection itself: socks5.Connect reads exactly the reply,
// so whatever the target sends right after is still there to read.
func (s *Socks) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return nil, fmt.Errorf("socks relay %s: network %q not supported", s.relay, network)
	}
	conn, err := s.dialer.DialContext(ctx, "tcp", s.relay)
	if err != nil {
		var oe *net.OpError
		if errors.As(err, &oe) {
			err = oe.Err // "connect: connection refused", without repeating the address
		}
		return nil, fmt.Errorf("socks relay %s: dial relay: %w", s.relay, err)
	}
	err = netdial.Handshake(ctx, conn, func() error {
		return socks5.Connect(conn, address, s.user, s.pass)
	})
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("socks relay %s: %w", s.relay, err)
	}
	return conn, nil
}
