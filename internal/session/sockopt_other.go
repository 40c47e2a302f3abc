//go:build !linux

package session

import "net"

func setLowWater(net.Conn) {}

func quickAck(net.Conn) {}
