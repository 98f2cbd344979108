package node

import (
	"testing"
	"time"
)

// A node takes eventual writes, gossips them, and dies for good before they are committed. The
// survivors restart (an upgrade, a power cut) before DeadCommitDelay has passed, so neither has
// submitted the dead node's writes yet. Gossip membership is not persisted, and a restarted node
// never sees the dead one in gossip: the survivors must still commit its writes, which they hold
// and nobody else does (DESIGN.md: no acknowledged write depends on one node surviving).
func TestSurvivorsRestartedAfterAPeerDiedStillCommitItsWrites(t *testing.T) {
	const delay = 3 * time.Second
	tc := startCluster(t, 3, func(i int, c *Config) {
		c.DeadCommitDelay = delay
		if i == 2 {
			c.disableCommitter = true
		}
	})
	doomed := tc.nodes[2]
	if doomed.raft.IsLeader() {
		if err := doomed.raft.TransferLeadership(); err != nil {
			t.Fatal(err)
		}
		tc.waitReady()
	}
	for _, key := range []string{"orphan1", "orphan2"} {
		if r := do(t, "PUT", doomed, "/v1/kv/"+key+"?consistency=eventual", key); r.status != 200 {
			t.Fatalf("eventual put on the doomed node: %d %s", r.status, r.body)
		}
	}
	survivors := tc.nodes[:2]
	waitUntil(t, "gossip to carry the writes", 5*time.Second, func() bool {
		for _, n := range survivors {
			for _, key := range []string{"orphan1", "orphan2"} {
				if r := do(t, "GET", n, "/v1/kv/"+key+"?consistency=eventual", ""); r.body != key {
					return false
				}
			}
		}
		return true
	})
	died := time.Now()
	tc.stopNode(2)
	cfgs := []Config{tc.stopNode(0), tc.stopNode(1)}
	if time.Since(died) >= delay {
		t.Skipf("stopping the survivors took %v, past DeadCommitDelay: they may have committed the writes already", time.Since(died))
	}
	for i, cfg := range cfgs {
		tc.startNodeAt(i, cfg)
	}
	tc.nodes = tc.nodes[:2] // the doomed node never returns: wait for the survivors alone
	tc.waitReady()
	tc.nodes = append(tc.nodes, doomed)
	for _, key := range []string{"orphan1", "orphan2"} {
		awaitCommitted(t, tc.nodes[0], key, key)
	}
}
