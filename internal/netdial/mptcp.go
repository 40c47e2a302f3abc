package netdial

import (
	"log/slog"
	"net"
	"sync"
)

// mptcpReport logs, once, whether a connection made with MPTCP asked for
// really got it: Go falls back to plain TCP silently.
type mptcpReport struct {
	once sync.Once
	log  *slog.Logger
}

func (r *mptcpReport) check(c net.Conn) {
	r.once.Do(func() {
		using := false
		if tc, ok := c.(*net.TCPConn); ok {
			using, _ = tc.MultipathTCP()
		}
		if using {
			r.log.Info("kernel MPTCP in use", "local", c.LocalAddr().String(), "remote", c.RemoteAddr().String())
		} else {
			r.log.Info("kernel MPTCP not available, using plain TCP", "local", c.LocalAddr().String(), "remote", c.RemoteAddr().String())
		}
	})
}
