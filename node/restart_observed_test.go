package node

import (
	"fmt"
	"testing"
	"time"

	"github.com/dialkv/dialkv/client"
	"github.com/dialkv/dialkv/consistency"
)

// A node's clock follows the versions it applies: a write it takes after reading a value is
// stamped above that value, however far ahead the clock that stamped it ran. A restart must not
// undo that for the state it keeps. The log is not replayed into a state that already holds it
// (its versions are never shown to the clock again), so without more the restarted node stamps
// from its wall clock, below versions it still serves, and last-writer-wins silently keeps the
// older write over the acknowledged newer one.
func TestRestartedNodeStampsAboveTheVersionsItHolds(t *testing.T) {
	const ahead = 10 * time.Second
	tc := startCluster(t, 3, func(i int, c *Config) { c.TestFaults = true })
	a, b := tc.nodes[0], tc.nodes[1]
	if r := do(t, "PUT", b, "/v1/test/faults", fmt.Sprintf(`{"clock_offset":%q}`, ahead)); r.status != 200 {
		t.Fatalf("faults on %s: %d %s", b.cfg.ID, r.status, r.body)
	}
	if r := do(t, "PUT", b, "/v1/kv/k?consistency=eventual", "from-the-future"); r.status != 200 {
		t.Fatalf("eventual write on %s: %d %s", b.cfg.ID, r.status, r.body)
	}
	waitUntil(t, a.cfg.ID+" to apply "+b.cfg.ID+"'s write", 20*time.Second, func() bool {
		r := do(t, "GET", a, "/v1/kv/k?consistency=strong", "")
		return r.status == 200 && r.body == "from-the-future"
	})
	held, err := consistency.ParseVersion(do(t, "GET", a, "/v1/kv/k?consistency=eventual", "").header.Get(client.HeaderVersion))
	if err != nil {
		t.Fatal(err)
	}
	if r := do(t, "PUT", b, "/v1/test/faults", `{"clock_offset":"0s"}`); r.status != 200 {
		t.Fatalf("faults on %s: %d %s", b.cfg.ID, r.status, r.body)
	}

	restartAndWriteAfterReading(t, tc, held)
}

// The same for the tentative layer: a node serves the eventual writes gossip brought it before
// they are committed, and its clock followed them. Restarted while it still holds one (its
// origin, cut off from the leader here, has not committed it), the node must stamp its next
// write of the key above it: below, the write is acknowledged and never shows, since
// last-writer-wins keeps the older write it had served.
func TestRestartedNodeStampsAboveTheTentativeWritesItHolds(t *testing.T) {
	const ahead = 10 * time.Second
	tc := startCluster(t, 3, func(i int, c *Config) {
		c.TestFaults = true
		c.disableCommitter = i == 1 // b's write stays tentative
	})
	a, b := tc.nodes[0], tc.nodes[1]
	if r := do(t, "PUT", b, "/v1/test/faults", fmt.Sprintf(`{"clock_offset":%q}`, ahead)); r.status != 200 {
		t.Fatalf("faults on %s: %d %s", b.cfg.ID, r.status, r.body)
	}
	if r := do(t, "PUT", b, "/v1/kv/k?consistency=eventual", "from-the-future"); r.status != 200 {
		t.Fatalf("eventual write on %s: %d %s", b.cfg.ID, r.status, r.body)
	}
	waitUntil(t, "gossip to bring "+b.cfg.ID+"'s write to "+a.cfg.ID, 20*time.Second, func() bool {
		r := do(t, "GET", a, "/v1/kv/k?consistency=eventual", "")
		return r.status == 200 && r.body == "from-the-future"
	})
	held, err := consistency.ParseVersion(do(t, "GET", a, "/v1/kv/k?consistency=eventual", "").header.Get(client.HeaderVersion))
	if err != nil {
		t.Fatal(err)
	}

	restartAndWriteAfterReading(t, tc, held)
}

// restartAndWriteAfterReading restarts tc's first node, which served k = "from-the-future" at
// version held, and checks that it still serves it, then that the write of k it takes next is
// stamped above held and is the one it serves.
func restartAndWriteAfterReading(t *testing.T, tc *testCluster, held consistency.Version) {
	t.Helper()
	tc.startNodeAt(0, tc.stopNode(0))
	a := tc.nodes[0]
	if r := do(t, "GET", a, "/v1/kv/k?consistency=eventual", ""); r.status != 200 || r.body != "from-the-future" {
		t.Fatalf("%s after its restart: k = %d %q", a.cfg.ID, r.status, r.body)
	}
	mine := awaitEventualPut(t, a, "k", "after-reading-it", 20*time.Second)
	if !mine.Newer(held) {
		t.Errorf("%s, restarted, stamped a write of k %s, not newer than the version of k it held and served, %s", a.cfg.ID, mine, held)
	}
	if r := do(t, "GET", a, "/v1/kv/k?consistency=eventual", ""); r.status != 200 || r.body != "after-reading-it" {
		t.Errorf("%s acknowledged a write of k, then reads the older value: %d %q", a.cfg.ID, r.status, r.body)
	}
}
