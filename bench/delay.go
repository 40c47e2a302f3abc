package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// roleDelay delays every packet routed into a TUN device by a fixed time and
// hands it back to the kernel, which routes it on: the kernels here have no
// netem, and a delay at the packet level applies alike to plain TCP, kernel
// MPTCP and mptp. The device exists already (ip tuntap add ... mode tun).
func roleDelay(args []string) error {
	fs := flag.NewFlagSet("delay", flag.ContinueOnError)
	dev := fs.String("dev", "", "the TUN device")
	ms := fs.Float64("ms", 10, "delay of each packet, in milliseconds")
	if err := fs.Parse(args); err != nil {
		return err
	}
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	ifr, err := unix.NewIfreq(*dev)
	if err != nil {
		return err
	}
	ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		return fmt.Errorf("TUNSETIFF %s: %w", *dev, err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		return err
	}
	tun := os.NewFile(uintptr(fd), *dev)
	delay := time.Duration(*ms * float64(time.Millisecond))

	type packet struct {
		at   time.Time
		data []byte
	}
	// The delay is the same for every packet, so a FIFO keeps them in order.
	queue := make(chan packet, 1<<16)
	go func() {
		buf := make([]byte, 65536)
		for {
			n, err := tun.Read(buf)
			if err != nil {
				close(queue)
				return
			}
			select {
			case queue <- packet{time.Now().Add(delay), append([]byte(nil), buf[:n]...)}:
			default: // a full queue drops, as a router's would
			}
		}
	}()
	go func() {
		for p := range queue {
			if d := time.Until(p.at); d > 0 {
				time.Sleep(d)
			}
			tun.Write(p.data)
		}
	}()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	return nil
}
