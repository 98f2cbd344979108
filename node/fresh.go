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
	// refreshing is set while the background refresher runs (at most one); lastTry is when it
	// last started, so that a failing one is not restarted on every read; wanted is when a read
	// last asked for this node's staleness (both monoNow: a wall clock stepped back must not
	// stop refreshes).
	refreshing atomic.Bool
	lastTry    atomic.Int64
	wanted     atomic.Int64
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

// freshRefresh is how often a follower asks the leader for a read index in the background
// while reads want its staleness, failed calls included: it bounds the staleness that eventual,
// session and bounded reads report, and keeps bounded reads with the default bound from waiting
// for the leader. Ten calls a second per follower are cheap next to the rounds strong reads run.
const freshRefresh = 100 * time.Millisecond

// freshLinger is how long the refresher goes on after the last read that wanted a staleness:
// reads a few seconds apart (someone at a terminal) still find a fresh one, and an idle
// cluster asks nothing.
const freshLinger = 10 * time.Second

// freshCallTimeout bounds one background call. A bounded read that must ask the leader itself
// joins the round after the one in flight, so a call hanging on a leader that died silently
// must not hold it for the whole LeaderWait.
const freshCallTimeout = 10 * freshRefresh

// followerFreshness returns the newest read index this follower holds and when it asked for
// it, for a read that reports or checks its staleness: it also notes that reads want it, and
// starts the refresher when what it holds is older than freshRefresh and none runs.
func (n *Node) followerFreshness() (asked time.Time, index uint64) {
	asked, index = n.fresh.get()
	now := monoNow()
	if now-n.fresh.wanted.Load() > int64(time.Millisecond) { // one store a millisecond is enough
		n.fresh.wanted.Store(now)
	}
	if !asked.IsZero() && time.Since(asked) <= freshRefresh || now-n.fresh.lastTry.Load() < int64(freshRefresh) || !n.fresh.refreshing.CompareAndSwap(false, true) {
		return asked, index
	}
	n.fresh.lastTry.Store(now)
	go n.refreshFreshness()
	return asked, index
}

// refreshFreshness is the refresher: it asks the leader for a read index every freshRefresh
// until no read has wanted a staleness for freshLinger, this node leads, or it closes. Its calls
// share rounds with strong reads (readIndexRounds), and every round a follower runs, for
// either, records freshness (leaderReadIndex). A call ends within freshCallTimeout, and at once
// when the node closes (readIndexRounds.close), so the refresher is not waited for.
func (n *Node) refreshFreshness() {
	defer n.fresh.refreshing.Store(false)
	tick := time.NewTicker(freshRefresh)
	defer tick.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), freshCallTimeout)
		n.readIndexes.join(ctx, n.cfg.ID+"-freshness", freshCallTimeout, n.leaderReadIndex, n.logSharedRound)
		cancel()
		if monoNow()-n.fresh.wanted.Load() > int64(freshLinger) || n.raft.IsLeader() {
			return
		}
		select {
		case <-n.closed:
			return
		case <-tick.C:
		}
	}
}

// monoNow is nanoseconds on the monotonic clock since the process started.
func monoNow() int64 { return int64(time.Since(processStart)) }

var processStart = time.Now()
