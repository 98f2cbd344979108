package node

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dialkv/dialkv/client"
)

// boundedReads checks bounded reads of one key against the acknowledged strong writes of
// increasing integers to it: a read that answers must show every write acknowledged more than
// its bound (plus tolerance, for this test's own timing) before the read began (DESIGN.md,
// guarantee 5).
type boundedReads struct {
	bound, tolerance time.Duration

	mu    sync.Mutex
	acked []boundedAck // in order of value

	served, refused int
	violations      []string
}

type boundedAck struct {
	value int
	at    time.Time
}

func (b *boundedReads) ack(value int, at time.Time) {
	b.mu.Lock()
	b.acked = append(b.acked, boundedAck{value, at})
	b.mu.Unlock()
}

// read makes one bounded read of key on n and checks it; it returns the value read (-1 when
// refused or absent).
func (b *boundedReads) read(t *testing.T, n *Node, key string) int {
	t.Helper()
	began := time.Now()
	r := do(t, "GET", n, fmt.Sprintf("/v1/kv/%s?consistency=bounded&max_staleness=%v", key, b.bound), "")
	if r.status != 200 {
		b.refused++
		return -1
	}
	b.served++
	got, err := strconv.Atoi(r.body)
	if err != nil {
		t.Fatalf("bounded read of %s on %s: %q", key, n.cfg.ID, r.body)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, a := range b.acked {
		if a.value > got && a.at.Before(began.Add(-b.bound-b.tolerance)) {
			b.violations = append(b.violations, fmt.Sprintf("bounded read on %s answered %d, though %d was acknowledged %v before the read began; it claimed staleness %s",
				n.cfg.ID, got, a.value, began.Sub(a.at).Round(time.Millisecond), r.header.Get(client.HeaderStaleness)))
			break
		}
	}
	return got
}

func (b *boundedReads) check(t *testing.T) {
	t.Helper()
	t.Logf("bounded reads: %d served, %d refused; %d writes acknowledged", b.served, b.refused, len(b.acked))
	if n := len(b.violations); n > 0 {
		t.Fatalf("%d bounded reads over max_staleness %v (+%v):\n%s", n, b.bound, b.tolerance, strings.Join(b.violations[:min(n, 5)], "\n"))
	}
}

// A newly elected leader's commit index lags the writes its predecessor acknowledged until it
// commits an entry of its own term. A follower that took the commit index in the new leader's
// first messages as the cluster's answered bounded reads without a write acknowledged an
// election earlier (over a second), claiming milliseconds of staleness.
//
// Three nodes L (leader), F, G: cut L from F; write k=1 through L (committed with G); isolate L
// before it tells G the write committed (CommitTimeout is widened to make that window sure); G
// is elected; bounded reads on F must show k=1 or refuse.
func TestBoundedReadOnFollowerAfterFailoverShowsTheOldLeadersWrites(t *testing.T) {
	tc := startCluster(t, 3, func(i int, c *Config) {
		c.TestFaults = true
		c.Raft.HeartbeatTimeout = time.Second
		c.Raft.ElectionTimeout = time.Second
		c.Raft.LeaderLeaseTimeout = 500 * time.Millisecond
		c.Raft.CommitTimeout = 400 * time.Millisecond
	})
	var l, f, g *Node
	for _, n := range tc.nodes {
		switch {
		case n.raft.IsLeader():
			l = n
		case f == nil:
			f = n
		default:
			g = n
		}
	}
	if l == nil || f == nil || g == nil {
		t.Fatal("no leader and two followers")
	}
	if r := do(t, "PUT", l, "/v1/kv/k", "0"); r.status != 200 {
		t.Fatalf("put 0: %d %s", r.status, r.body)
	}
	waitUntil(t, "k=0 on every node", 10*time.Second, func() bool {
		for _, n := range tc.nodes {
			if v, ok, _ := n.store.Get("k"); !ok || string(v.Data) != "0" {
				return false
			}
		}
		return true
	})
	cut(t, l, f)
	cut(t, f, l)
	r := do(t, "PUT", l, "/v1/kv/k", "1")
	if r.status != 200 {
		t.Fatalf("put 1: %d %s", r.status, r.body)
	}
	b := &boundedReads{bound: time.Second, tolerance: 100 * time.Millisecond}
	b.ack(1, time.Now())
	cut(t, l, f, g)
	cut(t, g, l)

	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && b.read(t, f, "k") != 1 {
		time.Sleep(2 * time.Millisecond) // pacing the reads, not waiting for anything
	}
	b.check(t)
	if b.served == 0 {
		t.Errorf("%s served no bounded read in 10 s after %s took over", f.cfg.ID, g.cfg.ID)
	}
}

// The commit index in a replication message is the one the leader had when it built it; the
// message can arrive much later (a slow link, TCP handing over what a partition held back)
// while the leader commits through faster followers. A follower that dated its freshness by the
// arrival answered bounded reads staler than their bound. Here the leader's messages are delayed
// by a random 0-800 ms while strong writes go on; bounded reads (max_staleness 300 ms) on a
// follower must keep their bound.
func TestBoundedReadOnFollowerCountsTheLeadersDelayedMessages(t *testing.T) {
	tc := startCluster(t, 3, func(i int, c *Config) {
		c.TestFaults = true
		// Long enough that the delays cause no election.
		c.Raft.HeartbeatTimeout = 3 * time.Second
		c.Raft.ElectionTimeout = 3 * time.Second
		c.Raft.LeaderLeaseTimeout = 2 * time.Second
		c.LeaderWait = 5 * time.Second
	})
	l, f := tc.leaderAndFollower()
	if r := do(t, "PUT", l, "/v1/kv/k", "0"); r.status != 200 {
		t.Fatalf("put 0: %d %s", r.status, r.body)
	}
	if r := do(t, "PUT", l, "/v1/test/faults", `{"jitter":"800ms"}`); r.status != 200 {
		t.Fatalf("faults: %d %s", r.status, r.body)
	}
	b := &boundedReads{bound: 300 * time.Millisecond, tolerance: 100 * time.Millisecond}
	stop, writerDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(writerDone)
		for i := 1; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if r, err := tryDo("PUT", l, "/v1/kv/k", strconv.Itoa(i)); err == nil && r.status == 200 {
				b.ack(i, time.Now())
			}
		}
	}()
	for deadline := time.Now().Add(6 * time.Second); time.Now().Before(deadline); {
		b.read(t, f, "k")
		time.Sleep(5 * time.Millisecond) // pacing the reads
	}
	close(stop)
	<-writerDone
	b.check(t)
	if len(b.acked) == 0 {
		t.Fatal("no write was acknowledged while the leader's messages were delayed: nothing was checked")
	}

	// Without the delay the follower serves bounded reads again.
	if r := do(t, "DELETE", l, "/v1/test/faults", ""); r.status != 200 {
		t.Fatalf("heal: %d", r.status)
	}
	waitUntil(t, "a bounded read served on the follower after the heal", 10*time.Second, func() bool {
		return do(t, "GET", f, "/v1/kv/k?consistency=bounded&max_staleness=300ms", "").status == 200
	})
}

