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
