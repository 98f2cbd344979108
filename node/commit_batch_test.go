//go:build !race

// The race detector checks every byte these hundreds of MiB are copied through, which makes the
// test take minutes: it runs without -race only. TestCommitterBatchesAreBoundedInBytes checks
// the same bound with -race, on a smaller backlog.

package node

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// A node cut off from the leader takes eventual writes of large values, more bytes in all than
// one committer batch can carry to the leader (/v1/internal/commit reads at most 256 MiB, and
// the post must arrive within LeaderWait). Once the cut heals, every one of them must be
// committed: batches are bounded in bytes, not only in writes.
func TestCommitterCommitsABacklogOfLargeValues(t *testing.T) {
	if testing.Short() {
		t.Skip("writes about 270 MiB of values")
	}
	const valueSize = 4 << 20
	const writes = 68 // 272 MiB
	tc := startCluster(t, 3, func(i int, c *Config) {
		c.TestFaults = true
		c.MaxValueSize = valueSize
		kvdRaftTimings(i, c) // the tests' short ones lose the leader under this much traffic
	})
	_, writer := tc.leaderAndFollower()
	partition(t, tc, writer)
	waitUntil(t, "the cut-off node to lose its leader", 10*time.Second, func() bool {
		id, _ := writer.raft.Leader()
		return id == ""
	})
	value := func(i int) string { return fmt.Sprintf("%03d", i) + strings.Repeat("v", valueSize-3) }
	for i := range writes {
		if r := do(t, "PUT", writer, fmt.Sprintf("/v1/kv/big%03d?consistency=eventual", i), value(i)); r.status != 200 {
			t.Fatalf("eventual put %d on the cut-off node: %d %s", i, r.status, r.body)
		}
	}
	for _, n := range tc.nodes {
		if r := do(t, "DELETE", n, "/v1/test/faults", ""); r.status != 200 {
			t.Fatalf("heal %s: %d", n.cfg.ID, r.status)
		}
	}
	committed := map[int]bool{}
	waitUntil(t, "every acknowledged write to be committed", 60*time.Second, func() bool {
		for i := range writes {
			if committed[i] {
				continue
			}
			r := do(t, "GET", writer, fmt.Sprintf("/v1/kv/big%03d?consistency=strong", i), "")
			if r.status != 200 || r.body != value(i) {
				return false
			}
			committed[i] = true
		}
		return true
	})
}
