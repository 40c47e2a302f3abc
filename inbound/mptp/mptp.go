// Package mptp is the inbound that serves MPTP clients (mptp's v2 and
// Leaf's v1) and connects their sessions through the default outbound.
package mptp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/mptp/mptp"
	"github.com/mptp/mptp/config"
	"github.com/mptp/mptp/inbound"
	"github.com/mptp/mptp/internal/egress"
	"github.com/mptp/mptp/internal/netdial"
	"github.com/mptp/mptp/internal/secure"
	"github.com/mptp/mptp/outbound"
)

func init() { inbound.Register("mptp", build) }

type settings struct {
	RecvWindow int `json:"recv_window"`
	SendBuffer int `json:"send_buffer"`
	// Grace, in seconds: how long a session with no path waits for one.
	Grace float64 `json:"grace"`
	// HandshakeTimeout, in seconds.
	HandshakeTimeout float64 `json:"handshake_timeout"`
	MaxPaths         int     `json:"max_paths"`
	// UDPTimeout, in seconds, ends a UDP association idle for that long.
	UDPTimeout float64 `json:"udp_timeout"`
	// UDPMaxPerClient bounds the live UDP associations of one client IP.
	UDPMaxPerClient int `json:"udp_max_per_client"`
	// MPTCP accepts kernel Multipath TCP sub-connections whatever GODEBUG
	// says (Go's listeners do by default) and logs whether clients use it.
	MPTCP bool `json:"mptcp"`
	// Password turns on the secure channel; clients need the same one.
	Password string `json:"password"`
	// DenyPrivate refuses targets in loopback, private and link-local
	// ranges, checked after name resolution.
	DenyPrivate bool `json:"deny_private"`
	// Server-wide limits (docs/SECURITY.md); 0 takes the default.
	MaxHandshakes int   `json:"max_handshakes"`
	MaxSessions   int   `json:"max_sessions"`
	MaxMemory     int64 `json:"max_memory"`
	// Per tunnel: streams open at once, and streams opened per second;
	// and tunnels open at once per client IP address.
	MaxStreams      int `json:"max_streams"`
	StreamRate      int `json:"stream_rate"`
	MaxTunnelsPerIP int `json:"max_tunnels_per_ip"`
}

// Inbound runs an mptp.Server on a listener.
type Inbound struct {
	tag       string
	addr      string
	server    *mptp.Server
	mptcp     bool
	openRelay bool // no password on a non-loopback address
	log       *slog.Logger
	ln        net.Listener
	done      chan struct{}
}

func build(ctx *inbound.Context, raw json.RawMessage) (inbound.Inbound, error) {
	var st settings
	path := ctx.Path + ".settings"
	if err := config.DecodeSettings(path, raw, &st, ctx.Warn); err != nil {
		return nil, err
	}
	if st.RecvWindow < 0 || st.SendBuffer < 0 || st.Grace < 0 || st.HandshakeTimeout < 0 || st.MaxPaths < 0 ||
		st.UDPTimeout < 0 || st.UDPMaxPerClient < 0 {
		return nil, fmt.Errorf("%s: limits cannot be negative", path)
	}
	if err := checkLimits(path, &st); err != nil {
		return nil, err
	}
	srv := &mptp.Server{Dial: ctx.Dialer.DialContext, Logger: ctx.Logger, MaxPaths: st.MaxPaths}
	srv.RecvWindow, srv.SendBuffer = st.RecvWindow, st.SendBuffer
	srv.Grace = time.Duration(st.Grace * float64(time.Second))
	srv.HandshakeTimeout = time.Duration(st.HandshakeTimeout * float64(time.Second))
	srv.MaxHandshakes, srv.MaxSessions, srv.MaxMemory = st.MaxHandshakes, st.MaxSessions, st.MaxMemory
	srv.MaxStreams, srv.StreamRate, srv.MaxTunnelsPerIP = st.MaxStreams, st.StreamRate, st.MaxTunnelsPerIP
	srv.UDPIdle = time.Duration(st.UDPTimeout * float64(time.Second))
	srv.MaxUDPPerClient = st.UDPMaxPerClient
	// UDP leaves through the default outbound when it can carry UDP, and
	// is refused otherwise.
	if pl, ok := ctx.Dialer.(outbound.PacketListener); ok {
		srv.ListenPacket = pl.ListenPacket
	} else {
		srv.ListenPacket = func(context.Context) (net.PacketConn, error) {
			return nil, errors.New("the default outbound cannot carry UDP")
		}
	}
	if st.DenyPrivate {
		srv.Dial = (&egress.Dialer{Next: ctx.Dialer.DialContext}).DialContext
		srv.ListenPacket = egress.ListenPacket(srv.ListenPacket)
	}
	in := &Inbound{tag: ctx.Tag, addr: net.JoinHostPort(ctx.Address, strconv.Itoa(ctx.Port)), server: srv,
		mptcp: st.MPTCP, log: ctx.Logger}
	if st.Password != "" {
		srv.Password = st.Password
		secure.KeyFromPassword(st.Password) // derive it now, once, not at the first client
	} else if !loopback(ctx.Address) {
		in.openRelay = true
		ctx.Warn(fmt.Sprintf("%s.password: none, and %s is not a loopback address: this server is an OPEN RELAY that anyone who can reach it may use, to any target it can reach", path, in.addr))
	}
	return in, nil
}

func (in *Inbound) Tag() string { return in.tag }

func (in *Inbound) Start() error {
	ln, err := netdial.Listen(in.addr, in.mptcp, in.log)
	if err != nil {
		return err
	}
	in.ln = ln
	if in.openRelay {
		in.log.Warn("OPEN RELAY: no password on a non-loopback address; anyone who can reach it may use it", "address", ln.Addr().String())
	}
	in.done = make(chan struct{})
	go func() {
		defer close(in.done)
		in.server.Serve(ln)
	}()
	return nil
}

func (in *Inbound) Addr() net.Addr {
	if in.ln == nil {
		return nil
	}
	return in.ln.Addr()
}

func (in *Inbound) Close() error {
	err := in.server.Close()
	if in.done != nil {
		<-in.done
	}
	return err
}

// Server is the underlying server, for its status.
func (in *Inbound) Server() *mptp.Server { return in.server }

// Shutdown stops accepting and lets the live sessions finish until ctx is
// done, then closes the inbound.
func (in *Inbound) Shutdown(ctx context.Context) error {
	err := in.server.Shutdown(ctx)
	in.Close()
	return err
}
