package session

import (
	"testing"
	"time"
)

// durNear reports whether got is within tol of want.
func durNear(got, want, tol time.Duration) bool {
	d := got - want
	if d < 0 {
		d = -d
	}
	return d <= tol
}

func TestEstimatorInit(t *testing.T) {
	tests := []struct {
		name               string
		rtt                time.Duration
		srtt, minRTT, rttv time.Duration
	}{
		{"unknown RTT takes the default", 0, defaultRTT, defaultRTT, 0},
		{"negative RTT takes the default", -time.Second, defaultRTT, defaultRTT, 0},
		{"handshake RTT seeds it", 20 * time.Millisecond, 20 * time.Millisecond, 20 * time.Millisecond, 10 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var e estimator
			e.init(tc.rtt)
			if e.srtt != tc.srtt || e.minRTT != tc.minRTT || e.rttvar != tc.rttv {
				t.Fatalf("srtt %v minRTT %v rttvar %v, want %v %v %v", e.srtt, e.minRTT, e.rttvar, tc.srtt, tc.minRTT, tc.rttv)
			}
			if e.measured || e.rttSamples != 0 {
				t.Fatalf("measured %v samples %d after init, want false 0", e.measured, e.rttSamples)
			}
			if e.rate != 0 {
				t.Fatalf("rate %v after init, want 0 (unknown)", e.rate)
			}
			if e.lastStamp.IsZero() {
				t.Fatal("lastStamp not set by init")
			}
		})
	}
}

func TestEstimatorRTTSmoothing(t *testing.T) {
	ms := func(f float64) time.Duration { return time.Duration(f * float64(time.Millisecond)) }
	type state struct{ srtt, rttvar, minRTT time.Duration }
	tests := []struct {
		name    string
		seed    time.Duration // handshake RTT given to init
		samples []time.Duration
		want    []state // after each sample
	}{
		{
			name:    "first sample replaces the seed, even a larger one",
			seed:    10 * time.Millisecond,
			samples: []time.Duration{ms(80)},
			want:    []state{{ms(80), ms(40), ms(80)}},
		},
		{
			name:    "RFC 6298 smoothing, minimum follows lower samples only",
			samples: []time.Duration{ms(80), ms(160), ms(40)},
			want: []state{
				{ms(80), ms(40), ms(80)},
				// rttvar = (3*40 + |80-160|)/4 = 50; srtt = (7*80 + 160)/8 = 90
				{ms(90), ms(50), ms(80)},
				// rttvar = (3*50 + |90-40|)/4 = 50; srtt = (7*90 + 40)/8 = 83.75
				{ms(83.75), ms(50), ms(40)},
			},
		},
		{
			name:    "steady samples converge and rttvar shrinks",
			samples: []time.Duration{ms(100), ms(100), ms(100)},
			want: []state{
				{ms(100), ms(50), ms(100)},
				{ms(100), ms(37.5), ms(100)},
				{ms(100), ms(28.125), ms(100)},
			},
		},
		{
			name:    "equal sample keeps the minimum",
			samples: []time.Duration{ms(30), ms(30)},
			want:    []state{{ms(30), ms(15), ms(30)}, {ms(30), ms(11.25), ms(30)}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var e estimator
			e.init(tc.seed)
			for i, s := range tc.samples {
				e.rtt(s)
				got := state{e.srtt, e.rttvar, e.minRTT}
				if got != tc.want[i] {
					t.Fatalf("after sample %d (%v): srtt %v rttvar %v minRTT %v, want %v %v %v",
						i, s, got.srtt, got.rttvar, got.minRTT, tc.want[i].srtt, tc.want[i].rttvar, tc.want[i].minRTT)
				}
			}
			if !e.measured || e.rttSamples != len(tc.samples) {
				t.Fatalf("measured %v samples %d, want true %d", e.measured, e.rttSamples, len(tc.samples))
			}
		})
	}
}

