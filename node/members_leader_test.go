package node

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dialkv/dialkv/client"
	"github.com/dialkv/dialkv/replication"
)

// stallableApplies lets a test stall the state machines of chosen nodes of a cluster (their
// Raft logs go on growing, their committed layers do not move) and release them all at once.
type stallableApplies struct {
	stalled [8]atomic.Bool
	gate    chan struct{}
	once    sync.Once
}

func newStallableApplies(t *testing.T) *stallableApplies {
	s := &stallableApplies{gate: make(chan struct{})}
	// Released before the cluster stops (cleanups run last first): a stalled node cannot shut
	// its Raft down.
	t.Cleanup(s.release)
	return s
}

// tweak is a startCluster tweak that makes node i's state machine wait while it is stalled.
func (s *stallableApplies) tweak(i int, c *Config) {
	c.Raft.BeforeApply = func() {
		if s.stalled[i].Load() {
			<-s.gate
		}
	}
}

func (s *stallableApplies) release() { s.once.Do(func() { close(s.gate) }) }

// othersThan returns the cluster's nodes but those given.
func (tc *testCluster) othersThan(but ...*Node) []*Node {
	var out []*Node
	for _, n := range tc.nodes {
		if !slices.Contains(but, n) {
			out = append(out, n)
		}
	}
	return out
}

// A leader that just took over has not necessarily applied everything committed before it: its
// state machine may lag its log. A join decided from that state lets a removed id back in from
// its old data (the removal is not applied there yet), which only a node started from an empty
// data directory may do (docs/deploy.md). Here the state machines of the two followers that
// stay stall before the leader removes a third follower: they hold its removal in their logs
// but have not applied it. The leader stops, one of them takes over, and it is asked to let the
// removed id join at new addresses from old data (as that node, cut off from its removal and
// restarted there, asks). It must answer 410 removed, and never make the id a voter again.
func TestNewLeaderDecidesAJoinOnlyOnceItAppliedWhatWasCommitted(t *testing.T) {
	stall := newStallableApplies(t)
	tc := startCluster(t, 4, kvdRaftTimings, stall.tweak, func(i int, c *Config) { c.LeaderWait = 20 * time.Second })
	leader, victim := tc.leaderAndFollower()
	waitUntil(t, "every member to register", 20*time.Second, func() bool { return len(leader.memberTable()) == 4 })
	stayers := tc.othersThan(leader, victim)
	for _, n := range stayers {
		stall.stalled[slices.Index(tc.nodes, n)].Store(true)
	}

	if r := do(t, "DELETE", leader, "/v1/cluster/members/"+victim.cfg.ID, ""); r.status != 200 {
		t.Fatalf("remove %s: %d %s", victim.cfg.ID, r.status, r.body)
	}
	tc.awaitRemoved(victim)
	tc.stopNode(slices.Index(tc.nodes, leader))
	var next *Node
	waitUntil(t, "one of the two left to take over", 30*time.Second, func() bool {
		for _, n := range stayers {
			if n.raft.IsLeader() {
				next = n
				return true
			}
		}
		return false
	})
	if next.removedMembers()[victim.cfg.ID] {
		t.Fatalf("the new leader %s applied the removal of %s: the test needs its state machine to lag", next.cfg.ID, victim.cfg.ID)
	}

	body, _ := json.Marshal(client.JoinRequest{ID: victim.cfg.ID, RaftAddr: freeAddr(t), HTTPAddr: freeAddr(t)})
	answer := make(chan reply, 1)
	go func() {
		r, err := tryDo("POST", next, "/v1/cluster/join", string(body))
		if err != nil {
			r = reply{body: err.Error()}
		}
		answer <- r
	}()
	// The window in which a leader that decides from its lagging state re-adds the voter.
	readded := false
	for deadline := time.Now().Add(3 * time.Second); !readded && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		readded = slices.Contains(voters(t, next), victim.cfg.ID)
	}
	if readded {
		t.Errorf("the new leader made the removed %s a voter again while its state machine lagged", victim.cfg.ID)
	}
	stall.release()
	var r reply
	select {
	case r = <-answer:
	case <-time.After(30 * time.Second):
		t.Fatal("the join was not answered")
	}
	if r.status != 410 || errCode(t, r) != client.CodeRemoved {
		t.Errorf("a join under the removed %s from old data, asked of a new leader: %d %s, want 410 removed", victim.cfg.ID, r.status, r.body)
	}
	waitUntil(t, "the new leader to apply what was committed", 20*time.Second, func() bool { return next.raft.LeaderReady() })
	st := next.memberState()
	if _, ok := st.members[victim.cfg.ID]; ok || !st.removed[victim.cfg.ID] {
		t.Errorf("%s after the join: in the members table %v, marked removed %v; want removed", victim.cfg.ID, ok, st.removed[victim.cfg.ID])
	}
}

