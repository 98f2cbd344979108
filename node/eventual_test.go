package node

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dialkv/dialkv/client"
	"github.com/dialkv/dialkv/consistency"
	"github.com/dialkv/dialkv/replication"
	"github.com/dialkv/dialkv/replication/strong"
)

// waitUntil polls cond every few milliseconds until it holds or timeout passes.
func waitUntil(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestEventualWriteSpreadsFasterThanStrongCommits(t *testing.T) {
	tc := startCluster(t, 3)
	_, f := tc.leaderAndFollower()
	var others []*Node
	for _, n := range tc.nodes {
		if n != f {
			others = append(others, n)
		}
	}
	visibleEverywhere := func(key, want string) bool {
		for _, n := range others {
			if r := do(t, "GET", n, "/v1/kv/"+key+"?consistency=eventual", ""); r.body != want {
				return false
			}
		}
		return true
	}
	const rounds = 5
	var eventualTotal, strongTotal time.Duration
	for i := 0; i < rounds; i++ {
		key := "ev" + string(rune('a'+i))
		start := time.Now()
		if r := do(t, "PUT", f, "/v1/kv/"+key+"?consistency=eventual", "e"); r.status != 200 || r.header.Get(client.HeaderState) != client.StateTentative {
			t.Fatalf("eventual put: %d %s %v", r.status, r.body, r.header)
		}
		waitUntil(t, "the eventual write on every node", 5*time.Second, func() bool { return visibleEverywhere(key, "e") })
		eventualTotal += time.Since(start)

		key = "st" + string(rune('a'+i))
		start = time.Now()
		if r := do(t, "PUT", f, "/v1/kv/"+key+"?consistency=strong", "s"); r.status != 200 {
			t.Fatalf("strong put: %d %s", r.status, r.body)
		}
		waitUntil(t, "the strong write applied on every node", 5*time.Second, func() bool { return visibleEverywhere(key, "s") })
		strongTotal += time.Since(start)
	}
	t.Logf("time to visibility on all other nodes, mean of %d: eventual %v, strong %v", rounds, eventualTotal/rounds, strongTotal/rounds)

	// The eventual writes are committed by Raft afterwards: strong reads see them everywhere.
	waitUntil(t, "eventual writes committed", 10*time.Second, func() bool {
		for _, n := range tc.nodes {
			if r := do(t, "GET", n, "/v1/kv/eva?consistency=strong", ""); r.body != "e" || r.header.Get(client.HeaderState) != client.StateCommitted {
				return false
			}
		}
		return true
	})
}

func TestSessionReadsItsOwnEventualWriteOnAnotherNode(t *testing.T) {
	tc := startCluster(t, 3)
	n1, n2 := tc.nodes[0], tc.nodes[1]
	for i := 0; i < 20; i++ {
		w := do(t, "PUT", n1, "/v1/kv/mine?consistency=eventual", "v"+string(rune('a'+i)))
		token := w.header.Get(client.HeaderSession)
		r := do(t, "GET", n2, "/v1/kv/mine?consistency=session", "", client.HeaderSession, token)
		if r.status != 200 || r.body != "v"+string(rune('a'+i)) {
			t.Fatalf("round %d: session read on n2 right after an eventual write on n1: %d %q", i, r.status, r.body)
		}
	}
}

func TestConditionalEventualWriteIsRefused(t *testing.T) {
	tc := startCluster(t, 1)
	r := do(t, "PUT", tc.nodes[0], "/v1/kv/a?consistency=eventual&if_version=1.0@n1", "x")
	if r.status != 400 || errCode(t, r) != client.CodeBadRequest {
		t.Fatalf("CAS with eventual: %d %s, want 400", r.status, r.body)
	}
}

// A node takes eventual writes, gossips them, and dies before committing them; it never returns.
// Its peers commit its writes once gossip has had it dead for DeadCommitDelay.
func TestPeersCommitTheWritesOfANodeThatNeverReturns(t *testing.T) {
	tc := startCluster(t, 3, func(i int, c *Config) {
		c.DeadCommitDelay = 500 * time.Millisecond
		if i == 2 {
			c.disableCommitter = true
		}
	})
	doomed := tc.nodes[2]
	if doomed.raft.IsLeader() {
		t.Skip("the node without a committer was elected leader; the scenario needs it to be a follower")
	}
	for _, key := range []string{"orphan1", "orphan2"} {
		if r := do(t, "PUT", doomed, "/v1/kv/"+key+"?consistency=eventual", key); r.status != 200 {
			t.Fatalf("eventual put on doomed node: %d %s", r.status, r.body)
		}
	}
	survivors := tc.nodes[:2]
	waitUntil(t, "gossip to carry the writes", 5*time.Second, func() bool {
		for _, n := range survivors {
			if r := do(t, "GET", n, "/v1/kv/orphan2?consistency=eventual", ""); r.body != "orphan2" {
				return false
			}
		}
		return true
	})
	if r := do(t, "GET", survivors[0], "/v1/kv/orphan1?consistency=strong", ""); r.status != 404 {
		t.Fatalf("the write was committed while its node lived (the test needs it uncommitted): %d", r.status)
	}
	tc.cancel[2]()
	<-tc.done[2]
	tc.cancel[2], tc.done[2] = func() {}, closedDone()
	waitUntil(t, "the survivors to commit the dead node's writes", 30*time.Second, func() bool {
		for _, n := range survivors {
			for _, key := range []string{"orphan1", "orphan2"} {
				r := do(t, "GET", n, "/v1/kv/"+key+"?consistency=strong", "", "Accept", "application/json")
				var vr client.ValueResponse
				if r.status != 200 || json.Unmarshal([]byte(r.body), &vr) != nil || vr.Value != key {
					return false
				}
			}
		}
		return true
	})
}

func closedDone() chan error {
	c := make(chan error, 1)
	c <- nil
	return c
}

// Tombstones are purged once every member has reported a watermark past them, and not before:
// after purging, the key is absent everywhere and a late, older write cannot bring it back.
func TestTombstonesArePurgedOnceEveryMemberReported(t *testing.T) {
	tc := startCluster(t, 3, func(i int, c *Config) { c.PurgeInterval = 100 * time.Millisecond })
	n := tc.nodes[0]
	if r := do(t, "PUT", n, "/v1/kv/doomed", "v"); r.status != 200 {
		t.Fatalf("put: %d %s", r.status, r.body)
	}
	del := do(t, "DELETE", n, "/v1/kv/doomed?consistency=eventual", "")
	if del.status != 200 {
		t.Fatalf("eventual delete: %d %s", del.status, del.body)
	}
	waitUntil(t, "the tombstone to be committed and purged on every node", 20*time.Second, func() bool {
		for _, m := range tc.nodes {
			if _, ok, err := m.store.Get("doomed"); err != nil || ok {
				return false
			}
		}
		return true
	})
	for _, m := range tc.nodes {
		if r := do(t, "GET", m, "/v1/kv/doomed?consistency=eventual", ""); r.status != 404 {
			t.Errorf("%s: purged key answers %d %q", m.cfg.ID, r.status, r.body)
		}
	}
	horizon, err := n.store.PurgeHorizon()
	if err != nil || horizon.IsZero() {
		t.Fatalf("purge horizon = %v, %v", horizon, err)
	}
	// A write older than the horizon (e.g. one stamped by a slow clock long ago) is refused by
	// the tentative layer rather than resurrecting the key.
	stale := replication.Write{Key: "doomed", Value: consistency.Value{Version: consistency.Version{Wall: horizon.Wall - 1, Node: "n9"}, Data: []byte("zombie")}}
	if stored, err := n.store.MergeTentative([]replication.Write{stale}); err != nil || len(stored) != 0 {
		t.Fatalf("a write below the purge horizon was stored: %v %v", stored, err)
	}
}

// The committer reads indexed writes back from the tentative layer, the truth: what the layer
// holds as this node's is submitted (its newest version), and a key whose write was committed
// or superseded by another node's newer write is forgotten.
func TestCommitterChecksItsIndexAgainstTheTentativeLayer(t *testing.T) {
	tc := startCluster(t, 1, func(_ int, c *Config) { c.disableCommitter = true })
	n := tc.nodes[0]
	v := func(wall int64, node string) consistency.Version { return consistency.Version{Wall: wall, Node: node} }
	w := func(key string, ver consistency.Version) replication.Write {
		return replication.Write{Key: key, Value: consistency.Value{Version: ver, Data: []byte(key)}}
	}
	base := time.Now().UnixNano()
	if _, err := n.store.MergeTentative([]replication.Write{
		w("held", v(base, "n1")),
		w("newer-here", v(base+2, "n1")),
		w("taken-over", v(base+2, "n2")),
	}); err != nil {
		t.Fatal(err)
	}
	ids := []writeID{
		{key: "held", version: v(base, "n1")},
		{key: "newer-here", version: v(base+1, "n1")},
		{key: "taken-over", version: v(base+1, "n1")},
		{key: "gone", version: v(base+1, "n1")},
	}
	n.pending.add([]replication.Write{w("held", ids[0].version), w("newer-here", ids[1].version), w("taken-over", ids[2].version), w("gone", ids[3].version)})
	ws, full, err := n.ownPending(ids, &batchBudget{limit: maxCommitBytes})
	if err != nil || full {
		t.Fatalf("ownPending: full %v, err %v", full, err)
	}
	got := map[string]consistency.Version{}
	for _, w := range ws {
		got[w.Key] = w.Value.Version
	}
	want := map[string]consistency.Version{"held": v(base, "n1"), "newer-here": v(base+2, "n1")}
	if len(got) != len(want) || got["held"] != want["held"] || got["newer-here"] != want["newer-here"] {
		t.Errorf("submitted %v, want %v", got, want)
	}
	left, _, _ := n.pending.sample(10)
	if len(left) != 2 {
		t.Errorf("index after the check: %v, want held and newer-here only", left)
	}
}

// A node restarted with eventual writes it acknowledged but never committed finds them in its
// tentative layer (its in-memory index is gone) and commits them.
func TestRestartedNodeCommitsItsPendingWrites(t *testing.T) {
	tc := startCluster(t, 1, func(_ int, c *Config) { c.disableCommitter = true })
	n := tc.nodes[0]
	keys := []string{"p1", "p2", "p3", "p4", "p5"}
	for _, key := range keys {
		if r := do(t, "PUT", n, "/v1/kv/"+key+"?consistency=eventual", key); r.status != 200 {
			t.Fatalf("eventual put: %d %s", r.status, r.body)
		}
	}
	if r := do(t, "GET", n, "/v1/kv/p1?consistency=strong", ""); r.status != 404 {
		t.Fatalf("the write was committed without a committer (the test needs it pending): %d", r.status)
	}
	cfg := n.cfg
	tc.cancel[0]()
	if err := <-tc.done[0]; err != nil {
		t.Fatal(err)
	}
	cfg.disableCommitter = false
	restarted, cancel, done := startNode(t, cfg)
	tc.nodes[0], tc.cancel[0], tc.done[0] = restarted, cancel, done
	tc.waitReady()
	waitUntil(t, "the restarted node to commit its pending writes", 15*time.Second, func() bool {
		for _, key := range keys {
			if r := do(t, "GET", restarted, "/v1/kv/"+key+"?consistency=strong", ""); r.status != 200 || r.body != key {
				return false
			}
		}
		return true
	})
	waitUntil(t, "the pending index to be seeded and drained", 5*time.Second, func() bool {
		_, complete, _ := restarted.pending.sample(1)
		return complete && restarted.pending.size() == 0
	})
}

// A watermark report promises that the node will never stamp below it, and purging trusts it.
// A node whose clock ran ahead when it reported, and that restarts with its wall clock behind
// that report (here: the skew is gone), must keep the promise: its clock starts above the
// floor it recorded before reporting. Before, it restarted from the wall clock and the purge
// horizon it had applied, and a write it then acknowledged could be stamped below a horizon
// purged meanwhile, and dropped at commit.
func TestRestartedNodeStampsAboveItsReportedWatermark(t *testing.T) {
	tc := startCluster(t, 3, func(i int, c *Config) { c.TestFaults = true })
	_, ahead := tc.leaderAndFollower()
	i := slices.Index(tc.nodes, ahead)
	if r := do(t, "PUT", ahead, "/v1/test/faults", `{"clock_offset":"5s"}`); r.status != 200 {
		t.Fatalf("faults: %d %s", r.status, r.body)
	}
	// A tombstone waiting for purging makes every member report.
	if r := do(t, "PUT", ahead, "/v1/kv/gone", "v"); r.status != 200 {
		t.Fatalf("put: %d %s", r.status, r.body)
	}
	if r := do(t, "DELETE", ahead, "/v1/kv/gone", ""); r.status != 200 {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	var reported consistency.Version
	waitUntil(t, ahead.cfg.ID+"'s watermark report from 5 s ahead to be committed", 15*time.Second, func() bool {
		_, reports, err := ahead.store.PurgeStatus()
		reported = reports[ahead.cfg.ID]
		return err == nil && time.Unix(0, reported.Wall).After(time.Now().Add(3*time.Second))
	})
	cfg := ahead.cfg
	tc.cancel[i]()
	if err := <-tc.done[i]; err != nil {
		t.Fatal(err)
	}
	restarted, cancel, done := startNode(t, cfg) // no fault hook offset now: its clock is behind the report
	tc.nodes[i], tc.cancel[i], tc.done[i] = restarted, cancel, done
	w := do(t, "PUT", restarted, "/v1/kv/after?consistency=eventual", "x")
	if w.status != 200 {
		t.Fatalf("eventual put after the restart: %d %s", w.status, w.body)
	}
	v, err := consistency.ParseVersion(w.header.Get(client.HeaderVersion))
	if err != nil {
		t.Fatal(err)
	}
	if !v.Newer(reported) {
		t.Errorf("after the restart %s stamped %v, below the watermark %v it had reported", cfg.ID, v, reported)
	}
}

// Eventual writes stay available on a member restarted on its data with no leader to be had (in
// a minority, say): the horizon it applied and its clock floor keep its stamps above every purge
// it may have missed. A node stopped while still joining, before it caught up with its own
// registration, is refused them whatever its committed layer shows (it may hold an earlier
// registration of its id, replayed from the log), until it has caught up.
func TestRestartedNodeTakesEventualWritesWithoutALeaderOnlyOnceItJoined(t *testing.T) {
	tc := startCluster(t, 3)
	cfg := tc.nodes[0].cfg
	tc.stop()
	putAlone := func() reply {
		t.Helper()
		cfg.HTTPAddr = ""
		n, cancel, done := startNode(t, cfg)
		defer func() {
			cancel()
			<-done
		}()
		return do(t, "PUT", n, "/v1/kv/alone?consistency=eventual", "x")
	}
	if r := putAlone(); r.status != 200 {
		t.Fatalf("eventual put on a member restarted alone: %d %s, want 200", r.status, r.body)
	}
	// What a stop before it caught up with its registration leaves in its data directory.
	if err := os.WriteFile(filepath.Join(cfg.DataDir, joiningMarker), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if r := putAlone(); r.status != 503 || errCode(t, r) != client.CodeUnavailable {
		t.Errorf("eventual put on a node restarted alone while still joining: %d %s, want 503 unavailable", r.status, r.body)
	}
}

// An idle cluster appends nothing to its Raft log: watermark reports matter only while a
// tombstone waits for purging (that purging still happens is
// TestTombstonesArePurgedOnceEveryMemberReported). Before, every member reported once a second,
// each report a log entry fsynced on every node.
func TestIdleClusterAppendsNothing(t *testing.T) {
	tc := startCluster(t, 3)
	n := tc.nodes[0]
	if r := do(t, "PUT", n, "/v1/kv/k?consistency=eventual", "v"); r.status != 200 {
		t.Fatalf("eventual put: %d %s", r.status, r.body)
	}
	waitUntil(t, "every member registered and the eventual write committed everywhere", 20*time.Second, func() bool {
		for _, m := range tc.nodes {
			if len(m.memberTable()) != len(tc.nodes) {
				return false
			}
			if _, state, ok, err := m.newest("k"); err != nil || !ok || state != client.StateCommitted {
				return false
			}
		}
		return true
	})
	applied := func() (highest uint64) {
		for _, m := range tc.nodes {
			highest = max(highest, m.store.AppliedIndex())
		}
		return highest
	}
	// Let what was in flight (the commit of the write, a last report) land: the index must then
	// stay put for three report intervals.
	before, quietSince := applied(), time.Now()
	for deadline := time.Now().Add(10 * reportInterval); time.Since(quietSince) < 3*reportInterval; {
		if time.Now().After(deadline) {
			t.Fatalf("the idle cluster kept appending: applied index %d, never quiet for %v", applied(), 3*reportInterval)
		}
		time.Sleep(50 * time.Millisecond) // sampling an index over time, not waiting for an event
		if now := applied(); now != before {
			before, quietSince = now, time.Now()
		}
	}
}

// A node with no Raft state marks itself joining before Raft opens: Raft may write state as it
// opens (a new cluster's configuration, the term of a leader that still counts this id as a
// voter), and a crash between that and the marker left a node that, restarted, took eventual
// writes at once with a clock that had not seen the purge horizon. Here Raft cannot open (its
// address is taken), which stands for the crash right after it did: the marker must be there.
func TestEmptyNodeMarksItselfJoiningBeforeRaftOpens(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	cfg := DefaultConfig()
	cfg.ID = "n1"
	cfg.DataDir = filepath.Join(t.TempDir(), "n1")
	cfg.HTTPAddr = freeAddr(t)
	cfg.Raft.RaftAddr = taken.Addr().String()
	cfg.Raft.Bootstrap = []strong.Peer{{ID: "n1", Addr: cfg.Raft.RaftAddr}}
	cfg.Gossip.BindAddr = "127.0.0.1:0"
	n, err := New(cfg)
	if err == nil {
		n.Close()
		t.Fatal("New opened Raft on an address another listener holds")
	} else if !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("New failed before Raft opened: %v", err)
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, joiningMarker)); err != nil {
		t.Errorf("no joining marker after a start that failed as Raft opened: %v", err)
	}
}

// A node's newest version of a key never goes back: a read that finds a tentative version finds
// it, or the committed version that superseded it. A commit drops a key's tentative entry only
// once the committed layer holds the new version, so newest must read the tentative layer
// first; read in the other order, a commit landing between the two reads (the committed read
// too early for it, the tentative one too late) answered the older committed value, below what
// the node held, and a session read served it after checking the session's newer version.
func TestNewestNeverAnswersBelowWhatTheNodeHeld(t *testing.T) {
	var fireOn atomic.Int32 // the call of newest (for k) whose layer reads the commit lands between; 0: none
	var n *Node
	fail := make(chan string, 1)
	tc := startCluster(t, 1, func(_ int, c *Config) {
		c.CommitInterval = time.Hour // the committer runs only when the hook wakes it
		c.betweenLayers = func(key string) {
			if key != "k" || fireOn.Load() == 0 || fireOn.Add(-1) != 0 {
				return
			}
			n.commitWake <- struct{}{}
			deadline := time.Now().Add(10 * time.Second)
			for {
				if _, ok, err := n.store.Tentative(key); err == nil && !ok {
					return
				}
				if time.Now().After(deadline) {
					fail <- "the committer did not commit k within 10s"
					return
				}
				time.Sleep(time.Millisecond)
			}
		}
	})
	n = tc.nodes[0]
	if r := do(t, "PUT", n, "/v1/kv/k?consistency=strong", "old"); r.status != 200 {
		t.Fatalf("strong put: %d %s", r.status, r.body)
	}
	put := func(value string) (consistency.Version, string) {
		t.Helper()
		w := do(t, "PUT", n, "/v1/kv/k?consistency=eventual", value)
		if w.status != 200 {
			t.Fatalf("eventual put: %d %s", w.status, w.body)
		}
		v, err := consistency.ParseVersion(w.header.Get(client.HeaderVersion))
		if err != nil {
			t.Fatal(err)
		}
		return v, w.header.Get(client.HeaderSession)
	}
	checkHook := func() {
		t.Helper()
		select {
		case msg := <-fail:
			t.Fatal(msg)
		default:
		}
		if fireOn.Load() != 0 {
			t.Fatal("the hook never fired")
		}
	}

	held, _ := put("new")
	fireOn.Store(1)
	v, state, ok, err := n.newest("k")
	checkHook()
	if err != nil || !ok || held.Newer(v.Version) || string(v.Data) != "new" {
		t.Errorf("newest, with the write committed between its reads: %q %v (%s, %v, %v); the node held %v before the call", v.Data, v.Version, state, ok, err, held)
	}

	// The same through a session read: prepareRead finds the session's version (the first
	// call), then the read itself (the second) must not answer below it.
	held, token := put("newer")
	fireOn.Store(2)
	r := do(t, "GET", n, "/v1/kv/k?consistency=session", "", client.HeaderSession, token)
	checkHook()
	if got, _ := consistency.ParseVersion(r.header.Get(client.HeaderVersion)); r.status != 200 || r.body != "newer" || held.Newer(got) {
		t.Errorf("session read after the session wrote %v: %d %q (version %v)", held, r.status, r.body, got)
	}
}

// The committer's batches are bounded in bytes as well as in writes, whether it scans the
// tentative layer (after a start, its index of pending writes is not complete) or takes its own
// writes from the index, so that each reaches the leader whole and in time
// (TestCommitterCommitsABacklogOfLargeValues, without -race, shows a backlog that otherwise
// never commits). Batch after batch, the backlog drains.
//
// The bound is scaled down from maxCommitBytes (4 MiB) to 64 KiB, and the values with it: 12 MiB
// of writes took 30 s with -race, the slowest test of the package.
func TestCommitterBatchesAreBoundedInBytes(t *testing.T) {
	n, value, keys := startWithBacklog(t, "big")
	submitted := map[writeID]time.Time{}
	for batches := 0; n.pending.size() > 0 || batches == 0; batches++ {
		if batches > keys {
			t.Fatalf("%d batches and %d writes still pending", batches, n.pending.size())
		}
		ws, indexed, _, _, err := n.nextBatch(submitted, false)
		if err != nil {
			t.Fatal(err)
		}
		size := 0
		for _, w := range ws {
			size += len(w.Key) + len(w.Value.Data)
		}
		if len(ws) > 1 && size > backlogBytes {
			t.Fatalf("a batch of %d writes, %d bytes: over the %d-byte bound", len(ws), size, backlogBytes)
		}
		cmd := replication.Command{Type: replication.CmdEventualBatch, Reporter: n.cfg.ID, Writes: ws}
		if err := n.submitBatch(context.Background(), cmd); err != nil {
			t.Fatal(err)
		}
		done := make([]writeID, len(ws))
		for i, w := range ws {
			done[i] = writeKey(w)
			if i >= indexed {
				submitted[done[i]] = time.Now()
			}
		}
		n.pending.forget(done)
	}
	for i := range keys {
		awaitCommitted(t, n, fmt.Sprintf("big%03d", i), value)
	}
}

// backlogBytes is the committer's batch bound in the tests of batches bounded in bytes, scaled
// down from maxCommitBytes (4 MiB), and the values with it: 12 MiB of writes took 12-30 s with
// -race.
const backlogBytes = 64 << 10

// startWithBacklog starts one node whose committer is off and whose batches stop at
// backlogBytes, and has it take eventual writes of prefix000, prefix001... worth three batches.
// It returns the node, the value of every write and their number.
func startWithBacklog(t *testing.T, prefix string) (n *Node, value string, keys int) {
	t.Helper()
	tc := startCluster(t, 1, func(_ int, c *Config) {
		c.disableCommitter = true
		c.commitBytes = backlogBytes
	})
	n = tc.nodes[0]
	value = strings.Repeat("v", backlogBytes/4)
	keys = 3 * backlogBytes / len(value)
	for i := range keys {
		if r := do(t, "PUT", n, fmt.Sprintf("/v1/kv/%s%03d?consistency=eventual", prefix, i), value); r.status != 200 {
			t.Fatalf("eventual put: %d %s", r.status, r.body)
		}
	}
	return n, value, keys
}
