// Package batch is the shape shared by dialkv's group senders (the leader's proposal packing,
// a follower's write forwarding): callers queue items; one loop takes everything queued as one
// batch whenever fewer than a set number of batches are in flight, so the busier the sender, the
// bigger its batches, while a lone item goes at once.
package batch

import "sync/atomic"

// State is a queued item's fate. It starts queued and moves once: to sent when a batch takes it,
// or to abandoned when its caller gives up first (it is then never sent, and the caller can say
// so for certain).
type State struct{ v atomic.Int32 }

const (
	queued int32 = iota
	sent
	abandoned
)

// Send moves the item from queued to sent; false if its caller abandoned it.
func (s *State) Send() bool { return s.v.CompareAndSwap(queued, sent) }

// Abandon moves the item from queued to abandoned; false if a batch already took it.
func (s *State) Abandon() bool { return s.v.CompareAndSwap(queued, abandoned) }

// Item is anything with a State.
type Item interface{ Send() bool }

// Next waits for the first item of the next batch and for a free slot in inflight (one per batch
// in flight: the caller receives from inflight when the batch is done), then adds whatever else
// is queued, up to max items. It returns the items it could mark sent, in queue order; when none
// could (all abandoned), it frees the slot itself and returns an empty batch. ok is false once
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
		if it.Send() {
			items = append(items, it)
		}
	}
	if len(items) == 0 {
		<-inflight
	}
	return items, true
}
