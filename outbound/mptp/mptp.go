// Package mptp is the outbound that carries each connection as an MPTP
// session over its actors, the other outbounds it names: each actor dials
// one path to the MPTP server.
package mptp

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"strconv"
	"time"

	"github.com/mptp/mptp"
	"github.com/mptp/mptp/config"
	"github.com/mptp/mptp/internal/secure"
	"github.com/mptp/mptp/outbound"
)

func init() { outbound.Register("mptp", build) }

type settings struct {
	Actors  []string `json:"actors"`
	Address string   `json:"address"`
	Port    int      `json:"port"`
	// Version 1 talks to a Leaf server; 2 (default) is mptp's own.
	Version int `json:"version"`
	// Scheduler is "lowest-delay" (default: each chunk on the path that
	// delivers it first) or "redundant" (every chunk on every path).
	Scheduler string `json:"scheduler"`
	// RecvWindow and SendBuffer cap each session's memory, in bytes.
	RecvWindow int `json:"recv_window"`
	SendBuffer int `json:"send_buffer"`
	// Grace is how long, in seconds, a session with no path waits for one.
	Grace float64 `json:"grace"`
	// UDPCopies sends each UDP datagram on the two best paths (for calls
	// and games on lossy links); the server drops the second copy.
	UDPCopies bool `json:"udp_copies"`
	// Backup lists actors that carry data only while no other can.
	Backup []string `json:"backup"`
	// StaleFloor, in seconds, is the least time a path may go without
	// answering before it is declared stale (its RTT may set it higher).
	StaleFloor float64 `json:"stale_floor"`
	// Password turns on the secure channel; the server needs the same.
	Password string `json:"password"`
}

// Outbound dials through an mptp.Client.
type Outbound struct {
	tag    string
	client *mptp.Client
}

func build(ctx *outbound.Context, raw json.RawMessage) (outbound.Outbound, error) {
	var st settings
	path := ctx.Path + ".settings"
	if err := config.DecodeSettings(path, raw, &st, ctx.Warn); err != nil {
		return nil, err
	}
	c := &mptp.Client{Version: st.Version, Logger: ctx.Logger}
	switch {
	case len(st.Actors) == 0:
		return nil, fmt.Errorf("%s.actors: an mptp outbound needs at least one actor", path)
	case st.Address == "":
		return nil, fmt.Errorf("%s.address: required (the MPTP server)", path)
	case st.Port < 1 || st.Port > 65535:
		return nil, fmt.Errorf("%s.port: %d is out of range 1-65535", path, st.Port)
	case st.Version != 0 && st.Version != 1 && st.Version != 2:
		return nil, fmt.Errorf("%s.version: %d is not 1 (Leaf) or 2", path, st.Version)
	case st.RecvWindow < 0 || st.SendBuffer < 0 || st.Grace < 0:
		return nil, fmt.Errorf("%s: recv_window, send_buffer and grace cannot be negative", path)
	case st.Password != "" && st.Version == 1:
		return nil, fmt.Errorf("%s.password: Leaf v1 has no authentication; a password needs version 2", path)
	}
	if st.Password != "" {
		c.Password = st.Password
		secure.KeyFromPassword(st.Password) // derive it now, once, not at the first dial
	}
	switch st.Scheduler {
	case "", "lowest-delay":
	case "redundant":
		c.Redundant = true
	default:
		return nil, fmt.Errorf("%s.scheduler: %q is not \"lowest-delay\" or \"redundant\"", path, st.Scheduler)
	}
	c.Server = net.JoinHostPort(st.Address, strconv.Itoa(st.Port))
	c.RecvWindow, c.SendBuffer = st.RecvWindow, st.SendBuffer
	c.DatagramCopies = st.UDPCopies
	c.Grace = time.Duration(st.Grace * float64(time.Second))
	backup := map[string]bool{}
	for i, tag := range st.Backup {
		if !slices.Contains(st.Actors, tag) {
			return nil, fmt.Errorf("%s.backup[%d]: %q is not one of the actors", path, i, tag)
		}
		backup[tag] = true
	}
	if len(backup) == len(st.Actors) {
		return nil, fmt.Errorf("%s.backup: every actor is a backup; at least one must not be", path)
	}
	if st.StaleFloor < 0 {
		return nil, fmt.Errorf("%s.stale_floor: cannot be negative", path)
	}
	c.StaleFloor = time.Duration(st.StaleFloor * float64(time.Second))
	seen := map[string]bool{}
	for i, tag := range st.Actors {
		if seen[tag] {
			return nil, fmt.Errorf("%s.actors[%d]: actor %q is listed twice", path, i, tag)
		}
		seen[tag] = true
		actor, err := ctx.Lookup(tag)
		if err != nil {
			return nil, fmt.Errorf("%s.actors[%d]: %w", path, i, err)
		}
		c.Paths = append(c.Paths, mptp.Path{Name: tag, Dial: actor.DialContext, Backup: backup[tag]})
	}
	return &Outbound{tag: ctx.Tag, client: c}, nil
}

func (o *Outbound) Tag() string { return o.tag }

// Client is the underlying client, for its stats and logger.
func (o *Outbound) Client() *mptp.Client { return o.client }

// Start opens the client's tunnel in the background, so that the first
// connection finds it warm; it is kept open from then on.
func (o *Outbound) Start() { o.client.Warm() }

// Close ends the client's tunnel.
func (o *Outbound) Close() error { return o.client.Close() }

func (o *Outbound) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	return o.client.DialContext(ctx, network, address)
}

// ListenPacket opens a UDP association through the MPTP server.
func (o *Outbound) ListenPacket(ctx context.Context) (net.PacketConn, error) {
	return o.client.ListenPacket(ctx)
}
