package strong

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/dialkv/dialkv/consistency"
	"github.com/dialkv/dialkv/replication"
)

// A CmdBatch entry applies its commands in order, each with its own result, exactly as the
// same commands in separate entries would.
func TestApplyBatchEntryMatchesSeparateEntries(t *testing.T) {
	cmds := []replication.Command{
		{Type: replication.CmdPut, Key: "a", Value: []byte("1"), Stamp: stamp(100, "n1")},
		{Type: replication.CmdPut, Key: "a", Value: []byte("2"), Stamp: stamp(100, "n1")}, // same stamp: must still move forward
		{Type: replication.CmdPut, Key: "a", Value: []byte("x"), Stamp: stamp(101, "n1"), Cond: replication.CondIfAbsent},
		{Type: replication.CmdPut, Key: "b", Value: []byte("3"), Stamp: stamp(102, "n1"), Cond: replication.CondIfAbsent},
		{Type: replication.CmdDelete, Key: "b", Stamp: stamp(103, "n1")},
		{Type: replication.CmdDelete, Key: "b", Stamp: stamp(104, "n1")}, // nothing left to delete
	}
	separate, batched := newTestFSM(t), newTestFSM(t)
	var want []replication.Result
	for i, c := range cmds {
		want = append(want, resultOf(t, separate.ApplyBatch([]*raft.Log{entry(uint64(i+1), c)})[0]))
	}
	res := batched.ApplyBatch([]*raft.Log{
		{Index: 1, Term: 1, Type: raft.LogCommand, Data: (&replication.Command{Type: replication.CmdBatch, Batch: cmds}).Encode()},
	})
	got, ok := res[0].([]replication.Result)
	if !ok || len(got) != len(cmds) {
		t.Fatalf("batch entry answered %T %v, want %d results", res[0], res[0], len(cmds))
	}
	for i := range cmds {
		if got[i].Version != want[i].Version || got[i].Existed != want[i].Existed || (got[i].Err == nil) != (want[i].Err == nil) {
			t.Errorf("command %d: batched %+v, separate %+v", i, got[i], want[i])
		}
	}
	if !errors.Is(got[2].Err, replication.ErrConflict) {
		t.Errorf("create of an existing key inside a batch: %v, want a conflict", got[2].Err)
	}
	if !got[1].Version.Newer(got[0].Version) {
		t.Errorf("second write of a in the batch got %v, not newer than %v", got[1].Version, got[0].Version)
	}
	for _, key := range []string{"a", "b"} {
		if a, b := valueOn(&testNode{store: separate.store}, key), valueOn(&testNode{store: batched.store}, key); a != b {
			t.Errorf("%s: %q after the batch, %q after separate entries", key, b, a)
		}
	}
}

