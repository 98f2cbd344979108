package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dialkv/dialkv/client"
	"github.com/dialkv/dialkv/consistency"
	"github.com/dialkv/dialkv/replication"
	"github.com/dialkv/dialkv/replication/store"
)

// voters is the Raft configuration's ids as n sees it, sorted.
func voters(t *testing.T, n *Node) []string {
	t.Helper()
	servers, err := n.raft.Servers()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, s := range servers {
		ids = append(ids, s.ID)
	}
	slices.Sort(ids)
	return ids
}

// awaitRemoved waits for n's Serve to return ErrRemoved (it applied its own removal), and marks
// it stopped for the cluster's cleanup.
func (tc *testCluster) awaitRemoved(n *Node) {
	tc.t.Helper()
	i := slices.Index(tc.nodes, n)
	select {
	case err := <-tc.done[i]:
		if !errors.Is(err, ErrRemoved) {
			tc.t.Fatalf("%s's Serve returned %v, want ErrRemoved", n.cfg.ID, err)
		}
	case <-time.After(20 * time.Second):
		tc.t.Fatalf("%s did not stop within 20s of its removal", n.cfg.ID)
	}
	tc.cancel[i], tc.done[i] = func() {}, closedDone()
}

// A member that stays away holds the purge horizon back (its last watermark is old); removing
// it, through any node, lets deleted keys be purged, and takes it out of Raft, the members table
// and the status answer. Removing it again succeeds; an unknown id is a 404.
func TestRemovingAnAbsentMemberUnblocksPurging(t *testing.T) {
	tc := startCluster(t, 3, func(i int, c *Config) {
		c.PurgeInterval = 100 * time.Millisecond
		c.purgeHeldAfter = time.Second
		c.DeadCommitDelay = 500 * time.Millisecond
	})
	leader, _ := tc.leaderAndFollower()
	victim := 0
	for tc.nodes[victim] == leader {
		victim++
	}
	gone := tc.nodes[victim].cfg.ID
	var live []*Node
	for i, n := range tc.nodes {
		if i != victim {
			live = append(live, n)
		}
	}
	// A first delete, purged once all three reported: the victim then has a watermark, so what
	// blocks the next purge is an old report, not a missing one.
	for _, method := range []string{"PUT", "DELETE"} {
		if r := do(t, method, live[0], "/v1/kv/first", "v"); r.status != 200 {
			t.Fatalf("%s first: %d %s", method, r.status, r.body)
		}
	}
	waitUntil(t, "the first tombstone to be purged", 20*time.Second, func() bool {
		ps, err := leader.purgeState()
		return err == nil && ps.pending == 0 && len(ps.blockedBy) == 0
	})
	if len(leader.memberTable()) != 3 {
		t.Fatalf("purged before every voter registered: members %v", leader.memberTable())
	}
	tc.cancel[victim]()
	<-tc.done[victim]
	tc.cancel[victim], tc.done[victim] = func() {}, closedDone()

	if r := do(t, "PUT", live[0], "/v1/kv/doomed", "v"); r.status != 200 {
		t.Fatalf("put: %d %s", r.status, r.body)
	}
	if r := do(t, "DELETE", live[0], "/v1/kv/doomed?consistency=strong", ""); r.status != 200 {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	// The survivors keep reporting; the tombstone still waits for the absent member.
	waitUntil(t, "status to show the absent member holding purging back", 20*time.Second, func() bool {
		var sr client.StatusResponse
		r := do(t, "GET", leader, "/v1/status", "")
		if json.Unmarshal([]byte(r.body), &sr) != nil || sr.Purge == nil {
			return false
		}
		_, held := sr.Purge.HeldBackBy[gone]
		return sr.Purge.PendingTombstones == 1 && held && len(sr.Purge.HeldBackBy) == 1
	})
	// Let the leader propose several purges (one per PurgeInterval while a tombstone waits and
	// every member has reported): none may take the tombstone.
	from := leader.store.AppliedIndex()
	waitUntil(t, "several purge rounds", 20*time.Second, func() bool { return leader.store.AppliedIndex() >= from+5 })
	if pending, _, _ := leader.store.PurgeStatus(); pending != 1 {
		t.Fatalf("the tombstone was purged while member %s, which never saw it, was away", gone)
	}

	// Through a follower: the request is forwarded to the leader.
	via := live[0]
	if via == leader {
		via = live[1]
	}
	// With the victim down, removing the other follower would leave the leader and the victim:
	// no quorum answers, so it is refused and nothing changes.
	unsafe := do(t, "DELETE", leader, "/v1/cluster/members/"+via.cfg.ID, "")
	if unsafe.status != 503 || errCode(t, unsafe) != client.CodeUnavailable || !strings.Contains(unsafe.body, gone+" not") {
		t.Fatalf("removing %s while %s is down: %d %s, want 503 naming %s", via.cfg.ID, gone, unsafe.status, unsafe.body, gone)
	}
	if got := voters(t, leader); len(got) != 3 {
		t.Fatalf("a refused removal changed the voters: %v", got)
	}
	waitUntil(t, "gossip to have "+gone+" gone", 20*time.Second, func() bool { return leader.goneInGossip(gone) })
	if r := do(t, "DELETE", via, "/v1/cluster/members/"+gone, ""); r.status != 200 {
		t.Fatalf("remove %s via %s: %d %s", gone, via.cfg.ID, r.status, r.body)
	}
	for _, n := range live {
		if got := voters(t, n); slices.Contains(got, gone) || len(got) != 2 {
			t.Errorf("%s: voters after removing %s = %v", n.cfg.ID, gone, got)
		}
	}
	waitUntil(t, "the tombstone to be purged on both survivors", 20*time.Second, func() bool {
		for _, n := range live {
			if ps, err := n.purgeState(); err != nil || ps.pending != 0 || len(ps.blockedBy) != 0 {
				return false
			}
			if _, ok := n.memberTable()[gone]; ok || !n.removedMembers()[gone] {
				return false
			}
		}
		return true
	})
	st := do(t, "GET", via, "/v1/status", "")
	var sr client.StatusResponse
	if err := json.Unmarshal([]byte(st.body), &sr); err != nil || len(sr.Nodes) != 2 || sr.Purge != nil {
		t.Fatalf("status after the removal: %v %s", err, st.body)
	}
	for _, ns := range sr.Nodes {
		if ns.ID == gone {
			t.Errorf("status still lists %s: %s", gone, st.body)
		}
	}
	waitUntil(t, "gossip on both survivors to forget "+gone, 20*time.Second, func() bool {
		for _, n := range live {
			for _, m := range n.gossip.Members() {
				if m.ID == gone {
					return false
				}
			}
		}
		return true
	})
	// Strong writes still work with the two left.
	if r := do(t, "PUT", via, "/v1/kv/after", "v"); r.status != 200 {
		t.Fatalf("put after the removal: %d %s", r.status, r.body)
	}
	if again := do(t, "DELETE", via, "/v1/cluster/members/"+gone, ""); again.status != 200 {
		t.Errorf("removing %s again (as after a lost answer): %d %s, want 200", gone, again.status, again.body)
	}
	if r := do(t, "DELETE", via, "/v1/cluster/members/"+via.cfg.ID+"x", ""); r.status != 404 {
		t.Errorf("removing an unknown id: %d %s, want 404", r.status, r.body)
	}
}

// A member removed while it runs learns it from the log and stops (Serve returns ErrRemoved),
// handing the eventual writes it holds uncommitted to the leader first; its data directory then
// refuses to start. The leader itself can be removed: it hands leadership over first.
func TestRemovedLiveMembersStop(t *testing.T) {
	// No committer and no anti-entropy: a write put straight into a node's tentative layer
	// reaches the others only if that node hands it over.
	tc := startCluster(t, 3, func(i int, c *Config) {
		c.disableCommitter = true
		c.Gossip.AntiEntropyInterval = time.Hour
	})
	leader, follower := tc.leaderAndFollower()
	waitUntil(t, "every member to register", 20*time.Second, func() bool { return len(leader.memberTable()) == 3 })
	held := replication.Write{Key: "held", Value: consistency.Value{Version: follower.clock.Now(), Data: []byte("v")}}
	if _, err := follower.store.MergeTentative([]replication.Write{held}); err != nil {
		t.Fatal(err)
	}
	if r := do(t, "GET", leader, "/v1/kv/held?consistency=eventual", ""); r.status != 404 {
		t.Fatalf("the held write reached the leader before the removal (the test needs it not to): %d", r.status)
	}
	stopped := func(n *Node) {
		t.Helper()
		tc.awaitRemoved(n)
		select {
		case <-n.Removed():
		default:
			t.Errorf("%s stopped but Removed() is open", n.cfg.ID)
		}
		if _, err := New(n.cfg); !errors.Is(err, ErrRemoved) {
			t.Errorf("starting removed %s again: %v, want ErrRemoved", n.cfg.ID, err)
		}
	}

	if r := do(t, "DELETE", leader, "/v1/cluster/members/"+follower.cfg.ID, ""); r.status != 200 {
		t.Fatalf("remove follower %s: %d %s", follower.cfg.ID, r.status, r.body)
	}
	stopped(follower)
	if r := do(t, "GET", leader, "/v1/kv/held?consistency=strong", ""); r.status != 200 || r.body != "v" {
		t.Errorf("the removed node's uncommitted write after it stopped: %d %q, want it committed", r.status, r.body)
	}

	// Now the leader, asked directly: two voters left, so one remains.
	var other *Node
	for _, n := range tc.nodes {
		if n != leader && n != follower {
			other = n
		}
	}
	if r := do(t, "DELETE", leader, "/v1/cluster/members/"+leader.cfg.ID, ""); r.status != 200 {
		t.Fatalf("remove the leader %s: %d %s", leader.cfg.ID, r.status, r.body)
	}
	stopped(leader)
	if got := voters(t, other); !slices.Equal(got, []string{other.cfg.ID}) {
		t.Errorf("voters left = %v, want only %s", got, other.cfg.ID)
	}
	waitUntil(t, other.cfg.ID+" to lead alone", 20*time.Second, func() bool { return other.raft.IsLeader() })
	if r := do(t, "PUT", other, "/v1/kv/alone", "v"); r.status != 200 {
		t.Fatalf("put on the last member: %d %s", r.status, r.body)
	}
	last := do(t, "DELETE", other, "/v1/cluster/members/"+other.cfg.ID, "")
	if last.status != 400 || errCode(t, last) != client.CodeBadRequest {
		t.Errorf("removing the last member: %d %s, want 400", last.status, last.body)
	}
}

// A node removed while it was down does not get the log that removes it. Restarted from its
// old data it finds no leader, asks its peers, is told, and stops for good. Started again from
// an empty data directory with --join, the same id is a member again.
func TestMemberRemovedWhileDownLearnsItFromPeersAndCanRejoinFresh(t *testing.T) {
	tc := startCluster(t, 3, func(i int, c *Config) { c.DeadCommitDelay = 500 * time.Millisecond })
	leader, victim := tc.leaderAndFollower()
	i := slices.Index(tc.nodes, victim)
	cfg := victim.cfg
	waitUntil(t, "every member to register", 20*time.Second, func() bool { return len(leader.memberTable()) == 3 })
	tc.cancel[i]()
	if err := <-tc.done[i]; err != nil {
		t.Fatal(err)
	}
	tc.cancel[i], tc.done[i] = func() {}, closedDone()
	// Down, but not yet for DeadCommitDelay in gossip: it may only be cut off from the leader,
	// and still taking writes it could not hand over, so the removal is refused.
	if r := do(t, "DELETE", leader, "/v1/cluster/members/"+cfg.ID, ""); r.status != 503 && !leader.goneInGossip(cfg.ID) {
		t.Fatalf("remove %s just after it went down: %d %s, want 503 until gossip has it gone", cfg.ID, r.status, r.body)
	}
	waitUntil(t, "gossip to have "+cfg.ID+" gone", 20*time.Second, func() bool { return leader.goneInGossip(cfg.ID) })
	if r := do(t, "DELETE", leader, "/v1/cluster/members/"+cfg.ID, ""); r.status != 200 {
		t.Fatalf("remove %s while it is down: %d %s", cfg.ID, r.status, r.body)
	}
	if r := do(t, "GET", leader, "/v1/cluster/members/"+cfg.ID, ""); r.status != 410 || errCode(t, r) != client.CodeRemoved {
		t.Fatalf("GET the removed member: %d %s, want 410 removed", r.status, r.body)
	}

	stale := `{"id":"` + cfg.ID + `","raft_addr":"127.0.0.1:1","http_addr":"127.0.0.1:2"}`
	if r := do(t, "POST", leader, "/v1/cluster/join", stale); r.status != 410 || errCode(t, r) != client.CodeRemoved {
		t.Fatalf("a join under the removed id from old data: %d %s, want 410 removed", r.status, r.body)
	}

	// Back from its old data, at a new Raft address so that no leftover replication from the
	// leader can reach it: only its peers can tell it.
	cfg.Raft.RaftAddr = freeAddr(t)
	cfg.HTTPAddr = ""
	zombie, cancel, done := startNode(t, cfg)
	defer cancel()
	select {
	case err := <-done:
		if !errors.Is(err, ErrRemoved) {
			t.Fatalf("the removed node's Serve returned %v, want ErrRemoved", err)
		}
	case <-time.After(askPeersAfter + 20*time.Second):
		t.Fatal("the node removed while down did not learn it")
	}
	if zombie.removedMembers()[cfg.ID] {
		t.Error("the test needs the node to learn from its peers, but the log reached it")
	}
	if _, err := New(zombie.cfg); !errors.Is(err, ErrRemoved) || !strings.Contains(err.Error(), "said so") {
		t.Fatalf("starting it again: %v, want ErrRemoved with who said so", err)
	}

	// Wiped, it joins again under the same id.
	if err := os.RemoveAll(cfg.DataDir); err != nil {
		t.Fatal(err)
	}
	cfg.Raft.Bootstrap = nil
	cfg.Join = leader.HTTPAddr()
	cfg.Raft.RaftAddr = freeAddr(t)
	cfg.HTTPAddr = ""
	fresh, cancel2, done2 := startNode(t, cfg)
	tc.nodes[i], tc.cancel[i], tc.done[i] = fresh, cancel2, done2
	if r := do(t, "PUT", leader, "/v1/kv/after-rejoin", "v"); r.status != 200 {
		t.Fatalf("put: %d %s", r.status, r.body)
	}
	waitUntil(t, cfg.ID+" to be a voter again and catch up", 30*time.Second, func() bool {
		got, _, err := fresh.store.Get("after-rejoin")
		return err == nil && string(got.Data) == "v" && slices.Contains(voters(t, leader), cfg.ID) && !leader.removedMembers()[cfg.ID] &&
			fresh.joined.Load()
	})
	select {
	case err := <-done2:
		t.Fatalf("the rejoined node stopped: %v", err)
	default:
	}
}

// A running member hands its uncommitted eventual writes over before its removal is proposed:
// once its watermark is gone, purging may pass them, and the log refuses writes older than the
// purge horizon. n3 holds a write no one else has, and purging waits only for n3; after the
// removal the write must be committed.
func TestRemovalHandsWritesOverBeforePurgingCanPassThem(t *testing.T) {
	tc := startCluster(t, 3, func(i int, c *Config) {
		c.PurgeInterval = 100 * time.Millisecond
		c.Gossip.AntiEntropyInterval = time.Hour
		c.disableCommitter = i == 2 // n3 never reports, so purging waits for it alone
	})
	victim := tc.nodes[2]
	if victim.raft.IsLeader() {
		if err := victim.raft.TransferLeadership(); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, "a leader other than n3, and every member registered", 20*time.Second, func() bool {
		id, _ := victim.raft.Leader()
		return id != "" && id != victim.cfg.ID && len(victim.memberTable()) == 3
	})
	leader, _ := tc.leaderAndFollower()
	for _, method := range []string{"PUT", "DELETE"} {
		if r := do(t, method, leader, "/v1/kv/gone", "v"); r.status != 200 {
			t.Fatalf("%s gone: %d %s", method, r.status, r.body)
		}
	}
	held := replication.Write{Key: "held", Value: consistency.Value{Version: victim.clock.Now(), Data: []byte("v")}}
	if _, err := victim.store.MergeTentative([]replication.Write{held}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the two others to report watermarks past the held write", 20*time.Second, func() bool {
		_, reports, err := leader.store.PurgeStatus()
		if err != nil {
			return false
		}
		for id, v := range reports {
			if id != victim.cfg.ID && !v.Newer(held.Value.Version) {
				return false
			}
		}
		return true
	})
	if r := do(t, "DELETE", leader, "/v1/cluster/members/"+victim.cfg.ID, ""); r.status != 200 {
		t.Fatalf("remove n3: %d %s", r.status, r.body)
	}
	waitUntil(t, "the tombstone to be purged", 20*time.Second, func() bool {
		ps, err := leader.purgeState()
		return err == nil && ps.pending == 0
	})
	if r := do(t, "GET", leader, "/v1/kv/held?consistency=strong", ""); r.status != 200 || r.body != "v" {
		t.Errorf("n3's write after its removal and the purge: %d %q, want it committed", r.status, r.body)
	}
}

