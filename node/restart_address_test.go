package node

import (
	"testing"
	"time"
)

// docs/deploy.md: "Restarting it on the same volume (any address: the id is what counts) needs
// nothing." A follower restarted on its data at a new Raft and HTTP address, with no --join
// (a restart ignores the bootstrap list), must come back into the cluster: the leader dials the
// Raft address it has on record, so the node has to tell it the new one.
func TestFollowerRestartedAtNewAddressesRejoins(t *testing.T) {
	tc := startCluster(t, 3, kvdRaftTimings)
	leader, f := tc.leaderAndFollower()
	i := -1
	for j, n := range tc.nodes {
		if n == f {
			i = j
		}
	}
	cfg := tc.stopNode(i)
	cfg.Raft.RaftAddr = freeAddr(t)
	cfg.HTTPAddr = ""
	back := tc.startNodeAt(i, cfg)
	if r := do(t, "PUT", leader, "/v1/kv/after-move?consistency=strong", "v"); r.status != 200 {
		t.Fatalf("put: %d %s", r.status, r.body)
	}
	waitUntil(t, cfg.ID+" at its new address to apply a later write", 30*time.Second, func() bool {
		got, ok, err := back.store.Get("after-move")
		return err == nil && ok && string(got.Data) == "v"
	})
}