// Two processes under one id would both answer as that voter: each votes once per term and
// acknowledges entries, so an entry acknowledged by one copy and a vote from the other break the
// overlap of Raft's quorums (a committed entry can be lost), and each copy re-registers its own
// addresses in turn for ever. A join under the id of a member that answers, as that id, at its
// recorded address is refused (409 conflict), whether the newcomer starts empty or not, and the
// member keeps its addresses. (A member restarted at new addresses no longer answers at the old
// one, and gets in: TestFollowerRestartedAtNewAddressesRejoins.)
func TestJoinUnderTheIDOfARunningMemberIsRefused(t *testing.T) {
	tc := startCluster(t, 3, kvdRaftTimings)
	leader, f := tc.leaderAndFollower()
	waitUntil(t, "every member to register", 20*time.Second, func() bool { return len(leader.memberTable()) == 3 })
	before, _ := leader.raft.Servers()
	for _, target := range []*Node{f, leader} {
		for _, fresh := range []bool{true, false} {
			body, _ := json.Marshal(client.JoinRequest{ID: target.cfg.ID, RaftAddr: freeAddr(t), HTTPAddr: freeAddr(t), Fresh: fresh})
			if r := do(t, "POST", f, "/v1/cluster/join", string(body)); r.status != 409 || errCode(t, r) != client.CodeConflict {
				t.Errorf("a join (fresh %v) under the id of the running %s: %d %s, want 409 conflict", fresh, target.cfg.ID, r.status, r.body)
			}
		}
	}
	if after, _ := leader.raft.Servers(); !slices.Equal(before, after) {
		t.Errorf("the Raft configuration moved: %v, was %v", after, before)
	}
	for _, n := range []*Node{f, leader} {
		if got := leader.memberTable()[n.cfg.ID]; got != n.self() {
			t.Errorf("%s is recorded at %v, want %v", n.cfg.ID, got, n.self())
		}
	}
}

// A member's recorded HTTP address can come to be another node's: a member down, and another
// restarted at the address it had (a recycled pod IP). Removing the down member before gossip
// has had it dead for --dead-commit-delay asks it to hand its writes over at that address: the
// node there is not it, and must neither stop taking eventual writes for a removal that is not
// its own nor pass for the member having handed its writes over: the removal is refused (503
// unavailable, as for a member the leader cannot reach). Status shows the member down, not the
// other node's status under its id.
func TestRemovalAsksNoOtherNodeToLeaveAtTheMembersAddress(t *testing.T) {
	tc := startCluster(t, 3, kvdRaftTimings, func(i int, c *Config) { c.DeadCommitDelay = time.Minute })
	leader, moved := tc.leaderAndFollower()
	waitUntil(t, "every member to register", 20*time.Second, func() bool { return len(leader.memberTable()) == 3 })
	down := tc.othersThan(leader, moved)[0]
	oldAddr := down.HTTPAddr()
	tc.stopNode(slices.Index(tc.nodes, down))
	cfg := tc.stopNode(slices.Index(tc.nodes, moved))
	cfg.HTTPAddr = oldAddr
	moved = tc.startNodeAt(slices.Index(tc.nodes, moved), cfg)
	waitUntil(t, moved.cfg.ID+" to be recorded at "+oldAddr, 20*time.Second, func() bool {
		return leader.memberTable()[moved.cfg.ID].HTTPAddr == oldAddr && moved.joined.Load()
	})
	if leader.goneInGossip(down.cfg.ID) {
		t.Fatalf("gossip has %s gone already: the test needs it not to", down.cfg.ID)
	}

	var st client.StatusResponse
	if err := json.Unmarshal([]byte(do(t, "GET", leader, "/v1/status", "").body), &st); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, ns := range st.Nodes {
		ids = append(ids, ns.ID)
		if ns.ID == down.cfg.ID && ns.Health != "down" {
			t.Errorf("status of %s: %+v, want it down", ns.ID, ns)
		}
	}
	if want := []string{leader.cfg.ID, down.cfg.ID, moved.cfg.ID}; !slices.Equal(slices.Sorted(slices.Values(ids)), slices.Sorted(slices.Values(want))) {
		t.Errorf("status lists %v, want %v", ids, want)
	}

	r := do(t, "DELETE", leader, "/v1/cluster/members/"+down.cfg.ID, "")
	if r.status != 503 || errCode(t, r) != client.CodeUnavailable {
		t.Errorf("remove %s, whose address %s is %s's now: %d %s, want 503 unavailable", down.cfg.ID, oldAddr, moved.cfg.ID, r.status, r.body)
	}
	if w := do(t, "PUT", moved, "/v1/kv/still-taking?consistency=eventual", "v"); w.status != 200 {
		t.Errorf("an eventual write on %s after the removal of %s: %d %s, want it taken", moved.cfg.ID, down.cfg.ID, w.status, w.body)
	}
}

