package node

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/dialkv/dialkv/client"
	"github.com/dialkv/dialkv/consistency"
	"github.com/dialkv/dialkv/replication"
	"github.com/dialkv/dialkv/replication/store"
)

// stopNode stops node i of the cluster and returns its config, to start it again with
// startNodeAt (on its data directory, or on one the test changed meanwhile).
func (tc *testCluster) stopNode(i int) Config {
	tc.t.Helper()
	cfg := tc.nodes[i].cfg
	tc.cancel[i]()
	if err := <-tc.done[i]; err != nil {
		tc.t.Fatalf("stopping %s: %v", cfg.ID, err)
	}
	tc.cancel[i], tc.done[i] = func() {}, closedDone()
	return cfg
}

// startNodeAt starts a node from cfg in place i, that stopNode emptied.
func (tc *testCluster) startNodeAt(i int, cfg Config) *Node {
	tc.t.Helper()
	n, cancel, done := startNode(tc.t, cfg)
	tc.nodes[i], tc.cancel[i], tc.done[i] = n, cancel, done
	return n
}

// awaitEventualPut writes key eventually on n, again while n answers 503 unavailable (as the Go
// client would try another node), until n takes it, and returns the version n stamped. A node
// that refuses eventual writes must not say it is ready.
func awaitEventualPut(t *testing.T, n *Node, key, value string, timeout time.Duration) consistency.Version {
	t.Helper()
	var w reply
	waitUntil(t, n.cfg.ID+" to acknowledge an eventual write", timeout, func() bool {
		ready := do(t, "GET", n, "/v1/health/ready", "")
		w = do(t, "PUT", n, "/v1/kv/"+key+"?consistency=eventual", value)
		if w.status == 200 {
			return true
		}
		if w.status != 503 || errCode(t, w) != client.CodeUnavailable {
			t.Fatalf("eventual put on %s: %d %s, want 200 or 503 unavailable", n.cfg.ID, w.status, w.body)
		}
		if ready.status == 200 {
			t.Fatalf("%s said it was ready, then refused an eventual write: %s", n.cfg.ID, w.body)
		}
		return false
	})
	v, err := consistency.ParseVersion(w.header.Get(client.HeaderVersion))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// awaitCommitted waits until a strong read of key on n answers value: an acknowledged write
// that never gets there is lost (DESIGN.md, guarantee 3).
func awaitCommitted(t *testing.T, n *Node, key, value string) {
	t.Helper()
	waitUntil(t, "the acknowledged eventual write of "+key+" to be committed (an acknowledged write is never lost)", 30*time.Second, func() bool {
		r := do(t, "GET", n, "/v1/kv/"+key+"?consistency=strong", "")
		return r.status == 200 && r.body == value
	})
}

// A member whose data is lost comes back under its id and replays the log from its start. An
// entry early in that log registers the id (its first registration), long before the purges that
// took the horizon where it is now. The node must not stop joining on that old entry: only once
// it has applied a read index taken after its new registration has its clock seen every horizon
// committed before (catchUpWithRegistration). A write it stamped earlier could fall below the
// horizon, and every peer and the log would refuse it once acknowledged.
//
// Here the horizon runs ahead of real time, and the member comes back holding the log up to its
// first registration only, cut off from the rest: it registers (its join request reaches the
// leader) but can apply nothing more. While cut off it must keep refusing eventual writes; once
// the cut heals, the write it takes must be stamped above the horizon and committed.
func TestRejoiningMemberTakesNoWriteBeforeItAppliedTheLogPastItsRegistration(t *testing.T) {
	tc := startCluster(t, 3, func(i int, c *Config) {
		c.TestFaults = true
		c.PurgeInterval = 100 * time.Millisecond
	})
	leader, _ := tc.leaderAndFollower()
	i := slices.IndexFunc(tc.nodes, func(n *Node) bool { return n != leader })
	id := tc.nodes[i].cfg.ID
	waitUntil(t, id+" to apply every member's registration", 20*time.Second, func() bool {
		return len(tc.nodes[i].memberTable()) == 3
	})
	// The committed layer is a function of the log, so the member's files from now are what it
	// would hold after losing its data, coming back and replaying the log up to here: keep them.
	cfg := tc.stopNode(i)
	early := filepath.Join(t.TempDir(), "early")
	if err := os.CopyFS(early, os.DirFS(cfg.DataDir)); err != nil {
		t.Fatal(err)
	}
	tc.startNodeAt(i, cfg)
	tc.waitReady()
	horizon := pushHorizonAhead(t, tc, "10s", 5*time.Second)

	// Its data is lost. It came back, replayed the log as far as early, and stopped: its
	// start from an empty directory left the joining marker, and it has no local state (tentative
	// layer, clock floor) of its own.
	tc.stopNode(i)
	if err := os.RemoveAll(cfg.DataDir); err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(cfg.DataDir, os.DirFS(early)); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(store.TentativePath(cfg.statePath())); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfg.DataDir, joiningMarker), joiningNote, 0o600); err != nil {
		t.Fatal(err)
	}
	// The others send it no Raft log, but its requests (its join) reach them.
	var others []*Node
	for _, n := range tc.nodes {
		if n.cfg.ID != id {
			others = append(others, n)
			if r := do(t, "PUT", n, "/v1/test/faults", `{"drop_out":["`+id+`"]}`); r.status != 200 {
				t.Fatalf("faults on %s: %d %s", n.cfg.ID, r.status, r.body)
			}
		}
	}
	leader, _ = tc.leaderAndFollower()
	cfg.Raft.Bootstrap = nil
	cfg.Join = leader.HTTPAddr()
	back := tc.startNodeAt(i, cfg)
	waitUntil(t, id+"'s new registration to be committed", 20*time.Second, func() bool {
		return leader.memberTable()[id] == back.self()
	})

	// Registered, and its committed layer shows it a member (the old entry): without the read
	// index it would take writes a moment from now. Cut off, it must refuse them for as long as
	// an attempt to catch up may take, and stay not ready.
	acked := false
	var v consistency.Version
	for deadline := time.Now().Add(cfg.LeaderWait); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		w := do(t, "PUT", back, "/v1/kv/k?consistency=eventual", "x")
		if w.status == 200 {
			acked = true
			var err error
			if v, err = consistency.ParseVersion(w.header.Get(client.HeaderVersion)); err != nil {
				t.Fatal(err)
			}
			t.Errorf("%s took an eventual write (at %v) while cut off from the log, holding it only up to its first registration: it stopped joining before it caught up", id, v)
			break
		}
		if w.status != 503 || errCode(t, w) != client.CodeUnavailable {
			t.Fatalf("eventual put on %s while cut off: %d %s, want 503 unavailable", id, w.status, w.body)
		}
		if r := do(t, "GET", back, "/v1/health/ready", ""); r.status == 200 {
			t.Fatalf("%s said it was ready while still joining", id)
		}
		// Nor does it answer eventual reads from what it has caught up with so far.
		if r := do(t, "GET", back, "/v1/kv/before?consistency=eventual", ""); r.status != 503 || errCode(t, r) != client.CodeUnavailable {
			t.Fatalf("eventual read on %s while joining: %d %s, want 503 unavailable", id, r.status, r.body)
		}
	}
	for _, n := range others {
		if r := do(t, "DELETE", n, "/v1/test/faults", ""); r.status != 200 {
			t.Fatalf("heal %s: %d %s", n.cfg.ID, r.status, r.body)
		}
	}
	if !acked {
		v = awaitEventualPut(t, back, "k", "x", 30*time.Second)
	}
	if !v.Newer(horizon) {
		t.Errorf("%s acknowledged a write at %v, below the purge horizon %v: every peer and the log refuse it", id, v, horizon)
	}
	awaitCommitted(t, leader, "k", "x")
}

