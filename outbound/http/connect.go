package http

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"

	"github.com/mptp/mptp/internal/failure"
)

// maxHead bounds the relay's response head, against a hostile relay.
const maxHead = 16 << 10

// connect asks the relay on conn for a tunnel to target and returns the
// tunnel: conn itself, or conn behind the bytes that came with the
// response.
func connect(conn net.Conn, target, auth string) (net.Conn, error) {
	req := "CONNECT " + target + " HTTP/1.1\r\nHost: " + target + "\r\n"
	if auth != "" {
		req += "Proxy-Authorization: " + auth + "\r\n"
	}
	if _, err := io.WriteString(conn, req+"\r\n"); err != nil {
		return nil, err
	}

	head := &io.LimitedReader{R: conn, N: maxHead}
	br := bufio.NewReader(head)
	code, status, err := readResponse(br)
	if err != nil {
		if head.N == 0 {
			return nil, fmt.Errorf("response head longer than %d bytes", maxHead)
		}
		return nil, err
	}
	if code < 200 || code > 299 {
		switch code {
		case 401, 403, 407: // 401: tinyproxy's answer to a wrong password
			return nil, &failure.Error{Reason: failure.NotAllowed, Msg: status}
		case 502, 504:
			return nil, &failure.Error{Reason: failure.HostUnreachable, Msg: status}
		}
		return nil, errors.New(status)
	}
	// The target may have spoken already: what the reader holds beyond the
	// head is the tunnel's first bytes.
	if n := br.Buffered(); n > 0 {
		extra, _ := br.Peek(n)
		return &bufferedConn{Conn: conn, extra: append([]byte(nil), extra...)}, nil
	}
	return conn, nil
}

// checkTarget checks that target, which comes from a client, is a
// "host:port" that cannot smuggle anything into the request.
func checkTarget(target string) error {
	host, _, err := net.SplitHostPort(target)
	if err != nil {
		return err
	}
	if host == "" {
		return fmt.Errorf("target %q has no host", target)
	}
	for i := 0; i < len(target); i++ {
		if target[i] <= ' ' || target[i] == 0x7f {
			return fmt.Errorf("target %q: control characters and spaces are not allowed", target)
		}
	}
	return nil
}

// readResponse reads a response head, skipping interim (1xx) ones, and
// returns its status code and its status line without the version:
// "407 Proxy Authentication Required". Header fields are not needed: a
// tunnel's response has no body (RFC 9110, section 9.3.6), and a refusal's
// body is not read.
func readResponse(br *bufio.Reader) (int, string, error) {
	for {
		line, err := readLine(br)
		if err != nil {
			return 0, "", fmt.Errorf("reading response: %w", err)
		}
		version, status, _ := strings.Cut(line, " ")
		codeText, _, _ := strings.Cut(status, " ")
		code, err := strconv.Atoi(codeText)
		if !strings.HasPrefix(version, "HTTP/1.") || len(codeText) != 3 || err != nil || code < 100 {
			return 0, "", fmt.Errorf("not an HTTP response: %s", printable(line))
		}
		for {
			field, err := readLine(br)
			if err != nil {
				return 0, "", fmt.Errorf("reading response header: %w", err)
			}
			if field == "" {
				break
			}
		}
		// 101 would end HTTP on this conn: it is final, and no success.
		if code >= 200 || code == 101 {
			return code, printable(status), nil
		}
	}
}

// readLine reads one line and drops its CRLF (or bare LF).
func readLine(br *bufio.Reader) (string, error) {
	line, err := br.ReadString('\n')
	if err == io.EOF {
		return "", io.ErrUnexpectedEOF
	}
	if err != nil {
		return "", err
	}
	return strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r"), nil
}

// printable shortens s, text from the relay headed for errors and logs,
// and quotes it if it holds control characters.
func printable(s string) string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] == 0x7f {
			return strconv.Quote(s)
		}
	}
	return s
}
