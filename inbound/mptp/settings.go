package mptp

import (
	"fmt"
	"net/netip"

	"github.com/mptp/mptp"
)

// checkLimits checks the server-wide limits, naming the field at fault.
func checkLimits(path string, st *settings) error {
	switch {
	case st.MaxHandshakes < 0:
		return fmt.Errorf("%s.max_handshakes: cannot be negative", path)
	case st.MaxSessions < 0:
		return fmt.Errorf("%s.max_sessions: cannot be negative", path)
	case st.MaxMemory < 0:
		return fmt.Errorf("%s.max_memory: cannot be negative", path)
	case st.MaxStreams < 0:
		return fmt.Errorf("%s.max_streams: cannot be negative", path)
	case st.StreamRate < 0:
		return fmt.Errorf("%s.stream_rate: cannot be negative", path)
	case st.MaxTunnelsPerIP < 0:
		return fmt.Errorf("%s.max_tunnels_per_ip: cannot be negative", path)
	}
	if st.MaxMemory > 0 {
		o := mptp.Options{RecvWindow: st.RecvWindow, SendBuffer: st.SendBuffer}
		if need := o.TunnelMemory(); st.MaxMemory < need {
			return fmt.Errorf("%s.max_memory: %d bytes is less than one tunnel's recv_window + send_buffer + stream window (%d)", path, st.MaxMemory, need)
		}
	}
	return nil
}

// loopback reports whether a listen address only takes local clients.
func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}
