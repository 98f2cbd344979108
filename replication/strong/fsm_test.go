package strong

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/dialkv/dialkv/consistency"
	"github.com/dialkv/dialkv/replication"
	"github.com/dialkv/dialkv/replication/store"
)

func newTestFSM(t *testing.T) *fsm {
	t.Helper()
	return openReplica(t, filepath.Join(t.TempDir(), "state.db"), store.Options{}, consistency.NewClock("test", nil))
}

func stamp(wall int64, node string) consistency.Version {
	return consistency.Version{Wall: wall, Node: node}
}

func entry(index uint64, c replication.Command) *raft.Log {
	return &raft.Log{Index: index, Term: 1, Type: raft.LogCommand, Data: c.Encode()}
}

func resultOf(t *testing.T, r interface{}) replication.Result {
	t.Helper()
	res, ok := r.(replication.Result)
	if !ok {
		t.Fatalf("response %T, want replication.Result", r)
	}
	return res
}

func TestApplyRules(t *testing.T) {
	f := newTestFSM(t)
	put := func(key, value string, s consistency.Version) replication.Command {
		return replication.Command{Type: replication.CmdPut, Key: key, Value: []byte(value), Stamp: s}
	}
	v1 := stamp(100, "n1")
	res := f.ApplyBatch([]*raft.Log{
		entry(1, put("a", "1", v1)),
		// An older stamp arriving later in the log still lands after: log order = version order.
		entry(2, put("a", "2", stamp(50, "n2"))),
		{Index: 3, Term: 1, Type: raft.LogConfiguration},
	})
	r1, r2 := resultOf(t, res[0]), resultOf(t, res[1])
	if r1.Version != v1 {
		t.Errorf("first put version %v, want the stamp %v", r1.Version, v1)
	}
	if !r2.Version.Newer(r1.Version) || r2.Version.Node != "n2" {
		t.Errorf("second put version %v is not newer than %v (stamped by n2)", r2.Version, r1.Version)
	}
	if res[2] != nil {
		t.Errorf("configuration entry response %v, want nil", res[2])
	}
	if f.store.AppliedIndex() != 3 {
		t.Errorf("applied = %d, want 3", f.store.AppliedIndex())
	}

	cases := []struct {
		name     string
		cmd      replication.Command
		conflict bool
		value    string // expected value of the key after, "" = absent
	}{
		{"cas wrong version", replication.Command{Type: replication.CmdPut, Key: "a", Value: []byte("x"), Stamp: stamp(200, "n1"), Cond: replication.CondIfVersion, IfVersion: v1}, true, "2"},
		{"cas right version", replication.Command{Type: replication.CmdPut, Key: "a", Value: []byte("3"), Stamp: stamp(200, "n1"), Cond: replication.CondIfVersion, IfVersion: r2.Version}, false, "3"},
		{"create existing", replication.Command{Type: replication.CmdPut, Key: "a", Value: []byte("y"), Stamp: stamp(300, "n1"), Cond: replication.CondIfAbsent}, true, "3"},
		{"create new", replication.Command{Type: replication.CmdPut, Key: "b", Value: []byte("new"), Stamp: stamp(300, "n1"), Cond: replication.CondIfAbsent}, false, "new"},
		{"delete", replication.Command{Type: replication.CmdDelete, Key: "b", Stamp: stamp(400, "n1")}, false, ""},
		{"create after delete", replication.Command{Type: replication.CmdPut, Key: "b", Value: []byte("again"), Stamp: stamp(500, "n1"), Cond: replication.CondIfAbsent}, false, "again"},
		{"cas absent on live key", replication.Command{Type: replication.CmdPut, Key: "b", Value: []byte("z"), Stamp: stamp(600, "n1"), Cond: replication.CondIfVersion}, true, "again"},
	}
	index := uint64(4)
	for _, tc := range cases {
		r := resultOf(t, f.ApplyBatch([]*raft.Log{entry(index, tc.cmd)})[0])
		index++
		if got := errors.Is(r.Err, replication.ErrConflict); got != tc.conflict {
			t.Errorf("%s: conflict=%v (%v), want %v", tc.name, got, r.Err, tc.conflict)
		}
		v, ok, err := f.store.Get(tc.cmd.Key)
		if err != nil {
			t.Fatal(err)
		}
		live := ok && !v.Tombstone
		if (tc.value != "") != live || live && string(v.Data) != tc.value {
			t.Errorf("%s: %s = %q (live=%v), want %q", tc.name, tc.cmd.Key, v.Data, live, tc.value)
		}
	}
}