// cut sets n's fault hook to cut its links, both ways, to the nodes in others.
func cut(t *testing.T, n *Node, others ...*Node) {
	t.Helper()
	var ids []string
	for _, o := range others {
		ids = append(ids, strconv.Quote(o.cfg.ID))
	}
	list := strings.Join(ids, ",")
	if r := do(t, "PUT", n, "/v1/test/faults", fmt.Sprintf(`{"drop_in":[%s],"drop_out":[%s]}`, list, list)); r.status != 200 {
		t.Fatalf("faults on %s: %d %s", n.cfg.ID, r.status, r.body)
	}
}

// After a leader change with no write since, a node's newest entries are the new leader's no-op
// and barrier, which the state machine never sees: every node must still report its staleness
// (it used to compare the store's applied index, which only commands move, and reported none).
func TestIdleNodesReportStalenessAfterALeaderChange(t *testing.T) {
	tc := startCluster(t, 3)
	l, _ := tc.leaderAndFollower()
	if r := do(t, "PUT", l, "/v1/kv/k", "v"); r.status != 200 {
		t.Fatalf("put: %d %s", r.status, r.body)
	}
	if err := l.raft.TransferLeadership(); err != nil {
		t.Fatal(err)
	}
	for _, n := range tc.nodes {
		waitUntil(t, n.cfg.ID+" to report its staleness on an eventual read", 10*time.Second, func() bool {
			return do(t, "GET", n, "/v1/kv/k?consistency=eventual", "").header.Get(client.HeaderStaleness) != ""
		})
	}
}

