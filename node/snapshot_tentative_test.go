package node

import (
	"fmt"
	"testing"
	"time"
)

// A follower cut off from the leader, but not from the third node, holds tentative writes of
// its own and of that peer while the leader moves on and compacts its log past it: back, it is
// sent a snapshot. Installing it must drop exactly the tentative entries the restored state has
// caught up with, keep the others, and its own write must still be committed.
func TestSnapshotInstallKeepsTheTentativeWritesItDoesNotCover(t *testing.T) {
	tc := startCluster(t, 3, kvdRaftTimings, func(i int, c *Config) {
		c.TestFaults = true
		c.Raft.TrailingLogs = 0 // a snapshot takes the log it covers with it
	})
	leader, f := tc.leaderAndFollower()
	pi := 0
	for i, n := range tc.nodes {
		if n != leader && n != f {
			pi = i
		}
	}
	// The peer's writes stay tentative: its committer is off.
	cfg := tc.stopNode(pi)
	cfg.disableCommitter = true
	p := tc.startNodeAt(pi, cfg)
	waitUntil(t, p.cfg.ID+" back and joined", 20*time.Second, func() bool { id, _ := p.leaderHTTP(); return id != "" && p.joined.Load() })

	cut(t, f, leader)
	cut(t, leader, f)
	for key, n := range map[string]*Node{"own": f, "peer": p, "superseded": p} {
		if r := do(t, "PUT", n, "/v1/kv/"+key+"?consistency=eventual", "tentative"); r.status != 200 {
			t.Fatalf("eventual put of %s on %s: %d %s", key, n.cfg.ID, r.status, r.body)
		}
	}
	waitUntil(t, "gossip to bring "+p.cfg.ID+"'s writes to "+f.cfg.ID, 10*time.Second, func() bool {
		d, err := f.store.TentativeDigest("", "")
		return err == nil && len(d) == 3
	})
	// The leader writes past them: superseded gets a newer committed version.
	for i := 0; i < 20; i++ {
		if r := do(t, "PUT", leader, fmt.Sprintf("/v1/kv/s%d?consistency=strong", i), "v"); r.status != 200 {
			t.Fatalf("strong put: %d %s", r.status, r.body)
		}
	}
	if r := do(t, "PUT", leader, "/v1/kv/superseded?consistency=strong", "committed"); r.status != 200 {
		t.Fatalf("strong put: %d %s", r.status, r.body)
	}
	if err := leader.raft.Snapshot(); err != nil {
		t.Fatal(err)
	}
	restores := f.raft.SnapshotRestores()
	if r := do(t, "DELETE", f, "/v1/test/faults", ""); r.status != 200 {
		t.Fatalf("heal: %d %s", r.status, r.body)
	}
	if r := do(t, "DELETE", leader, "/v1/test/faults", ""); r.status != 200 {
		t.Fatalf("heal: %d %s", r.status, r.body)
	}
	waitUntil(t, f.cfg.ID+" to install the leader's snapshot", 30*time.Second, func() bool { return f.raft.SnapshotRestores() > restores })
	waitUntil(t, f.cfg.ID+" to drop the tentative entry the snapshot covers", 10*time.Second, func() bool {
		r := do(t, "GET", f, "/v1/kv/superseded?consistency=eventual", "")
		_, held, _ := f.store.Tentative("superseded")
		return r.body == "committed" && !held
	})
	if _, held, err := f.store.Tentative("peer"); err != nil || !held {
		t.Errorf("%s dropped %s's uncommitted write when it installed the snapshot (%v)", f.cfg.ID, p.cfg.ID, err)
	}
	awaitCommitted(t, leader, "own", "tentative")
}