// Concurrent proposals on a leader are packed into fewer log entries, and every caller gets
// its own command's result: its version, or its conflict.
func TestConcurrentProposalsShareEntriesAndKeepTheirResults(t *testing.T) {
	// kvd's Raft timings: on a loaded machine (this runs 1,280 proposals with -race) the tests'
	// short ones can depose the leader mid-run, and this test is about packing, not elections.
	tc := newTestCluster(t, 3, kvdTimings)
	leader := tc.leader()
	const writers, each = 32, 20
	clock := consistency.NewClock(leader.id, nil)
	before := leader.eng.stats.proposalEntries.Load()
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				key := fmt.Sprintf("w%d/%d", w, i)
				res, err := leader.eng.Propose(ctx, &replication.Command{Type: replication.CmdPut, Key: key, Value: []byte(key), Stamp: clock.Now(), Cond: replication.CondIfAbsent})
				if err == nil && (res.Version.IsZero() || res.Existed || res.Index == 0) {
					err = fmt.Errorf("%s: result %+v", key, res)
				}
				if err == nil {
					// Again: the key exists now, so this one must come back as a conflict.
					_, err = leader.eng.Propose(ctx, &replication.Command{Type: replication.CmdPut, Key: key, Value: []byte("again"), Stamp: clock.Now(), Cond: replication.CondIfAbsent})
					if !errors.Is(err, replication.ErrConflict) {
						err = fmt.Errorf("%s: second create answered %v, want a conflict", key, err)
					} else {
						err = nil
					}
				}
				cancel()
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	proposals := uint64(2 * writers * each)
	entries := leader.eng.stats.proposalEntries.Load() - before
	t.Logf("%d proposals in %d log entries", proposals, entries)
	if entries >= proposals {
		t.Errorf("%d proposals took %d log entries: none were packed", proposals, entries)
	}
	// Every write was acknowledged, so the leader holds them all now; followers may still be
	// applying the last entries.
	for w := range writers {
		for i := range each {
			if key := fmt.Sprintf("w%d/%d", w, i); valueOn(leader, key) != key {
				t.Fatalf("leader %s: %s = %q right after its acknowledgement", leader.id, key, valueOn(leader, key))
			}
		}
	}
	for _, nd := range tc.nodes {
		waitFor(t, nd.id+" applied every write", 10*time.Second, func() bool {
			for w := range writers {
				for i := range each {
					if key := fmt.Sprintf("w%d/%d", w, i); valueOn(nd, key) != key {
						return false
					}
				}
			}
			return true
		})
	}
}

// ProposalBatch 1 keeps one entry per write.
func TestProposalBatchOneKeepsOneEntryPerWrite(t *testing.T) {
	tc := newTestCluster(t, 1, func(c *Config) { c.ProposalBatch = 1 })
	leader := tc.leader()
	before := leader.eng.stats.proposalEntries.Load()
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if _, err := leader.eng.Propose(ctx, &replication.Command{Type: replication.CmdPut, Key: fmt.Sprintf("k%d", w), Value: []byte("v"), Stamp: consistency.NewClock(leader.id, nil).Now()}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got := leader.eng.stats.proposalEntries.Load() - before; got != 8 {
		t.Errorf("8 writes with ProposalBatch 1 took %d entries, want 8", got)
	}
}

// A batch of proposals larger than ProposalBytes goes into the log as several entries, none
// over the cap unless one proposal alone is; small proposals are still packed together, and
// every caller gets its own result.
func TestProposalEntriesStayUnderProposalBytes(t *testing.T) {
	const capBytes = 16 << 10
	tc := newTestCluster(t, 1, func(c *Config) { c.ProposalBytes = capBytes })
	leader := tc.leader()
	clock := consistency.NewClock(leader.id, nil)
	value := make([]byte, 3<<10)
	huge := make([]byte, 2*capBytes)
	first, err := leader.eng.logs.LastIndex()
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			var cmds []*replication.Command
			for i := range 32 {
				v := value
				if w == 0 && i == 16 {
					v = huge
				}
				cmds = append(cmds, &replication.Command{Type: replication.CmdPut, Key: fmt.Sprintf("w%d/%d", w, i), Value: v, Stamp: clock.Now()})
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			for i, err := range func() []error { _, errs := leader.eng.ProposeAll(ctx, cmds); return errs }() {
				if err != nil {
					t.Errorf("%s: %v", cmds[i].Key, err)
				}
			}
		})
	}
	wg.Wait()
	last, err := leader.eng.logs.LastIndex()
	if err != nil {
		t.Fatal(err)
	}
	packed, largest := 0, 0
	for i := first + 1; i <= last; i++ {
		var l raft.Log
		if err := leader.eng.logs.GetLog(i, &l); err != nil {
			t.Fatal(err)
		}
		if l.Type != raft.LogCommand {
			continue
		}
		cmd, err := replication.DecodeCommand(l.Data)
		if err != nil {
			t.Fatal(err)
		}
		if cmd.Type != replication.CmdBatch {
			continue // one proposal alone, the huge one among them
		}
		packed++
		largest = max(largest, len(l.Data))
		// The cap counts the packed commands; the batch adds a few bytes per command.
		if len(l.Data) > capBytes+binary.MaxVarintLen64*(len(cmd.Batch)+1)+2 {
			t.Errorf("entry %d packs %d commands in %d bytes, over the %d-byte cap", i, len(cmd.Batch), len(l.Data), capBytes)
		}
	}
	t.Logf("%d packed entries, the largest %d bytes", packed, largest)
	if packed == 0 {
		t.Error("no entry packed several proposals: small proposals must still share entries")
	}
}

