package node

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// leaderFreshness is, on a follower, the newest read index the leader gave this node and when
// this node asked for it. Every write acknowledged before that moment is at or below the index
// (the leader took it after the request arrived, with its leadership confirmed by a quorum), so
// once the state machine has applied the index the committed layer misses no write acknowledged
// before asked: it is at most time.Since(asked) stale, by this node's own clock.
//
// What the leader's replication messages say is not enough to promise that. Such a message
// carries the leader's commit index from when it was built, which can be far older than its
// arrival: a partition that heals hands over what TCP held back, a slow link delays it while the
// leader commits through faster followers, and a newly elected leader's commit index lags the
// writes its predecessor acknowledged until it commits an entry of its own term. Bounded reads
// that dated their freshness by such messages were seconds staler than they claimed
// (kvjepsen's staleness workload under partitions; the tests in bounded_test.go).
type leaderFreshness struct {
	mu    sync.Mutex
	asked time.Time
	index uint64
	// refreshing is set while a background refresh is in flight (at most one); lastTry is when
	// the latest one started (UnixNano), so that failing calls are not retried on every read.
	refreshing atomic.Bool
	lastTry    atomic.Int64
}

// record keeps (asked, index) if it is newer than what is known.
func (f *leaderFreshness) record(asked time.Time, index uint64) {
	f.mu.Lock()
	if asked.After(f.asked) {
		f.asked, f.index = asked, index
	}
	f.mu.Unlock()
}

func (f *leaderFreshness) get() (asked time.Time, index uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.asked, f.index
}

// freshRefresh is how old a follower's freshness may grow, while it is asked for its
// staleness, before it asks the leader again in the background, and the least time between two
// background calls (failed ones included): it bounds the staleness eventual and session reads
// report, and keeps bounded reads with the default bound from waiting for the leader. One
// read-index call per interval per follower is cheap next to the rounds strong reads run.
const freshRefresh = 100 * time.Millisecond

// freshCallTimeout bounds one background call. A bounded read that must ask the leader itself
// joins the round after the one in flight, so a call hanging on a leader that died silently
// must not hold it for the whole LeaderWait.
const freshCallTimeout = 10 * freshRefresh

// refreshFreshness asks the leader for a read index in the background, unless such a call is
// already in flight. It shares rounds with strong reads (readIndexRounds), and every round a
// follower runs, for either, records freshness (leaderReadIndex). The call ends within
// LeaderWait, and at once when the node closes (readIndexRounds.close), so it is not waited for.
func (n *Node) refreshFreshness() {
	now := time.Now().UnixNano()
	if now-n.fresh.lastTry.Load() < int64(freshRefresh) || !n.fresh.refreshing.CompareAndSwap(false, true) {
		return
	}
	n.fresh.lastTry.Store(now)
	go func() {
		defer n.fresh.refreshing.Store(false)
		ctx, cancel := context.WithTimeout(context.Background(), freshCallTimeout)
		defer cancel()
		n.readIndexes.join(ctx, n.cfg.ID+"-freshness", freshCallTimeout, n.leaderReadIndex, n.logSharedRound)
	}()
}
