package mptp_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"

	"github.com/mptp/mptp"
)

// A server that connects each session to its target, and a client that
// reaches it over two paths.
func Example() {
	// A target: it says hello.
	target, _ := net.Listen("tcp", "127.0.0.1:0")
	defer target.Close()
	go func() {
		c, _ := target.Accept()
		c.Write([]byte("hello over two paths"))
		c.Close()
	}()

	// The MPTP server dials targets with a plain net.Dialer.
	var d net.Dialer
	srv := &mptp.Server{Dial: d.DialContext}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(ln)
	defer srv.Close()

	// The client's paths could each bind a different interface; here both
	// are plain TCP.
	client := &mptp.Client{
		Server: ln.Addr().String(),
		Paths:  []mptp.Path{{Name: "wifi"}, {Name: "lte"}},
	}
	defer client.Close()
	conn, err := client.Dial("tcp", target.Addr().String())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Close()
	msg, _ := io.ReadAll(conn)
	fmt.Println(string(msg))
	// Output: hello over two paths
}

// A program can serve MPTP itself: with no Dial, sessions come to Accept.
func ExampleServer_Accept() {
	srv := &mptp.Server{}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(ln)
	defer srv.Close()
	go func() {
		c, err := srv.Accept()
		if err != nil {
			return
		}
		fmt.Fprintf(c, "you asked for %s", c.Target())
		c.CloseWrite()
		io.Copy(io.Discard, c)
		c.Close()
	}()

	client := &mptp.Client{Server: ln.Addr().String(), Paths: []mptp.Path{{Name: "a"}, {Name: "b"}}}
	defer client.Close()
	conn, err := client.Dial("tcp", "files.example:9000")
	if err != nil {
		fmt.Println(err)
		return
	}
	msg, _ := io.ReadAll(conn)
	conn.Close()
	fmt.Println(string(msg))
	// Output: you asked for files.example:9000
}

// A client keeps one tunnel to its server: Start opens it before the first
// connection, and every Dial is a stream inside it, spread over all paths,
// with no handshake of its own. Dial is safe from many goroutines.
func ExampleClient_Start() {
	// A target that echoes.
	target, _ := net.Listen("tcp", "127.0.0.1:0")
	defer target.Close()
	go func() {
		for {
			c, err := target.Accept()
			if err != nil {
				return
			}
			go func() {
				io.Copy(c, c)
				c.Close()
			}()
		}
	}()
	var d net.Dialer
	srv := &mptp.Server{Dial: d.DialContext}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(ln)
	defer srv.Close()

	client := &mptp.Client{Server: ln.Addr().String(), Paths: []mptp.Path{{Name: "a"}, {Name: "b"}}}
	defer client.Close()
	if err := client.Start(context.Background()); err != nil {
		fmt.Println(err)
		return
	}
	var wg sync.WaitGroup
	replies := make([]string, 3)
	for i := range replies {
		wg.Go(func() {
			conn, err := client.Dial("tcp", target.Addr().String())
			if err != nil {
				replies[i] = err.Error()
				return
			}
			defer conn.Close()
			fmt.Fprintf(conn, "stream %d", i)
			conn.(interface{ CloseWrite() error }).CloseWrite()
			b, _ := io.ReadAll(conn)
			replies[i] = string(b)
		})
	}
	wg.Wait()
	fmt.Println(replies, client.Status().SessionsOpen, "tunnel")
	// Output: [stream 0 stream 1 stream 2] 1 tunnel
}
