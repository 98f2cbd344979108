package node

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dialkv/dialkv/client"
)

func partition(t *testing.T, tc *testCluster, isolated *Node) {
	t.Helper()
	var others []*Node
	for _, n := range tc.nodes {
		if n != isolated {
			others = append(others, n)
			cut(t, n, isolated)
		}
	}
	cut(t, isolated, others...)
}

func TestPartitionedLeaderThroughTheFaultHook(t *testing.T) {
	tc := startCluster(t, 3, func(i int, c *Config) {
		c.TestFaults = true
		c.LeaderWait = time.Second
	})
	old, _ := tc.leaderAndFollower()
	if r := do(t, "PUT", old, "/v1/kv/k", "before"); r.status != 200 {
		t.Fatalf("put: %d %s", r.status, r.body)
	}
	partition(t, tc, old)

	// The isolated old leader can no longer serve strong reads or writes, but eventual ones work.
	waitUntil(t, "the isolated leader to refuse strong reads", 10*time.Second, func() bool {
		return do(t, "GET", old, "/v1/kv/k?consistency=strong", "").status >= 500
	})
	if r := do(t, "PUT", old, "/v1/kv/minority?consistency=eventual", "m"); r.status != 200 {
		t.Fatalf("eventual write on the minority side: %d %s", r.status, r.body)
	}
	if r := do(t, "GET", old, "/v1/kv/minority?consistency=eventual", ""); r.body != "m" {
		t.Fatalf("eventual read on the minority side: %d %q", r.status, r.body)
	}
	// The majority elects a leader and takes strong writes.
	var majority *Node
	for _, n := range tc.nodes {
		if n != old {
			majority = n
		}
	}
	waitUntil(t, "a strong write on the majority side", 15*time.Second, func() bool {
		return do(t, "PUT", majority, "/v1/kv/k", "after").status == 200
	})
	if r := do(t, "GET", majority, "/v1/kv/minority?consistency=eventual", ""); r.status != 404 {
		t.Errorf("the minority's eventual write crossed the partition: %d %q", r.status, r.body)
	}

	for _, n := range tc.nodes {
		if r := do(t, "DELETE", n, "/v1/test/faults", ""); r.status != 200 {
			t.Fatalf("heal %s: %d", n.cfg.ID, r.status)
		}
	}
	waitUntil(t, "every node to converge after the heal", 20*time.Second, func() bool {
		for _, n := range tc.nodes {
			if do(t, "GET", n, "/v1/kv/k?consistency=strong", "").body != "after" ||
				do(t, "GET", n, "/v1/kv/minority?consistency=strong", "").body != "m" {
				return false
			}
		}
		return true
	})
}

func TestFaultHookRefusedWithoutTheFlag(t *testing.T) {
	tc := startCluster(t, 1)
	n := tc.nodes[0]
	for _, method := range []string{"GET", "PUT", "DELETE"} {
		r := do(t, method, n, "/v1/test/faults", `{"drop_in":["n2"]}`)
		if r.status != 403 || errCode(t, r) != client.CodeForbidden || !strings.Contains(r.body, "--test-faults") {
			t.Errorf("%s /v1/test/faults on a production node: %d %s", method, r.status, r.body)
		}
		// Like every error answer (docs/http-api.md), with its code in Dialkv-Error.
		if got := r.header.Get(client.HeaderError); got != client.CodeForbidden {
			t.Errorf("%s /v1/test/faults on a production node: %s %q, want %q", method, client.HeaderError, got, client.CodeForbidden)
		}
	}
}

func TestFaultHookValidatesInput(t *testing.T) {
	tc := startCluster(t, 1, func(i int, c *Config) { c.TestFaults = true })
	n := tc.nodes[0]
	for _, body := range []string{`{"loss":2}`, `{"delay":5}`, `{"partition":"all"}`, `not json`} {
		if r := do(t, "PUT", n, "/v1/test/faults", body); r.status != 400 {
			t.Errorf("PUT %s: %d %s, want 400", body, r.status, r.body)
		}
	}
	if r := do(t, "PUT", n, "/v1/test/faults", `{"clock_offset":"2s"}`); r.status != 200 || !strings.Contains(r.body, `"clock_offset": "2s"`) {
		t.Fatalf("clock offset: %d %s", r.status, r.body)
	}
	w := do(t, "PUT", n, "/v1/kv/skewed?consistency=eventual", "x")
	v := w.header.Get(client.HeaderVersion)
	wall := strings.Split(v, ".")[0]
	var ns int64
	fmt.Sscan(wall, &ns)
	if ahead := time.Duration(ns - time.Now().UnixNano()); ahead < time.Second {
		t.Errorf("a write on a node 2s ahead got version %s, only %v ahead", v, ahead)
	}
}
