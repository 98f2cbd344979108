package strong

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/dialkv/dialkv/consistency"
	"github.com/dialkv/dialkv/replication"
	"github.com/dialkv/dialkv/replication/store"
)

// testNode is one engine over an in-memory transport, restartable on the same directory.
type testNode struct {
	id    string
	dir   string
	addr  raft.ServerAddress
	trans *raft.InmemTransport
	store *store.Store
	eng   *Engine
}

type testCluster struct {
	t     *testing.T
	nodes []*testNode
	cfg   func(*Config)
}

func fastConfig() Config {
	c := DefaultConfig()
	c.HeartbeatTimeout = 200 * time.Millisecond
	c.ElectionTimeout = 200 * time.Millisecond
	c.LeaderLeaseTimeout = 150 * time.Millisecond
	c.CommitTimeout = 5 * time.Millisecond
	return c
}

// kvdTimings gives c kvd's heartbeat, election and lease timeouts in place of fastConfig's short
// ones, for a test that is not about elections: on a loaded machine (-race, both cores busy) the
// short ones depose leaders mid-test.
func kvdTimings(c *Config) {
	d := DefaultConfig()
	c.HeartbeatTimeout, c.ElectionTimeout, c.LeaderLeaseTimeout = d.HeartbeatTimeout, d.ElectionTimeout, d.LeaderLeaseTimeout
}

func newTestCluster(t *testing.T, n int, tweak func(*Config)) *testCluster {
	t.Helper()
	tc := &testCluster{t: t, cfg: tweak}
	var peers []Peer
	for i := 1; i <= n; i++ {
		id := fmt.Sprintf("n%d", i)
		addr, trans := raft.NewInmemTransport(raft.ServerAddress(id))
		tc.nodes = append(tc.nodes, &testNode{id: id, dir: t.TempDir(), addr: addr, trans: trans})
		peers = append(peers, Peer{ID: id, Addr: string(addr)})
	}
	tc.connectAll()
	for _, nd := range tc.nodes {
		tc.start(nd, peers)
	}
	t.Cleanup(func() {
		for _, nd := range tc.nodes {
			tc.stop(nd)
		}
	})
	return tc
}

func (tc *testCluster) connectAll() {
	for _, a := range tc.nodes {
		for _, b := range tc.nodes {
			if a != b {
				a.trans.Connect(b.addr, b.trans)
			}
		}
	}
}

func (tc *testCluster) start(nd *testNode, bootstrap []Peer) {
	tc.t.Helper()
	st, err := store.Open(filepath.Join(nd.dir, "state.db"), store.Options{OpenTimeout: time.Second, InitialMmapSize: 1 << 20})
	if err != nil {
		tc.t.Fatal(err)
	}
	// Shutdown closed the transport's outbound links: restore them.
	for _, other := range tc.nodes {
		if other != nd {
			nd.trans.Connect(other.addr, other.trans)
		}
	}
	cfg := fastConfig()
	cfg.NodeID, cfg.Dir, cfg.Bootstrap, cfg.Transport = nd.id, nd.dir, bootstrap, nd.trans
	if tc.cfg != nil {
		tc.cfg(&cfg)
	}
	eng, err := Open(cfg, st, consistency.NewClock(nd.id, nil))
	if err != nil {
		st.Close()
		tc.t.Fatal(err)
	}
	nd.store, nd.eng = st, eng
}

