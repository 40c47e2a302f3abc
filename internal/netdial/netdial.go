// Package netdial makes the dialer every outbound uses to reach its next
// hop (the target itself, or a relay): from a local address, through a
// network device, over kernel MPTCP.
package netdial

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
)

// Options are the settings an outbound embeds to choose how it leaves the
// machine.
type Options struct {
	// Bind is the local IP address connections leave from.
	Bind string `json:"bind"`
	// Interface is a device name (SO_BINDTODEVICE; needs CAP_NET_RAW).
	Interface string `json:"interface"`
	// MPTCP asks the kernel for Multipath TCP; Go falls back to plain TCP
	// when the kernel or the peer lacks it.
	MPTCP bool `json:"mptcp"`
}

// Dialer dials with the Options it was made from.
type Dialer struct {
	d     net.Dialer
	mptcp *mptcpReport // nil unless MPTCP was asked for
}

// New checks o and makes its Dialer. path names the settings in messages
// ("outbounds[1].settings"); warn gets problems that need not stop the
// config, such as an interface that is not up yet. log (slog.Default when
// nil) gets, once, whether MPTCP is in use.
func New(path string, o Options, warn func(string), log *slog.Logger) (*Dialer, error) {
	if log == nil {
		log = slog.Default()
	}
	d := &Dialer{}
	if o.Bind != "" {
		ip, err := netip.ParseAddr(o.Bind)
		if err != nil {
			return nil, fmt.Errorf("%s.bind: %q is not an IP address", path, o.Bind)
		}
		d.d.LocalAddr = &net.TCPAddr{IP: ip.AsSlice(), Zone: ip.Zone()}
	}
	if o.Interface != "" {
		if _, err := net.InterfaceByName(o.Interface); err != nil && warn != nil {
			warn(fmt.Sprintf("%s.interface: %q is not on this machine now (%v); dials will fail until it is", path, o.Interface, err))
		}
		d.d.Control = bindToDevice(o.Interface)
	}
	if o.MPTCP {
		d.d.SetMultipathTCP(true)
		d.mptcp = &mptcpReport{log: log.With("config", path)}
	}
	return d, nil
}

// DialContext dials address like net.Dialer.DialContext.
func (d *Dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	c, err := d.d.DialContext(ctx, network, address)
	if err == nil && d.mptcp != nil {
		d.mptcp.check(c)
	}
	return c, err
}