func TestApplySkipsEntriesAlreadyApplied(t *testing.T) {
	f := newTestFSM(t)
	c := replication.Command{Type: replication.CmdPut, Key: "k", Value: []byte("first"), Stamp: stamp(1, "n1")}
	f.ApplyBatch([]*raft.Log{entry(1, c)})
	c.Value = []byte("replayed")
	f.ApplyBatch([]*raft.Log{entry(1, c)}) // replay after restart must not re-apply
	if v, _, _ := f.store.Get("k"); string(v.Data) != "first" {
		t.Errorf("replayed entry changed state: %q", v.Data)
	}
}

// Same log, same state: two replicas fed one random log in differently sized batches end with
// byte-identical snapshots.
func TestFSMDeterminism(t *testing.T) {
	r := rand.New(rand.NewSource(7))
	var log []*raft.Log
	for i := uint64(1); i <= 500; i++ {
		key := string(rune('a' + r.Intn(8)))
		c := replication.Command{Type: replication.CmdPut, Key: key, Value: []byte{byte(r.Intn(256))}, Stamp: stamp(int64(r.Intn(1000)), []string{"n1", "n2", "n3"}[r.Intn(3)])}
		switch r.Intn(5) {
		case 0:
			c.Type, c.Value = replication.CmdDelete, nil
		case 1:
			c.Cond = replication.CondIfAbsent
		case 2:
			c.Cond, c.IfVersion = replication.CondIfVersion, stamp(int64(r.Intn(1000)), "n1")
		}
		log = append(log, entry(i, c))
	}
	a, b := newTestFSM(t), newTestFSM(t)
	a.ApplyBatch(log)
	for start := 0; start < len(log); {
		n := 1 + r.Intn(40)
		end := min(start+n, len(log))
		b.ApplyBatch(log[start:end])
		start = end
	}
	if !bytes.Equal(snapshotOf(t, a), snapshotOf(t, b)) {
		t.Fatal("replicas applying the same log diverged")
	}
}

func TestUnknownCommandStopsTheNode(t *testing.T) {
	f := newTestFSM(t)
	defer func() {
		if recover() == nil {
			t.Fatal("applying an unknown command did not stop the node")
		}
		if f.store.AppliedIndex() != 0 {
			t.Errorf("applied index moved to %d past a command that was not applied", f.store.AppliedIndex())
		}
	}()
	f.ApplyBatch([]*raft.Log{{Index: 1, Type: raft.LogCommand, Data: []byte{1, 200}}})
}

// A conditional write whose condition this binary does not know stops the node like an unknown
// command: applying it as unconditional would overwrite a key the proposer meant to guard, and
// refusing it as a result would differ from what a binary that knows the condition does.
func TestUnknownConditionStopsTheNode(t *testing.T) {
	f := newTestFSM(t)
	f.ApplyBatch([]*raft.Log{entry(1, replication.Command{Type: replication.CmdPut, Key: "k", Value: []byte("old"), Stamp: stamp(100, "n1")})})
	for _, batched := range []bool{false, true} {
		t.Run(fmt.Sprintf("batched=%v", batched), func(t *testing.T) {
			put := replication.Command{Type: replication.CmdPut, Key: "k", Value: []byte("new"), Stamp: stamp(200, "n1"), Cond: replication.Condition(9)}
			l := entry(2, put)
			if batched {
				l.Data = replication.EncodeBatch([][]byte{put.Encode()})
			}
			var stopped any
			func() {
				defer func() { stopped = recover() }()
				f.ApplyBatch([]*raft.Log{l})
			}()
			if stopped == nil {
				t.Fatal("applying a write with an unknown condition did not stop the node")
			}
			if msg := fmt.Sprint(stopped); !strings.Contains(msg, "condition 9") {
				t.Errorf("stopped with %q, which does not name the condition", msg)
			}
			if v, _, err := f.store.Get("k"); err != nil || string(v.Data) != "old" {
				t.Errorf("key holds %q (%v) after the refused write, want \"old\"", v.Data, err)
			}
			if f.store.AppliedIndex() != 1 {
				t.Errorf("applied index moved to %d past a command that was not applied", f.store.AppliedIndex())
			}
		})
	}
}