// A join naming a Raft address that the configuration has under another id (a machine replaced
// at the address of a member not yet removed) is refused by Raft, and changes nothing: the
// answer says so (409 conflict, naming the member), not that the outcome is unknown and the
// cluster may have lost its quorum.
func TestJoinAtAnotherMembersRaftAddressIsAConflict(t *testing.T) {
	tc := startCluster(t, 3, kvdRaftTimings)
	leader, f := tc.leaderAndFollower()
	waitUntil(t, "every member to register", 20*time.Second, func() bool { return len(leader.memberTable()) == 3 })
	body, _ := json.Marshal(client.JoinRequest{ID: "n9", RaftAddr: f.cfg.Raft.RaftAddr, HTTPAddr: freeAddr(t), Fresh: true})
	r := do(t, "POST", f, "/v1/cluster/join", string(body))
	if r.status != 409 || errCode(t, r) != client.CodeConflict || !strings.Contains(r.body, f.cfg.ID) {
		t.Errorf("a join at %s's Raft address: %d %s, want 409 conflict naming %s", f.cfg.ID, r.status, r.body, f.cfg.ID)
	}
	if got := voters(t, leader); len(got) != 3 {
		t.Errorf("voters %v after the refused join", got)
	}
}

// A removal whose caller gave up while it was on its way to the log (outcome unknown, which
// releases membershipMu) may be appended, or queued to be, and not applied: the leader's state
// then does not show it. A purge decided from that state lands in the log after the removal and
// goes ahead without the round of fresh reports the removal calls for (reportsSinceRemoval),
// and can pass a write gossip brought from the removed member. Here the leader's state machine
// stalls while it proposes the removal (as removeMember does once its checks pass) and its
// caller gives up; the leader is then asked for a purge. Once everything is applied, the
// tombstone must still be there, and go only once the members left reported again.
func TestPurgeWaitsForARemovalWhoseOutcomeIsUnknown(t *testing.T) {
	stall := newStallableApplies(t)
	tc := startCluster(t, 3, kvdRaftTimings, stall.tweak, func(i int, c *Config) {
		c.PurgeInterval = time.Hour // the test asks for purges itself
		// Proposals go on being appended while the leader's state machine stalls, rather
		// than wait in the queue until their callers give up (then they are never proposed).
		c.Raft.ProposalInflight = 1000
	})
	leader, victim := tc.leaderAndFollower()
	waitUntil(t, "every member to register", 20*time.Second, func() bool { return len(leader.memberTable()) == 3 })
	for _, method := range []string{"PUT", "DELETE"} {
		if r := do(t, method, leader, "/v1/kv/gone", "v"); r.status != 200 {
			t.Fatalf("%s gone: %d %s", method, r.status, r.body)
		}
	}
	mark := leader.clock.Now()
	waitUntil(t, "every member to report past the tombstone", 20*time.Second, func() bool {
		ps, err := leader.purgeState()
		_, reports, rerr := leader.store.PurgeStatus()
		if err != nil || rerr != nil || ps.pending != 1 || len(ps.blockedBy) > 0 || len(reports) != 3 {
			return false
		}
		for _, v := range reports {
			if !v.Newer(mark) {
				return false
			}
		}
		return true
	})

	stall.stalled[slices.Index(tc.nodes, leader)].Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	_, err := leader.propose(ctx, &replication.Command{Type: replication.CmdRemove, Member: replication.Member{ID: victim.cfg.ID}})
	cancel()
	if !errors.Is(err, replication.ErrOutcomeUnknown) {
		t.Fatalf("the removal of %s with the leader's state machine stalled: %v, want outcome unknown", victim.cfg.ID, err)
	}
	if leader.removedMembers()[victim.cfg.ID] {
		t.Fatalf("the leader applied the removal of %s: the test needs it unapplied", victim.cfg.ID)
	}
	ctx, cancel = context.WithTimeout(context.Background(), time.Second)
	leader.proposePurge(ctx)
	cancel()
	stall.release()

	ctx, cancel = context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := leader.applyCommitted(ctx); err != nil {
		t.Fatal(err)
	}
	if !leader.removedMembers()[victim.cfg.ID] {
		t.Fatalf("the removal of %s was not applied", victim.cfg.ID)
	}
	if pending, _, _ := leader.store.PurgeStatus(); pending != 1 {
		t.Fatalf("a purge asked for while the removal of %s was on its way went ahead without fresh reports: %d tombstones left, want 1", victim.cfg.ID, pending)
	}
	waitUntil(t, "the tombstone purged once the members left reported again", 20*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		leader.proposePurge(ctx)
		pending, _, err := leader.store.PurgeStatus()
		return err == nil && pending == 0
	})
}
