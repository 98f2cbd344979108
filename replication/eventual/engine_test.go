package eventual

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dialkv/dialkv/consistency"
	"github.com/dialkv/dialkv/replication"
)

// noAntiEntropy makes gossip the only way writes travel, so a test of dissemination cannot be
// rescued by anti-entropy.
func noAntiEntropy(_ int, c *Config) { c.AntiEntropyInterval = time.Hour }

func TestMembersSeeEachOther(t *testing.T) {
	t.Parallel()
	nodes := startCluster(t, 3, nil)
	for _, n := range nodes {
		got := n.e().Members()
		if len(got) != 3 {
			t.Fatalf("%s sees %d members, want 3: %+v", n.id, len(got), got)
		}
		for i, m := range got {
			want := nodes[i]
			if m.ID != want.id || m.State != StateAlive {
				t.Errorf("%s sees %+v, want %s alive", n.id, m, want.id)
			}
			if m.HTTPAddr != want.cfg.HTTPAddr || m.RaftAddr != want.cfg.RaftAddr {
				t.Errorf("%s sees %s at http %q raft %q, want %q %q", n.id, m.ID, m.HTTPAddr, m.RaftAddr, want.cfg.HTTPAddr, want.cfg.RaftAddr)
			}
			if m.GossipAddr != want.e().LocalAddr() || m.GossipAddr == "" {
				t.Errorf("%s sees %s at gossip %q, want %q", n.id, m.ID, m.GossipAddr, want.e().LocalAddr())
			}
			if m.Since.IsZero() {
				t.Errorf("%s sees %s without a Since", n.id, m.ID)
			}
		}
	}
}

func TestBroadcastReachesEveryNode(t *testing.T) {
	t.Parallel()
	nodes := startCluster(t, 3, noAntiEntropy)
	w := put("greeting", "hello", stamp(time.Now().UnixNano(), "n1"))
	start := time.Now()
	writeLocal(t, nodes[0], w)
	for _, n := range nodes[1:] {
		waitFor(t, 5*time.Second, n.id+" receives the write by gossip", func() bool { return n.store.has(w.Key, w.Value.Version) })
		t.Logf("visible on %s after %v", n.id, time.Since(start))
	}
	for _, n := range nodes[1:] {
		if s := n.e().Stats(); s.BroadcastsReceived == 0 || s.RepairPulled != 0 || s.AntiEntropyRounds != 0 {
			t.Errorf("%s stats %+v: want it received by broadcast, without anti-entropy", n.id, s)
		}
	}
}

// Local writes stored together are pushed to each peer in as few packets as fit them, not one
// packet per write, and every write arrives.
func TestEagerPushPacksLocalWrites(t *testing.T) {
	t.Parallel()
	nodes := startCluster(t, 3, noAntiEntropy)
	now := time.Now().UnixNano()
	var ws []replication.Write
	for i := range 200 {
		ws = append(ws, put(fmt.Sprintf("packed/%03d", i), strings.Repeat("v", 100), stamp(now+int64(i), "n1")))
	}
	writeLocal(t, nodes[0], ws...)
	for _, n := range nodes[1:] {
		waitFor(t, 5*time.Second, n.id+" receives all 200 writes", func() bool {
			for _, w := range ws {
				if !n.store.has(w.Key, w.Value.Version) {
					return false
				}
			}
			return true
		})
	}
	e := nodes[0].e()
	waitFor(t, 5*time.Second, "the push to both peers to be counted", func() bool { return e.Stats().EagerSent == 2*200 })
	s := e.Stats()
	bytesPerPeer := 0
	_, msgs := appendWritesMsgs(nil, "n1", []string{"n2", "n3"}, ws, e.maxMsg)
	for _, msg := range msgs {
		bytesPerPeer += len(msg)
	}
	if want := 2 * (bytesPerPeer/e.maxMsg + 1); s.EagerPackets > uint64(want) {
		t.Errorf("stats %+v: %d packets for 200 writes to 2 peers, want at most %d", s, s.EagerPackets, want)
	}
}

