package socks5

import (
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/mptp/mptp/internal/failure"
	"github.com/mptp/mptp/internal/socksaddr"
)

// Connect performs a client's CONNECT to target over conn, a connection to
// a SOCKS5 server, authenticating with user and pass when user is set. A
// refusal is a *failure.Error with the server's reply code.
func Connect(conn net.Conn, target, user, pass string) error {
	method := byte(MethodNoAuth)
	if user != "" {
		method = MethodUserPass
	}
	if _, err := conn.Write([]byte{Version, 1, method}); err != nil {
		return err
	}
	var b [2]byte
	if _, err := io.ReadFull(conn, b[:]); err != nil {
		return fmt.Errorf("socks5: greeting: %w", err)
	}
	if b[0] != Version || b[1] != method {
		return errors.New("socks5: server refused the authentication method")
	}
	if user != "" {
		if len(user) > 255 || len(pass) > 255 {
			return errors.New("socks5: username or password longer than 255 bytes")
		}
		msg := append([]byte{1, byte(len(user))}, user...)
		msg = append(append(msg, byte(len(pass))), pass...)
		if _, err := conn.Write(msg); err != nil {
			return err
		}
		if _, err := io.ReadFull(conn, b[:]); err != nil {
			return fmt.Errorf("socks5: authentication: %w", err)
		}
		if b[1] != 0 {
			return &failure.Error{Reason: failure.NotAllowed, Msg: "socks5: bad username or password"}
		}
	}
	req, err := socksaddr.Append([]byte{Version, CmdConnect, 0}, target)
	if err != nil {
		return err
	}
	if _, err := conn.Write(req); err != nil {
		return err
	}
	var hdr [3]byte
	if _, err := io.ReadFull(conn, hdr[:]); err != nil {
		return fmt.Errorf("socks5: reply: %w", err)
	}
	if hdr[1] != 0 {
		return &failure.Error{Reason: failure.Reason(hdr[1]), Msg: "socks5 server refused " + target}
	}
	// The bound address is read and dropped.
	if _, err := socksaddr.Read(conn); err != nil {
		return fmt.Errorf("socks5: reply address: %w", err)
	}
	return nil
}
