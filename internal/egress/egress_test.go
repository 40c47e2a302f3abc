package egress

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"

	"go.uber.org/goleak"

	"github.com/mptp/mptp/internal/failure"
	"github.com/mptp/mptp/internal/socksaddr"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestDenied(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1": true, "127.9.9.9": true, "::1": true, "10.1.2.3": true, "172.16.0.1": true,
		"172.31.255.255": true, "192.168.1.1": true, "169.254.169.254": true, "fe80::1": true,
		"fe80::1%eth0": true, "fc00::1": true, "fd12::1": true, "0.0.0.0": true, "0.1.2.3": true,
		"::": true, "100.64.0.1": true, "224.0.0.1": true, "ff02::1": true, "255.255.255.255": true,
		"::ffff:127.0.0.1": true, "::ffff:10.0.0.1": true, "64:ff9b::a00:1": true, "fec0::1": true,
		"198.18.0.1": false, "8.8.8.8": false, "172.32.0.1": false, "2001:4860::8888": false,
		"64:ff9b::808:808": false, "::ffff:8.8.8.8": false, "100.128.0.1": false,
	} {
		if got := Denied(netip.MustParseAddr(addr)); got != want {
			t.Errorf("%s: denied %v, want %v", addr, got, want)
		}
	}
}

// recordingNext stands in for the real outbound: it records what it was
// asked to dial and fails, so the test reaches no network.
type recordingNext struct{ dialed []string }

var errNoNet = errors.New("test: no network")

func (r *recordingNext) dial(ctx context.Context, network, address string) (net.Conn, error) {
	r.dialed = append(r.dialed, address)
	return nil, errNoNet
}

func TestDialChecksResolvedAddresses(t *testing.T) {
	lookups := 0
	resolve := func(answers ...string) func(context.Context, string) ([]netip.Addr, error) {
		return func(ctx context.Context, host string) ([]netip.Addr, error) {
			lookups++
			var out []netip.Addr
			for _, a := range answers {
				out = append(out, netip.MustParseAddr(a))
			}
			return out, nil
		}
	}
	for _, tc := range []struct {
		name    string
		target  string
		answers []string
		dialed  []string
		allowed bool
	}{
		{"private name", "intranet.test:80", []string{"10.0.0.5", "127.0.0.1"}, nil, false},
		{"mixed name", "mixed.test:443", []string{"192.168.0.1", "198.18.0.7", "::1"}, []string{"198.18.0.7:443"}, true},
		{"public literal", "198.18.1.1:8080", nil, []string{"198.18.1.1:8080"}, true},
		{"loopback literal", "127.0.0.1:22", nil, nil, false},
		{"mapped literal", "[::ffff:127.0.0.1]:22", nil, nil, false},
		{"v6 name", "six.test:80", []string{"fd00::1", "2001:db8::1"}, []string{"[2001:db8::1]:80"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lookups = 0
			next := &recordingNext{}
			d := &Dialer{Next: next.dial, Resolve: resolve(tc.answers...)}
			_, err := d.DialContext(context.Background(), "tcp", tc.target)
			if tc.allowed != errors.Is(err, errNoNet) {
				t.Fatalf("err %v", err)
			}
			var fe *failure.Error
			if !tc.allowed && (!errors.As(err, &fe) || fe.Reason != failure.NotAllowed) {
				t.Fatalf("err %v", err)
			}
			if len(next.dialed) != len(tc.dialed) || (len(tc.dialed) > 0 && next.dialed[0] != tc.dialed[0]) {
				t.Fatalf("dialed %v, want %v", next.dialed, tc.dialed)
			}
			if tc.answers != nil && lookups != 1 {
				t.Fatalf("%d lookups: the address dialed must be the one checked", lookups)
			}
		})
	}
}

// UDP sockets drop datagrams to local addresses, by address and by name.
func TestPacketConnChecksAddresses(t *testing.T) {
	plain := func(context.Context) (net.PacketConn, error) { return net.ListenPacket("udp", "127.0.0.1:0") }
	pc, err := ListenPacket(plain)(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	for _, to := range []net.Addr{&net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53}, socksaddr.Addr("localhost:53"), &net.UDPAddr{IP: net.ParseIP("192.168.1.1"), Port: 53}} {
		_, err := pc.WriteTo([]byte("x"), to)
		var fe *failure.Error
		if !errors.As(err, &fe) || fe.Reason != failure.NotAllowed {
			t.Errorf("to %s: got %v, want a not-allowed refusal", to, err)
		}
	}
}