// A node asked to leave takes no more eventual writes (503 unavailable: the client goes to
// another node) and hands over what it holds, even before any removal.
func TestLeavingNodeRefusesEventualWrites(t *testing.T) {
	tc := startCluster(t, 3, func(i int, c *Config) {
		c.disableCommitter = true
		c.leaveHold = 2 * time.Second
	})
	n := tc.nodes[0]
	if r := do(t, "PUT", n, "/v1/kv/before?consistency=eventual", "v"); r.status != 200 {
		t.Fatalf("eventual put: %d %s", r.status, r.body)
	}
	leave := do(t, "POST", n, "/v1/internal/leave", "")
	if leave.status != 200 || !strings.Contains(leave.body, `"writes": 1`) {
		t.Fatalf("leave: %d %s, want one write handed over", leave.status, leave.body)
	}
	r := do(t, "PUT", n, "/v1/kv/after?consistency=eventual", "v")
	if r.status != 503 || errCode(t, r) != client.CodeUnavailable {
		t.Errorf("eventual put on a leaving node: %d %s, want 503 unavailable", r.status, r.body)
	}
	if r := do(t, "GET", tc.nodes[1], "/v1/kv/before?consistency=strong", ""); r.status != 200 {
		t.Errorf("the handed-over write is not committed: %d %s", r.status, r.body)
	}
	// The removal never comes (the leader that asked died, say): once the hold has passed and
	// the leader says the node is still a member, it takes eventual writes again.
	waitUntil(t, n.cfg.ID+" to take eventual writes again after the hold", 15*time.Second, func() bool {
		return do(t, "PUT", n, "/v1/kv/reopened?consistency=eventual", "v").status == 200
	})
}