func TestLargeValueTravelsByNoticeAndFetch(t *testing.T) {
	t.Parallel()
	nodes := startCluster(t, 3, noAntiEntropy)
	big := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB
	w := replication.Write{Key: "big", Value: consistency.Value{Version: stamp(time.Now().UnixNano(), "n1"), Data: big}}
	start := time.Now()
	writeLocal(t, nodes[0], w)
	for _, n := range nodes[1:] {
		waitFor(t, 5*time.Second, n.id+" fetches the large write", func() bool { return n.store.has(w.Key, w.Value.Version) })
		t.Logf("visible on %s after %v", n.id, time.Since(start))
		got, _ := n.store.get(w.Key)
		if !bytes.Equal(got.Value.Data, big) {
			t.Errorf("%s holds %d bytes, want the 64 KiB value", n.id, len(got.Value.Data))
		}
	}
	if s := nodes[0].e().Stats(); s.NoticesQueued == 0 {
		t.Errorf("n1 stats %+v: want the write announced by a notice", s)
	}
	fetches := 0
	for _, n := range nodes[1:] {
		fetches += int(n.e().Stats().Fetches)
	}
	if fetches < 2 {
		t.Errorf("%d fetches in all, want one by each receiver", fetches)
	}
}

// TestLargestGossipMessageIsDelivered checks the packet budget: a message exactly as large as the
// engine allows still leaves (memberlist drops larger ones silently), with encryption on.
func TestLargestGossipMessageIsDelivered(t *testing.T) {
	t.Parallel()
	key := []byte("0123456789abcdef0123456789abcdef")
	nodes := startCluster(t, 2, func(_ int, c *Config) {
		noAntiEntropy(0, c)
		c.SecretKey = key
		c.MaxBroadcastValue = 64 << 10
	})
	e := nodes[0].e()
	v := stamp(time.Now().UnixNano(), "n1")
	w := put("edge", "", v)
	w.Value.Data = bytes.Repeat([]byte{'x'}, e.maxMsg-len(encodeWriteMsg("n1", w)))
	for len(encodeWriteMsg("n1", w)) > e.maxMsg { // the value's length prefix may have grown
		w.Value.Data = w.Value.Data[1:]
	}
	if got := len(encodeWriteMsg("n1", w)); got < e.maxMsg-1 {
		t.Fatalf("test message is %d bytes, want %d", got, e.maxMsg)
	}
	writeLocal(t, nodes[0], w)
	waitFor(t, 5*time.Second, "n2 receives the largest whole-write message", func() bool { return nodes[1].store.has(w.Key, v) })
	if s := e.Stats(); s.NoticesQueued != 0 || s.Oversize != 0 {
		t.Errorf("n1 stats %+v: want the write sent whole", s)
	}

	// A key too big even for a notice is left to anti-entropy, never queued.
	huge := put(strings.Repeat("k", 2000), "v", stamp(time.Now().UnixNano(), "n1"))
	before := e.Stats().QueueDepth
	e.Broadcast([]replication.Write{huge})
	waitFor(t, 5*time.Second, "the pusher to take the oversize write", func() bool { return e.Stats().Oversize > 0 })
	if s := e.Stats(); s.Oversize != 1 || s.QueueDepth != before {
		t.Errorf("after an oversize write: stats %+v, want Oversize 1 and nothing queued", s)
	}
}