func TestEstimatorMinRTTWindow(t *testing.T) {
	tests := []struct {
		name    string
		age     time.Duration // how old the current minimum is
		sample  time.Duration
		wantMin time.Duration
	}{
		{"fresh minimum survives a higher sample", 0, 50 * time.Millisecond, 10 * time.Millisecond},
		{"fresh minimum yields to a lower sample", 0, 5 * time.Millisecond, 5 * time.Millisecond},
		{"expired minimum yields to a higher sample", minRTTWindow + time.Second, 50 * time.Millisecond, 50 * time.Millisecond},
		{"expired minimum yields to a lower sample", minRTTWindow + time.Second, 5 * time.Millisecond, 5 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var e estimator
			e.init(0)
			e.rtt(10 * time.Millisecond)
			e.minRTTAt = time.Now().Add(-tc.age)
			before := time.Now()
			e.rtt(tc.sample)
			if e.minRTT != tc.wantMin {
				t.Fatalf("minRTT %v, want %v", e.minRTT, tc.wantMin)
			}
			if tc.wantMin == tc.sample && e.minRTTAt.Before(before) {
				t.Fatal("minRTTAt not renewed with the new minimum")
			}
		})
	}
}

func TestEstimatorDelivered(t *testing.T) {
	// Each case makes the sample span about one second (lastStamp a second
	// back), so a sample of acc bytes is in (acc/2, acc] bytes per second
	// however slow the machine.
	tests := []struct {
		name     string
		rate     float64 // the current rate, kept as one sample
		full     bool
		acc      uint64
		wantTake bool // the sample enters the ring
	}{
		{"unknown rate, not full: dropped", 0, false, 4000, false},
		{"unknown rate, full: taken", 0, true, 4000, true},
		{"not full, lower: dropped", 1000, false, 500, false},
		{"not full, higher: raises", 1000, false, 4000, true},
		{"full, lower: taken", 1000, true, 500, true},
		{"full, higher: taken", 1000, true, 4000, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var e estimator
			e.init(0)
			if tc.rate > 0 {
				e.samples[0], e.next, e.rate = tc.rate, 1, tc.rate
			}
			e.full = tc.full
			e.lastStamp = time.Now().Add(-time.Second)
			before := time.Now()
			e.delivered(tc.acc)
			if e.acc != 0 || e.full || e.lastStamp.Before(before) {
				t.Fatalf("after a sample: acc %d full %v lastStamp %v, want 0 false renewed", e.acc, e.full, e.lastStamp)
			}
			taken := e.lastSample.After(before) || e.lastSample.Equal(before)
			if taken != tc.wantTake {
				t.Fatalf("sample taken %v, want %v (rate %v)", taken, tc.wantTake, e.rate)
			}
			lo, hi := float64(tc.acc)/2, float64(tc.acc)
			switch {
			case !tc.wantTake:
				if e.rate != tc.rate {
					t.Fatalf("rate %v, want unchanged %v", e.rate, tc.rate)
				}
			case float64(tc.acc) > tc.rate:
				if e.rate < lo || e.rate > hi {
					t.Fatalf("rate %v, want the sample in [%v, %v]", e.rate, lo, hi)
				}
			default:
				// A lower full sample joins the ring; the rate is the best
				// recent sample, still the old one.
				if e.rate != tc.rate {
					t.Fatalf("rate %v, want the best sample %v", e.rate, tc.rate)
				}
				if s := e.samples[1]; s < lo || s > hi {
					t.Fatalf("ring holds %v, want the sample in [%v, %v]", s, lo, hi)
				}
			}
		})
	}
}

func TestEstimatorDeliveredAccumulates(t *testing.T) {
	var e estimator
	e.init(time.Hour) // samples need an srtt's worth of time: never here
	e.full = true
	e.delivered(1000)
	e.delivered(500)
	if e.acc != 1500 {
		t.Fatalf("acc %d, want 1500", e.acc)
	}
	if e.rate != 0 || !e.lastSample.IsZero() || !e.full {
		t.Fatalf("rate %v lastSample %v full %v: a sample was taken too soon", e.rate, e.lastSample, e.full)
	}
	// Once the interval is long enough, the accumulated bytes make one sample.
	e.lastStamp = time.Now().Add(-2 * time.Hour)
	e.delivered(500)
	if e.acc != 0 || e.rate <= 0 {
		t.Fatalf("acc %d rate %v after the interval, want 0 and a rate", e.acc, e.rate)
	}
	if want := 2000 / (2 * time.Hour).Seconds(); e.rate > want*1.01 || e.rate < want/2 {
		t.Fatalf("rate %v, want about %v", e.rate, want)
	}
}

