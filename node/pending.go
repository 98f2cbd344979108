package node

import (
	"sync"
	"time"

	"github.com/dialkv/dialkv/consistency"
	"github.com/dialkv/dialkv/replication"
)

// stampTracker stamps eventual writes and remembers those not yet durable, so the committer can
// report a watermark without making writers wait for it.
//
// The watermark a node reports must not be newer than any write it will still acknowledge
// (DESIGN.md: tombstones older than every member's watermark are purged, and writes below the
// purge horizon are refused). floor gives that bound for the writes between stamping and
// durability: the oldest of them, or, when there are none, a fresh stamp (every later write is
// newer). Writes already durable are in the tentative layer, which the committer scans after
// taking the floor.
type stampTracker struct {
	mu       sync.Mutex
	inflight map[consistency.Version]struct{}
	// closed refuses new stamps: the node is handing its writes over before it leaves.
	closed bool
}

// stamp returns a fresh version from clock and counts it in flight until done; ok is false,
// and nothing is stamped, while the tracker is closed.
func (s *stampTracker) stamp(clock *consistency.Clock) (v consistency.Version, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return consistency.Version{}, false
	}
	v = clock.Now() // under mu: floor must not miss a version stamped before its own
	if s.inflight == nil {
		s.inflight = map[consistency.Version]struct{}{}
	}
	s.inflight[v] = struct{}{}
	return v, true
}

// setClosed stops (or resumes) stamping.
func (s *stampTracker) setClosed(closed bool) {
	s.mu.Lock()
	s.closed = closed
	s.mu.Unlock()
}

// idle reports whether no stamped write is still on its way to durability.
func (s *stampTracker) idle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.inflight) == 0
}

// done ends v's flight: the write is durable, or refused.
func (s *stampTracker) done(v consistency.Version) {
	s.mu.Lock()
	delete(s.inflight, v)
	s.mu.Unlock()
}

// floor returns a version no write stamped and not yet done, nor any write stamped later, is
// older than.
func (s *stampTracker) floor(clock *consistency.Clock) consistency.Version {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := clock.Now()
	for v := range s.inflight {
		if f.Newer(v) {
			f = v
		}
	}
	return f
}

// maxPendingIndex and maxPendingIndexBytes bound the pending index, in keys and in the bytes of
// those keys (a key may be up to 32 KiB: 1<<17 of them would be 4 GiB). Beyond either (a long
// leader outage under write load) the index empties itself and the committer goes back to
// scanning the tentative layer until the backlog fits again.
const (
	maxPendingIndex      = 1 << 17
	maxPendingIndexBytes = 16 << 20
)

// pendingIndex is the committer's index of this node's own eventual writes not yet known to be
// committed: key → newest version accepted here. It spares the committer a scan of the whole
// tentative layer per batch.
//
// The tentative layer stays the truth: the committer reads the writes it submits from the layer
// (GetTentative), and forgets a key whose write the layer no longer holds (committed, or
// superseded by a newer write of another node). The index is complete only once a scan of the
// layer has seeded it (after a start, and after an overflow emptied it); until then the committer
// scans.
type pendingIndex struct {
	mu       sync.Mutex
	versions map[string]pendingWrite
	keyBytes int // the bytes of the keys in versions
	complete bool
	// gen counts overflows: a seed from a scan that began before the latest one is incomplete.
	gen uint64
}

// pendingWrite is an indexed write: its version, and when this node acknowledged it (zero when
// it came another way: a scan after a start, anti-entropy).
type pendingWrite struct {
	version  consistency.Version
	accepted time.Time
}

// add records writes of this node that the tentative layer just stored.
func (p *pendingIndex) add(ws []replication.Write) { p.addAccepted(ws, time.Time{}) }

// addAccepted is add for writes this node acknowledged at accepted: the commit lag is measured
// from then. Measured from the version's wall time instead, it read 0 on a node whose clock
// gossip had pulled ahead of its wall clock (its stamps run ahead too).
func (p *pendingIndex) addAccepted(ws []replication.Write, accepted time.Time) {
	if len(ws) == 0 {
		return
	}
	p.mu.Lock()
	p.addLocked(ws, accepted)
	p.mu.Unlock()
}

// acceptedAt is when this node acknowledged the indexed write id, if it did and id is the
// version indexed.
func (p *pendingIndex) acceptedAt(id writeID) (time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	cur, ok := p.versions[id.key]
	if !ok || cur.version != id.version || cur.accepted.IsZero() {
		return time.Time{}, false
	}
	return cur.accepted, true
}

func (p *pendingIndex) addLocked(ws []replication.Write, accepted time.Time) {
	if p.versions == nil {
		p.versions = map[string]pendingWrite{}
	}
	added := 0
	for _, w := range ws {
		added += len(w.Key)
	}
	if len(p.versions)+len(ws) > maxPendingIndex || p.keyBytes+added > maxPendingIndexBytes {
		clear(p.versions)
		p.keyBytes = 0
		p.complete = false
		p.gen++
	}
	for _, w := range ws {
		cur, ok := p.versions[w.Key]
		if !ok {
			p.keyBytes += len(w.Key)
		}
		if !ok || w.Value.Version.Newer(cur.version) {
			p.versions[w.Key] = pendingWrite{version: w.Value.Version, accepted: accepted}
		}
	}
}

// sample returns up to limit indexed writes (in no particular order), whether the index is
// complete, and the generation to pass to seed.
func (p *pendingIndex) sample(limit int) (ids []writeID, complete bool, gen uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, v := range p.versions {
		if len(ids) == limit {
			break
		}
		ids = append(ids, writeID{key: k, version: v.version})
	}
	return ids, p.complete, p.gen
}

// seed adds ws, every pending write of this node a scan found (the scan began after sample
// returned gen), and marks the index complete, unless it overflowed meanwhile. Writes accepted
// during the scan were added by add, so nothing is missed.
func (p *pendingIndex) seed(ws []replication.Write, gen uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if gen != p.gen {
		return
	}
	p.addLocked(ws, time.Time{})
	p.complete = gen == p.gen
}

// forget drops each key whose indexed version is not newer than the one given: that write is
// committed, or there is nothing left for this node to commit.
func (p *pendingIndex) forget(ids []writeID) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, id := range ids {
		if cur, ok := p.versions[id.key]; ok && !cur.version.Newer(id.version) {
			delete(p.versions, id.key)
			p.keyBytes -= len(id.key)
		}
	}
}

// size is the number of indexed writes.
func (p *pendingIndex) size() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.versions)
}
