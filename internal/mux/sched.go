package mux

// scheduler decides which stream sends next. Streams with data and credit
// wait in two round-robin queues:
//   - fresh: streams that sent less than freshBytes since they last had
//     nothing to send (a new request, an interactive exchange); served
//     first, so they do not wait behind a bulk stream's backlog;
//   - bulk: the rest, each turn at most quantum bytes, so that bulk
//     streams share the tunnel by bytes.
//
// It knows streams only by their schedItem.
type scheduler struct {
	fresh, bulk queue
}

const (
	freshBytes = 64 << 10
	quantum    = 32 << 10
)

// schedItem is a stream's place in the scheduler.
type schedItem struct {
	st     *Stream
	burst  int  // bytes sent since the stream last went idle
	queued bool // in a queue (possibly a stale entry: see pop)
}

// ready queues it: it has data and credit.
func (s *scheduler) ready(it *schedItem) {
	if it.queued {
		return
	}
	it.queued = true
	if it.burst < freshBytes {
		s.fresh.push(it)
	} else {
		s.bulk.push(it)
	}
}

// pop returns the next item to serve and the most it may send in this
// turn, or nil. The caller sends, calls sent, and calls ready again if the
// stream still has data and credit. Items for which ok reports false (no
// longer ready) are dropped.
func (s *scheduler) pop(ok func(*schedItem) bool) (*schedItem, int) {
	for _, q := range []*queue{&s.fresh, &s.bulk} {
		for {
			it := q.pop()
			if it == nil {
				break
			}
			it.queued = false
			if !ok(it) {
				continue
			}
			if q == &s.fresh {
				return it, freshBytes - it.burst
			}
			return it, quantum
		}
	}
	return nil, 0
}

// sent records n bytes sent by it; idle tells whether it has nothing
// left to send, which makes its next data fresh again.
func (s *scheduler) sent(it *schedItem, n int, idle bool) {
	it.burst += n
	if idle {
		it.burst = 0
	}
}

// queue is a FIFO of items in a ring that grows as needed.
type queue struct {
	buf        []*schedItem
	head, size int
}

func (q *queue) push(it *schedItem) {
	if q.size == len(q.buf) {
		nb := make([]*schedItem, max(8, 2*len(q.buf)))
		for i := range q.size {
			nb[i] = q.buf[(q.head+i)%len(q.buf)]
		}
		q.buf, q.head = nb, 0
	}
	q.buf[(q.head+q.size)%len(q.buf)] = it
	q.size++
}

func (q *queue) pop() *schedItem {
	if q.size == 0 {
		return nil
	}
	it := q.buf[q.head]
	q.buf[q.head] = nil
	q.head = (q.head + 1) % len(q.buf)
	q.size--
	return it
}

func (q *queue) len() int { return q.size }