// What a failed append means for its proposals: only an error raft may return after the entry
// reached the log is an unknown outcome. A leader handing leadership over refuses entries
// before appending them (raft's leaderLoop), and its writes used to be answered
// outcome_unknown: in a node test with leadership moving about, nearly all such answers were.
func TestProposeErrorSaysWhetherTheEntryMayBeInTheLog(t *testing.T) {
	tc := newTestCluster(t, 1, nil)
	e := tc.leader().eng
	for _, c := range []struct {
		err     error
		unknown bool
	}{
		{raft.ErrNotLeader, false},
		{raft.ErrEnqueueTimeout, false},
		{raft.ErrLeadershipTransferInProgress, false},
		{raft.ErrLeadershipLost, true},
		{raft.ErrRaftShutdown, true},
	} {
		got := proposeError(e, c.err)
		if errors.Is(got, replication.ErrOutcomeUnknown) != c.unknown {
			t.Errorf("%v became %v: outcome unknown %v, want %v", c.err, got, !c.unknown, c.unknown)
		}
	}
}

// Settle returns once every proposal the leader has sent is applied, one whose caller gave up
// (outcome unknown) included, and appends nothing when none is in flight.
func TestSettleWaitsForProposalsWhoseCallersGaveUp(t *testing.T) {
	var stalled sync.Map // node id -> chan struct{} its state machine waits on
	tc := newTestCluster(t, 3, func(c *Config) {
		kvdTimings(c)
		id := c.NodeID
		c.BeforeApply = func() {
			if gate, ok := stalled.Load(id); ok {
				<-gate.(chan struct{})
			}
		}
	})
	leader := tc.leader()
	mustPropose(t, leader, "a", "1")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// The caller has its answer a moment before the proposal's slot is freed.
	waitFor(t, "no proposal in flight", 5*time.Second, func() bool { return len(leader.eng.inflight) == 0 })
	last := leader.eng.raft.LastIndex()
	if err := leader.eng.Settle(ctx); err != nil {
		t.Fatalf("settle with nothing in flight: %v", err)
	}
	if got := leader.eng.raft.LastIndex(); got != last {
		t.Errorf("settle with nothing in flight appended entries: last index %d, was %d", got, last)
	}

	gate := make(chan struct{})
	release := sync.OnceFunc(func() { close(gate) })
	t.Cleanup(release) // a stalled state machine cannot shut down
	stalled.Store(leader.id, gate)
	short, cancelShort := context.WithTimeout(context.Background(), 300*time.Millisecond)
	_, err := leader.eng.Propose(short, &replication.Command{Type: replication.CmdPut, Key: "b", Value: []byte("2"), Stamp: consistency.NewClock(leader.id, nil).Now()})
	cancelShort()
	if !errors.Is(err, replication.ErrOutcomeUnknown) {
		t.Fatalf("a proposal on a leader whose state machine stalls: %v, want outcome unknown", err)
	}
	short, cancelShort = context.WithTimeout(context.Background(), 300*time.Millisecond)
	err = leader.eng.Settle(short)
	cancelShort()
	if !errors.Is(err, replication.ErrTimeout) {
		t.Fatalf("settle while a proposal waits to apply: %v, want a timeout", err)
	}
	settled := make(chan error, 1)
	go func() { settled <- leader.eng.Settle(ctx) }()
	release()
	if err := <-settled; err != nil {
		t.Fatalf("settle: %v", err)
	}
	if got := valueOn(leader, "b"); got != "2" {
		t.Errorf("b on the leader once settled: %q, want the proposal its caller gave up on applied", got)
	}
}
