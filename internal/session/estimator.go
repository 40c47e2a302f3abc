package session

import "time"

// estimator tracks what one path can do: its round-trip time (from
// PING/PONG and from the ACKs of its DATA, so it includes the queue in
// front of new data) and its delivery rate (from the peer's per-path
// received counts).
type estimator struct {
	srtt, rttvar time.Duration
	minRTT       time.Duration
	minRTTAt     time.Time
	measured     bool
	rttSamples   int

	rate      float64 // bytes per second: the best recent sample; 0 unknown
	samples   [8]float64
	next      int
	acc       uint64
	lastStamp time.Time
	// full is set when the path had as much in flight as it may since the
	// last sample. A sample taken while it had less measures what it was
	// given, not what it can do, and may only raise the rate: otherwise a
	// path measured while starved would look slow and stay starved.
	full       bool
	lastSample time.Time
}

const (
	defaultRTT  = 100 * time.Millisecond
	minCwnd     = 64 << 10
	initialCwnd = 64 << 10
	// minRTTWindow is how long a minimum RTT sample stays valid.
	minRTTWindow = 10 * time.Second
	// headroom is how long a path may take to drain without starving:
	// how late its writer may run on a busy machine. On fast paths it
	// outweighs the RTT (on loopback, 2 x rate x RTT is a few KiB).
	headroom = 4 * time.Millisecond
	// rateTTL is how long a delivery rate stays valid without new samples.
	rateTTL = 2 * time.Second
)

func (e *estimator) init(rtt time.Duration) {
	e.srtt, e.minRTT = defaultRTT, defaultRTT
	if rtt > 0 {
		e.srtt, e.minRTT, e.rttvar = rtt, rtt, rtt/2
	}
	e.lastStamp = time.Now()
}

// rtt folds in a sample the way RFC 6298 smooths TCP's.
func (e *estimator) rtt(sample time.Duration) {
	e.rttSamples++
	if !e.measured {
		e.srtt, e.rttvar, e.minRTT, e.measured = sample, sample/2, sample, true
		e.minRTTAt = time.Now()
		return
	}
	d := e.srtt - sample
	if d < 0 {
		d = -d
	}
	e.rttvar = (3*e.rttvar + d) / 4
	e.srtt = (7*e.srtt + sample) / 8
	// The minimum expires, so that a path whose route changed is seen anew.
	if sample <= e.minRTT || time.Since(e.minRTTAt) > minRTTWindow {
		e.minRTT, e.minRTTAt = sample, time.Now()
	}
}

// delivered records that the peer got n more bytes over this path.
func (e *estimator) delivered(n uint64) {
	e.acc += n
	now := time.Now()
	elapsed := now.Sub(e.lastStamp)
	if elapsed < max(e.srtt, 10*time.Millisecond) {
		return
	}
	sample := float64(e.acc) / elapsed.Seconds()
	full := e.full
	e.acc, e.lastStamp, e.full = 0, now, false
	if !full && sample <= e.rate || !full && e.rate == 0 {
		return
	}
	e.samples[e.next] = sample
	e.next = (e.next + 1) % len(e.samples)
	e.lastSample = now
	e.rate = 0
	for _, r := range e.samples {
		e.rate = max(e.rate, r)
	}
}

// busy restarts the sampling interval as a path with nothing in flight is
// given data, if nothing was delivered in it so far: then the interval was
// idle time (since the path joined, or since the last sample), which says
// nothing of the path's rate, and a first sample over it would make a fast
// path look slow. An interval that carried data is kept: a path that
// drains between bursts must still be sampled.
func (e *estimator) busy(now time.Time) {
	if e.acc == 0 {
		e.lastStamp = now
	}
}

// forget drops the measured rate, as after a stall.
func (e *estimator) forget() {
	e.rate, e.samples, e.next, e.acc = 0, [8]float64{}, 0, 0
	e.lastStamp = time.Now()
}

// expire forgets a rate nothing has confirmed for rateTTL, so that a path
// once measured slow is tried again rather than avoided for good.
func (e *estimator) expire(now time.Time) {
	if e.rate > 0 && now.Sub(e.lastSample) > rateTTL {
		e.forget()
	}
}

// cwnd is how many bytes may be in flight on the path: twice what it
// delivers in one unloaded round trip, so that it can grow, and no less
// than a floor that lets a new path start.
func (e *estimator) cwnd() uint64 {
	if e.rate == 0 {
		// Until the path has shown its rate, it gets little to hold, so
		// that a slow path cannot sit on much of the stream.
		return initialCwnd
	}
	return max(minCwnd, uint64(2*e.rate*e.minRTT.Seconds()), uint64(e.rate*headroom.Seconds()))
}

// arrival is when the last of n bytes queued on this path now should
// reach the peer: half the unloaded round trip plus the time to drain them.
// It uses the minimum RTT because the smoothed one also counts queues in
// the reverse direction, which do not delay this direction's data.
func (e *estimator) arrival(n uint64) time.Duration {
	return e.minRTT/2 + time.Duration(float64(n)/e.speed()*float64(time.Second))
}

// speed is the delivery rate the scheduler plans with: the measured one,
// or until there is one, what the initial window yields per round trip.
// A path of unknown rate must not look infinitely fast: the other paths
// would then leave it the whole stream, and wait on its small window.
func (e *estimator) speed() float64 {
	if e.rate > 0 {
		return e.rate
	}
	return initialCwnd / max(e.srtt, time.Millisecond).Seconds()
}

// dueBy is when bytes sent at sent should have been acknowledged, by the
// measure of TCP's retransmission timeout (RFC 6298), plus slack.
func (e *estimator) dueBy(sent time.Time, slack time.Duration) time.Time {
	return sent.Add(e.srtt + 4*e.rttvar + slack)
}
