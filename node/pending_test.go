package node

import (
	"fmt"
	"sync"
	"testing"

	"github.com/dialkv/dialkv/consistency"
	"github.com/dialkv/dialkv/replication"
)

// The watermark's floor is taken while writers stamp and finish concurrently. For every floor
// taken, each version ever stamped that is older than it must have been durable before the
// floor was taken: otherwise a report could claim a write this node still acknowledges.
func TestStampFloorNeverPassesAWriteInFlight(t *testing.T) {
	clock := consistency.NewClock("n1", nil)
	var st stampTracker
	var mu sync.Mutex
	var durable []consistency.Version // in the order the writes became durable
	type observation struct {
		floor   consistency.Version
		durable int // len(durable) when "the scan" after the floor ran
	}
	var observations []observation

	var writers sync.WaitGroup
	for range 8 {
		writers.Add(1)
		go func() {
			defer writers.Done()
			for range 5000 {
				v, _ := st.stamp(clock)
				mu.Lock() // "MergeTentative returned"
				durable = append(durable, v)
				mu.Unlock()
				st.done(v)
			}
		}()
	}
	stop := make(chan struct{})
	var committer sync.WaitGroup
	committer.Add(1)
	go func() {
		defer committer.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			f := st.floor(clock)
			mu.Lock()
			observations = append(observations, observation{f, len(durable)})
			mu.Unlock()
		}
	}()
	writers.Wait()
	close(stop)
	committer.Wait()

	// oldestAfter[i] is the oldest version that became durable at position i or later.
	oldestAfter := make([]consistency.Version, len(durable)+1)
	oldestAfter[len(durable)] = clock.Now() // newer than everything stamped
	for i := len(durable) - 1; i >= 0; i-- {
		oldestAfter[i] = oldestAfter[i+1]
		if oldestAfter[i].Newer(durable[i]) {
			oldestAfter[i] = durable[i]
		}
	}
	interleaved := 0
	for _, o := range observations {
		if late := oldestAfter[o.durable]; o.floor.Newer(late) {
			t.Fatalf("floor %v is newer than %v, which became durable only after the floor was taken", o.floor, late)
		}
		if o.durable > 0 && o.durable < len(durable) {
			interleaved++
		}
	}
	if interleaved < 2 {
		t.Fatalf("only %d floors taken while writes ran; the test needs them to interleave", interleaved)
	}
	if len(st.inflight) != 0 {
		t.Errorf("%d stamps still in flight after every write finished", len(st.inflight))
	}
}

// A closed tracker stamps nothing; it is idle once the writes stamped before are done.
func TestStampTrackerClosed(t *testing.T) {
	clock := consistency.NewClock("n1", nil)
	var st stampTracker
	v, ok := st.stamp(clock)
	if !ok {
		t.Fatal("an open tracker refused a stamp")
	}
	st.setClosed(true)
	if _, ok := st.stamp(clock); ok {
		t.Fatal("a closed tracker stamped")
	}
	if st.idle() {
		t.Fatal("idle with a write in flight")
	}
	st.done(v)
	if !st.idle() {
		t.Fatal("not idle once the write was done")
	}
	st.setClosed(false)
	if _, ok := st.stamp(clock); !ok {
		t.Fatal("a reopened tracker refused a stamp")
	}
}

func TestStampFloorWaitsForTheOldestWriteInFlight(t *testing.T) {
	clock := consistency.NewClock("n1", nil)
	var st stampTracker
	first, _ := st.stamp(clock)
	second, _ := st.stamp(clock)
	if f := st.floor(clock); f != first {
		t.Fatalf("floor = %v, want the oldest in flight %v", f, first)
	}
	st.done(first)
	if f := st.floor(clock); f != second {
		t.Fatalf("floor = %v, want %v once the first is done", f, second)
	}
	st.done(second)
	if f := st.floor(clock); !f.Newer(second) {
		t.Fatalf("floor = %v with nothing in flight, want newer than every stamp (%v)", f, second)
	}
}

