package faultnet

import (
	"bytes"
	"io"
	"net"
	"testing"
)

func TestThrottlePassesBytes(t *testing.T) {
	a, b := net.Pipe()
	slow := Throttle(a, 10<<20)
	data := bytes.Repeat([]byte("0123456789"), 10000)
	go func() {
		slow.Write(data)
		slow.Close()
	}()
	got, _ := io.ReadAll(b)
	if !bytes.Equal(got, data) {
		t.Fatal("bytes differ")
	}
}

func TestSilence(t *testing.T) {
	a, b := net.Pipe()
	c := Wrap(a)
	c.Silence()
	if n, err := c.Write([]byte("lost")); n != 4 || err != nil {
		t.Fatalf("silent write: %d %v", n, err)
	}
	go b.Write([]byte("dropped"))
	c.Resume()
	// "dropped" may have been read during the silence or after; either
	// way the next bytes come through.
	go b.Write([]byte("kept"))
	buf := make([]byte, 16)
	for {
		n, err := c.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		if string(buf[:n]) == "kept" {
			break
		}
	}
	c.Close()
	b.Close()
}
