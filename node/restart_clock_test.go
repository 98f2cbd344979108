package node

import (
	"fmt"
	"testing"
	"time"

	"github.com/dialkv/dialkv/client"
	"github.com/dialkv/dialkv/consistency"
)

// A node's clock restarts from the wall clock, the purge horizon and its recorded floor. When a
// peer's clock ran ahead, this node's clock had followed it (it observes what it receives), and
// the eventual writes it took carry those later stamps. Restarted, it must stamp above them
// still: replaying the log shows its clock the peer's write again but not its own uncommitted
// one, and it would give its next write of the key the very version the earlier one has — two
// acknowledged writes of one key under one version, of which last-writer-wins keeps one.
func TestRestartedNodeStampsAboveItsOwnEarlierWrites(t *testing.T) {
	const ahead = 10 * time.Second
	tc := startCluster(t, 3, func(i int, c *Config) {
		c.TestFaults = true
		c.disableCommitter = i == 0 // node 0's writes stay tentative, in its own layer only
	})
	a, b := tc.nodes[0], tc.nodes[1]
	if r := do(t, "PUT", b, "/v1/test/faults", fmt.Sprintf(`{"clock_offset":%q}`, ahead)); r.status != 200 {
		t.Fatalf("faults on %s: %d %s", b.cfg.ID, r.status, r.body)
	}
	pulled := do(t, "PUT", b, "/v1/kv/pull?consistency=eventual", "ahead")
	if pulled.status != 200 {
		t.Fatalf("eventual write on %s: %d %s", b.cfg.ID, pulled.status, pulled.body)
	}
	// b commits its write; a applies it, and its clock follows.
	waitUntil(t, a.cfg.ID+" to apply "+b.cfg.ID+"'s write", 20*time.Second, func() bool {
		r := do(t, "GET", a, "/v1/kv/pull?consistency=strong", "")
		return r.status == 200 && r.body == "ahead"
	})
	first := do(t, "PUT", a, "/v1/kv/k?consistency=eventual", "first")
	if first.status != 200 {
		t.Fatalf("eventual write on %s: %d %s", a.cfg.ID, first.status, first.body)
	}
	v1, err := consistency.ParseVersion(first.header.Get(client.HeaderVersion))
	if err != nil {
		t.Fatal(err)
	}
	if time.Until(time.Unix(0, v1.Wall)) < ahead/2 {
		t.Fatalf("%s stamped %s, not ahead of its wall clock: it did not follow %s's clock", a.cfg.ID, v1, b.cfg.ID)
	}

	tc.startNodeAt(0, tc.stopNode(0))
	a = tc.nodes[0]
	v2 := awaitEventualPut(t, a, "k", "second", 20*time.Second)
	if !v2.Newer(v1) {
		t.Fatalf("%s, restarted, stamped its next write of k %s, not newer than its write of k before the restart, %s", a.cfg.ID, v2, v1)
	}
	if r := do(t, "GET", a, "/v1/kv/k?consistency=eventual", ""); r.status != 200 || r.body != "second" {
		t.Errorf("%s's later write of k is not the one it holds: %d %q", a.cfg.ID, r.status, r.body)
	}
}
