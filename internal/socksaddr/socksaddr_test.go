package socksaddr

import (
	"bytes"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	for _, a := range []string{"127.0.0.1:80", "[::1]:443", "example.test:8080", "[2001:db8::1]:1"} {
		b, err := Append(nil, a)
		if err != nil {
			t.Fatalf("%s: %v", a, err)
		}
		got, err := Read(bytes.NewReader(b))
		if err != nil || got != a {
			t.Fatalf("%s: got %q, %v", a, got, err)
		}
		got, n, err := Parse(append(b, 0xff))
		if err != nil || got != a || n != len(b) {
			t.Fatalf("%s: Parse got %q %d %v", a, got, n, err)
		}
	}
}

func TestBytes(t *testing.T) {
	b, _ := Append(nil, "198.18.0.1:1080")
	want := []byte{IPv4, 198, 18, 0, 1, 0x04, 0x38}
	if !bytes.Equal(b, want) {
		t.Fatalf("got % x want % x", b, want)
	}
}

func TestErrors(t *testing.T) {
	if _, _, err := Parse([]byte{0x05, 1, 2}); err == nil {
		t.Fatal("bad atyp accepted")
	}
	if _, _, err := Parse([]byte{Domain, 0}); err == nil {
		t.Fatal("empty domain accepted")
	}
	if _, _, err := Parse([]byte{IPv4, 1, 2}); err == nil {
		t.Fatal("short address accepted")
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte{IPv4, 127, 0, 0, 1, 0, 80})
	f.Add([]byte{Domain, 3, 'a', 'b', 'c', 0, 80})
	f.Fuzz(func(t *testing.T, b []byte) {
		a, n, err := Parse(b)
		if err != nil {
			return
		}
		if n > len(b) {
			t.Fatal("used more than given")
		}
		if _, err := Append(nil, a); err != nil {
			t.Fatalf("parsed %q does not re-encode: %v", a, err)
		}
	})
}

// A domain with brackets would make a "host:port" that cannot be split
// back (the fuzzer found it): it is refused.
func TestDomainWithBrackets(t *testing.T) {
	for _, host := range []string{"00[", "a]", "[::1]"} {
		b := append([]byte{Domain, byte(len(host))}, host...)
		if a, _, err := Parse(append(b, 0, 80)); err == nil {
			t.Errorf("%q parsed as %q", host, a)
		}
	}
}
