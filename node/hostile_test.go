package node

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"sync/atomic"
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
	batch := func(cmds ...replication.Command) string {
		encoded := make([][]byte, len(cmds))
		for i := range cmds {
			encoded[i] = cmds[i].Encode()
		}
		return string(replication.EncodeBatch(encoded))
	}
	join := func(j client.JoinRequest) string {
		b, _ := json.Marshal(j)
		return string(b)
	}
	cases := []struct {
		name, method, path, body string
	}{
		{"a committer batch whose reporter no store can hold", "POST", "/v1/internal/commit",
			commit(replication.Command{Type: replication.CmdEventualBatch, Reporter: long, Watermark: stamp})},
		{"a committer batch of a write with no version", "POST", "/v1/internal/commit",
			commit(replication.Command{Type: replication.CmdEventualBatch, Reporter: "n9", Writes: []replication.Write{{Key: "k", Value: consistency.Value{Data: []byte("v")}}}})},
		{"a committer batch of a write stamped before 1970", "POST", "/v1/internal/commit",
			commit(replication.Command{Type: replication.CmdEventualBatch, Reporter: "n9", Writes: []replication.Write{{Key: "k", Value: consistency.Value{Version: consistency.Version{Wall: -1, Node: "n9"}}}}})},
		{"a committer batch of a write of a key no store can hold", "POST", "/v1/internal/commit",
			commit(replication.Command{Type: replication.CmdEventualBatch, Reporter: "n9", Writes: []replication.Write{{Key: long, Value: consistency.Value{Version: stamp}}}})},
		{"a committer batch of more writes than a node sends", "POST", "/v1/internal/commit",
			commit(replication.Command{Type: replication.CmdEventualBatch, Reporter: "n9", Writes: manyWrites(maxCommitBatch+1, stamp)})},
		{"a committer batch in the unsafe test mode, to a node without test faults", "POST", "/v1/internal/commit",
			commit(replication.Command{Type: replication.CmdEventualBatch, Reporter: "n9", Unsafe: true, Writes: manyWrites(1, stamp)})},
		{"a purge forwarded as a write", "POST", "/v1/internal/propose",
			batch(replication.Command{Type: replication.CmdPurge, Stamp: stamp})},
		{"a registration forwarded as a write", "POST", "/v1/internal/propose",
			batch(replication.Command{Type: replication.CmdRegister, Member: replication.Member{ID: "n9", RaftAddr: "127.0.0.1:1", HTTPAddr: "127.0.0.1:1"}})},
		{"a committer batch forwarded as a write", "POST", "/v1/internal/propose",
			batch(replication.Command{Type: replication.CmdEventualBatch, Reporter: "n9", Writes: manyWrites(1, stamp)})},
		{"a write forwarded alone, not in a batch", "POST", "/v1/internal/propose",
			commit(replication.Command{Type: replication.CmdPut, Key: "k", Stamp: stamp})},
		{"a batch inside a forwarded batch", "POST", "/v1/internal/propose",
			batch(replication.Command{Type: replication.CmdBatch, Batch: []replication.Command{{Type: replication.CmdPut, Key: "k", Stamp: stamp}}})},
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
	// What a node does send is taken.
	if r := do(t, "POST", leader, "/v1/internal/commit", commit(replication.Command{Type: replication.CmdEventualBatch, Reporter: "n9", Watermark: stamp, Writes: manyWrites(maxCommitBatch, stamp)})); r.status != 200 {
		t.Errorf("a committer batch of %d writes: %d %s, want 200", maxCommitBatch, r.status, r.body)
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

// A follower forwards the strong writes it took (POST /v1/internal/propose), each checked by
// the follower; the leader proposes them. The same body can come from anywhere: the leader
// checks each write as a PUT would be checked (the value's size, a condition it knows) and
// answers each refused one with its code, proposing only the others, and refuses whole a batch
// longer than any follower sends, before decoding its writes.
func TestLeaderChecksForwardedWritesAsItChecksPuts(t *testing.T) {
	tc := startCluster(t, 1, func(i int, c *Config) { c.MaxValueSize = 16 })
	leader := tc.nodes[0]
	stamp := consistency.Version{Wall: time.Now().UnixNano(), Node: "n9"}
	cmds := []replication.Command{
		{Type: replication.CmdPut, Key: "big", Value: []byte(strings.Repeat("v", 17)), Stamp: stamp},
		{Type: replication.CmdPut, Key: "unknown-condition", Value: []byte("v"), Stamp: stamp, Cond: 9},
		{Type: replication.CmdPut, Key: "fine", Value: []byte(strings.Repeat("v", 16)), Stamp: stamp},
	}
	encoded := make([][]byte, len(cmds))
	for i := range cmds {
		encoded[i] = cmds[i].Encode()
	}
	r := do(t, "POST", leader, "/v1/internal/propose", string(replication.EncodeBatch(encoded)), client.HeaderForwarded, "n9")
	var ans proposeAnswer
	if err := json.Unmarshal([]byte(r.body), &ans); err != nil || r.status != 200 || len(ans.Results) != len(cmds) {
		t.Fatalf("propose: %d %s %v", r.status, r.body, err)
	}
	for i, want := range []string{client.CodeTooLarge, client.CodeBadRequest, ""} {
		if got := ans.Results[i]; got.Code != want || (want != "") != (got.Index == 0) {
			t.Errorf("write of %q: code %q at log index %d, want %q (and proposed only if accepted)", cmds[i].Key, got.Code, got.Index, want)
		}
	}
	for _, key := range []string{"big", "unknown-condition"} {
		if r := do(t, "GET", leader, "/v1/kv/"+key+"?consistency=strong", ""); r.status != 404 {
			t.Errorf("GET %s after its refused write: %d %q, want 404", key, r.status, r.body)
		}
	}

	long := make([][]byte, forwardBatch+1)
	for i := range long {
		long[i] = (&replication.Command{Type: replication.CmdPut, Key: fmt.Sprintf("k%d", i), Stamp: stamp}).Encode()
	}
	applied := leader.store.AppliedIndex()
	if r := do(t, "POST", leader, "/v1/internal/propose", string(replication.EncodeBatch(long)), client.HeaderForwarded, "n9"); r.status != 400 {
		t.Errorf("a batch of %d writes: %d %s, want 400", len(long), r.status, r.body)
	}
	if got := leader.store.AppliedIndex(); got != applied {
		t.Errorf("applied index moved from %d to %d: the refused batch was proposed", applied, got)
	}
}

func manyWrites(count int, v consistency.Version) []replication.Write {
	ws := make([]replication.Write, count)
	for i := range ws {
		ws[i] = replication.Write{Key: fmt.Sprintf("w%d", i), Value: consistency.Value{Version: v, Data: []byte("v")}}
	}
	return ws
}

// A version at the end of int64 time has no successor: the state machine's rule "max(stamp,
// current + 1)" wraps there and gives the next strong write of the key its own stamp, older than
// the version it replaced, so the same eventual write sent again (anti-entropy brings it back
// to a node's tentative layer, its committer submits it) takes the key back from the
// acknowledged strong write. No clock stamps past consistency.MaxWall: the leader refuses such a
// committer batch (write or watermark), as it refuses an unstamped one, and the rule is never
// applied near its end.
func TestLeaderRefusesVersionsNoClockStamps(t *testing.T) {
	tc := startCluster(t, 1)
	leader := tc.nodes[0]
	endOfTime := consistency.Version{Wall: math.MaxInt64, Logical: math.MaxUint32, Node: "n9"}
	forged := string((&replication.Command{Type: replication.CmdEventualBatch, Reporter: "n9",
		Writes: []replication.Write{{Key: "k", Value: consistency.Value{Version: endOfTime, Data: []byte("forged")}}}}).Encode())
	do(t, "POST", leader, "/v1/internal/commit", forged)
	if r := do(t, "PUT", leader, "/v1/kv/k?consistency=strong", "acknowledged"); r.status != 200 {
		t.Fatalf("strong put: %d %s", r.status, r.body)
	}
	do(t, "POST", leader, "/v1/internal/commit", forged) // the same write, sent again
	if r := do(t, "GET", leader, "/v1/kv/k?consistency=strong", ""); r.status != 200 || r.body != "acknowledged" {
		t.Errorf("after the strong put, the key reads %d %q, want the acknowledged value", r.status, r.body)
	}

	for _, c := range []struct {
		name string
		cmd  replication.Command
	}{
		{"a write stamped past the newest wall time", replication.Command{Type: replication.CmdEventualBatch, Reporter: "n9",
			Writes: []replication.Write{{Key: "k2", Value: consistency.Value{Version: consistency.Version{Wall: consistency.MaxWall + 1, Node: "n9"}}}}}},
		{"a watermark past the newest wall time", replication.Command{Type: replication.CmdEventualBatch, Reporter: "n9",
			Watermark: consistency.Version{Wall: consistency.MaxWall + 1, Node: "n9"}}},
	} {
		if r := do(t, "POST", leader, "/v1/internal/commit", string(c.cmd.Encode())); r.status != 400 {
			t.Errorf("%s: %d %s, want 400", c.name, r.status, r.body)
		}
	}
}

// A node whose wall clock reads past consistency.MaxWall stamps versions the log does not take
// (and the tentative layer drops): its eventual writes are refused, not acknowledged and lost.
func TestEventualWriteOfAClockPastTheNewestWallTimeIsRefused(t *testing.T) {
	past := time.Unix(0, consistency.MaxWall).Add(time.Hour)
	tc := startCluster(t, 1, func(_ int, c *Config) { c.physicalClock = func() time.Time { return past } })
	n := tc.nodes[0]
	r := do(t, "PUT", n, "/v1/kv/k?consistency=eventual", "v")
	if r.status == 200 {
		got := do(t, "GET", n, "/v1/kv/k?consistency=eventual", "")
		t.Fatalf("the write was acknowledged; the key then reads %d %q", got.status, got.body)
	}
	if r.status != 503 {
		t.Errorf("eventual put: %d %s, want 503", r.status, r.body)
	}
}

// The same for a strong write: a leader whose wall clock reads outside the years a version can
// carry stamps it with a version no clock stamps. Taken, past consistency.MaxWall it is a
// version no clock observes, and it won over every later eventual write of the key, from every
// node, for good; at 1970 it is one no client can send back as if_version. The write is
// refused, taken through the leader itself or forwarded to it by a follower, and nothing is
// written.
func TestStrongWriteOfALeaderWithAClockOutOfRangeIsRefused(t *testing.T) {
	for _, c := range []struct {
		name string
		at   time.Time
	}{
		{"past the newest wall time", time.Unix(0, consistency.MaxWall).Add(time.Hour)},
		{"before 1970", time.Unix(-3600, 0)},
	} {
		t.Run(c.name, func(t *testing.T) {
			tc := startCluster(t, 2, kvdRaftTimings, func(_ int, cfg *Config) { cfg.physicalClock = func() time.Time { return c.at } })
			leader, follower := tc.leaderAndFollower()
			for _, n := range []*Node{leader, follower} {
				key := "k-via-" + n.cfg.ID
				r := do(t, "PUT", n, "/v1/kv/"+key+"?consistency=strong", "v")
				if r.status != 503 || errCode(t, r) != client.CodeUnavailable {
					t.Errorf("strong put through %s: %d %s (version %q), want 503 unavailable", n.cfg.ID, r.status, r.body, r.header.Get(client.HeaderVersion))
				}
				if got := do(t, "GET", leader, "/v1/kv/"+key+"?consistency=strong", ""); got.status != 404 {
					t.Errorf("after the refused put through %s, a strong read of %s: %d %q (version %q), want 404", n.cfg.ID, key, got.status, got.body, got.header.Get(client.HeaderVersion))
				}
			}
		})
	}
}

// A node whose wall clock jumps past consistency.MaxWall for a moment refuses writes meanwhile,
// and takes them again as soon as its wall clock is fixed: its hybrid clock used to keep the
// reading past MaxWall, so the node refused every eventual write, and as leader every strong
// write, until it was restarted.
func TestWritesAreTakenAgainOnceAWallClockPastTheNewestWallTimeIsFixed(t *testing.T) {
	n, off := startNodeWithAClockPastTheNewestWallTime(t)
	puts := []string{"/v1/kv/k-eventual?consistency=eventual", "/v1/kv/k-strong?consistency=strong"}
	off.Store(true)
	for _, path := range puts {
		if r := do(t, "PUT", n, path, "v"); r.status != 503 {
			t.Errorf("PUT %s with the wall clock past 2200: %d %s, want 503", path, r.status, r.body)
		}
	}
	off.Store(false)
	for _, path := range puts {
		r := do(t, "PUT", n, path, "v")
		if v, err := consistency.ParseVersion(r.header.Get(client.HeaderVersion)); r.status != 200 || err != nil || !v.Stamped() {
			t.Errorf("PUT %s with the wall clock fixed: %d %s (version %q), want 200 and a version within 1970-2200", path, r.status, r.body, r.header.Get(client.HeaderVersion))
		}
	}
}

// The same moment's jump while tombstones wait for purging: the committer's watermark report,
// taken from the clock, was past MaxWall, and the leader proposes its own batches unchecked, so
// it went into the log; on a single node (or with every member's clock off) the purge horizon
// followed it, for good: every later eventual write was refused as below the horizon, and the
// committed layer's newest version, which a restarted node's clock observes, was one no clock
// observes. No report is sent until the clock is fixed; purging goes on after that.
func TestAWallClockPastTheNewestWallTimeIsNotReportedAsAWatermark(t *testing.T) {
	n, off := startNodeWithAClockPastTheNewestWallTime(t)
	for _, method := range []string{"PUT", "DELETE"} {
		if r := do(t, method, n, "/v1/kv/k?consistency=strong", "v"); r.status != 200 {
			t.Fatalf("%s k: %d %s", method, r.status, r.body)
		}
	}
	// The clock is off for a few report intervals (the committer reports every one while the
	// tombstone waits), then fixed.
	off.Store(true)
	time.Sleep(3 * reportInterval)
	off.Store(false)
	var horizon consistency.Version
	waitUntil(t, "the tombstone to be purged", 20*time.Second, func() bool {
		var err error
		horizon, err = n.store.PurgeHorizon()
		return err == nil && !horizon.IsZero()
	})
	newest, err := n.store.NewestVersion()
	if err != nil {
		t.Fatal(err)
	}
	if !horizon.Stamped() || !newest.Stamped() {
		t.Errorf("purge horizon %v, committed layer's newest version %v: want both within 1970-2200", horizon, newest)
	}
	if r := do(t, "PUT", n, "/v1/kv/k2?consistency=eventual", "v"); r.status != 200 {
		t.Errorf("eventual put after the purge: %d %s", r.status, r.body)
	}
}

// startNodeWithAClockPastTheNewestWallTime starts a one-node cluster whose wall clock reads an
// hour past consistency.MaxWall while off is set, and the real time otherwise.
func startNodeWithAClockPastTheNewestWallTime(t *testing.T) (n *Node, off *atomic.Bool) {
	t.Helper()
	off = new(atomic.Bool)
	past := time.Unix(0, consistency.MaxWall).Add(time.Hour)
	tc := startCluster(t, 1, func(_ int, c *Config) {
		c.physicalClock = func() time.Time {
			if off.Load() {
				return past
			}
			return time.Now()
		}
	})
	return tc.nodes[0], off
}