func (tc *testCluster) stop(nd *testNode) {
	if nd.eng == nil {
		return
	}
	nd.eng.Shutdown()
	nd.store.Close()
	nd.eng, nd.store = nil, nil
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (tc *testCluster) leader() *testNode {
	tc.t.Helper()
	var leader *testNode
	waitFor(tc.t, "a leader", 10*time.Second, func() bool {
		for _, nd := range tc.nodes {
			if nd.eng != nil && nd.eng.IsLeader() {
				leader = nd
				return true
			}
		}
		return false
	})
	return leader
}

// followerOf is a node of the cluster other than leader.
func (tc *testCluster) followerOf(leader *testNode) *testNode {
	for _, nd := range tc.nodes {
		if nd != leader {
			return nd
		}
	}
	tc.t.Fatal("the cluster has no node but the leader")
	return nil
}

// snapshotEndingInBarriers appends barriers, entries the state machine never sees, at the end of
// nd's log, has nd take a snapshot, and returns its commit index, which the store's applied index
// (moved by commands only) is then below; it fails the test when it is not, as nothing would
// then exercise such entries.
func snapshotEndingInBarriers(t *testing.T, nd *testNode, barriers int) uint64 {
	t.Helper()
	for range barriers {
		if err := nd.eng.await(nd.eng.raft.Barrier(5 * time.Second)); err != nil {
			t.Fatalf("barrier: %v", err)
		}
	}
	if err := nd.eng.Snapshot(); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	commit := nd.eng.CommitIndex()
	if applied := nd.store.AppliedIndex(); applied >= commit {
		t.Fatalf("the log does not end in entries the state machine skips (applied %d, commit %d): the test does not exercise them", applied, commit)
	}
	return commit
}

// stopTornAndCutOff stops victim, marks its state.db as torn by a crash (a dirty mark from an
// earlier boot), so that the next start rebuilds it from the snapshot and the log, and cuts the
// others' links to it, so that what it serves then comes from its own disk, not the leader.
func (tc *testCluster) stopTornAndCutOff(victim *testNode) {
	tc.t.Helper()
	tc.stop(victim)
	mark := filepath.Join(victim.dir, "state.db") + ".mark"
	if err := os.WriteFile(mark, []byte("boot=an-earlier-boot\nstate=dirty\n"), 0o600); err != nil {
		tc.t.Fatal(err)
	}
	for _, nd := range tc.nodes {
		if nd != victim {
			nd.trans.Disconnect(victim.addr)
		}
	}
}

func mustPropose(t *testing.T, nd *testNode, key, value string) replication.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := nd.eng.Propose(ctx, &replication.Command{Type: replication.CmdPut, Key: key, Value: []byte(value), Stamp: consistency.NewClock(nd.id, nil).Now()})
	if err != nil {
		t.Fatalf("propose %s=%s on %s: %v", key, value, nd.id, err)
	}
	return res
}

// propose writes through whichever node leads, following leadership changes (a loaded machine
// can make a short-timeout test cluster re-elect) until the deadline.
func (tc *testCluster) propose(key, value string) {
	tc.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		leader := tc.leader()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := leader.eng.Propose(ctx, &replication.Command{Type: replication.CmdPut, Key: key, Value: []byte(value), Stamp: consistency.NewClock(leader.id, nil).Now()})
		cancel()
		if err == nil {
			return
		}
		if !errors.Is(err, replication.ErrNotLeader) || time.Now().After(deadline) {
			tc.t.Fatalf("propose %s=%s: %v", key, value, err)
		}
	}
}

func valueOn(nd *testNode, key string) string {
	v, ok, err := nd.store.Get(key)
	if err != nil || !ok || v.Tombstone {
		return ""
	}
	return string(v.Data)
}

