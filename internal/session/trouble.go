package session

import (
	"math"
	"time"
)

// trouble scores a path name's recent failures and stalls: each adds one,
// and the score halves every troubleHalfLife. The scheduler weighs a path's
// expected delivery time by 1 + score, so that a path that keeps failing
// (a flapping link) carries less until it has been quiet for a while.
type trouble struct {
	score float64
	at    time.Time
}

const troubleHalfLife = 10 * time.Second

func (t *trouble) now(now time.Time) float64 {
	if t.score == 0 {
		return 0
	}
	t.score *= math.Exp2(-now.Sub(t.at).Seconds() / troubleHalfLife.Seconds())
	t.at = now
	if t.score < 0.01 {
		t.score = 0
	}
	return t.score
}

func (t *trouble) add(now time.Time) {
	t.score = t.now(now) + 1
	t.at = now
}

// weight scales d by the path's trouble.
func (p *path) weight(d time.Duration, now time.Time) time.Duration {
	return time.Duration(float64(d) * (1 + p.trouble.now(now)))
}
