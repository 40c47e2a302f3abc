package session

import (
	"testing"
	"time"
)

func TestTroubleDecays(t *testing.T) {
	var tr trouble
	t0 := time.Unix(1000, 0)
	tr.add(t0)
	tr.add(t0)
	if got := tr.now(t0); got != 2 {
		t.Fatalf("score %v, want 2", got)
	}
	if got := tr.now(t0.Add(troubleHalfLife)); got < 0.99 || got > 1.01 {
		t.Fatalf("after one half-life: %v, want 1", got)
	}
	if got := tr.now(t0.Add(20 * troubleHalfLife)); got != 0 {
		t.Fatalf("long after: %v, want 0", got)
	}
}
