// Package direct is the outbound that connects straight to its target,
// optionally from a given local address or network interface: that is how
// a multihomed client puts each MPTP path on its own network.
package direct

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"

	"github.com/mptp/mptp/config"
	"github.com/mptp/mptp/outbound"
)

func init() { outbound.Register("direct", build) }

type settings struct {
	// Bind is the local IP address sub-connections leave from.
	Bind string `json:"bind"`
	// Interface is a device name (SO_BINDTODEVICE; needs CAP_NET_RAW).
	Interface string `json:"interface"`
}

// Direct dials targets itself.
type Direct struct {
	tag    string
	dialer net.Dialer
}

func build(ctx *outbound.Context, raw json.RawMessage) (outbound.Outbound, error) {
	var st settings
	path := ctx.Path + ".settings"
	if err := config.DecodeSettings(path, raw, &st, ctx.Warn); err != nil {
		return nil, err
	}
	d := &Direct{tag: ctx.Tag}
	if st.Bind != "" {
		ip, err := netip.ParseAddr(st.Bind)
		if err != nil {
			return nil, fmt.Errorf("%s.bind: %q is not an IP address", path, st.Bind)
		}
		d.dialer.LocalAddr = &net.TCPAddr{IP: ip.AsSlice(), Zone: ip.Zone()}
	}
	if st.Interface != "" {
		if _, err := net.InterfaceByName(st.Interface); err != nil {
			ctx.Warn(fmt.Sprintf("%s.interface: %q is not on this machine now (%v); dials will fail until it is", path, st.Interface, err))
		}
		d.dialer.Control = bindToDevice(st.Interface)
	}
	return d, nil
}

func (d *Direct) Tag() string { return d.tag }

func (d *Direct) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	return d.dialer.DialContext(ctx, network, address)
}