func ownWrite(key string, wall int64) replication.Write {
	return replication.Write{Key: key, Value: consistency.Value{Version: consistency.Version{Wall: wall, Node: "n1"}, Data: []byte(key)}}
}

func TestPendingIndex(t *testing.T) {
	var p pendingIndex
	if ids, complete, _ := p.sample(10); len(ids) != 0 || complete {
		t.Fatalf("a new index: %v complete=%v, want empty and incomplete (a restart must scan)", ids, complete)
	}
	p.add([]replication.Write{ownWrite("a", 2), ownWrite("b", 1)})
	p.add([]replication.Write{ownWrite("a", 1)}) // older than indexed: ignored
	_, _, gen := p.sample(10)
	p.seed([]replication.Write{ownWrite("c", 5)}, gen)
	ids, complete, _ := p.sample(10)
	if !complete || len(ids) != 3 {
		t.Fatalf("after seeding: %v complete=%v, want a, b, c and complete", ids, complete)
	}
	for _, id := range ids {
		if id.key == "a" && id.version.Wall != 2 {
			t.Errorf("a indexed at %v, want the newer version", id.version)
		}
	}
	if ids, _, _ := p.sample(2); len(ids) != 2 {
		t.Errorf("sample(2) returned %d", len(ids))
	}

	// Committing an older version of a key leaves the newer one indexed.
	p.forget([]writeID{{key: "a", version: consistency.Version{Wall: 1, Node: "n1"}}, {key: "b", version: consistency.Version{Wall: 1, Node: "n1"}}})
	ids, _, _ = p.sample(10)
	if len(ids) != 2 || p.size() != 2 {
		t.Fatalf("after forgetting a@1 and b@1: %v, want a@2 and c", ids)
	}

	// An overflow empties the index and makes it incomplete; a seed from a scan that began
	// before the overflow does not make it complete again.
	_, _, gen = p.sample(1)
	var many []replication.Write
	for i := range maxPendingIndex {
		many = append(many, ownWrite(fmt.Sprintf("k%d", i), 10))
	}
	p.add(many)
	if _, complete, _ := p.sample(1); complete || p.size() != len(many) {
		t.Fatalf("after overflowing: complete=%v size=%d, want incomplete with only the new writes", complete, p.size())
	}
	p.seed(nil, gen)
	if _, complete, _ := p.sample(1); complete {
		t.Fatal("a seed from before the overflow made the index complete")
	}
	_, _, gen = p.sample(1)
	p.seed(nil, gen)
	if _, complete, _ := p.sample(1); !complete {
		t.Fatal("a seed from after the overflow did not make the index complete")
	}
}

// The index holds keys in memory, and a key may be up to 32 KiB: bounded by count alone, a
// leader outage under writes of long keys grew it to gigabytes (131,072 keys of 32 KiB are
// 4 GiB) though the writes themselves wait on disk. It overflows on its keys' bytes too.
func TestPendingIndexIsBoundedInBytes(t *testing.T) {
	var p pendingIndex
	_, _, gen := p.sample(1)
	p.seed(nil, gen) // as after the committer's first scan
	const keySize = 32 << 10
	total := 0
	for i := range 2 * maxPendingIndexBytes / keySize {
		key := fmt.Sprintf("%0*d", keySize, i)
		p.add([]replication.Write{ownWrite(key, 10)})
		held := 0
		for k := range p.versions {
			held += len(k)
		}
		if held > maxPendingIndexBytes {
			t.Fatalf("after %d writes of %d-byte keys the index holds %d bytes of keys, over its %d-byte bound", i+1, keySize, held, maxPendingIndexBytes)
		}
		total += keySize
	}
	if _, complete, _ := p.sample(1); complete {
		t.Fatalf("after %d bytes of keys the index still says it is complete: it overflowed, and the committer must scan", total)
	}
}
