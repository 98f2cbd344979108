package node

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dialkv/dialkv/client"
	"github.com/dialkv/dialkv/replication/store"
)

// The Go client tells a node's error answers apart by their code, also for the longest keys,
// whose error messages quote the key with every byte escaped.
func TestClientErrorKindsForLongKeys(t *testing.T) {
	tc := startCluster(t, 1)
	cfg := client.DefaultConfig()
	cfg.Endpoints = []string{tc.nodes[0].HTTPAddr()}
	cl, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, key := range []string{
		strings.Repeat("<", store.MaxKeySize),    // each byte 6 in the JSON of its %q
		strings.Repeat("\x01", store.MaxKeySize), // each byte 5: \\x01
	} {
		if _, err := cl.Put(ctx, key, []byte("v"), client.PutOptions{IfAbsent: true}); err != nil {
			t.Fatalf("first create of a %d-byte key: %v", len(key), err)
		}
		if _, err := cl.Put(ctx, key, []byte("v"), client.PutOptions{IfAbsent: true}); !client.IsConflict(err) {
			t.Errorf("second create of a %d-byte key: %.200v, want a conflict", len(key), err)
		}
		missing := key[:len(key)-1]
		if _, _, err := cl.Get(ctx, missing, client.GetOptions{}); !client.IsNotFound(err) {
			t.Errorf("read of a missing %d-byte key: %.200v, want not found", len(missing), err)
		}
		if _, err := cl.Delete(ctx, missing, client.DeleteOptions{}); !client.IsNotFound(err) {
			t.Errorf("delete of a missing %d-byte key: %.200v, want not found", len(missing), err)
		}
	}
}

// followerCutOffFromLeader starts a 3-node cluster (fault hook on, a 1 s leader wait), writes
// k=v strongly, and cuts one follower's messages to the leader (the leader still reaches it): it
// keeps the leader it knows, and its strong reads time out (504).
func followerCutOffFromLeader(t *testing.T) (tc *testCluster, leader, follower *Node) {
	t.Helper()
	tc = startCluster(t, 3, kvdRaftTimings, func(i int, c *Config) {
		c.TestFaults = true
		c.LeaderWait = time.Second
	})
	leader, follower = tc.leaderAndFollower()
	if r := do(t, "PUT", leader, "/v1/kv/k", "v"); r.status != 200 {
		t.Fatalf("put: %d %s", r.status, r.body)
	}
	if r := do(t, "PUT", follower, "/v1/test/faults", fmt.Sprintf(`{"drop_out":[%q]}`, leader.cfg.ID)); r.status != 200 {
		t.Fatalf("faults on %s: %d %s", follower.cfg.ID, r.status, r.body)
	}
	return tc, leader, follower
}

// A follower that cannot reach the leader while the leader still reaches it (a one-way cut)
// keeps the leader it knows and answers strong reads 504 timeout: it got no read index in time,
// and nothing changed. The Go client reads from the next endpoint then, as it does on a 503, and
// does not start its next call at that follower.
func TestClientReadFailsOverOnTimeout(t *testing.T) {
	_, leader, follower := followerCutOffFromLeader(t)
	if r := do(t, "GET", follower, "/v1/kv/k", ""); r.status != 504 || errCode(t, r) != client.CodeTimeout {
		t.Fatalf("strong read on the cut-off follower: %d %s, want 504 timeout", r.status, r.body)
	}
	cfg := client.DefaultConfig()
	cfg.Endpoints = []string{follower.HTTPAddr(), leader.HTTPAddr()}
	cl, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		start := time.Now()
		v, meta, err := cl.Get(context.Background(), "k", client.GetOptions{})
		if err != nil || string(v) != "v" || meta.Node != leader.cfg.ID {
			t.Fatalf("read %d: %q from %q, %v; want v from the leader %s", i, v, meta.Node, err, leader.cfg.ID)
		}
		if took := time.Since(start); i > 0 && took >= time.Second {
			t.Errorf("read %d took %v: it started at the follower that timed out", i, took)
		}
	}
}
