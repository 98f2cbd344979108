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

	tc.startNodeAt(0, tc.stopNode(0))
	a = tc.nodes[0]
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
