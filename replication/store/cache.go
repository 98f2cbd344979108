package store

import (
	"sync"
	"sync/atomic"

	"github.com/dialkv/dialkv/consistency"
)

// DefaultReadCacheBytes is the committed-record cache's size when Options leave it at 0.
const DefaultReadCacheBytes = 32 << 20

// cacheEntryOverhead approximates what one entry costs beyond its key and bytes (map slot,
// string and slice headers, the version's node id header).
const cacheEntryOverhead = 96

// readCache holds committed records (and the absence of keys) as Get last read them, so that a
// read of a key read before costs a map lookup instead of a bbolt read transaction (profiled:
// about 5 µs of a 55 µs eventual GET under load, most of it the transaction's allocations).
//
// It never serves a record the committed layer no longer holds once Apply or Restore has
// returned: every change to the committed key-value bucket names its keys (Tx.touched), and
// after the write transaction commits, and before the applied index moves, those entries are
// dropped and gen moves on. A reader records gen before its bbolt transaction and stores what it
// read only if gen has not moved since (checked under the same lock the writer holds to move
// it): otherwise its transaction may have begun before the commit, and what it read may be old.
//
// The cache is bounded by bytes; when full, arbitrary entries (Go's map order) make room.
type readCache struct {
	limit int // bytes; <= 0 disables the cache
	gen   atomic.Uint64

	mu      sync.RWMutex
	entries map[string]cachedRecord
	bytes   int

	hits, misses atomic.Uint64
}

// cachedRecord is a committed record, or (!ok) the key's absence. Data is shared with every
// reader: callers of Store.Get must not modify it.
type cachedRecord struct {
	v  consistency.Value
	ok bool
}

func newReadCache(limit int) *readCache {
	return &readCache{limit: limit, entries: map[string]cachedRecord{}}
}

func recordCost(key string, r cachedRecord) int {
	return len(key) + len(r.v.Data) + len(r.v.Version.Node) + cacheEntryOverhead
}

// lookup returns key's cached record; found reports whether there was one. On a miss it
// returns the generation to pass to store.
func (c *readCache) lookup(key string) (r cachedRecord, found bool, gen uint64) {
	if c.limit <= 0 {
		return r, false, 0
	}
	gen = c.gen.Load()
	c.mu.RLock()
	r, found = c.entries[key]
	c.mu.RUnlock()
	if found {
		c.hits.Add(1)
	} else {
		c.misses.Add(1)
	}
	return r, found, gen
}

// store keeps what a reader read for key, unless the committed layer changed since gen was
// taken (the read may predate the change) or the record alone would take over an eighth of the
// cache.
func (c *readCache) store(key string, r cachedRecord, gen uint64) {
	cost := recordCost(key, r)
	if c.limit <= 0 || cost > c.limit/8 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen.Load() != gen {
		return
	}
	if old, ok := c.entries[key]; ok {
		c.bytes -= recordCost(key, old)
	}
	for k, old := range c.entries {
		if c.bytes+cost <= c.limit {
			break
		}
		if k != key {
			delete(c.entries, k)
			c.bytes -= recordCost(k, old)
		}
	}
	c.entries[key] = r
	c.bytes += cost
}

// invalidate drops keys after a committed change to them, and stops readers whose transactions
// may predate it from storing what they read.
func (c *readCache) invalidate(keys []string) {
	if c.limit <= 0 || len(keys) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen.Add(1)
	for _, k := range keys {
		if old, ok := c.entries[k]; ok {
			delete(c.entries, k)
			c.bytes -= recordCost(k, old)
		}
	}
}

// reset empties the cache (a snapshot replaced the whole committed layer).
func (c *readCache) reset() {
	if c.limit <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen.Add(1)
	clear(c.entries)
	c.bytes = 0
}

// CacheStats describe the committed-record cache.
type CacheStats struct {
	Hits, Misses uint64
	Entries      int
	Bytes        int
}

// CacheStats reports the committed-record cache's counters and size.
func (s *Store) CacheStats() CacheStats {
	c := s.cache
	c.mu.RLock()
	defer c.mu.RUnlock()
	return CacheStats{Hits: c.hits.Load(), Misses: c.misses.Load(), Entries: len(c.entries), Bytes: c.bytes}
}