func TestEstimatorFullSamplesAgeOut(t *testing.T) {
	// The rate is the best of the last len(samples) samples: a high one
	// gives way once enough lower full samples follow it.
	var e estimator
	e.init(0)
	e.samples[0], e.next, e.rate = 1e9, 1, 1e9
	for i := 1; i <= len(e.samples); i++ {
		e.full = true
		e.lastStamp = time.Now().Add(-time.Second)
		e.delivered(1000)
		if i < len(e.samples) && e.rate != 1e9 {
			t.Fatalf("after %d low samples rate %v, want 1e9 still", i, e.rate)
		}
	}
	if e.rate > 1000 || e.rate < 500 {
		t.Fatalf("after %d low samples rate %v, want about 1000", len(e.samples), e.rate)
	}
}

func TestEstimatorForget(t *testing.T) {
	var e estimator
	e.init(10 * time.Millisecond)
	e.rate, e.samples[3], e.next, e.acc = 5e6, 5e6, 4, 12345
	e.lastStamp = time.Now().Add(-time.Minute)
	before := time.Now()
	e.forget()
	if e.rate != 0 || e.samples != [8]float64{} || e.next != 0 || e.acc != 0 {
		t.Fatalf("after forget: rate %v samples %v next %d acc %d", e.rate, e.samples, e.next, e.acc)
	}
	if e.lastStamp.Before(before) {
		t.Fatal("forget did not restart the sampling interval")
	}
	if e.srtt != 10*time.Millisecond || e.minRTT != 10*time.Millisecond {
		t.Fatalf("forget touched the RTT: srtt %v minRTT %v", e.srtt, e.minRTT)
	}
	if e.cwnd() != initialCwnd {
		t.Fatalf("cwnd %d after forget, want initialCwnd %d", e.cwnd(), initialCwnd)
	}
}

func TestEstimatorExpire(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	tests := []struct {
		name     string
		rate     float64
		since    time.Duration // now - lastSample
		wantRate float64
	}{
		{"fresh rate kept", 1e6, rateTTL / 2, 1e6},
		{"rate at exactly the TTL kept", 1e6, rateTTL, 1e6},
		{"stale rate forgotten", 1e6, rateTTL + time.Millisecond, 0},
		{"unknown rate stays unknown", 0, time.Hour, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var e estimator
			e.init(0)
			e.rate, e.samples[0], e.next, e.acc = tc.rate, tc.rate, 1, 77
			e.lastSample = t0
			e.expire(t0.Add(tc.since))
			if e.rate != tc.wantRate {
				t.Fatalf("rate %v, want %v", e.rate, tc.wantRate)
			}
			forgotten := tc.rate > 0 && tc.wantRate == 0
			if forgotten != (e.acc == 0 && e.samples == [8]float64{}) {
				t.Fatalf("forgotten %v but acc %d samples %v", forgotten, e.acc, e.samples)
			}
		})
	}
}

func TestEstimatorCwnd(t *testing.T) {
	tests := []struct {
		name   string
		rate   float64
		minRTT time.Duration
		want   uint64
	}{
		{"unknown rate: initial window", 0, 100 * time.Millisecond, initialCwnd},
		{"unknown rate, long RTT: still initial", 0, 10 * time.Second, initialCwnd},
		{"slow path: the floor", 1000, 100 * time.Millisecond, minCwnd},
		// 2 x 1e8 B/s x 10 ms = 2e6 beats headroom's 1e8 x 4 ms = 4e5.
		{"twice the bandwidth-delay product", 1e8, 10 * time.Millisecond, 2_000_000},
		// 2 x 1e9 x 1 µs = 2000; headroom: 1e9 x 4 ms = 4e6.
		{"fast path, tiny RTT: headroom", 1e9, time.Microsecond, 4_000_000},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var e estimator
			e.init(tc.minRTT)
			e.rate = tc.rate
			got := e.cwnd()
			if d := int64(got) - int64(tc.want); d < -1 || d > 1 {
				t.Fatalf("cwnd %d, want %d", got, tc.want)
			}
			if got < minCwnd && tc.rate > 0 {
				t.Fatalf("cwnd %d below the floor %d", got, minCwnd)
			}
		})
	}
}