func TestReplicatesAndReadsLinearizably(t *testing.T) {
	tc := newTestCluster(t, 3, nil)
	leader := tc.leader()
	res := mustPropose(t, leader, "a", "1")
	if res.Version.IsZero() {
		t.Fatal("write returned no version")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	index, err := leader.eng.ReadIndex(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, nd := range tc.nodes {
		if err := nd.eng.WaitApplied(ctx, index); err != nil {
			t.Fatalf("%s: %v", nd.id, err)
		}
		if got := valueOn(nd, "a"); got != "1" {
			t.Errorf("%s after read index %d: a=%q, want 1", nd.id, index, got)
		}
	}

	for _, nd := range tc.nodes {
		if nd == leader {
			continue
		}
		_, err := nd.eng.Propose(ctx, &replication.Command{Type: replication.CmdPut, Key: "b", Stamp: consistency.Version{Wall: 1, Node: nd.id}})
		var nle *replication.NotLeaderError
		if !errors.As(err, &nle) || nle.LeaderID != leader.id {
			t.Errorf("propose on follower %s: %v, want NotLeaderError naming %s", nd.id, err, leader.id)
		}
		if _, err := nd.eng.ReadIndex(ctx); !errors.Is(err, replication.ErrNotLeader) {
			t.Errorf("read index on follower %s: %v, want ErrNotLeader", nd.id, err)
		}
	}
}

func TestConcurrentReadIndexShareRounds(t *testing.T) {
	tc := newTestCluster(t, 3, nil)
	leader := tc.leader()
	mustPropose(t, leader, "k", "v")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	const readers = 64
	errs := make(chan error, readers)
	for i := 0; i < readers; i++ {
		go func() {
			index, err := leader.eng.ReadIndex(ctx)
			if err == nil && index == 0 {
				err = errors.New("zero read index")
			}
			errs <- err
		}()
	}
	for i := 0; i < readers; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

func TestPartitionedLeaderCannotServeReadIndex(t *testing.T) {
	tc := newTestCluster(t, 3, nil)
	old := tc.leader()
	mustPropose(t, old, "k", "v")
	old.trans.DisconnectAll()
	for _, nd := range tc.nodes {
		if nd != old {
			nd.trans.Disconnect(old.addr)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if index, err := old.eng.ReadIndex(ctx); err == nil {
		t.Fatalf("isolated old leader handed out read index %d", index)
	}
	// The majority elects a new leader and goes on.
	var newLeader *testNode
	waitFor(t, "a new leader in the majority", 10*time.Second, func() bool {
		for _, nd := range tc.nodes {
			if nd != old && nd.eng.IsLeader() {
				newLeader = nd
				return true
			}
		}
		return false
	})
	mustPropose(t, newLeader, "k", "v2")
}

func TestLaggingFollowerCatchesUpBySnapshotInstall(t *testing.T) {
	tc := newTestCluster(t, 3, func(c *Config) {
		kvdTimings(c)
		c.TrailingLogs = 10
		c.SnapshotThreshold = 50
		c.SnapshotInterval = 50 * time.Millisecond
	})
	leader := tc.leader()
	lagger := tc.followerOf(leader)
	tc.stop(lagger)
	for i := 0; i < 300; i++ {
		tc.propose(fmt.Sprintf("key-%03d", i), fmt.Sprint(i))
	}
	if err := tc.leader().eng.Snapshot(); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	tc.start(lagger, nil)
	waitFor(t, "the lagging follower to catch up", 20*time.Second, func() bool {
		return valueOn(lagger, "key-299") == "299"
	})
	if lagger.eng.SnapshotRestores() == 0 {
		t.Fatal("the follower caught up without a snapshot install: the test did not exercise it")
	}
	for i := 0; i < 300; i += 37 {
		if got := valueOn(lagger, fmt.Sprintf("key-%03d", i)); got != fmt.Sprint(i) {
			t.Errorf("key-%03d = %q after snapshot install", i, got)
		}
	}
}

func TestRestartKeepsStateWithoutRebootstrap(t *testing.T) {
	tc := newTestCluster(t, 3, nil)
	for i := 0; i < 20; i++ {
		tc.propose(fmt.Sprintf("k%d", i), "v")
	}
	for _, nd := range tc.nodes {
		tc.stop(nd)
	}
	for _, nd := range tc.nodes {
		// The bootstrap list is passed again, as kvctl does: it must be ignored.
		tc.start(nd, []Peer{{ID: "n1", Addr: "n1"}, {ID: "n2", Addr: "n2"}, {ID: "n3", Addr: "n3"}})
	}
	tc.propose("after", "restart")
	for _, nd := range tc.nodes {
		waitFor(t, nd.id+" to hold old and new data", 10*time.Second, func() bool {
			return valueOn(nd, "k19") == "v" && valueOn(nd, "after") == "restart"
		})
	}
}

// A voter that starts after the others already elected a leader from the same bootstrap list
// finds the leader's heartbeats waiting for it. Open bootstrapped through the running raft,
// which served those heartbeats first (taking the leader's term), and then refused to bootstrap
// "only works on new clusters": kvd exited, and the tests that start nodes one by one failed
// now and then on a loaded machine. The bootstrap must be written before raft starts.
func TestLateVoterBootstrapsPastTheLeadersHeartbeats(t *testing.T) {
	tc := &testCluster{t: t}
	var peers []Peer
	for i := 1; i <= 3; i++ {
		id := fmt.Sprintf("n%d", i)
		addr, trans := raft.NewInmemTransport(raft.ServerAddress(id))
		tc.nodes = append(tc.nodes, &testNode{id: id, dir: t.TempDir(), addr: addr, trans: trans})
		peers = append(peers, Peer{ID: id, Addr: string(addr)})
	}
	tc.connectAll()
	t.Cleanup(func() {
		for _, nd := range tc.nodes {
			tc.stop(nd)
		}
	})
	late := tc.nodes[2]
	tc.start(tc.nodes[0], peers)
	tc.start(tc.nodes[1], peers)
	tc.leader()
	waitFor(t, "the leader's messages to queue for "+late.id, 10*time.Second, func() bool { return len(late.trans.Consumer()) > 0 })
	tc.start(late, peers)
	tc.propose("k", "v")
	waitFor(t, late.id+" to apply the write", 10*time.Second, func() bool { return valueOn(late, "k") == "v" })
}

// An answer to a request sent before a read began confirms leadership only as of then: it must
// not count toward the read's quorum.
func TestAcksCountOnlyRequestsSentAfterTheReadBegan(t *testing.T) {
	a := newAcks()
	peers := []raft.ServerID{"n2", "n3"}
	before := time.Now()
	start := before.Add(time.Millisecond)
	req := &raft.AppendEntriesRequest{RPCHeader: raft.RPCHeader{}, Term: 5}
	a.record("n2", before, req, &raft.AppendEntriesResponse{Term: 5, Success: true})
	if n, _ := a.since(start, peers); n != 0 {
		t.Fatalf("an answer to a request sent before the read counted: %d", n)
	}
	_, moved := a.since(start, peers)
	a.record("n3", start.Add(time.Millisecond), req, &raft.AppendEntriesResponse{Term: 6}) // newer term: deposed
	if n, _ := a.since(start, peers); n != 0 {
		t.Fatalf("an answer from a higher term counted: %d", n)
	}
	a.record("n2", start.Add(2*time.Millisecond), req, &raft.AppendEntriesResponse{Term: 5})
	if n, _ := a.since(start, peers); n != 1 {
		t.Fatalf("a fresh acknowledgement did not count: %d", n)
	}
	select {
	case <-moved:
	default:
		t.Fatal("waiters were not woken by new acknowledgements")
	}
}

// The committed layer is written without fsync. After a machine crash (simulated: its mark says
// it was open under another boot) it is set aside, and the node rebuilds it from the newest
// snapshot plus the log after it, losing nothing the cluster committed.
func TestMachineCrashRebuildsCommittedLayerFromSnapshotAndLog(t *testing.T) {
	tc := newTestCluster(t, 3, func(c *Config) { c.TrailingLogs = 1000 })
	for i := 0; i < 40; i++ {
		tc.propose(fmt.Sprintf("k%02d", i), fmt.Sprint(i))
		if i == 19 {
			if err := tc.leader().eng.Snapshot(); err != nil {
				t.Fatalf("snapshot: %v", err)
			}
		}
	}
	var victim *testNode
	for _, nd := range tc.nodes {
		waitFor(t, nd.id+" to apply every write", 10*time.Second, func() bool { return valueOn(nd, "k39") == "39" })
		if nd != tc.leader() {
			victim = nd
		}
	}
	if err := victim.eng.Snapshot(); err != nil {
		t.Fatalf("snapshot on %s: %v", victim.id, err)
	}
	tc.propose("k40", "40") // after the victim's snapshot: must come back by log replay
	waitFor(t, victim.id+" to apply k40", 10*time.Second, func() bool { return valueOn(victim, "k40") == "40" })
	tc.stopTornAndCutOff(victim)
	tc.start(victim, nil)
	if !victim.store.Torn {
		t.Fatal("the store did not treat the file as torn: the test did not exercise the rebuild")
	}
	if got := victim.store.AppliedIndex(); got == 0 {
		t.Fatal("nothing restored from the snapshot")
	}
	// The snapshot holds k00..k39; k40 is only in the log, which raft replays once it learns the
	// commit index: reconnect.
	if got := valueOn(victim, "k05"); got != "5" {
		t.Errorf("k05 = %q right after the restart, want 5 (from the snapshot)", got)
	}
	tc.connectAll()
	waitFor(t, "the log after the snapshot to be replayed", 10*time.Second, func() bool { return valueOn(victim, "k40") == "40" })
	for i := 0; i < 41; i += 7 {
		if got := valueOn(victim, fmt.Sprintf("k%02d", i)); got != fmt.Sprint(i) {
			t.Errorf("k%02d = %q after the rebuild", i, got)
		}
	}
}

// Bounded reads on the leader measure their staleness as time.Since(QuorumContact()). That must
// run on the monotonic clock, as a follower's measure does (node/fresh.go): a time rebuilt from
// wall-clock nanoseconds has no monotonic reading, so time.Since would take the wall clock, and a
// wall clock stepped back by NTP (or by hand) by d would make a deposed leader's last quorum
// contact look d younger than it is: it would keep serving bounded reads long past their bound,
// and report a staleness d too small on every read. A wall clock cannot be stepped inside a
// test; what it shows is that the time handed out carries its monotonic reading (Round(0)
// strips it, so a time without one equals its own Round(0)).
func TestQuorumContactIsOnTheMonotonicClock(t *testing.T) {
	tc := newTestCluster(t, 3, nil)
	leader := tc.leader()
	mustPropose(t, leader, "k", "v")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	before := time.Now()
	if _, err := leader.eng.ReadIndex(ctx); err != nil {
		t.Fatal(err)
	}
	qc := leader.eng.QuorumContact()
	if qc.IsZero() {
		t.Fatal("no quorum contact after a read-index round")
	}
	if qc == qc.Round(0) {
		t.Fatalf("QuorumContact %v has no monotonic clock reading: time.Since on it follows wall-clock steps", qc)
	}
	if qc.Before(before) {
		t.Fatalf("QuorumContact %v is older than the read-index round that began after %v", qc, before)
	}
}

// CaughtUp skips the entries the state machine never sees (no-ops, barriers) by looking them up
// in the log. A follower that caught up by installing a snapshot has no log below the
// snapshot's index: when the snapshot's last entries were such entries (a new leader's no-op
// and barrier, with no write since), the store's applied index stays below the snapshot's, the
// lookup failed, and CaughtUp said no until the next write: on a quiet cluster that follower
// refused every strong and bounded read, and reported no staleness.
func TestCaughtUpAfterASnapshotInstallThatEndsInBarriers(t *testing.T) {
	tc := newTestCluster(t, 3, func(c *Config) {
		kvdTimings(c)
		c.TrailingLogs = 10
		c.SnapshotThreshold = 50
		c.SnapshotInterval = 50 * time.Millisecond
	})
	leader := tc.leader()
	lagger := tc.followerOf(leader)
	tc.stop(lagger)
	for i := 0; i < 100; i++ {
		tc.propose(fmt.Sprintf("key-%03d", i), fmt.Sprint(i))
	}
	leader = tc.leader()
	commit := snapshotEndingInBarriers(t, leader, 3)
	tc.start(lagger, nil)
	waitFor(t, "the lagging follower to install the snapshot", 20*time.Second, func() bool {
		return lagger.eng.SnapshotRestores() > 0 && lagger.eng.raft.AppliedIndex() >= commit
	})
	waitFor(t, "the follower to count itself caught up with the leader's commit index", 5*time.Second, func() bool {
		return lagger.eng.CaughtUp(commit)
	})
}

// The same on the node that took the snapshot: with TrailingLogs 0 raft compacts its own log up
// to the snapshot, barriers included, while its store's applied index, which only commands move,
// stays below them (the snapshot's stream records the covered index, but a node that takes a
// snapshot does not restore it). CaughtUp must count the compacted entries as applied rather
// than fail to find them.
func TestCaughtUpAfterItsOwnLogIsCompactedPastBarriers(t *testing.T) {
	tc := newTestCluster(t, 3, func(c *Config) {
		kvdTimings(c)
		c.TrailingLogs = 0
		c.SnapshotThreshold = 1 << 20 // only the snapshot asked for below
		c.SnapshotInterval = time.Hour
	})
	leader := tc.leader()
	for i := 0; i < 20; i++ {
		mustPropose(t, leader, fmt.Sprintf("key-%02d", i), fmt.Sprint(i))
	}
	commit := snapshotEndingInBarriers(t, leader, 3)
	var l raft.Log
	if err := leader.eng.logs.GetLog(commit, &l); !errors.Is(err, raft.ErrLogNotFound) {
		t.Fatalf("entry %d is still in the leader's log (err %v): the test does not exercise compaction", commit, err)
	}
	if !leader.eng.CaughtUp(commit) {
		t.Errorf("the leader applied every entry up to %d, compacted into its own snapshot, but CaughtUp says it has not", commit)
	}
}

// An idle cluster's log ends in entries the state machine never sees (a new leader's no-op and
// barrier), so a snapshot taken then covers more of the log than the committed layer's applied
// index says. A follower that installs it holds none of those entries in its log: it must still
// count itself caught up with them, or every strong, bounded and session read it serves waits
// for the next write and times out while the cluster is quiet.
func TestSnapshotInstallCoversEntriesTheStateMachineNeverSaw(t *testing.T) {
	tc := newTestCluster(t, 3, func(c *Config) {
		kvdTimings(c)
		c.TrailingLogs = 10
		c.SnapshotThreshold = 1 << 20 // only the snapshot asked for below
		c.SnapshotInterval = time.Hour
	})
	leader := tc.leader()
	lagger := tc.followerOf(leader)
	tc.stop(lagger)
	for i := 0; i < 50; i++ {
		mustPropose(t, leader, fmt.Sprintf("key-%02d", i), fmt.Sprint(i))
	}
	commit := snapshotEndingInBarriers(t, leader, 1)
	// A loaded machine can re-elect between the two running nodes; compact the other one's log
	// too, so that whichever of them leads has to send a snapshot.
	for _, nd := range tc.nodes {
		if nd != leader && nd != lagger {
			if err := nd.eng.Snapshot(); err != nil {
				t.Fatalf("snapshot on %s: %v", nd.id, err)
			}
		}
	}
	tc.start(lagger, nil)
	// Raft backs off from a follower that failed to answer, doubling up to 10.24 s per attempt
	// (hashicorp/raft's failureWait and maxFailureScale); a slow machine can fail the first
	// attempt after the restart too, so allow a few of them.
	waitFor(t, lagger.id+" to install the snapshot", 45*time.Second, func() bool { return lagger.eng.SnapshotRestores() > 0 })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := lagger.eng.WaitApplied(ctx, commit); err != nil {
		t.Fatalf("%s installed a snapshot covering index %d and, with no write since, still waits for it: %v", lagger.id, commit, err)
	}
	if got := valueOn(lagger, "key-49"); got != "49" {
		t.Errorf("key-49 = %q on %s after the snapshot install", got, lagger.id)
	}
}

// A process killed while raft wrote a snapshot (its own, or one a leader was sending it) leaves
// the snapshot's directory behind under a .tmp name, as large as the state. Raft never lists,
// uses or removes such a directory, so each crash mid-snapshot kept its size on disk for good.
// Opening the engine removes them; complete snapshots stay.
func TestOpenRemovesSnapshotsLeftHalfWritten(t *testing.T) {
	tc := newTestCluster(t, 1, nil)
	nd := tc.nodes[0]
	waitFor(t, "a leader", 10*time.Second, func() bool { return nd.eng.IsLeader() })
	tc.propose("k", "v")
	if err := nd.eng.Snapshot(); err != nil {
		t.Fatal(err)
	}
	tc.stop(nd)
	partial := filepath.Join(nd.dir, "snapshots", "2-99-1234567890123.tmp")
	if err := os.MkdirAll(partial, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(partial, "state.bin"), make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	tc.start(nd, nil)
	if _, err := os.Stat(partial); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the half-written snapshot is still there after Open: %v", err)
	}
	list, err := os.ReadDir(filepath.Join(nd.dir, "snapshots"))
	if err != nil || len(list) != 1 {
		t.Fatalf("snapshots after Open: %v %v, want the one complete snapshot", list, err)
	}
	waitFor(t, "the node to serve its data again", 10*time.Second, func() bool { return valueOn(nd, "k") == "v" })
}
