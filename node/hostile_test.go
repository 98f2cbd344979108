package node

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dialkv/dialkv/client"
	"github.com/dialkv/dialkv/consistency"
	"github.com/dialkv/dialkv/replication"
	"github.com/dialkv/dialkv/replication/store"
)

// One log entry the state machine cannot apply stops every node, on every restart
// (docs/deploy.md): whatever a request can make the leader propose, every replica must be able
// to apply. These requests come from outside (any client that reaches the HTTP port, or a
// node of another release): the leader must refuse each before it reaches the log, with 400,
// and the cluster must go on applying afterwards.
func TestLeaderRefusesHostileBodiesBeforeTheLog(t *testing.T) {
	tc := startCluster(t, 3)
	leader, follower := tc.leaderAndFollower()
	long := strings.Repeat("x", store.MaxKeySize+1)
	stamp := consistency.Version{Wall: time.Now().UnixNano(), Node: "n9"}
	commit := func(cmd replication.Command) string { return string(cmd.Encode()) }
	join := func(j client.JoinRequest) string {
		b, _ := json.Marshal(j)
		return string(b)
	}
	cases := []struct {
		name, method, path, body string
	}{
		{"a committer batch whose reporter no store can hold", "POST", "/v1/internal/commit",
			commit(replication.Command{Type: replication.CmdEventualBatch, Reporter: long, Watermark: stamp})},
		{"a purge posted as a committer batch", "POST", "/v1/internal/commit",
			commit(replication.Command{Type: replication.CmdPurge, Stamp: stamp})},
		{"a membership change posted as a committer batch", "POST", "/v1/internal/commit",
			commit(replication.Command{Type: replication.CmdRemove, Member: replication.Member{ID: "n2"}})},
		{"a join under an id no store can hold", "POST", "/v1/cluster/join",
			join(client.JoinRequest{ID: long, RaftAddr: "127.0.0.1:1", HTTPAddr: "127.0.0.1:1"})},
		{"a join under an id no node may have", "POST", "/v1/cluster/join",
			join(client.JoinRequest{ID: "n9/s", RaftAddr: "127.0.0.1:1", HTTPAddr: "127.0.0.1:1"})},
	}
	for _, c := range cases {
		for _, n := range []*Node{leader, follower} {
			r := do(t, c.method, n, c.path, c.body)
			if r.status != 400 {
				t.Errorf("%s, sent to %s: %d %s, want 400", c.name, n.cfg.ID, r.status, r.body)
			}
		}
	}
	servers, err := leader.raft.Servers()
	if err != nil || len(servers) != 3 {
		t.Errorf("raft configuration after the refused joins: %+v, %v; want the 3 members only", servers, err)
	}
	for i, n := range tc.nodes {
		key := fmt.Sprintf("/v1/kv/after%d?consistency=strong", i)
		if r := do(t, "PUT", n, key, "v"); r.status != 200 {
			t.Fatalf("strong put through %s after the hostile requests: %d %s", n.cfg.ID, r.status, r.body)
		}
	}
	waitUntil(t, "every node to apply the writes that followed", 10*time.Second, func() bool {
		for _, n := range tc.nodes {
			if n.store.AppliedIndex() < leader.store.AppliedIndex() {
				return false
			}
		}
		return true
	})
}
