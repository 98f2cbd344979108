package strong

import (
	"fmt"
	"sync"

	"github.com/hashicorp/raft"
)

// logCache keeps the newest log entries in memory in front of the log store, as raft.LogCache
// does, so that replication and the state machine read what was just appended without a bbolt
// transaction and a decode. Unlike raft.LogCache it is bounded by bytes as well as by count:
// raft.LogCache(512) keeps the last 512 entries whatever their size, so a node that took a few
// hundred writes of 1 MiB values held them all in its heap for good (measured: 300 such writes
// grew the live heap of a 3-node cluster by 907 MiB), and with entries of up to ProposalBytes a
// node could pin 2 GiB. Here the oldest cached entries give way once the cached data passes
// maxBytes; an entry larger than maxBytes is not cached at all. Small writes never reach the
// bound, so what is cached for them is what raft.LogCache cached.
type logCache struct {
	store    raft.LogStore
	maxBytes int

	mu    sync.RWMutex
	ring  []*raft.Log // entry i in slot i % len(ring)
	bytes int         // the Data of the cached entries
	low   uint64      // no cached entry has a lower index
}

// defaultLogCacheBytes bounds the data the log cache holds.
const defaultLogCacheBytes = 64 << 20

func newLogCache(capacity, maxBytes int, store raft.LogStore) (*logCache, error) {
	if capacity <= 0 || maxBytes <= 0 {
		return nil, fmt.Errorf("log cache: capacity %d and size %d must be positive", capacity, maxBytes)
	}
	return &logCache{store: store, maxBytes: maxBytes, ring: make([]*raft.Log, capacity)}, nil
}

// IsMonotonic passes the store's answer on (raft.MonotonicLogStore), as raft.LogCache does.
func (c *logCache) IsMonotonic() bool {
	if m, ok := c.store.(raft.MonotonicLogStore); ok {
		return m.IsMonotonic()
	}
	return false
}

func (c *logCache) GetLog(index uint64, log *raft.Log) error {
	c.mu.RLock()
	cached := c.ring[index%uint64(len(c.ring))]
	c.mu.RUnlock()
	if cached != nil && cached.Index == index {
		*log = *cached
		return nil
	}
	return c.store.GetLog(index, log)
}

func (c *logCache) StoreLog(log *raft.Log) error { return c.StoreLogs([]*raft.Log{log}) }

func (c *logCache) StoreLogs(logs []*raft.Log) error {
	if err := c.store.StoreLogs(logs); err != nil {
		return fmt.Errorf("unable to store logs within log store, err: %q", err)
	}
	if len(logs) == 0 {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	n := uint64(len(c.ring))
	var last uint64
	for _, l := range logs {
		slot := l.Index % n
		if old := c.ring[slot]; old != nil {
			c.bytes -= len(old.Data)
		}
		c.ring[slot] = l
		c.bytes += len(l.Data)
		if c.low == 0 || l.Index < c.low {
			c.low = l.Index
		}
		last = max(last, l.Index)
	}
	// The ring holds at most the n entries up to last. Below them, slots still holding an older
	// entry (the log jumped: none in the slots between) are cleared, so the bytes counted are
	// those of entries the loop below can reach.
	if last >= n && last-n+1 > c.low {
		newLow := last - n + 1
		for i := c.low; i < newLow && i < c.low+n; i++ {
			if e := c.ring[i%n]; e != nil && e.Index < newLow {
				c.bytes -= len(e.Data)
				c.ring[i%n] = nil
			}
		}
		c.low = newLow
	}
	for c.bytes > c.maxBytes && c.low <= last {
		slot := c.low % n
		if e := c.ring[slot]; e != nil && e.Index == c.low {
			c.bytes -= len(e.Data)
			c.ring[slot] = nil
		}
		c.low++
	}
	return nil
}

func (c *logCache) FirstIndex() (uint64, error) { return c.store.FirstIndex() }

func (c *logCache) LastIndex() (uint64, error) { return c.store.LastIndex() }

// DeleteRange empties the cache, as raft.LogCache does: raft deletes a range to compact the log
// (old entries, long gone from the cache) or to drop a follower's conflicting tail.
func (c *logCache) DeleteRange(min, max uint64) error {
	c.mu.Lock()
	clear(c.ring)
	c.bytes, c.low = 0, 0
	c.mu.Unlock()
	return c.store.DeleteRange(min, max)
}

var (
	_ raft.LogStore          = (*logCache)(nil)
	_ raft.MonotonicLogStore = (*logCache)(nil)
)
