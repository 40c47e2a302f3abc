// Package direct is the outbound that connects straight to its target,
// optionally from a given local address or network interface: that is how
// a multihomed client puts each MPTP path on its own network.
package direct

import (
	"context"
	"encoding/json"
	"net"

	"github.com/mptp/mptp/config"
	"github.com/mptp/mptp/internal/netdial"
	"github.com/mptp/mptp/outbound"
)

func init() { outbound.Register("direct", build) }

type settings struct {
	netdial.Options
}

// Direct dials targets itself.
type Direct struct {
	tag    string
	dialer *netdial.Dialer
}

func build(ctx *outbound.Context, raw json.RawMessage) (outbound.Outbound, error) {
	var st settings
	path := ctx.Path + ".settings"
	if err := config.DecodeSettings(path, raw, &st, ctx.Warn); err != nil {
		return nil, err
	}
	d, err := netdial.New(path, st.Options, ctx.Warn, ctx.Logger)
	if err != nil {
		return nil, err
	}
	return &Direct{tag: ctx.Tag, dialer: d}, nil
}

func (d *Direct) Tag() string { return d.tag }

func (d *Direct) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	return d.dialer.DialContext(ctx, network, address)
}

// ListenPacket opens a UDP socket that leaves the same way as dials.
func (d *Direct) ListenPacket(ctx context.Context) (net.PacketConn, error) {
	return d.dialer.ListenPacket(ctx)
}
