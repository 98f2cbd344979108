package strong

import (
	"testing"

	"github.com/hashicorp/raft"
)

func newTestLogCache(t *testing.T, capacity, maxBytes int) *logCache {
	t.Helper()
	c, err := newLogCache(capacity, maxBytes, raft.NewInmemStore())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func storeEntries(t *testing.T, c *logCache, from, to uint64, size int) {
	t.Helper()
	var logs []*raft.Log
	for i := from; i <= to; i++ {
		logs = append(logs, &raft.Log{Index: i, Term: 1, Type: raft.LogCommand, Data: make([]byte, size)})
	}
	if err := c.StoreLogs(logs); err != nil {
		t.Fatal(err)
	}
}

// cached returns the indexes the cache holds, checking that its byte count is right and within
// its bound.
func cached(t *testing.T, c *logCache) map[uint64]bool {
	t.Helper()
	held, sum := map[uint64]bool{}, 0
	for _, l := range c.ring {
		if l != nil {
			held[l.Index] = true
			sum += len(l.Data)
		}
	}
	if sum != c.bytes || c.bytes > c.maxBytes {
		t.Fatalf("the cache holds %d bytes and counts %d; bound %d", sum, c.bytes, c.maxBytes)
	}
	return held
}

// Small entries are cached by count, as raft.LogCache caches them; large ones only as far as
// the byte bound allows, newest first; one larger than the bound not at all. Every entry can
// still be read, from the store.
func TestLogCacheIsBoundedByBytes(t *testing.T) {
	c := newTestLogCache(t, 8, 10<<10)
	storeEntries(t, c, 1, 20, 100)
	if held := cached(t, c); len(held) != 8 || !held[13] || !held[20] {
		t.Fatalf("small entries: cached %v, want the newest 8 (13-20)", held)
	}
	storeEntries(t, c, 21, 30, 3<<10)
	if held := cached(t, c); len(held) != 3 || !held[28] || !held[29] || !held[30] {
		t.Fatalf("3 KiB entries under a 10 KiB bound: cached %v, want the newest 3 (28-30)", held)
	}
	storeEntries(t, c, 31, 31, 11<<10)
	if held := cached(t, c); len(held) != 0 {
		t.Fatalf("an entry larger than the bound: cached %v, want nothing", held)
	}
	for i := uint64(1); i <= 31; i++ {
		var l raft.Log
		if err := c.GetLog(i, &l); err != nil || l.Index != i {
			t.Fatalf("entry %d: %v (index %d)", i, err, l.Index)
		}
	}
	// A jump in the log (a snapshot installed) leaves nothing old cached, nor counted.
	storeEntries(t, c, 32, 33, 100)
	storeEntries(t, c, 1000, 1001, 100)
	if held := cached(t, c); len(held) != 2 || !held[1000] || !held[1001] {
		t.Fatalf("after a jump: cached %v, want 1000 and 1001", held)
	}
	storeEntries(t, c, 1002, 1010, 100)
	if held := cached(t, c); len(held) != 8 || held[32] || held[33] {
		t.Fatalf("after the ring wrapped past the jump: cached %v, want 1003-1010", held)
	}
	if err := c.DeleteRange(1, 1010); err != nil {
		t.Fatal(err)
	}
	if held := cached(t, c); len(held) != 0 || c.bytes != 0 {
		t.Fatalf("after DeleteRange: cached %v (%d bytes), want nothing", held, c.bytes)
	}
}
