package leaf

import (
	"bytes"
	"testing"
)

func TestReorder(t *testing.T) {
	r := newReorder(3, 1<<20)
	var out [][]byte
	push := func(pn uint64, s string) {
		t.Helper()
		var err error
		if out, err = r.push(out, pn, []byte(s)); err != nil {
			t.Fatalf("pn %d: %v", pn, err)
		}
	}
	push(2, "b")
	push(2, "b") // duplicate while held
	push(4, "d")
	push(1, "a") // releases b
	push(1, "a") // duplicate after delivery
	push(3, "c") // releases d
	if got := string(bytes.Join(out, nil)); got != "abcd" || r.pending() != 0 {
		t.Fatalf("got %q, %d held", got, r.pending())
	}
	push(6, "")
	push(7, "")
	push(8, "")
	if _, err := r.push(nil, 9, nil); err == nil {
		t.Fatal("a fourth held frame was accepted with max 3")
	}
}

func TestReorderHeldBytes(t *testing.T) {
	r := newReorder(1024, 10)
	if _, err := r.push(nil, 3, make([]byte, 6)); err != nil {
		t.Fatal(err)
	}
	if _, err := r.push(nil, 4, make([]byte, 5)); err == nil {
		t.Fatal("11 bytes held with a bound of 10")
	}
	out, err := r.push(nil, 1, []byte("a"))
	if err != nil || len(out) != 1 {
		t.Fatal(out, err)
	}
	if out, err = r.push(nil, 2, []byte("b")); err != nil || len(out) != 2 || r.heldBytes != 0 {
		t.Fatalf("%q %v, %d held", out, err, r.heldBytes)
	}
}