func eventualWrite(key, data string, wall int64, node string) replication.Write {
	return replication.Write{Key: key, Value: consistency.Value{Version: stamp(wall, node), Data: []byte(data)}}
}

func TestEventualBatchLastWriterWins(t *testing.T) {
	f := newTestFSM(t)
	batch := func(index uint64, ws ...replication.Write) {
		t.Helper()
		f.ApplyBatch([]*raft.Log{entry(index, replication.Command{Type: replication.CmdEventualBatch, Reporter: "n1", Watermark: stamp(1, "n1"), Writes: ws})})
	}
	get := func(key string) consistency.Value {
		v, _, err := f.store.Get(key)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	batch(1, eventualWrite("k", "new", 200, "n2"))
	batch(2, eventualWrite("k", "old", 100, "n1")) // arrives later, older: superseded
	if v := get("k"); string(v.Data) != "new" {
		t.Fatalf("k = %q, want the newer write", v.Data)
	}
	batch(3, eventualWrite("k", "new", 200, "n2")) // re-submission: harmless
	if v := get("k"); string(v.Data) != "new" || v.Version != stamp(200, "n2") {
		t.Fatalf("re-submission changed k to %+v", v)
	}

	// Delete, then a late, older eventual write: the key stays deleted.
	f.ApplyBatch([]*raft.Log{entry(4, replication.Command{Type: replication.CmdDelete, Key: "k", Stamp: stamp(300, "n3")})})
	batch(5, eventualWrite("k", "zombie", 250, "n1"))
	if v := get("k"); !v.Tombstone {
		t.Fatalf("a late older write resurrected a deleted key: %+v", v)
	}
	// A newer write after the delete does bring it back (it is a new write, not a zombie).
	batch(6, eventualWrite("k", "reborn", 400, "n1"))
	if v := get("k"); v.Tombstone || string(v.Data) != "reborn" {
		t.Fatalf("k = %+v, want reborn", v)
	}
}

func TestEventualBatchIsDeterministicAcrossBatchings(t *testing.T) {
	r := rand.New(rand.NewSource(11))
	var log []*raft.Log
	for i := uint64(1); i <= 300; i++ {
		var c replication.Command
		if r.Intn(2) == 0 {
			c = replication.Command{Type: replication.CmdEventualBatch, Reporter: "n1", Watermark: stamp(int64(i), "n1")}
			for j := 0; j < 1+r.Intn(4); j++ {
				w := eventualWrite(string(rune('a'+r.Intn(6))), fmt.Sprint(r.Intn(9)), int64(r.Intn(1000)), []string{"n1", "n2"}[r.Intn(2)])
				w.Value.Tombstone = r.Intn(5) == 0
				if w.Value.Tombstone {
					w.Value.Data = nil
				}
				c.Writes = append(c.Writes, w)
			}
		} else {
			c = replication.Command{Type: replication.CmdPut, Key: string(rune('a' + r.Intn(6))), Value: []byte("s"), Stamp: stamp(int64(r.Intn(1000)), "n3")}
		}
		log = append(log, entry(i, c))
	}
	a, b := newTestFSM(t), newTestFSM(t)
	a.ApplyBatch(log)
	for i := range log {
		b.ApplyBatch(log[i : i+1])
	}
	for key := 'a'; key < 'a'+6; key++ {
		va, _, _ := a.store.Get(string(key))
		vb, _, _ := b.store.Get(string(key))
		if va.Version != vb.Version || string(va.Data) != string(vb.Data) || va.Tombstone != vb.Tombstone {
			t.Fatalf("key %c diverged: %+v vs %+v", key, va, vb)
		}
	}
}

// Once a key's tombstone is purged, a strong write to it from a proposer whose clock lags still
// gets a version above the purge horizon: newer than the delete it follows in the log.
func TestWriteAfterPurgeStaysAboveTheHorizon(t *testing.T) {
	f := newTestFSM(t)
	del := replication.Command{Type: replication.CmdDelete, Key: "k", Stamp: stamp(200, "n1")}
	res := f.ApplyBatch([]*raft.Log{
		entry(1, replication.Command{Type: replication.CmdRegister, Member: replication.Member{ID: "n1"}}),
		entry(2, replication.Command{Type: replication.CmdPut, Key: "k", Value: []byte("v"), Stamp: stamp(100, "n1")}),
		entry(3, del),
		entry(4, replication.Command{Type: replication.CmdEventualBatch, Reporter: "n1", Watermark: stamp(300, "n1")}),
		entry(5, replication.Command{Type: replication.CmdPurge, Stamp: stamp(300, "n1")}),
		entry(6, replication.Command{Type: replication.CmdPut, Key: "k", Value: []byte("again"), Stamp: stamp(150, "n2")}),
	})
	tomb := resultOf(t, res[2]).Version
	if _, ok, _ := f.store.Get("k"); !ok {
		t.Fatal("the new value is missing")
	}
	if h, _ := f.store.PurgeHorizon(); h.IsZero() {
		t.Fatal("the purge did not run (the test needs the tombstone purged)")
	}
	if got := resultOf(t, res[5]).Version; !got.Newer(tomb) {
		t.Errorf("write after the purge got version %v, not newer than the purged tombstone %v", got, tomb)
	}
}

// A strong write whose stamp fell behind the key's version while it was in flight takes a
// successor version (a version "current + 1"). That version must never be one the proposer's
// clock also stamps on an eventual write of the same key: the two writes would share a version,
// last-writer-wins would drop the acknowledged eventual write although nothing newer replaced
// it, and a session holding that version would read the strong value as its own write.
//
// The state machine cannot change its rule (old and new binaries apply one log during an
// upgrade), so the leader's stamp is what keeps them apart: it is in the strong space of its
// clock (Clock.NowStrong), where no clock issues versions, and so is the successor.
//
// Each case is the interleaving on leader n1, whose clock runs behind: n1 stamps a strong write
// of k; before that entry applies, an entry moves k (or the purge horizon) ahead of the stamp and
// n1's clock observes it; n1 then takes an eventual write of k; the strong write applies, then
// the eventual write is committed.
func TestStrongSuccessorNeverTakesAnEventualWritesVersion(t *testing.T) {
	const behind = 1000 // n1's physical clock, in Unix nanoseconds
	ahead := stamp(2000, "n2")
	cases := []struct {
		name string
		// overtake is the log before the strong write applies; it leaves k's version, or the
		// purge horizon when k was deleted and purged, at ahead.
		overtake []replication.Command
	}{
		{"the key's version is ahead", []replication.Command{
			{Type: replication.CmdEventualBatch, Reporter: "n2", Writes: []replication.Write{{Key: "k", Value: consistency.Value{Version: ahead, Data: []byte("n2's")}}}},
		}},
		{"the purge horizon is ahead", []replication.Command{
			{Type: replication.CmdRegister, Member: replication.Member{ID: "n1"}},
			{Type: replication.CmdRegister, Member: replication.Member{ID: "n2"}},
			{Type: replication.CmdPut, Key: "k", Value: []byte("old"), Stamp: stamp(100, "n1")},
			{Type: replication.CmdDelete, Key: "k", Stamp: stamp(200, "n1")},
			{Type: replication.CmdEventualBatch, Reporter: "n1", Watermark: ahead},
			{Type: replication.CmdEventualBatch, Reporter: "n2", Watermark: ahead},
			{Type: replication.CmdPurge, Stamp: stamp(300, "n1")},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newTestFSM(t)
			f.clock = consistency.NewClock("n1", func() time.Time { return time.Unix(0, behind) })
			// n1, leading, stamps a strong write of k, as the node does for every strong write.
			strongPut := replication.Command{Type: replication.CmdPut, Key: "k", Value: []byte("strong"), Stamp: f.clock.NowStrong()}
			var index uint64
			next := func(c replication.Command) interface{} {
				index++
				return f.ApplyBatch([]*raft.Log{entry(index, c)})[0]
			}
			for _, c := range tc.overtake {
				next(c)
			}
			if h, _ := f.store.PurgeHorizon(); len(tc.overtake) > 1 && h != ahead {
				t.Fatalf("purge horizon %v, want %v (the case needs k's tombstone purged)", h, ahead)
			}
			// n1's clock has observed ahead; it stamps an eventual write of k and acknowledges it.
			mine := replication.Write{Key: "k", Value: consistency.Value{Version: f.clock.Now(), Data: []byte("eventual")}}
			strong := resultOf(t, next(strongPut))
			next(replication.Command{Type: replication.CmdEventualBatch, Reporter: "n1", Writes: []replication.Write{mine}})

			// The rule every binary applies: the successor of ahead, under the stamp's node.
			if want := ahead.Successor(strongPut.Stamp.Node); strong.Version != want {
				t.Errorf("the strong write got %v, want %v", strong.Version, want)
			}
			if strong.Version == mine.Value.Version {
				t.Errorf("the strong write and the eventual write share version %v", strong.Version)
			}
			got, _, err := f.store.Get("k")
			if err != nil {
				t.Fatal(err)
			}
			// DESIGN guarantee 3: the acknowledged eventual write is visible, or superseded by a
			// write with a newer version.
			if !got.Version.Newer(mine.Value.Version) && !(got.Version == mine.Value.Version && string(got.Data) == "eventual") {
				t.Errorf("k = %q at %v: the eventual write at %v was lost, not superseded", got.Data, got.Version, mine.Value.Version)
			}
		})
	}
}

// A key longer than the store can hold is refused by every replica alike, as a result: failing
// the entry would stop them all, on every restart, since the entry stays in the log. In an
// eventual batch it is left out and the rest applies.
func TestApplyRefusesKeysTheStoreCannotHold(t *testing.T) {
	f := newTestFSM(t)
	long := strings.Repeat("k", store.MaxKeySize+1)
	res := f.ApplyBatch([]*raft.Log{
		entry(1, replication.Command{Type: replication.CmdPut, Key: long, Value: []byte("v"), Stamp: stamp(100, "n1")}),
		entry(2, replication.Command{Type: replication.CmdDelete, Key: long, Stamp: stamp(200, "n1")}),
		entry(3, replication.Command{Type: replication.CmdPut, Key: "", Value: []byte("v"), Stamp: stamp(250, "n1")}),
		entry(4, replication.Command{Type: replication.CmdEventualBatch, Writes: []replication.Write{
			{Key: long, Value: consistency.Value{Version: stamp(300, "n2"), Data: []byte("x")}},
			{Key: "short", Value: consistency.Value{Version: stamp(300, "n2"), Data: []byte("y")}},
		}}),
	})
	for i, name := range []string{"put of a long key", "delete of a long key", "put of an empty key"} {
		if r := resultOf(t, res[i]); !errors.Is(r.Err, replication.ErrInvalid) {
			t.Errorf("%s: %v, want it refused as invalid", name, r.Err)
		}
	}
	if v, ok, err := f.store.Get("short"); err != nil || !ok || string(v.Data) != "y" {
		t.Errorf("the batch's other write: %q %v %v, want y", v.Data, ok, err)
	}
	if f.store.AppliedIndex() != 4 {
		t.Errorf("applied = %d, want 4", f.store.AppliedIndex())
	}
}

// Members are stored under their ids, and a removal marks the id under a prefix: an id the
// store cannot hold failed the entry, and so stopped every replica. Such an entry is refused as
// a result; the longest ids that fit apply as before.
func TestApplyRefusesMemberIDsTheStoreCannotHold(t *testing.T) {
	f := newTestFSM(t)
	longest := strings.Repeat("m", store.MaxMemberID)
	res := f.ApplyBatch([]*raft.Log{
		entry(1, replication.Command{Type: replication.CmdRegister, Member: replication.Member{ID: ""}}),
		entry(2, replication.Command{Type: replication.CmdRegister, Member: replication.Member{ID: strings.Repeat("m", store.MaxKeySize+1)}}),
		entry(3, replication.Command{Type: replication.CmdRemove, Member: replication.Member{ID: longest + "m"}}),
		entry(4, replication.Command{Type: replication.CmdRegister, Member: replication.Member{ID: longest, RaftAddr: "r"}}),
		entry(5, replication.Command{Type: replication.CmdRemove, Member: replication.Member{ID: longest}}),
	})
	for i, name := range []string{"register of an empty id", "register of a long id", "removal of a long id"} {
		if r := resultOf(t, res[i]); !errors.Is(r.Err, replication.ErrInvalid) {
			t.Errorf("%s: %v, want it refused as invalid", name, r.Err)
		}
	}
	for i := 3; i < 5; i++ {
		if r := resultOf(t, res[i]); r.Err != nil {
			t.Errorf("entry %d, an id of %d bytes: %v", i+1, len(longest), r.Err)
		}
	}
	if removed, err := f.store.Removed(); err != nil || !removed[longest] || len(removed) != 1 {
		t.Errorf("removed = %d ids, %v; want the longest id only", len(removed), err)
	}
}

// A committer batch's report is stored under its reporter's id: one that is no possible key
// (posted to /v1/internal/commit from outside) failed the entry, and so stopped every replica.
// Its writes apply; the report is dropped.
func TestApplyDropsTheReportOfAReporterTheStoreCannotHold(t *testing.T) {
	f := newTestFSM(t)
	long := strings.Repeat("r", store.MaxKeySize+1)
	f.ApplyBatch([]*raft.Log{entry(1, replication.Command{Type: replication.CmdEventualBatch, Reporter: long, Watermark: stamp(500, "n1"),
		Writes: []replication.Write{eventualWrite("k", "v", 400, "n1")}})})
	if v, ok, err := f.store.Get("k"); err != nil || !ok || string(v.Data) != "v" {
		t.Errorf("the batch's write: %q %v %v, want v", v.Data, ok, err)
	}
	if f.store.AppliedIndex() != 1 {
		t.Errorf("applied = %d, want 1", f.store.AppliedIndex())
	}
}

// A node's clock observes the versions of the entries it applies. Entries a committed layer
// already holds are not applied again (a restart) or not at all (a snapshot install), so the
// layer keeps the newest version they carried, for the clock to observe on a restore (and on
// reopening: node.New).
func TestRestoreShowsTheClockTheVersionsTheStateHolds(t *testing.T) {
	ahead := time.Now().Add(time.Hour).UnixNano()
	src := newTestFSM(t)
	src.ApplyBatch([]*raft.Log{
		entry(1, replication.Command{Type: replication.CmdEventualBatch, Writes: []replication.Write{eventualWrite("k", "v", ahead, "fast")}}),
		entry(2, replication.Command{Type: replication.CmdPut, Key: "other", Value: []byte("x"), Stamp: stamp(1, "n1")}),
	})
	snap, err := src.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Release()
	var buf bytes.Buffer
	if _, err := snap.(*fsmSnapshot).snap.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	dst := newTestFSM(t)
	if err := dst.Restore(io.NopCloser(&buf)); err != nil {
		t.Fatal(err)
	}
	if now := dst.clock.Now(); !now.Newer(stamp(ahead, "fast")) {
		t.Errorf("after restoring a state holding version %d@fast, the clock stamps %s, below it", ahead, now)
	}
	if v, err := src.store.NewestVersion(); err != nil || v.Wall != ahead {
		t.Errorf("newest version recorded = %s, %v; want wall %d", v, err, ahead)
	}
}
