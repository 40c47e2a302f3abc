package netdial

import (
	"fmt"
	"syscall"
)

func bindToDevice(name string) func(network, address string, c syscall.RawConn) error {
	return func(network, address string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.BindToDevice(int(fd), name)
		})
		if err == nil && serr != nil {
			err = fmt.Errorf("bind to interface %s: %w", name, serr)
		}
		return err
	}
}