func TestAntiEntropyAloneHeals(t *testing.T) {
	t.Parallel()
	const interval = 200 * time.Millisecond
	nodes := startCluster(t, 3, func(i int, c *Config) {
		c.AntiEntropyInterval = interval
		if i == 3 {
			c.DropGossipFrom = func(string) bool { return true }
		}
	})
	n1, n2, n3 := nodes[0], nodes[1], nodes[2]
	now := time.Now().UnixNano()
	w1 := put("from-n1", "a", stamp(now, "n1"))
	w2 := put("from-n2", "b", stamp(now+1, "n2"))
	big := put("big-from-n2", "", stamp(now+2, "n2"))
	big.Value.Data = bytes.Repeat([]byte("z"), 10_000)
	writeLocal(t, n1, w1)
	writeLocal(t, n2, w2, big)
	// Only on n3, never broadcast.
	w3 := put("only-n3", "c", stamp(now+3, "n3"))
	if _, err := n3.store.MergeTentative([]replication.Write{w3}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	took := waitFor(t, 25*interval, "n3 gets n1's and n2's writes by anti-entropy", func() bool {
		return n3.store.has(w1.Key, w1.Value.Version) && n3.store.has(w2.Key, w2.Value.Version) && n3.store.has(big.Key, big.Value.Version)
	})
	t.Logf("n3 healed after %v (%.1f intervals)", took, float64(took)/float64(interval))
	for _, n := range []*testNode{n1, n2} {
		waitFor(t, 25*interval-time.Since(start)+5*interval, n.id+" gets n3's unbroadcast write", func() bool { return n.store.has(w3.Key, w3.Value.Version) })
	}
	t.Logf("n1 and n2 have n3's write after %v", time.Since(start))
	waitFor(t, 5*time.Second, "a broadcast reaches n3 (and is ignored)", func() bool { return n3.e().Stats().BroadcastsIgnored > 0 })
	if s3 := n3.e().Stats(); s3.BroadcastsReceived != 0 || s3.RepairPulled < 3 {
		t.Errorf("n3 stats %+v: want every broadcast ignored and the writes repaired", s3)
	}
}

// TestAntiEntropyPagesOfLongKeys reconciles a tentative layer whose keys alone (up to 32 KiB
// each, as the store allows) add up to more than an internal request body may carry: digest
// pages are bounded in bytes as well as in entries, or the peer refuses the page every round and
// anti-entropy never repairs anything. The body limit and transfer budget are scaled down from
// 64 MiB and 4 MiB, in the same ratio: at full size the test moved 66 MiB of keys, took 25 s
// with -race and, on a loaded machine, outran the 5 s request timeout.
func TestAntiEntropyPagesOfLongKeys(t *testing.T) {
	const body = 1 << 20
	nodes := startCluster(t, 2, func(_ int, c *Config) {
		c.AntiEntropyInterval = time.Hour
		c.DropGossipFrom = func(string) bool { return true }
		c.maxBody = body
		c.transferBudget = body * transferBudget / maxBody
	})
	n1, n2 := nodes[0], nodes[1]
	const keySize = 32 << 10
	keys := body/keySize + 64
	now := time.Now().UnixNano()
	ws := make([]replication.Write, keys)
	for i := range ws {
		key := fmt.Sprintf("%05d", i) + strings.Repeat("k", keySize-5)
		ws[i] = put(key, "v", stamp(now+int64(i), "n1"))
	}
	if _, err := n1.store.MergeTentative(ws); err != nil {
		t.Fatal(err)
	}
	if err := n1.e().reconcile(context.Background(), n2.cfg.HTTPAddr); err != nil {
		t.Fatalf("reconcile: %v", err)
	}
	for _, w := range ws {
		if !n2.store.has(w.Key, w.Value.Version) {
			t.Fatalf("n2 lacks %.5s... after a round of anti-entropy", w.Key)
		}
	}
}

// TestAntiEntropyPagesAndTruncation drives reconciliation with tiny pages and transfer budgets,
// so digests are split and answers cut short, and checks both sides still converge.
func TestAntiEntropyPagesAndTruncation(t *testing.T) {
	t.Parallel()
	nodes := startCluster(t, 2, func(_ int, c *Config) {
		c.AntiEntropyInterval = time.Hour
		c.DropGossipFrom = func(string) bool { return true }
		c.digestPageEntries = 4
		c.transferBudget = 100 // about two writes per answer
	})
	n1, n2 := nodes[0], nodes[1]
	now := time.Now().UnixNano()
	var ws1, ws2 []replication.Write
	for i := range 40 {
		key := fmt.Sprintf("k%03d", i)
		switch i % 4 {
		case 0: // only on n1
			ws1 = append(ws1, put(key, "one", stamp(now+int64(i), "n1")))
		case 1: // only on n2
			ws2 = append(ws2, put(key, "two", stamp(now+int64(i), "n2")))
		case 2: // both, n1 newer
			ws1 = append(ws1, put(key, "one-new", stamp(now+100+int64(i), "n1")))
			ws2 = append(ws2, put(key, "two-old", stamp(now+int64(i), "n2")))
		case 3: // both, n2 newer
			ws1 = append(ws1, put(key, "one-old", stamp(now+int64(i), "n1")))
			ws2 = append(ws2, put(key, "two-new", stamp(now+100+int64(i), "n2")))
		}
	}
	n1.store.MergeTentative(ws1)
	n2.store.MergeTentative(ws2)
	converged := func() bool {
		d1, _ := n1.store.TentativeDigest("", "")
		d2, _ := n2.store.TentativeDigest("", "")
		if len(d1) != 40 || len(d2) != 40 {
			return false
		}
		for k, v := range d1 {
			if d2[k] != v {
				return false
			}
		}
		return true
	}
	rounds := 0
	for ; rounds < 20 && !converged(); rounds++ {
		if err := n1.e().reconcile(context.Background(), n2.cfg.HTTPAddr); err != nil {
			t.Fatalf("round %d: %v", rounds, err)
		}
	}
	if !converged() {
		t.Fatalf("not converged after %d rounds", rounds)
	}
	served := n2.e().Stats().AntiEntropyServed
	t.Logf("converged in %d rounds, %d digest pages answered", rounds, served)
	if pages := uint64(30+3) / 4; served <= pages {
		t.Errorf("n2 answered %d digest pages: want more than the %d pages of one round (truncated answers re-asked)", served, pages)
	}
	for i := range 40 {
		key := fmt.Sprintf("k%03d", i)
		w, _ := n1.store.get(key)
		if want := map[int]string{0: "one", 1: "two", 2: "one-new", 3: "two-new"}[i%4]; string(w.Value.Data) != want {
			t.Errorf("%s = %q, want %q", key, w.Value.Data, want)
		}
	}
}

func TestNewestWriteWins(t *testing.T) {
	t.Parallel()
	nodes := startCluster(t, 3, func(_ int, c *Config) { c.AntiEntropyInterval = 300 * time.Millisecond })
	base := time.Now().UnixNano()
	walls := []int64{base + 100, base + 300, base + 200} // n2's is the newest
	for i, n := range nodes {
		// The same key written on every node before any gossip round, with different versions.
		writeLocal(t, n, put("contested", "from "+n.id, stamp(walls[i], n.id)))
	}
	newest := stamp(base+300, "n2")
	took := waitFor(t, 10*time.Second, "every node converges to the newest write", func() bool {
		for _, n := range nodes {
			if !n.store.has("contested", newest) {
				return false
			}
		}
		return true
	})
	t.Logf("converged after %v", took)
	for _, n := range nodes {
		if w, _ := n.store.get("contested"); string(w.Value.Data) != "from n2" {
			t.Errorf("%s holds %q, want n2's value", n.id, w.Value.Data)
		}
	}
}

func TestFailureDetectionAndRestart(t *testing.T) {
	t.Parallel()
	nodes := startCluster(t, 3, func(_ int, c *Config) { c.AntiEntropyInterval = 300 * time.Millisecond })
	n1, n2, n3 := nodes[0], nodes[1], nodes[2]
	oldAddr := n3.e().LocalAddr()

	// A crash (no leave): the others must notice by probing.
	start := time.Now()
	n3.crash()
	took := waitFor(t, 15*time.Second, "n1 and n2 see n3 suspect or dead", func() bool {
		for _, n := range []*testNode{n1, n2} {
			if m, _ := memberState(n, "n3"); m.State != StateSuspect && m.State != StateDead {
				return false
			}
		}
		return true
	})
	t.Logf("n3 suspect or dead after %v", took)
	waitFor(t, 25*time.Second-time.Since(start), "n1 and n2 see n3 dead", func() bool {
		for _, n := range []*testNode{n1, n2} {
			if m, _ := memberState(n, "n3"); m.State != StateDead {
				return false
			}
		}
		return true
	})
	t.Logf("n3 dead after %v", time.Since(start))
	m, _ := memberState(n1, "n3")
	if time.Since(m.Since) > time.Since(start) {
		t.Errorf("n3 dead since %v, before the crash", m.Since)
	}

	// A write made while n3 is down reaches it after the restart.
	missed := put("while-away", "x", stamp(time.Now().UnixNano(), "n1"))
	writeLocal(t, n1, missed)

	// Restart on a new port: the dead name moves to the new address.
	n3.cfg.Peers = []string{n1.e().LocalAddr()}
	n3.restart("127.0.0.1:0")
	newAddr := n3.e().LocalAddr()
	if newAddr == oldAddr {
		t.Fatalf("restarted on the same address %s", newAddr)
	}
	took = waitFor(t, 15*time.Second, "n3 alive again at its new address on every node", func() bool {
		for _, n := range nodes {
			if m, _ := memberState(n, "n3"); m.State != StateAlive || m.GossipAddr != newAddr {
				return false
			}
		}
		return true
	})
	t.Logf("n3 (new port) alive everywhere %v after restart", took)
	waitFor(t, 10*time.Second, "n3 gets the write made while it was away", func() bool { return n3.store.has(missed.Key, missed.Value.Version) })

	// A graceful shutdown is seen as left, quickly; a restart on the same port rejoins.
	n3.shutdown()
	took = waitFor(t, 5*time.Second, "n1 and n2 see n3 left", func() bool {
		for _, n := range []*testNode{n1, n2} {
			if m, _ := memberState(n, "n3"); m.State != StateLeft {
				return false
			}
		}
		return true
	})
	t.Logf("n3 left after %v", took)
	n3.restart(newAddr)
	took = waitFor(t, 15*time.Second, "n3 alive again (same port) on every node", func() bool {
		for _, n := range nodes {
			if m, _ := memberState(n, "n3"); m.State != StateAlive || m.GossipAddr != newAddr {
				return false
			}
		}
		return true
	})
	t.Logf("n3 (same port) alive everywhere %v after restart", took)
}

func TestLabelsKeepClustersApart(t *testing.T) {
	t.Parallel()
	label := func(l string) func(int, *Config) {
		return func(_ int, c *Config) { c.Label = l + "-" + t.Name(); c.RejoinInterval = 100 * time.Millisecond }
	}
	a := startCluster(t, 2, label("a"))
	// Cluster b uses the same node ids, and its n2 is also pointed at cluster a's n1.
	var b []*testNode
	b = append(b, newTestNode(t, "n1", func(c *Config) { label("b")(1, c) }))
	b = append(b, newTestNode(t, "n2", func(c *Config) {
		label("b")(2, c)
		c.Peers = []string{b[0].e().LocalAddr(), a[0].e().LocalAddr()}
	}))
	waitAllAlive(t, b, 10*time.Second)
	waitFor(t, 10*time.Second, "b's n2 has tried cluster a's n1 several times", func() bool { return b[1].e().Stats().JoinFailures >= 3 })
	for name, cluster := range map[string][]*testNode{"a": a, "b": b} {
		for _, n := range cluster {
			var got []string
			for _, m := range n.e().Members() {
				got = append(got, m.ID+"@"+m.GossipAddr)
			}
			want := []string{"n1@" + cluster[0].e().LocalAddr(), "n2@" + cluster[1].e().LocalAddr()}
			if !slices.Equal(got, want) {
				t.Errorf("cluster %s, %s sees %v, want %v", name, n.id, got, want)
			}
		}
	}
}

// TestRejoinsForgottenMembers: after memberlist stops gossiping to a dead member (as after a long
// partition), the engine still re-joins its last address, so a member that comes back without
// knowing anyone is found again.
func TestRejoinsForgottenMembers(t *testing.T) {
	t.Parallel()
	nodes := startCluster(t, 2, func(i int, c *Config) {
		c.GossipToTheDeadTime = 300 * time.Millisecond
		c.RejoinInterval = 200 * time.Millisecond
	})
	n1, n2 := nodes[0], nodes[1]
	addr := n2.e().LocalAddr()
	n2.crash()
	waitFor(t, 15*time.Second, "n1 sees n2 dead", func() bool { m, _ := memberState(n1, "n2"); return m.State == StateDead })
	failures := n1.e().Stats().JoinFailures
	waitFor(t, 5*time.Second, "n1 keeps trying n2's last address", func() bool { return n1.e().Stats().JoinFailures >= failures+3 })
	if m, _ := memberState(n1, "n2"); m.State != StateDead {
		t.Fatalf("n1 reports n2 as %s after memberlist forgot it, want dead", m.State)
	}

	n2.cfg.Peers = nil // n2 comes back knowing no one: only n1's rejoin can find it
	n2.restart(addr)
	took := waitFor(t, 10*time.Second, "n1 and n2 see each other alive", func() bool {
		a, _ := memberState(n1, "n2")
		b, _ := memberState(n2, "n1")
		return a.State == StateAlive && b.State == StateAlive
	})
	t.Logf("found again %v after the restart", took)
}

func TestBroadcastQueueIsBounded(t *testing.T) {
	t.Parallel()
	n := newTestNode(t, "n1", func(c *Config) { c.MaxQueuedBroadcasts = 10 })
	now := time.Now().UnixNano()
	var ws []replication.Write
	for i := range 50 {
		ws = append(ws, put(fmt.Sprintf("k%d", i), "v", stamp(now+int64(i), "n1")))
	}
	n.e().Broadcast(ws)
	// A newer write of a queued key replaces it rather than adding to the queue.
	n.e().Broadcast([]replication.Write{put("k49", "v2", stamp(now+100, "n1"))})
	// The pusher queues and prunes in one round: wait for it to end.
	waitFor(t, 5*time.Second, "at most 10 queued of 51, the rest counted dropped", func() bool {
		s := n.e().Stats()
		return s.BroadcastsQueued == 51 && s.QueueDepth <= 10 && s.BroadcastsDropped >= 40
	})
}

// Members the node knows of from elsewhere (Config.Known) are listed dead from the engine's
// start until memberlist reports them: after a restart memberlist never reports a member that
// is gone for good, and the node must still see it gone. One that is up turns alive.
func TestKnownMembersAreDeadUntilHeardFrom(t *testing.T) {
	t.Parallel()
	n1 := newTestNode(t, "n1", nil)
	before := time.Now()
	n2 := newTestNode(t, "n2", func(c *Config) {
		c.Peers = []string{n1.e().LocalAddr()}
		c.Known = map[string]string{"n1": n1.e().LocalAddr(), "ghost": "127.0.0.1:1", "n2": "ignored"}
	})
	waitAllAlive(t, []*testNode{n1, n2}, 10*time.Second)
	ghost, ok := memberState(n2, "ghost")
	if !ok || ghost.State != StateDead || ghost.Since.Before(before) || ghost.GossipAddr != "127.0.0.1:1" {
		t.Errorf("the known member that never answers: %+v (listed %v), want dead since the start at 127.0.0.1:1", ghost, ok)
	}
	if self, _ := memberState(n2, "n2"); self.State != StateAlive || self.GossipAddr != n2.e().LocalAddr() {
		t.Errorf("n2 sees itself as %+v", self)
	}
	if !n2.e().Forget("ghost") {
		t.Error("a known member that never answered cannot be forgotten")
	}
}

// A write handed to Broadcast while the pusher is in a round is gossiped in a later round, also
// after a round that took a burst too large for the pusher to keep its buffer. The pusher used to
// keep, after such a round, the buffer it had just handed back to Broadcast as its spare, so from
// then on Broadcast appended into the very array the pusher was reading and cleared at the end of
// its round: a write handed over mid-round was overwritten by nothing, never gossiped, and left
// to anti-entropy.
func TestBroadcastDuringRoundAfterBurst(t *testing.T) {
	t.Parallel()
	var n1 *testNode
	var armed atomic.Bool
	now := time.Now().UnixNano()
	during := put("during", "handed over mid-round", stamp(now+1_000_000, "n1"))
	nodes := startCluster(t, 2, func(i int, c *Config) {
		noAntiEntropy(i, c)
		if i == 1 {
			c.eagerPushLost = func(string) bool {
				if armed.CompareAndSwap(true, false) {
					writeLocal(t, n1, during) // the pusher is mid-round: in pushEager
				}
				return false
			}
		}
	})
	n1, n2 := nodes[0], nodes[1]

	first := put("first", "x", stamp(now, "n1"))
	writeLocal(t, n1, first) // a small round: its buffer becomes the pusher's spare
	waitFor(t, 5*time.Second, "n2 receives the first write", func() bool { return n2.store.has(first.Key, first.Value.Version) })

	burst := make([]replication.Write, 2*maxKeptBuffer/64)
	for i := range burst {
		burst[i] = put(fmt.Sprintf("burst/%04d", i), "b", stamp(now+int64(i+2), "n3"))
	}
	queued := n1.e().stats.queued.Load()
	n1.e().Broadcast(burst) // one round, too large a buffer to keep
	waitFor(t, 5*time.Second, "n1 queues the burst", func() bool {
		return n1.e().stats.queued.Load() >= queued+uint64(len(burst))
	})

	armed.Store(true)
	next := put("next", "y", stamp(now+500_000, "n1"))
	writeLocal(t, n1, next)
	waitFor(t, 5*time.Second, "n2 receives the next write", func() bool { return n2.store.has(next.Key, next.Value.Version) })
	waitFor(t, 5*time.Second, "n2 receives the write handed over mid-round", func() bool {
		return n2.store.has(during.Key, during.Value.Version)
	})
}

// Answering a digest page reads the answering node's own digest of that page's key range only.
// It used to read its whole tentative layer for every page, so a round over N keys in pages of
// P cost the peer N²/P entries read: with a million tentative keys (a long leader outage under
// write load) about 60 reads of the million per round, every second, from every peer.
func TestAntiEntropyPageReadsItsRangeOnly(t *testing.T) {
	t.Parallel()
	const keys, pageEntries = 2000, 100
	nodes := startCluster(t, 2, func(_ int, c *Config) {
		c.AntiEntropyInterval = time.Hour
		c.DropGossipFrom = func(string) bool { return true }
		c.digestPageEntries = pageEntries
	})
	n1, n2 := nodes[0], nodes[1]
	now := time.Now().UnixNano()
	ws := make([]replication.Write, keys)
	for i := range ws {
		ws[i] = put(fmt.Sprintf("k%05d", i), "v", stamp(now+int64(i), "n1"))
	}
	n1.store.MergeTentative(ws)
	n2.store.MergeTentative(ws)
	before := n2.store.digestRead.Load()
	if err := n1.e().reconcile(context.Background(), n2.cfg.HTTPAddr); err != nil {
		t.Fatal(err)
	}
	pages := n2.e().Stats().AntiEntropyServed
	if read := n2.store.digestRead.Load() - before; read > 2*keys {
		t.Errorf("n2 read %d digest entries to answer %d pages over its %d keys: want each page's range only (at most %d in all)", read, pages, keys, 2*keys)
	}
	if pages < keys/pageEntries {
		t.Errorf("n2 answered %d pages, want at least %d", pages, keys/pageEntries)
	}
}