// A follower whose read-index calls fail at once (the leader refuses them, while its heartbeats
// still arrive) must not call again on every read: background calls are at least freshRefresh
// apart, failed ones included (they were thousands a second). Nor may it give up while reads
// go on.
func TestFollowerRefreshesItsStalenessOncePerInterval(t *testing.T) {
	tc := startCluster(t, 3, func(i int, c *Config) { c.TestFaults = true })
	l, f := tc.leaderAndFollower()
	if r := do(t, "PUT", l, "/v1/test/faults", fmt.Sprintf(`{"drop_in":[%q]}`, f.cfg.ID)); r.status != 200 {
		t.Fatalf("faults: %d %s", r.status, r.body)
	}
	before := f.readIndexes.calls.Load()
	start := time.Now()
	reads := 0
	for time.Since(start) < time.Second {
		if r := do(t, "GET", f, "/v1/kv/k?consistency=eventual", ""); r.status == 404 || r.status == 200 {
			reads++
		}
	}
	calls := f.readIndexes.calls.Load() - before
	elapsed := time.Since(start)
	t.Logf("%d eventual reads in %v: %d read-index calls", reads, elapsed.Round(time.Millisecond), calls)
	if most := uint64(elapsed/freshRefresh) + 2; calls > most {
		t.Errorf("%d read-index calls in %v of reads, want at most %d (one per %v)", calls, elapsed.Round(time.Millisecond), most, freshRefresh)
	}
	// And it keeps trying while reads want its staleness, though every call fails.
	if least := uint64(elapsed / (2 * freshRefresh)); calls < least {
		t.Errorf("%d read-index calls in %v of reads, want at least %d: the refresher stopped", calls, elapsed.Round(time.Millisecond), least)
	}
}

// A bounded read checks its bound, then waits for the state machine to apply what the bound
// covers. A node that stalls there (a slow disk, an apply backlog, a GC pause) must check again
// before it answers: the leader used to wait up to LeaderWait with no deadline, and either node
// answered 200 with a Dialkv-Staleness over the max_staleness the read asked for, which the read
// promises to refuse (DESIGN.md: "error if the node cannot promise it"). Here every bounded read
// stalls for longer than its bound at that point, on the leader and on a follower.
func TestBoundedReadThatStallsPastItsBoundIsRefused(t *testing.T) {
	const bound = 50 * time.Millisecond
	tc := startCluster(t, 3, func(i int, c *Config) {
		c.beforeApplyWait = func() {
			// The node stalls: time passes, nothing else happens.
			for start := time.Now(); time.Since(start) <= bound+10*time.Millisecond; {
				time.Sleep(time.Millisecond)
			}
		}
	})
	l, f := tc.leaderAndFollower()
	if r := do(t, "PUT", l, "/v1/kv/k", "v"); r.status != 200 {
		t.Fatalf("put: %d %s", r.status, r.body)
	}
	for _, n := range []*Node{l, f} {
		for range 5 {
			r := do(t, "GET", n, fmt.Sprintf("/v1/kv/k?consistency=bounded&max_staleness=%v", bound), "")
			if r.status != 200 {
				continue
			}
			staleness, err := time.ParseDuration(r.header.Get(client.HeaderStaleness))
			if err != nil || staleness > bound {
				t.Errorf("bounded read with max_staleness %v on %s answered 200 with staleness %q", bound, n.cfg.ID, r.header.Get(client.HeaderStaleness))
				break
			}
		}
	}
}
