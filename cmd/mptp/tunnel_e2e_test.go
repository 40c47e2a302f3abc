package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/net/proxy"

	"github.com/mptp/mptp/relaytest"
)

// establishedTo counts the established TCP connections on this host whose
// remote port is port (IPv4 loopback: /proc/net/tcp).
func establishedTo(t *testing.T, port int) int {
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		t.Skipf("no /proc/net/tcp: %v", err)
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 4 || fields[3] != "01" {
			continue
		}
		_, hexPort, ok := strings.Cut(fields[2], ":")
		if p, err := strconv.ParseUint(hexPort, 16, 16); ok && err == nil && int(p) == port {
			n++
		}
	}
	return n
}

// 2,000 concurrent SOCKS5 connections through one client with default
// settings: all open at once and echo checksummed bytes, carried by one
// tunnel over the client's two paths.
func TestTwoThousandSocksConnections(t *testing.T) {
	const conns, size = 2000, 8 << 10
	srvPort, socksPort := freePort(t), freePort(t)
	server := startMptp(t, "server", "server", "--listen", loopback(srvPort))
	waitForListener(t, server, loopback(srvPort))
	client := startMptp(t, "client", "client", "--server", loopback(srvPort), "--path", "direct", "--path", "direct",
		"--socks", loopback(socksPort))
	waitForListener(t, client, loopback(socksPort))
	echo := relaytest.Echo(t)
	dialer, err := proxy.SOCKS5("tcp", loopback(socksPort), nil, proxy.Direct)
	if err != nil {
		t.Fatal(err)
	}

	var opened, done sync.WaitGroup
	opened.Add(conns)
	release := make(chan struct{})
	errs := make(chan error, conns)
	for i := range conns {
		done.Go(func() {
			ok := false
			defer func() {
				if !ok {
					opened.Done()
				}
			}()
			c, err := dialer.Dial("tcp", echo)
			if err != nil {
				errs <- fmt.Errorf("connection %d: %w", i, err)
				return
			}
			defer c.Close()
			data := make([]byte, size)
			rand.Read(data)
			if _, err := c.Write(data); err != nil {
				errs <- fmt.Errorf("connection %d: write: %w", i, err)
				return
			}
			got := make([]byte, size)
			if _, err := io.ReadFull(c, got); err != nil {
				errs <- fmt.Errorf("connection %d: read: %w", i, err)
				return
			}
			if sha256.Sum256(got) != sha256.Sum256(data) {
				errs <- fmt.Errorf("connection %d: echo differs", i)
				return
			}
			ok = true
			opened.Done()
			<-release // all stay open until every one has echoed
			// And they still carry bytes once all are open.
			if _, err := c.Write(data[:100]); err != nil {
				errs <- fmt.Errorf("connection %d: second write: %w", i, err)
				return
			}
			if _, err := io.ReadFull(c, got[:100]); err != nil || !bytes.Equal(got[:100], data[:100]) {
				errs <- fmt.Errorf("connection %d: second echo: %v", i, err)
			}
		})
	}
	opened.Wait()
	subs := establishedTo(t, srvPort)
	close(release)
	done.Wait()
	close(errs)
	failed := 0
	for err := range errs {
		if failed++; failed <= 5 {
			t.Error(err)
		}
	}
	if failed > 0 {
		t.Fatalf("%d of %d connections failed", failed, conns)
	}
	// Two paths; a path found silent on a loaded machine may have been
	// dialed again, with the old one not yet gone.
	t.Logf("%d sub-connections to the server with %d connections open", subs, conns)
	if subs < 1 || subs > 4 {
		t.Fatalf("%d sub-connections to the server with %d connections open, want the 2 paths of one tunnel", subs, conns)
	}
}