// A member whose data is lost comes back under its id while a watermark report of its earlier
// life still stands: it promised then never to stamp below it, and purging trusts the promise
// until the member reports again. Its clock starts from the wall clock, which may be behind the
// report (the earlier clock ran ahead), and a node that catches up through a snapshot never
// applies the report: so on joining it adopts the report as its clock floor, in memory and
// durably (catchUpWithRegistration). A write stamped below it could be passed by the purge
// horizon before it is committed, and then every peer and the log refuse it.
//
// Only n1 reports here until late in the test (the others' committers are off), so the horizon
// stays where it was while n1 reports from 20 s ahead, and no entry after n1's last report
// carries a version as new: were the others reporting, their clocks would have seen n1's reports
// and the horizon would follow them up, and a rejoining n1 would see its old report through the
// horizon. n1's data is lost, no tombstone waits any more (so nothing makes n1 report once
// back), the log is compacted behind a snapshot, and n1 comes back with a correct clock. Its
// writes must be stamped above its old report: the first once it joined, and the next after a
// restart, taken while it is cut off from the others. Then the others report (restarted with
// their committers on, their clocks start from their wall clocks), a tombstone makes purging
// raise the horizon to the lowest report, and the write taken while cut off must survive that
// and be committed once n1 is back.
func TestRejoiningMemberStampsAboveTheWatermarkItReportedBefore(t *testing.T) {
	tc := startCluster(t, 3, func(i int, c *Config) {
		c.TestFaults = true
		c.PurgeInterval = 100 * time.Millisecond
		c.Raft.TrailingLogs = 0 // a snapshot takes the log it covers with it
		c.disableCommitter = i != 0
	})
	id := tc.nodes[0].cfg.ID
	waitUntil(t, "every member to register everywhere", 20*time.Second, func() bool {
		for _, n := range tc.nodes {
			if len(n.memberTable()) != 3 {
				return false
			}
		}
		return true
	})
	// A tombstone waiting for purging makes n1 report (the others cannot: it waits for them).
	for _, method := range []string{"PUT", "DELETE"} {
		if r := do(t, method, tc.nodes[1], "/v1/kv/gone", "v"); r.status != 200 {
			t.Fatalf("%s gone: %d %s", method, r.status, r.body)
		}
	}
	if r := do(t, "PUT", tc.nodes[0], "/v1/test/faults", `{"clock_offset":"20s"}`); r.status != 200 {
		t.Fatalf("faults: %d %s", r.status, r.body)
	}
	waitUntil(t, id+"'s watermark report from 20 s ahead to be committed", 15*time.Second, func() bool {
		_, reports, err := tc.nodes[0].store.PurgeStatus()
		return err == nil && time.Unix(0, reports[id].Wall).After(time.Now().Add(15*time.Second))
	})

	cfg := tc.stopNode(0)
	if err := os.RemoveAll(cfg.DataDir); err != nil {
		t.Fatal(err)
	}
	others := tc.nodes[1:] // shares tc.nodes' array: a node restarted in place is seen here
	leaderOf := func() *Node {
		for _, n := range others {
			if n.raft.LeaderReady() {
				return n
			}
		}
		return nil
	}
	waitUntil(t, "n2 or n3 to lead", 20*time.Second, func() bool { return leaderOf() != nil })
	if r := do(t, "PUT", others[0], "/v1/kv/gone", "back"); r.status != 200 {
		t.Fatalf("put gone: %d %s", r.status, r.body)
	}
	for _, n := range others {
		if err := n.raft.Snapshot(); err != nil {
			t.Fatalf("snapshot on %s: %v", n.cfg.ID, err)
		}
	}
	leader := leaderOf()
	_, reports, err := leader.store.PurgeStatus()
	if err != nil {
		t.Fatal(err)
	}
	reported := reports[id]
	if h, _ := leader.store.PurgeHorizon(); !reported.Newer(h) || time.Unix(0, reported.Wall).Before(time.Now().Add(10*time.Second)) {
		t.Fatalf("the test needs %s's standing report %v well ahead of real time and of the horizon %v", id, reported, h)
	}
	if pending, err := leader.store.TombstonesPending(); err != nil || pending {
		t.Fatalf("a tombstone still waits (%v): the test needs none while %s comes back", err, id)
	}

	cfg.Raft.Bootstrap = nil
	cfg.Join = leader.HTTPAddr()
	cfg.HTTPAddr = ""
	cfg.Gossip.Peers = nil
	for _, n := range others {
		cfg.Gossip.Peers = append(cfg.Gossip.Peers, n.gossipAddr())
	}
	back := tc.startNodeAt(0, cfg) // no clock offset now: its clock is behind the report
	waitUntil(t, id+" to catch up and join again", 30*time.Second, func() bool { return back.joined.Load() })
	if back.raft.SnapshotRestores() == 0 {
		t.Fatalf("%s caught up by replaying the log, and its clock saw its old report there: the test needs it to catch up through a snapshot", id)
	}
	// Its committer reports no watermark with the writes it takes from its index, and records
	// no clock floor then: only a write found by a scan (the first one after a start) goes with
	// a report, and the committer records a floor above the report itself, which would hide the
	// one joining recorded.
	waitUntil(t, id+"'s committer to have scanned its tentative layer once", 10*time.Second, func() bool {
		_, complete, _ := back.pending.sample(0)
		return complete
	})
	if v := awaitEventualPut(t, back, "first", "x", 10*time.Second); !v.Newer(reported) {
		t.Errorf("%s, back with its data lost, stamped %v, below the watermark %v it had reported: purging trusts that report", id, v, reported)
	}
	awaitCommitted(t, others[0], "first", "x")
	waitUntil(t, id+" to hold no uncommitted write when it restarts", 10*time.Second, func() bool {
		sum, err := back.store.SummarizeTentative()
		return err == nil && sum.Count == 0
	})
	back = tc.startNodeAt(0, tc.stopNode(0))
	partition(t, tc, back)
	v := awaitEventualPut(t, back, "k", "x", 10*time.Second)
	if !v.Newer(reported) {
		t.Errorf("%s, back with its data lost and then restarted, stamped %v, below the watermark %v it had reported: purging trusts that report", id, v, reported)
	}
	for i := 1; i < len(tc.nodes); i++ {
		cfg := tc.stopNode(i)
		cfg.disableCommitter = false
		tc.startNodeAt(i, cfg)
		waitUntil(t, "n2 or n3 to lead", 20*time.Second, func() bool { return leaderOf() != nil })
	}
	// A tombstone below the report, so that purging it takes the horizon up to the report while
	// k waits on the cut-off node: k must be above it. Every clock has observed the report (and
	// keeps it across restarts), so a delete through the API now would be stamped above it; the
	// tombstone is committed as a peer's eventual delete stamped at real time instead.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tombstone := replication.Write{Key: "gone-too", Value: consistency.Value{Tombstone: true, Version: consistency.Version{Wall: time.Now().UnixNano(), Node: others[0].cfg.ID}}}
	if !reported.Newer(tombstone.Value.Version) {
		t.Fatalf("the test needs the tombstone %v below the report %v", tombstone.Value.Version, reported)
	}
	waitUntil(t, "the tombstone below the report to be committed", 20*time.Second, func() bool {
		leader := leaderOf()
		if leader == nil {
			return false
		}
		_, err := leader.raft.Propose(ctx, &replication.Command{Type: replication.CmdEventualBatch, Writes: []replication.Write{tombstone}})
		return err == nil
	})
	waitUntil(t, "the tombstone to be purged once every member reported", 20*time.Second, func() bool {
		for _, n := range others {
			if _, ok, err := n.store.Get("gone-too"); err != nil || ok {
				return false
			}
		}
		return true
	})
	if r := do(t, "DELETE", back, "/v1/test/faults", ""); r.status != 200 {
		t.Fatalf("heal: %d %s", r.status, r.body)
	}
	awaitCommitted(t, others[0], "k", "x")
}
