package store

import (
	"fmt"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/dialkv/dialkv/consistency"
)

// A read served from the cache is never older than what Apply has committed: a changed record,
// a key that appears, and a snapshot restore all show at once.
func TestReadCacheFollowsCommittedChanges(t *testing.T) {
	s := mustOpen(t, filepath.Join(t.TempDir(), "state.db"))
	mustPut(t, s, 1, map[string]consistency.Value{"k": val("one", 1)})
	for range 2 {
		if v, ok := mustGet(t, s, "k"); !ok || string(v.Data) != "one" {
			t.Fatalf("k = %q ok=%v, want one", v.Data, ok)
		}
		if _, ok := mustGet(t, s, "absent"); ok {
			t.Fatal("absent key found")
		}
	}
	if st := s.CacheStats(); st.Hits != 2 || st.Misses != 2 || st.Entries != 2 {
		t.Errorf("cache stats %+v: want the second reads of both keys served from it", st)
	}
	mustPut(t, s, 2, map[string]consistency.Value{"k": val("two", 2), "absent": val("here", 2)})
	if v, ok := mustGet(t, s, "k"); !ok || string(v.Data) != "two" {
		t.Errorf("k = %q ok=%v after a committed change, want two", v.Data, ok)
	}
	if v, ok := mustGet(t, s, "absent"); !ok || string(v.Data) != "here" {
		t.Errorf("absent = %q ok=%v after it was written, want here", v.Data, ok)
	}

	other := mustOpen(t, filepath.Join(t.TempDir(), "other.db"))
	mustPut(t, other, 7, map[string]consistency.Value{"k": val("restored", 3)})
	mustRestoreFrom(t, other, s)
	if v, ok := mustGet(t, s, "k"); !ok || string(v.Data) != "restored" {
		t.Errorf("k = %q ok=%v after a restore, want restored", v.Data, ok)
	}
	if _, ok := mustGet(t, s, "absent"); ok {
		t.Error("a key the restored snapshot lacks is still served")
	}
}

// A reader whose transaction may predate a commit does not store what it read: the generation
// it took before reading has moved.
func TestReadCacheRefusesReadsOlderThanAChange(t *testing.T) {
	c := newReadCache(1 << 20)
	_, found, gen := c.lookup("k")
	if found {
		t.Fatal("empty cache found k")
	}
	c.invalidate([]string{"other"}) // any committed change, even of another key
	c.store("k", cachedRecord{v: val("old", 1), ok: true}, gen)
	if _, found, _ := c.lookup("k"); found {
		t.Error("a read taken before a commit was stored")
	}
	_, _, gen = c.lookup("k")
	c.store("k", cachedRecord{v: val("new", 2), ok: true}, gen)
	if r, found, _ := c.lookup("k"); !found || string(r.v.Data) != "new" {
		t.Errorf("a read after the commit was not stored: %+v %v", r, found)
	}
}

// The cache stays within its byte bound, and a negative bound turns it off.
func TestReadCacheBound(t *testing.T) {
	const limit = 64 << 10
	c := newReadCache(limit)
	for i := range 2000 {
		key := "key/" + strconv.Itoa(i)
		_, _, gen := c.lookup(key)
		c.store(key, cachedRecord{v: val(string(make([]byte, 100)), 1), ok: true}, gen)
		if c.bytes > limit {
			t.Fatalf("after %d records the cache holds %d bytes, over its %d", i+1, c.bytes, limit)
		}
	}
	if n := len(c.entries); n < 100 || n > limit/100 {
		t.Errorf("%d entries of ~200 bytes in %d bytes", n, limit)
	}
	_, _, gen := c.lookup("big")
	c.store("big", cachedRecord{v: val(string(make([]byte, limit)), 1), ok: true}, gen)
	if _, found, _ := c.lookup("big"); found {
		t.Error("a record larger than an eighth of the cache was stored")
	}

	s, err := Open(filepath.Join(t.TempDir(), "state.db"), Options{ReadCacheBytes: -1, OpenTimeout: DefaultOptions().OpenTimeout})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	mustPut(t, s, 1, map[string]consistency.Value{"k": val("v", 1)})
	mustGet(t, s, "k")
	mustGet(t, s, "k")
	if st := s.CacheStats(); st.Hits != 0 || st.Entries != 0 {
		t.Errorf("disabled cache: %+v", st)
	}
}

// Readers racing with commits: once Apply has returned, no read shows an older value, however
// the readers' transactions and cache stores interleave with the commit.
func TestReadCacheUnderConcurrentApply(t *testing.T) {
	s := mustOpen(t, filepath.Join(t.TempDir(), "state.db"))
	const keys, rounds = 4, 300
	key := func(i int) string { return fmt.Sprintf("k%d", i) }
	var mu sync.Mutex
	committed := 0 // the round every key holds once Apply returned
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for r := range 4 {
		wg.Go(func() {
			for i := r; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				mu.Lock()
				floor := committed
				mu.Unlock()
				v, ok, err := s.Get(key(i % keys))
				if err != nil {
					t.Error(err)
					return
				}
				got := 0 // absent: before round 1
				if ok {
					got, _ = strconv.Atoi(string(v.Data))
				}
				if got < floor {
					t.Errorf("%s read %d after round %d was applied", key(i%keys), got, floor)
					return
				}
			}
		})
	}
	for round := 1; round <= rounds && !t.Failed(); round++ {
		kvs := map[string]consistency.Value{}
		for i := range keys {
			kvs[key(i)] = val(strconv.Itoa(round), int64(round))
		}
		mustPut(t, s, uint64(round), kvs)
		mu.Lock()
		committed = round
		mu.Unlock()
	}
	close(stop)
	wg.Wait()
	if st := s.CacheStats(); st.Hits == 0 {
		t.Errorf("no read was served from the cache: %+v", st)
	}
}
