package netdial

import (
	"context"
	"log/slog"
	"net"
)

// Listen opens a TCP listener on address. With mptcp it asks the kernel
// for Multipath TCP, and logs once, on the first accepted connection,
// whether that connection uses it (it does only if the client asked too).
func Listen(address string, mptcp bool, log *slog.Logger) (net.Listener, error) {
	var lc net.ListenConfig
	if !mptcp {
		return lc.Listen(context.Background(), "tcp", address)
	}
	lc.SetMultipathTCP(true)
	ln, err := lc.Listen(context.Background(), "tcp", address)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	return &reportingListener{Listener: ln, report: &mptcpReport{log: log}}, nil
}

type reportingListener struct {
	net.Listener
	report *mptcpReport
}

func (l *reportingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.report.check(c)
	}
	return c, err
}
