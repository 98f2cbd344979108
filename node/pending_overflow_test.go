package node

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dialkv/dialkv/consistency"
	"github.com/dialkv/dialkv/replication"
)

// A node cut off from the leader takes eventual writes while its pending index overflows (a long
// outage under write load): the index empties itself, forgetting the writes it held. Those
// writes wait in the tentative layer, the truth, and once the cut heals the committer must find
// them there and commit every one.
func TestWritesTheOverflowingIndexForgotAreCommitted(t *testing.T) {
	tc := startCluster(t, 3, func(_ int, c *Config) { c.TestFaults = true })
	_, writer := tc.leaderAndFollower()
	partition(t, tc, writer)
	waitUntil(t, "the cut-off node to lose its leader", 10*time.Second, func() bool {
		id, _ := writer.raft.Leader()
		return id == ""
	})
	const writes = 20
	for i := range writes {
		if r := do(t, "PUT", writer, fmt.Sprintf("/v1/kv/held%02d?consistency=eventual", i), "v"); r.status != 200 {
			t.Fatalf("eventual put %d on the cut-off node: %d %s", i, r.status, r.body)
		}
	}
	// More of this node's writes than the index holds, in batches as gossip hands them over:
	// the index overflows and empties itself of the writes above.
	for start := 0; start <= maxPendingIndex; start += 4096 {
		batch := make([]replication.Write, 0, 4096)
		for i := start; i < start+4096; i++ {
			batch = append(batch, replication.Write{Key: fmt.Sprintf("never-stored%06d", i), Value: consistency.Value{Version: writer.clock.Now()}})
		}
		writer.pending.add(batch)
	}
	if ids, complete, _ := writer.pending.sample(maxPendingIndex); complete {
		t.Fatal("the index did not overflow")
	} else {
		for _, id := range ids {
			if strings.HasPrefix(id.key, "held") {
				t.Fatalf("the overflowing index still holds %s: the test needs it forgotten", id.key)
			}
		}
	}
	for _, n := range tc.nodes {
		if r := do(t, "DELETE", n, "/v1/test/faults", ""); r.status != 200 {
			t.Fatalf("heal %s: %d", n.cfg.ID, r.status)
		}
	}
	for i := range writes {
		awaitCommitted(t, writer, fmt.Sprintf("held%02d", i), "v")
	}
}
