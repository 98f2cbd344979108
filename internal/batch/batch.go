// Package batch is the shape shared by dialkv's group senders (the leader's proposal packing,
// a follower's write forwarding): callers queue items; one loop takes everything queued as one
// batch whenever fewer than a set number of batches are in flight, so the busier the sender, the
// bigger its batches, while a lone item goes at once.
package batch

import "sync/atomic"

// State is a queued item's fate. It starts queued; a batch takes it (Next), and its sender
// commits it (Commit) as it really leaves: appended to the log, or put on the wire. Until then
// its caller may abandon it, and can then say for certain that it was never sent, even if its
// batch was already waiting to go (for a leader, say).
type State struct{ v atomic.Int32 }

const (
	queued int32 = iota
	taken
	sent
	abandoned
)

// Take moves the item from queued to taken (into a batch); false if its caller abandoned it.
func (s *State) Take() bool { return s.v.CompareAndSwap(queued, taken) }

// Commit moves the item from taken to sent; false if its caller abandoned it meanwhile.
func (s *State) Commit() bool { return s.v.CompareAndSwap(taken, sent) }

// Abandon moves the item from queued or taken to abandoned; false once it was sent.
func (s *State) Abandon() bool {
	return s.v.CompareAndSwap(queued, abandoned) || s.v.CompareAndSwap(taken, abandoned)
}

// Item is anything with a State.
type Item interface{ Take() bool }

// Committed is a batch's items that Commit could send (their callers still wait), in order.
func Committed[T interface{ Commit() bool }](items []T) []T {
	var out []T
	for _, it := range items {
		if it.Commit() {
			out = append(out, it)
		}
	}
	return out
}

// Next waits for the first item of the next batch and for a free slot in inflight (one per batch
// in flight: the caller receives from inflight when the batch is done), then adds whatever else
// is queued, up to max items. It returns the items it could take, in queue order; when none
// could be (all abandoned), it frees the slot itself and returns an empty batch. ok is false once
// stop is closed.
func Next[T Item](stop <-chan struct{}, queue <-chan T, inflight chan struct{}, max int) (items []T, ok bool) {
	var first T
	select {
	case <-stop:
		return nil, false
	case first = <-queue:
	}
	select {
	case <-stop:
		return nil, false
	case inflight <- struct{}{}:
	}
	taken := []T{first}
drain:
	for len(taken) < max {
		select {
		case it := <-queue:
			taken = append(taken, it)
		default:
			break drain
		}
	}
	items = taken[:0]
	for _, it := range taken {
		if it.Take() {
			items = append(items, it)
		}
	}
	if len(items) == 0 {
		<-inflight
	}
	return items, true
}

// Split cuts items, in order, into groups whose sizes add up to at most maxBytes each; an item
// larger than maxBytes is a group of its own. maxBytes <= 0 keeps one group. The senders cut a
// batch of large items this way, so that one message (a log entry, a call to the leader) stays
// a few MiB however many items the batch took.
func Split[T any](items []T, size func(T) int, maxBytes int) [][]T {
	if len(items) == 0 {
		return nil
	}
	if maxBytes <= 0 {
		return [][]T{items}
	}
	var groups [][]T
	start, sum := 0, 0
	for i, it := range items {
		n := size(it)
		if i > start && sum+n > maxBytes {
			groups = append(groups, items[start:i])
			start, sum = i, 0
		}
		sum += n
	}
	return append(groups, items[start:])
}
