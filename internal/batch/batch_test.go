package batch

import (
	"fmt"
	"testing"
)

type item struct {
	State
	n int
}

func TestNextTakesWhatIsQueuedUpToMaxAndSkipsAbandoned(t *testing.T) {
	queue := make(chan *item, 10)
	inflight := make(chan struct{}, 1)
	stop := make(chan struct{})
	items := make([]*item, 6)
	for i := range items {
		items[i] = &item{n: i}
		queue <- items[i]
	}
	items[1].Abandon()
	got, ok := Next(stop, queue, inflight, 4)
	if !ok || len(got) != 3 || got[0].n != 0 || got[1].n != 2 || got[2].n != 3 {
		t.Fatalf("first batch %v %v, want items 0, 2, 3 (1 abandoned, at most 4 taken)", ns(got), ok)
	}
	if sent := Committed(got); len(sent) != 3 {
		t.Fatalf("committed %v of the batch, want all 3", ns(sent))
	}
	if items[2].Abandon() {
		t.Error("an item a batch sent could still be abandoned")
	}
	if len(inflight) != 1 {
		t.Fatalf("%d slots taken after one batch, want 1", len(inflight))
	}
	<-inflight
	items[4].Abandon()
	items[5].Abandon()
	got, ok = Next(stop, queue, inflight, 4)
	if !ok || len(got) != 0 || len(inflight) != 0 {
		t.Fatalf("batch of abandoned items: %v %v, slots %d; want empty and the slot freed", ns(got), ok, len(inflight))
	}
	close(stop)
	if _, ok := Next(stop, queue, inflight, 4); ok {
		t.Error("Next after stop answered ok")
	}
}

// Until its sender commits it, an item in a batch can still be abandoned (its batch may be
// waiting to go); the sender then leaves it out, and its caller knows it was never sent.
func TestTakenItemsCanBeAbandonedUntilCommitted(t *testing.T) {
	queue := make(chan *item, 3)
	inflight := make(chan struct{}, 1)
	for i := range 3 {
		queue <- &item{n: i}
	}
	got, _ := Next(make(chan struct{}), queue, inflight, 3)
	if len(got) != 3 {
		t.Fatalf("batch %v, want 3 items", ns(got))
	}
	if !got[1].Abandon() {
		t.Fatal("an item taken but not sent could not be abandoned")
	}
	sent := Committed(got)
	if len(sent) != 2 || sent[0].n != 0 || sent[1].n != 2 {
		t.Errorf("committed %v, want items 0 and 2", ns(sent))
	}
	if got[0].Abandon() || got[1].Commit() {
		t.Error("an item's fate moved twice")
	}
}

// A batch waits for a free in-flight slot, and takes what queued meanwhile.
func TestNextWaitsForASlotAndGathersMeanwhile(t *testing.T) {
	queue := make(chan *item, 10)
	inflight := make(chan struct{}, 1)
	inflight <- struct{}{} // one batch in flight
	stop := make(chan struct{})
	done := make(chan []*item)
	queue <- &item{n: 0}
	go func() {
		got, _ := Next(stop, queue, inflight, 10)
		done <- got
	}()
	queue <- &item{n: 1}
	queue <- &item{n: 2}
	select {
	case got := <-done:
		t.Fatalf("batch %v sent while the only slot was taken", ns(got))
	default:
	}
	<-inflight // the batch in flight is done
	if got := <-done; len(got) != 3 {
		t.Fatalf("batch after the slot freed: %v, want items 0, 1, 2", ns(got))
	}
}

func ns(items []*item) []int {
	var out []int
	for _, it := range items {
		out = append(out, it.n)
	}
	return out
}

func TestSplitKeepsGroupsWithinMaxBytes(t *testing.T) {
	size := func(n int) int { return n }
	for _, c := range []struct {
		items    []int
		maxBytes int
		want     [][]int
	}{
		{nil, 10, nil},
		{[]int{3, 3, 3, 3}, 0, [][]int{{3, 3, 3, 3}}},
		{[]int{3, 3, 3, 3}, 6, [][]int{{3, 3}, {3, 3}}},
		{[]int{3, 3, 3, 3}, 7, [][]int{{3, 3}, {3, 3}}},
		{[]int{2, 20, 2, 2}, 5, [][]int{{2}, {20}, {2, 2}}}, // larger than the cap: alone
		{[]int{20}, 5, [][]int{{20}}},
	} {
		got := Split(c.items, size, c.maxBytes)
		if fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("Split(%v, %d) = %v, want %v", c.items, c.maxBytes, got, c.want)
		}
	}
}
