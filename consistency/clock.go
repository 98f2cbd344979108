package consistency

import (
	"sync"
	"time"
)

// Clock is a hybrid logical clock for one node. Now never returns the same or an older
// timestamp twice (among those within MaxWall, the only ones callers take), and after
// Observe(v) every Now is newer than v, so causality carried by versions (gossip, log entries,
// responses) is respected even when wall clocks disagree.
//
// The physical source is injectable so tests and the partition harness can skew a node's clock.
type Clock struct {
	node     string
	physical func() time.Time

	mu   sync.Mutex
	last Version // wall and logical of the newest timestamp issued or observed
}

// NewClock returns a clock for node reading physical time from now (time.Now when nil).
func NewClock(node string, now func() time.Time) *Clock {
	if now == nil {
		now = time.Now
	}
	return &Clock{node: node, physical: now}
}

// Node is the id stamped into this clock's versions.
func (c *Clock) Node() string { return c.node }

// Now returns a fresh version stamped by this node, newer than everything issued or observed.
//
// While the physical clock reads past MaxWall, Now returns that reading as it is, a version no
// caller takes (Version.Stamped), and the clock does not keep it: kept, it held the clock past
// MaxWall for as long as the process lived, so a node whose wall clock jumped there for a moment
// refused every write (and a leader every strong write) until restarted, its clock long fixed.
// Only versions no one takes are issued out of order this way.
func (c *Clock) Now() Version {
	wall := c.physical().UnixNano()
	if wall > MaxWall {
		return Version{Wall: wall, Node: c.node}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if wall > c.last.Wall {
		c.last = Version{Wall: wall}
	} else {
		c.last = c.last.Successor("")
	}
	v := c.last
	v.Node = c.node
	return v
}

// NowStrong is Now for a strong write this node proposes as leader: the same fresh timestamp,
// in the node's strong-write space (node id + "/s", which no clock issues). The state machine
// gives a strong write that arrives behind its key's version the successor of that version,
// stamped by the write's stamp node, and this clock may by then have observed the key's version
// and issued that very timestamp to an eventual write of the key: under the plain node id the
// two writes would share one version, and last-writer-wins would drop the acknowledged eventual
// write with nothing newer replacing it. Versions in the strong space never equal one from Now,
// and still order against every other version by timestamp.
func (c *Clock) NowStrong() Version {
	v := c.Now()
	v.Node += strongMark
	return v
}

// MaxWall is the newest wall time a version can honestly carry: 2200-01-01 UTC. No clock stamps
// a version past it, so such a version is forged or corrupt. A clock does not follow one, which
// could bring it to the end of int64 time, where its next timestamp wraps around to 1677, older
// than every version (a write stamped there is superseded as soon as it is taken); nor does the
// leader let one into the log, where Successor wraps the same way (node's checkCommitBatch for
// eventual writes, checkStrongStamp for its own stamps on strong ones).
const MaxWall = 7258118400 * int64(time.Second)

// Observe moves the clock past v, so later Now calls are newer than v. Observing an older
// version changes nothing, nor does observing one past MaxWall.
func (c *Clock) Observe(v Version) {
	if v.Wall > MaxWall {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if v.Wall > c.last.Wall || (v.Wall == c.last.Wall && v.Logical > c.last.Logical) {
		c.last = Version{Wall: v.Wall, Logical: v.Logical}
	}
}

// ObserveWithin is Observe for a version from an untrusted source (a client's session token):
// it moves the clock past v, but never further than lead ahead of the physical clock, so a
// forged or wildly skewed version cannot drag this node's versions into the future. It reports
// whether v was cut to that bound.
func (c *Clock) ObserveWithin(v Version, lead time.Duration) (cut bool) {
	if limit := c.physical().Add(lead).UnixNano(); v.Wall > limit {
		v, cut = Version{Wall: limit}, true
	}
	c.Observe(v)
	return cut
}

// Drift is how far the clock's logical time runs ahead of its physical source: how much it has
// been pulled forward by observed versions from faster clocks.
func (c *Clock) Drift() time.Duration {
	wall := c.physical().UnixNano()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.last.Wall <= wall {
		return 0
	}
	return time.Duration(c.last.Wall - wall)
}
