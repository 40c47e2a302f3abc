package leaf

import "errors"

// errTooManyHeld means the peer got further ahead than MaxHeld frames.
var errTooManyHeld = errors.New("too many out-of-order frames held")

// reorder puts DATA payloads back in PN order and drops duplicates, which
// are normal: Leaf sends a copy of each frame on every sub-connection.
type reorder struct {
	next      uint64            // PN expected next
	held      map[uint64][]byte // frames that arrived early
	heldBytes int
	max       int
	maxBytes  int
}

func newReorder(max, maxBytes int) reorder {
	return reorder{next: 1, held: make(map[uint64][]byte), max: max, maxBytes: maxBytes}
}

// duplicate reports whether pn was already delivered.
func (r *reorder) duplicate(pn uint64) bool { return pn < r.next }

// pending is the number of frames waiting for an earlier one.
func (r *reorder) pending() int { return len(r.held) }

// push takes one frame and appends to out every payload now deliverable.
func (r *reorder) push(out [][]byte, pn uint64, payload []byte) ([][]byte, error) {
	switch {
	case pn < r.next:
		return out, nil
	case pn > r.next:
		if _, ok := r.held[pn]; ok {
			return out, nil
		}
		if len(r.held) >= r.max || r.heldBytes+len(payload) > r.maxBytes {
			return out, errTooManyHeld
		}
		r.held[pn] = payload
		r.heldBytes += len(payload)
		return out, nil
	}
	out = append(out, payload)
	r.next++
	for {
		p, ok := r.held[r.next]
		if !ok {
			return out, nil
		}
		delete(r.held, r.next)
		r.heldBytes -= len(p)
		out = append(out, p)
		r.next++
	}
}