func TestEstimatorSpeedArrival(t *testing.T) {
	tests := []struct {
		name         string
		srtt, minRTT time.Duration
		rate         float64
		n            uint64
		wantSpeed    float64
		wantArrival  time.Duration
	}{
		{
			name: "unknown rate: initial window per srtt",
			srtt: 100 * time.Millisecond, minRTT: 100 * time.Millisecond,
			n: initialCwnd, wantSpeed: initialCwnd / 0.1,
			wantArrival: 50*time.Millisecond + 100*time.Millisecond,
		},
		{
			name: "unknown rate, nothing queued: half the min RTT",
			srtt: 80 * time.Millisecond, minRTT: 40 * time.Millisecond,
			n: 0, wantSpeed: initialCwnd / 0.08,
			wantArrival: 20 * time.Millisecond,
		},
		{
			name: "unknown rate, sub-millisecond srtt: clamped to 1 ms",
			srtt: 100 * time.Microsecond, minRTT: 100 * time.Microsecond,
			n: initialCwnd, wantSpeed: initialCwnd / 0.001,
			wantArrival: 50*time.Microsecond + time.Millisecond,
		},
		{
			name: "unknown rate, zero srtt: clamped, finite",
			srtt: 0, minRTT: 0,
			n: initialCwnd, wantSpeed: initialCwnd / 0.001,
			wantArrival: time.Millisecond,
		},
		{
			name: "known rate is used",
			srtt: 500 * time.Millisecond, minRTT: 20 * time.Millisecond,
			rate: 1e6, n: 1e6, wantSpeed: 1e6,
			wantArrival: 10*time.Millisecond + time.Second,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := estimator{srtt: tc.srtt, minRTT: tc.minRTT, rate: tc.rate}
			if got := e.speed(); got < tc.wantSpeed*0.999999 || got > tc.wantSpeed*1.000001 {
				t.Fatalf("speed %v, want %v", got, tc.wantSpeed)
			}
			if got := e.arrival(tc.n); !durNear(got, tc.wantArrival, time.Microsecond) {
				t.Fatalf("arrival(%d) %v, want %v", tc.n, got, tc.wantArrival)
			}
			// More bytes never arrive sooner.
			if e.arrival(tc.n+1000) < e.arrival(tc.n) {
				t.Fatal("arrival not monotonic in n")
			}
		})
	}
}

func TestEstimatorDueBy(t *testing.T) {
	sent := time.Unix(5000, 0)
	tests := []struct {
		name         string
		srtt, rttvar time.Duration
		slack        time.Duration
		want         time.Duration
	}{
		{"srtt + 4 rttvar", 100 * time.Millisecond, 25 * time.Millisecond, 0, 200 * time.Millisecond},
		{"plus slack", 100 * time.Millisecond, 25 * time.Millisecond, 7 * time.Millisecond, 207 * time.Millisecond},
		{"no variance", 10 * time.Millisecond, 0, time.Millisecond, 11 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := estimator{srtt: tc.srtt, rttvar: tc.rttvar}
			if got := e.dueBy(sent, tc.slack); !got.Equal(sent.Add(tc.want)) {
				t.Fatalf("dueBy %v, want sent + %v", got.Sub(sent), tc.want)
			}
		})
	}
	// After init with a handshake RTT, the first deadline is 3 RTTs.
	var e estimator
	e.init(40 * time.Millisecond)
	if got := e.dueBy(sent, 0).Sub(sent); got != 120*time.Millisecond {
		t.Fatalf("dueBy after init(40ms): sent + %v, want 120ms", got)
	}
}
