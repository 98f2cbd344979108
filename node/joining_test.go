package node

import (
	"testing"
	"time"

	"github.com/dialkv/dialkv/client"
	"github.com/dialkv/dialkv/consistency"
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
