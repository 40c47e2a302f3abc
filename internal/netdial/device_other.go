//go:build !linux

package netdial

import (
	"fmt"
	"syscall"
)

func bindToDevice(name string) func(network, address string, c syscall.RawConn) error {
	return func(string, string, syscall.RawConn) error {
		return fmt.Errorf("binding to interface %s is supported on Linux only", name)
	}
}
