package deadline

import (
	"testing"
	"time"
)

func TestDeadline(t *testing.T) {
	d := New()
	if d.Expired() {
		t.Fatal("unset deadline expired")
	}
	d.Set(time.Now().Add(-time.Second))
	if !d.Expired() {
		t.Fatal("past deadline not expired")
	}
	d.Set(time.Time{})
	if d.Expired() {
		t.Fatal("cleared deadline still expired")
	}
	d.Set(time.Now().Add(time.Millisecond))
	<-d.Done() // closes once the time passes
	d.Set(time.Now().Add(time.Hour))
	if d.Expired() {
		t.Fatal("re-armed deadline expired")
	}
	d.Set(time.Time{})
}