// A removal cut short after its CmdRemove committed but before the Raft change (the leader's
// deadline ran out, or it lost leadership) is finished by the leader's next purge tick: the
// member goes out of the Raft configuration too, and stops.
func TestLeaderFinishesARemovalCutShort(t *testing.T) {
	tc := startCluster(t, 3, func(i int, c *Config) { c.PurgeInterval = 100 * time.Millisecond })
	leader, follower := tc.leaderAndFollower()
	waitUntil(t, "every member to register", 20*time.Second, func() bool { return len(leader.memberTable()) == 3 })
	// Only the first half of a removal: the member leaves the members table, not Raft.
	if _, err := leader.raft.Propose(t.Context(), &replication.Command{Type: replication.CmdRemove, Member: replication.Member{ID: follower.cfg.ID}}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the leader to take "+follower.cfg.ID+" out of the Raft configuration", 15*time.Second, func() bool {
		return !slices.Contains(voters(t, leader), follower.cfg.ID)
	})
	tc.awaitRemoved(follower)
	if r := do(t, "PUT", leader, "/v1/kv/after", "v"); r.status != 200 {
		t.Errorf("put on the two members left: %d %s", r.status, r.body)
	}
}

// An eventual write stamped below the purge horizon would be refused by the log: the node says
// so (503) instead of acknowledging it, and the retry is stamped above the horizon and taken.
func TestEventualWriteBelowThePurgeHorizonIsNotAcknowledged(t *testing.T) {
	tc := startCluster(t, 1)
	n := tc.nodes[0]
	future := consistency.Version{Wall: time.Now().Add(time.Hour).UnixNano(), Node: "n9"}
	// A horizon an hour ahead of this node's clock, written straight into its committed layer.
	if err := n.store.Apply(n.store.AppliedIndex(), func(tx *store.Tx) error {
		if err := tx.PutMember(replication.Member{ID: "n9"}); err != nil {
			return err
		}
		if err := tx.Put("old", consistency.Value{Version: consistency.Version{Wall: 1, Node: "n9"}, Tombstone: true}); err != nil {
			return err
		}
		for _, id := range []string{n.cfg.ID, "n9"} {
			if err := tx.SetWatermark(id, future); err != nil {
				return err
			}
		}
		_, err := tx.Purge()
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if h, _ := n.store.PurgeHorizon(); h != future {
		t.Fatalf("horizon %v, want %v", h, future)
	}
	r := do(t, "PUT", n, "/v1/kv/k?consistency=eventual", "v")
	if r.status != 503 || errCode(t, r) != client.CodeUnavailable || !strings.Contains(r.body, "purge horizon") {
		t.Fatalf("eventual write below the horizon: %d %s, want 503", r.status, r.body)
	}
	if r := do(t, "PUT", n, "/v1/kv/k?consistency=eventual", "v"); r.status != 200 {
		t.Errorf("the retry: %d %s, want it taken above the horizon", r.status, r.body)
	}
}

// A member removed while it runs hands over every uncommitted eventual write it holds, whoever
// took it. A write gossip brought it from a peer that is down now is on no other running node:
// its own committer would commit it as a dead peer's only after DeadCommitDelay, and once it
// stops, the write would survive only on the down peer's disk, lost for good if that peer is
// then removed while down, which docs/deploy.md allows ("the others still commit every write
// gossip brought them").
func TestRemovedMemberHandsOverTheWritesOfEveryOrigin(t *testing.T) {
	tc := startCluster(t, 4, func(i int, c *Config) {
		c.Gossip.AntiEntropyInterval = time.Hour
		c.DeadCommitDelay = time.Hour // the holder never commits the down peer's write itself
	})
	leader, _ := tc.leaderAndFollower()
	waitUntil(t, "every member to register", 20*time.Second, func() bool { return len(leader.memberTable()) == 4 })
	var others []*Node
	for _, n := range tc.nodes {
		if n != leader {
			others = append(others, n)
		}
	}
	down, holder := others[0], others[1]
	// down took the write; gossip brought it to holder only (through the path gossip merges by).
	w := replication.Write{Key: "from-down-peer", Value: consistency.Value{Version: down.clock.Now(), Data: []byte("x")}}
	if stored, err := (tentativeStore{holder}).MergeTentative([]replication.Write{w}); err != nil || len(stored) != 1 {
		t.Fatalf("merge on %s: %v %v", holder.cfg.ID, stored, err)
	}
	i := slices.Index(tc.nodes, down)
	tc.cancel[i]()
	<-tc.done[i]
	tc.cancel[i], tc.done[i] = func() {}, closedDone()
	if r := do(t, "DELETE", leader, "/v1/cluster/members/"+holder.cfg.ID, ""); r.status != 200 {
		t.Fatalf("remove %s: %d %s", holder.cfg.ID, r.status, r.body)
	}
	tc.awaitRemoved(holder)
	if r := do(t, "GET", leader, "/v1/kv/"+w.Key+"?consistency=strong", ""); r.status != 200 || r.body != "x" {
		t.Errorf("the write %s held for the down %s, after %s's removal: %d %s, want it committed",
			holder.cfg.ID, down.cfg.ID, holder.cfg.ID, r.status, r.body)
	}
}

// startJoiner starts a node with a new id and an empty data directory that joins the cluster
// through via (--join), and adds it to the cluster.
func (tc *testCluster) startJoiner(id string, via *Node) *Node {
	tc.t.Helper()
	cfg := via.cfg
	cfg.ID = id
	cfg.DataDir = filepath.Join(tc.t.TempDir(), id)
	cfg.Raft.RaftAddr = freeAddr(tc.t)
	cfg.Raft.Bootstrap = nil
	cfg.Join = via.HTTPAddr()
	cfg.HTTPAddr = ""
	cfg.TestFaults = false
	cfg.Gossip.Peers = nil
	for _, n := range tc.nodes {
		cfg.Gossip.Peers = append(cfg.Gossip.Peers, n.gossipAddr())
	}
	n, cancel, done := startNode(tc.t, cfg)
	tc.nodes = append(tc.nodes, n)
	tc.cancel = append(tc.cancel, cancel)
	tc.done = append(tc.done, done)
	return n
}

// pushHorizonAhead makes the purge horizon run ahead of real time by more than minAhead, the
// way a member whose clock runs ahead does: the others' clocks observe its versions, so every
// watermark report runs ahead, and purging a tombstone raises the horizon to the lowest report.
// It returns the horizon.
func pushHorizonAhead(t *testing.T, tc *testCluster, offset string, minAhead time.Duration) consistency.Version {
	t.Helper()
	_, ahead := tc.leaderAndFollower()
	if r := do(t, "PUT", ahead, "/v1/test/faults", `{"clock_offset":"`+offset+`"}`); r.status != 200 {
		t.Fatalf("faults: %d %s", r.status, r.body)
	}
	for _, method := range []string{"PUT", "DELETE"} {
		if r := do(t, method, ahead, "/v1/kv/gone", "v"); r.status != 200 {
			t.Fatalf("%s gone: %d %s", method, r.status, r.body)
		}
	}
	var h consistency.Version
	waitUntil(t, "the tombstone to be purged with a horizon ahead of real time", 20*time.Second, func() bool {
		for _, n := range tc.nodes {
			if _, ok, err := n.store.Get("gone"); err != nil || ok {
				return false
			}
		}
		var err error
		h, err = tc.nodes[0].store.PurgeHorizon()
		return err == nil && time.Unix(0, h.Wall).After(time.Now().Add(minAhead))
	})
	return h
}

// A node that is not yet a member has no watermark covering its writes, and its clock has not
// seen the purge horizon: a write it stamped below the horizon would be refused by every peer and
// by the log, and lost once acknowledged. Here the horizon runs ahead of real time (one member's
// clock is fast) and a fresh node with a correct clock joins; a client writes to it at once,
// trying again while it answers 503 unavailable (as the Go client would try another node). The
// write it acknowledges must be stamped above the horizon and committed, and it must not report
// itself ready while it refuses eventual writes.
func TestJoiningNodeAcknowledgesNoWriteBelowThePurgeHorizon(t *testing.T) {
	tc := startCluster(t, 3, func(i int, c *Config) {
		c.TestFaults = true
		c.PurgeInterval = 100 * time.Millisecond
	})
	leader, _ := tc.leaderAndFollower()
	horizon := pushHorizonAhead(t, tc, "1500ms", 500*time.Millisecond)
	fresh := tc.startJoiner("n4", leader)
	v := awaitEventualPut(t, fresh, "fresh", "x", 30*time.Second)
	if !v.Newer(horizon) {
		t.Fatalf("the joining node acknowledged a write at %v, below the purge horizon %v: the log will refuse it", v, horizon)
	}
	awaitCommitted(t, leader, "fresh", "x")
}

// A node hands over a backlog larger than one committer batch in several batches, each read from
// the tentative layer on its own (a backlog of large values is not read into memory whole), and
// every write of it is committed. The batch bound is scaled down from 4 MiB to 64 KiB, and the
// values with it (12 MiB of writes took 12 s with -race).
func TestHandOverGoesBatchByBatch(t *testing.T) {
	n, value, keys := startWithBacklog(t, "h")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	handed, err := n.handOver(ctx)
	if err != nil || handed != keys {
		t.Fatalf("handOver = %d, %v; want %d", handed, err, keys)
	}
	for i := range keys {
		awaitCommitted(t, n, fmt.Sprintf("h%03d", i), value)
	}
}

// A member removed while down takes its watermark with it, and that watermark covered the writes
// it took: the others' reports must cover those of them gossip brought them. But a report can
// predate the write (reports only move forward, and a member cut off from the leader sends none
// at all): here the holder reported past the down member's write before gossip brought it, and
// is cut off from the leader when the down member is removed. Purging must wait for the holder
// to report again, or the horizon passes the write and the log refuses it once the holder
// submits it: an acknowledged write lost, which docs/deploy.md says removal does not do ("the
// others still commit every write gossip brought them").
func TestRemovalLetsPurgingPassNoWriteAMemberCutOffHolds(t *testing.T) {
	tc := startCluster(t, 5, func(i int, c *Config) {
		c.TestFaults = true
		c.PurgeInterval = 100 * time.Millisecond
		c.DeadCommitDelay = 500 * time.Millisecond
		c.Gossip.AntiEntropyInterval = time.Hour
	})
	leader, _ := tc.leaderAndFollower()
	waitUntil(t, "every member to register", 20*time.Second, func() bool { return len(leader.memberTable()) == 5 })
	var others []*Node
	for _, n := range tc.nodes {
		if n != leader {
			others = append(others, n)
		}
	}
	down, holder := others[0], others[1]
	// A tombstone waits, so every member reports a watermark each second.
	for _, method := range []string{"PUT", "DELETE"} {
		if r := do(t, method, leader, "/v1/kv/gone", "v"); r.status != 200 {
			t.Fatalf("%s gone: %d %s", method, r.status, r.body)
		}
	}
	// down took a write (acknowledged: its own copy is on its disk, lost with it below).
	w := replication.Write{Key: "taken-by-down", Value: consistency.Value{Version: down.clock.Now(), Data: []byte("x")}}
	i := slices.Index(tc.nodes, down)
	tc.cancel[i]()
	<-tc.done[i]
	tc.cancel[i], tc.done[i] = func() {}, closedDone()
	waitUntil(t, "the holder's report to pass the write", 20*time.Second, func() bool {
		_, reports, err := leader.store.PurgeStatus()
		return err == nil && reports[holder.cfg.ID].Newer(w.Value.Version)
	})
	// The holder is cut off from the leader, then gossip brings it the write, late.
	cut(t, holder, leader, others[2], others[3], down)
	if stored, err := (tentativeStore{holder}).MergeTentative([]replication.Write{w}); err != nil || len(stored) != 1 {
		t.Fatalf("merge on %s: %v %v", holder.cfg.ID, stored, err)
	}
	waitUntil(t, down.cfg.ID+" dead in the leader's gossip", 20*time.Second, func() bool { return leader.goneInGossip(down.cfg.ID) })
	if r := do(t, "DELETE", leader, "/v1/cluster/members/"+down.cfg.ID, ""); r.status != 200 {
		t.Fatalf("remove %s: %d %s", down.cfg.ID, r.status, r.body)
	}
	// Thirty purge rounds while the holder is cut off (or until the tombstone goes).
	for end := time.Now().Add(30 * 100 * time.Millisecond); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if ps, err := leader.purgeState(); err == nil && ps.pending == 0 {
			break
		}
	}
	if h, _ := leader.store.PurgeHorizon(); h.Newer(w.Value.Version) {
		t.Errorf("purge horizon %v passed the write %v that %s holds, cut off", h, w.Value.Version, holder.cfg.ID)
	}
	if r := do(t, "DELETE", holder, "/v1/test/faults", ""); r.status != 200 {
		t.Fatalf("heal: %d", r.status)
	}
	waitUntil(t, "the write committed once the holder is back", 20*time.Second, func() bool {
		r := do(t, "GET", leader, "/v1/kv/"+w.Key+"?consistency=strong", "")
		return r.status == 200 && r.body == "x"
	})
	waitUntil(t, "the tombstone purged after all", 20*time.Second, func() bool {
		ps, err := leader.purgeState()
		return err == nil && ps.pending == 0
	})
}
