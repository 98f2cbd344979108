package node

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/dialkv/dialkv/client"
	"github.com/dialkv/dialkv/consistency"
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
