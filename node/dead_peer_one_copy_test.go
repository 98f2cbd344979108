package node

import (
	"testing"
	"time"
)

// A node takes an eventual write, gossip carries it to one peer only, and the node dies with its
// disk. That peer holds the only copy left: once gossip has had the node dead for
// DeadCommitDelay, it must commit the write itself (DESIGN.md: no acknowledged write depends on
// one node surviving). The third node commits nothing, so only the holder can.
func TestTheOnlyPeerHoldingADeadNodesWriteCommitsIt(t *testing.T) {
	tc := startCluster(t, 3, func(i int, c *Config) {
		c.TestFaults = true
		c.DeadCommitDelay = 500 * time.Millisecond
		if i != 1 {
			c.disableCommitter = true
		}
	})
	doomed, holder, other := tc.nodes[0], tc.nodes[1], tc.nodes[2]
	if doomed.raft.IsLeader() {
		if err := doomed.raft.TransferLeadership(); err != nil {
			t.Fatal(err)
		}
		tc.waitReady()
	}
	cut(t, doomed, other)
	cut(t, other, doomed)
	if r := do(t, "PUT", doomed, "/v1/kv/orphan?consistency=eventual", "v"); r.status != 200 {
		t.Fatalf("eventual put on the doomed node: %d %s", r.status, r.body)
	}
	waitUntil(t, "gossip to carry the write to the holder", 5*time.Second, func() bool {
		return do(t, "GET", holder, "/v1/kv/orphan?consistency=eventual", "").body == "v"
	})
	if r := do(t, "GET", holder, "/v1/kv/orphan?consistency=strong", ""); r.status != 404 {
		t.Fatalf("the write was committed while its node lived (the test needs it uncommitted): %d", r.status)
	}
	tc.stopNode(0)
	all := tc.nodes
	tc.nodes = all[1:] // the doomed node never returns: wait for the others alone
	tc.waitReady()
	tc.nodes = all
	awaitCommitted(t, other, "orphan", "v")
}
