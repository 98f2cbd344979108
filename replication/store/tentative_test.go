package store

import (
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dialkv/dialkv/consistency"
	"github.com/dialkv/dialkv/replication"
)

func write(key, data string, wall int64, node string) replication.Write {
	return replication.Write{Key: key, Value: consistency.Value{Version: consistency.Version{Wall: wall, Node: node}, Data: []byte(data)}}
}

func mustMerge(t *testing.T, s *Store, ws ...replication.Write) []replication.Write {
	t.Helper()
	stored, err := s.MergeTentative(ws)
	if err != nil {
		t.Fatal(err)
	}
	return stored
}

func TestMergeTentativeKeepsOnlyNewer(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s := mustOpen(t, path)
	mustPut(t, s, 1, map[string]consistency.Value{"c": val("committed", 50)})

	stored := mustMerge(t, s,
		write("a", "a10", 10, "n1"),
		write("a", "a5", 5, "n2"),     // older than the one just stored in the same batch
		write("c", "old", 40, "n2"),   // older than committed: superseded
		write("c", "newer", 60, "n2"), // newer than committed: kept tentative
		write("", "no key", 70, "n1"), // invalid: dropped
	)
	if len(stored) != 2 || stored[0].Key != "a" || stored[1].Value.Version.Wall != 60 {
		t.Fatalf("stored %+v, want a@10 and c@60", stored)
	}
	if again := mustMerge(t, s, write("a", "a10", 10, "n1")); len(again) != 0 {
		t.Errorf("re-merging the same write stored it again: %+v", again)
	}
	// Durable: it survives a reopen.
	s.Close()
	s = mustOpen(t, path)
	if v, ok, _ := s.Tentative("a"); !ok || string(v.Data) != "a10" {
		t.Errorf("tentative a after reopen = %+v ok=%v", v, ok)
	}
	digest, err := s.TentativeDigest("", "")
	if err != nil || len(digest) != 2 || digest["c"].Wall != 60 {
		t.Errorf("digest = %v, %v", digest, err)
	}
	for _, r := range []struct{ from, to, want string }{
		{"a", "c", "a"}, {"b", "", "c"}, {"a", "a", ""}, {"d", "", ""}, {"", "b", "a"},
	} {
		digest, err := s.TentativeDigest(r.from, r.to)
		if got := strings.Join(slices.Sorted(maps.Keys(digest)), ","); err != nil || got != r.want {
			t.Errorf("digest of [%q, %q) holds %q, %v; want %q", r.from, r.to, got, err, r.want)
		}
	}
	got, err := s.GetTentative([]string{"a", "missing", "c"})
	if err != nil || len(got) != 2 {
		t.Errorf("GetTentative = %+v, %v", got, err)
	}
}

// Writes arrive from peers (gossip, anti-entropy pushes) unchecked. A key the layer cannot hold
// failed the whole group commit: every write merged with it, the local eventual writes of other
// clients among them, failed (500) and was not stored. It is dropped, as an empty one is.
func TestMergeDropsKeysTheStoreCannotHold(t *testing.T) {
	s := mustOpen(t, filepath.Join(t.TempDir(), "state.db"))
	long := write(strings.Repeat("k", MaxKeySize+1), "long", 10, "n9")
	stored := mustMerge(t, s, long, write("ok", "v", 10, "n1"))
	if len(stored) != 1 || stored[0].Key != "ok" {
		t.Errorf("stored %d writes, want only the one with a key the store can hold", len(stored))
	}
	if v, ok, err := s.Tentative("ok"); err != nil || !ok || string(v.Data) != "v" {
		t.Errorf("ok: %q %v %v", v.Data, ok, err)
	}
}

// The leader refuses a committer batch holding a version no clock stamps (node's
// checkCommitBatch), and a refused batch is sent again and again: a peer's write stamped before
// 1970 or past consistency.MaxWall, once stored, stopped its holder's committer for good. It is
// dropped on arrival, as a key no layer can hold is.
func TestMergeDropsVersionsNoClockStamps(t *testing.T) {
	s := mustOpen(t, filepath.Join(t.TempDir(), "state.db"))
	stored := mustMerge(t, s, write("past", "v", -1, "n9"), write("future", "v", consistency.MaxWall+1, "n9"), write("ok", "v", consistency.MaxWall, "n1"))
	if len(stored) != 1 || stored[0].Key != "ok" {
		t.Errorf("stored %d writes, want only the one a clock can have stamped", len(stored))
	}
	for _, key := range []string{"past", "future"} {
		if _, ok, err := s.Tentative(key); err != nil || ok {
			t.Errorf("%s: held tentatively (%v)", key, err)
		}
	}
}

func TestCommittedPutPrunesTentative(t *testing.T) {
	s := mustOpen(t, filepath.Join(t.TempDir(), "state.db"))
	mustMerge(t, s, write("a", "t", 10, "n1"), write("b", "t", 30, "n1"))
	mustPut(t, s, 1, map[string]consistency.Value{"a": val("c", 10), "b": val("c", 20)})
	settle(t, s)
	if _, ok, _ := s.Tentative("a"); ok {
		t.Error("tentative a survived a committed version at least as new")
	}
	if _, ok, _ := s.Tentative("b"); !ok {
		t.Error("tentative b (newer than committed) was dropped")
	}
	pending, sum, err := s.PendingTentative(func(_ []byte, v consistency.Version) bool { return v.Node == "n1" }, 0, 0)
	if err != nil || len(pending) != 1 || sum.Count != 1 || sum.Oldest.Wall != 30 {
		t.Errorf("pending = %+v sum=%+v err=%v", pending, sum, err)
	}
}

func TestGroupCommitUnderConcurrency(t *testing.T) {
	s := mustOpen(t, filepath.Join(t.TempDir(), "state.db"))
	const writers, each = 16, 50
	var wg sync.WaitGroup
	for g := 0; g < writers; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if stored := mustMerge(t, s, write(fmt.Sprintf("k%d-%d", g, i), "v", int64(i+1), "n1")); len(stored) != 1 {
					t.Errorf("write %d-%d not stored", g, i)
				}
			}
		}()
	}
	wg.Wait()
	digest, _ := s.TentativeDigest("", "")
	if len(digest) != writers*each {
		t.Fatalf("%d tentative entries, want %d", len(digest), writers*each)
	}
}

func TestPurgeWaitsForEveryMember(t *testing.T) {
	s := mustOpen(t, filepath.Join(t.TempDir(), "state.db"))
	apply := func(index uint64, fn func(*Tx) error) {
		t.Helper()
		if err := s.Apply(index, fn); err != nil {
			t.Fatal(err)
		}
	}
	tombstonesPending := func(want bool) {
		t.Helper()
		if got, err := s.TombstonesPending(); err != nil || got != want {
			t.Errorf("TombstonesPending = %v, %v; want %v", got, err, want)
		}
	}
	tombstonesPending(false)
	apply(1, func(tx *Tx) error {
		for _, id := range []string{"n1", "n2"} {
			if err := tx.PutMember(replication.Member{ID: id}); err != nil {
				return err
			}
		}
		return tx.Put("gone", consistency.Value{Version: consistency.Version{Wall: 100, Node: "n1"}, Tombstone: true})
	})
	var rep PurgeReport
	apply(2, func(tx *Tx) error {
		if err := tx.SetWatermark("n1", consistency.Version{Wall: 500}); err != nil {
			return err
		}
		var err error
		rep, err = tx.Purge()
		return err
	})
	if rep.Purged != 0 || len(rep.BlockedBy) != 1 || rep.BlockedBy[0] != "n2" {
		t.Fatalf("purge with n2 silent = %+v, want blocked by n2", rep)
	}
	if pending, reports, _ := s.PurgeStatus(); pending != 1 || len(reports) != 2 || !reports["n2"].IsZero() || reports["n1"].Wall != 500 {
		t.Errorf("purge status = %d pending, reports %v; want 1, n1 at 500 and none from n2", pending, reports)
	}
	tombstonesPending(true)
	// Read it, so that the read cache holds the tombstone the purge must take away.
	if v, ok := mustGet(t, s, "gone"); !ok || !v.Tombstone {
		t.Fatalf("gone = %+v ok=%v before the purge, want its tombstone", v, ok)
	}
	apply(3, func(tx *Tx) error {
		if err := tx.SetWatermark("n2", consistency.Version{Wall: 200}); err != nil {
			return err
		}
		var err error
		rep, err = tx.Purge()
		return err
	})
	if rep.Purged != 1 || rep.Horizon.Wall != 200 {
		t.Fatalf("purge after every report = %+v, want 1 purged at horizon 200", rep)
	}
	if _, ok := mustGet(t, s, "gone"); ok {
		t.Error("purged tombstone still there")
	}
	tombstonesPending(false)
	// A write older than the horizon can no longer be told from a deleted one: refused.
	if stored := mustMerge(t, s, write("gone", "zombie", 150, "n2")); len(stored) != 0 {
		t.Errorf("a write below the purge horizon was accepted: %+v", stored)
	}
	if stored := mustMerge(t, s, write("gone", "reborn", 300, "n2")); len(stored) != 1 {
		t.Errorf("a new write above the horizon was refused")
	}
}

// A purge asks the group committer, once it has committed, to prune the tentative entries below
// the new horizon. A group commit that opened its view of the committed layer before the purge
// committed, and picked the request up after, judged the entries by the old horizon, kept them,
// and used the request up: they stayed until the next restart, an eventual read could show a
// value older than a purged delete, and this node's watermark reports (so purging) stayed
// below them. Here the purge commits exactly in that window.
func TestPruneAfterAPurgeSeesThePurge(t *testing.T) {
	var s *Store
	var purgeNow atomic.Bool
	purged := make(chan error, 1)
	opts := Options{OpenTimeout: DefaultOptions().OpenTimeout, InitialMmapSize: 1 << 20, viewTaken: func(int) {
		if purgeNow.CompareAndSwap(true, false) {
			purged <- s.Apply(2, func(tx *Tx) error {
				if err := tx.SetWatermark("n1", consistency.Version{Wall: 200}); err != nil {
					return err
				}
				_, err := tx.Purge()
				return err
			})
		}
	}}
	s, err := Open(filepath.Join(t.TempDir(), "state.db"), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	mustMerge(t, s, write("stale", "v", 150, "n2")) // below the horizon the purge sets
	if err := s.Apply(1, func(tx *Tx) error {
		if err := tx.PutMember(replication.Member{ID: "n1"}); err != nil {
			return err
		}
		return tx.Put("gone", consistency.Value{Version: consistency.Version{Wall: 100, Node: "n1"}, Tombstone: true})
	}); err != nil {
		t.Fatal(err)
	}
	purgeNow.Store(true)
	mustMerge(t, s, write("trigger", "v", 300, "n1")) // a group commit, with the purge in its window
	if err := <-purged; err != nil {
		t.Fatal(err)
	}
	if h, err := s.PurgeHorizon(); err != nil || h.Wall != 200 {
		t.Fatalf("horizon after the purge %v, %v; want 200", h, err)
	}
	settle(t, s)
	if v, ok, err := s.Tentative("stale"); err != nil || ok {
		t.Errorf("tentative entry %v below the purge horizon still held (err %v)", v.Version, err)
	}
}

// A commit drops the tentative entries it supersedes, and a purge those below its horizon, only
// afterwards, in the group committer's next commit. A node that applies a delete and its purge
// together (catching up on the log) while it holds an older eventual write of the key
// (gossip reached it before the log did) had, until that commit, no committed record of the key
// and the old write still in its tentative layer: an eventual read, which answers the newer of
// the two layers, showed the deleted value again, at an applied index past the delete. An entry
// below the purge horizon can never be committed; Tentative must not show it.
func TestTentativeHidesEntriesBelowThePurgeHorizonBeforeTheyAreDropped(t *testing.T) {
	var stall atomic.Bool
	stalled, release := make(chan struct{}), make(chan struct{})
	opts := Options{OpenTimeout: DefaultOptions().OpenTimeout, InitialMmapSize: 1 << 20, viewTaken: func(int) {
		if stall.CompareAndSwap(true, false) {
			close(stalled)
			<-release
		}
	}}
	s, err := Open(filepath.Join(t.TempDir(), "state.db"), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()
	mustMerge(t, s, write("k", "old", 100, "n2"))
	stall.Store(true) // the group commit that would drop it waits
	if err := s.Apply(1, func(tx *Tx) error {
		if err := tx.PutMember(replication.Member{ID: "n1"}); err != nil {
			return err
		}
		if err := tx.Put("k", consistency.Value{Version: consistency.Version{Wall: 150, Node: "n1"}, Tombstone: true}); err != nil {
			return err
		}
		if err := tx.SetWatermark("n1", consistency.Version{Wall: 200}); err != nil {
			return err
		}
		rep, err := tx.Purge()
		if err == nil && rep.Purged != 1 {
			err = fmt.Errorf("purge %+v, want the tombstone purged", rep)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	<-stalled
	if _, ok := mustGet(t, s, "k"); ok {
		t.Fatal("the purged tombstone is still committed")
	}
	if v, ok, err := s.Tentative("k"); err != nil || ok {
		t.Errorf("Tentative(k) = %q at %v (err %v) after the delete and its purge: the deleted value is back", v.Data, v.Version, err)
	}
	close(release)
	settle(t, s)
	if v, ok, err := s.Tentative("k"); err != nil || ok {
		t.Errorf("Tentative(k) = %q at %v (err %v) once the group committer ran", v.Data, v.Version, err)
	}
}

// Gossip can deliver a write to a node at the moment the node commits it: whichever order the
// merge and the commit take, no tentative entry may outlive a committed version as new as its
// own (a node keeps only its own writes moving toward commit; anyone else's would linger).
func TestMergeRacingCommitLeavesNoSupersededEntry(t *testing.T) {
	s := mustOpen(t, filepath.Join(t.TempDir(), "state.db"))
	const keys = 500
	for i := 0; i < keys; i++ {
		w := write(fmt.Sprintf("k%d", i), "v", int64(i+1), "n2")
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); mustMerge(t, s, w) }()
		go func() {
			defer wg.Done()
			mustPut(t, s, uint64(i+1), map[string]consistency.Value{w.Key: w.Value})
		}()
		wg.Wait()
	}
	settle(t, s)
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, sum, err := s.PendingTentative(nil, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if sum.Count == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d tentative entries outlived committed versions as new as theirs", sum.Count)
		}
		settle(t, s)
		time.Sleep(time.Millisecond)
	}
}

// A group commit that stores nothing (gossip delivering a write again) must not cost a commit.
func TestMergeOfNothingNewCommitsNothing(t *testing.T) {
	s := mustOpen(t, filepath.Join(t.TempDir(), "state.db"))
	mustMerge(t, s, write("a", "v", 10, "n1"))
	st0 := s.tdb.Stats()
	before := st0.TxStats.GetWrite()
	for i := 0; i < 5; i++ {
		if stored := mustMerge(t, s, write("a", "v", 10, "n1")); len(stored) != 0 {
			t.Fatalf("duplicate stored: %+v", stored)
		}
	}
	st1 := s.tdb.Stats()
	if after := st1.TxStats.GetWrite(); after != before {
		t.Errorf("5 duplicate merges wrote %d pages; want no commit at all", after-before)
	}
	if stored := mustMerge(t, s, write("a", "v2", 11, "n1")); len(stored) != 1 {
		t.Fatal("a newer write after the duplicates was not stored")
	}
}

// Reads skip the tentative layer's transaction while it is empty, and see a write as soon as
// MergeTentative has returned, again after the layer emptied.
func TestTentativeReadsAcrossAnEmptyLayer(t *testing.T) {
	s := mustOpen(t, filepath.Join(t.TempDir(), "state.db"))
	if !s.tentativeEmpty.Load() {
		t.Fatal("a new store's tentative layer is not known empty")
	}
	for round := range 3 {
		wall := int64(10 * (round + 1))
		mustMerge(t, s, write("k", "t", wall, "n1"))
		if v, ok, err := s.Tentative("k"); err != nil || !ok || v.Version.Wall != wall {
			t.Fatalf("round %d: tentative k = %+v ok=%v err=%v right after the merge", round, v, ok, err)
		}
		mustPut(t, s, uint64(round+1), map[string]consistency.Value{"k": val("c", wall)})
		settle(t, s)
		if _, ok, _ := s.Tentative("k"); ok || !s.tentativeEmpty.Load() {
			t.Fatalf("round %d: after the commit caught up, found=%v empty=%v", round, ok, s.tentativeEmpty.Load())
		}
	}
}

// The backlog summary counts every tentative entry and finds the oldest and the newest version,
// as the full scan does, and is empty once the committed layer has caught up.
func TestSummarizeTentative(t *testing.T) {
	s := mustOpen(t, filepath.Join(t.TempDir(), "state.db"))
	if sum, err := s.SummarizeTentative(); err != nil || sum.Count != 0 || !sum.Oldest.IsZero() {
		t.Fatalf("empty layer: %+v %v", sum, err)
	}
	mustMerge(t, s, write("a", "x", 30, "n1"), write("b", "y", 10, "n2"), write("c", "z", 20, "n3"))
	sum, err := s.SummarizeTentative()
	if err != nil || sum.Count != 3 || sum.Oldest != (consistency.Version{Wall: 10, Node: "n2"}) || sum.Newest != (consistency.Version{Wall: 30, Node: "n1"}) {
		t.Errorf("summary %+v %v, want 3 entries, oldest 10@n2, newest 30@n1", sum, err)
	}
	if _, full, err := s.PendingTentative(nil, 0, 0); err != nil || full != sum {
		t.Errorf("full scan's summary %+v %v differs from %+v", full, err, sum)
	}
	mustPut(t, s, 1, map[string]consistency.Value{"a": val("c", 40), "b": val("c", 40), "c": val("c", 40)})
	settle(t, s)
	if sum, err := s.SummarizeTentative(); err != nil || sum.Count != 0 {
		t.Errorf("after the commits caught up: %+v %v", sum, err)
	}
}

// A member that stays away blocks purging until it is removed; removing it drops its report and
// marks it, registering again clears the mark, and snapshots carry the mark.
func TestRemovedMemberNoLongerBlocksPurging(t *testing.T) {
	s := mustOpen(t, filepath.Join(t.TempDir(), "state.db"))
	var rep PurgeReport
	apply := func(index uint64, fn func(*Tx) error) {
		t.Helper()
		if err := s.Apply(index, fn); err != nil {
			t.Fatal(err)
		}
	}
	purge := func(tx *Tx) (err error) {
		rep, err = tx.Purge()
		return err
	}
	apply(1, func(tx *Tx) error {
		for _, id := range []string{"n1", "n2", "n3"} {
			if err := tx.PutMember(replication.Member{ID: id}); err != nil {
				return err
			}
		}
		if err := tx.SetWatermark("n1", consistency.Version{Wall: 500}); err != nil {
			return err
		}
		if err := tx.SetWatermark("n3", consistency.Version{Wall: 50}); err != nil {
			return err
		}
		return tx.Put("gone", consistency.Value{Version: consistency.Version{Wall: 100, Node: "n1"}, Tombstone: true})
	})
	apply(2, purge)
	if rep.Purged != 0 || len(rep.BlockedBy) != 1 || rep.BlockedBy[0] != "n2" {
		t.Fatalf("purge with n2 silent = %+v, want blocked by n2", rep)
	}
	gen := s.MembersGeneration()
	// n3's old report (50) held the horizon below the tombstone; removing n3 forgets it too.
	apply(3, func(tx *Tx) error {
		if err := tx.RemoveMember("n2"); err != nil {
			return err
		}
		return tx.RemoveMember("n3")
	})
	if s.MembersGeneration() == gen {
		t.Error("removing members did not move the members generation")
	}
	members, err := s.Members()
	if err != nil || len(members) != 1 || members["n1"].ID != "n1" {
		t.Fatalf("members after removing n2 and n3 = %v, %v", members, err)
	}
	removed, err := s.Removed()
	if err != nil || len(removed) != 2 || !removed["n2"] || !removed["n3"] {
		t.Fatalf("removed = %v, %v; want n2 and n3", removed, err)
	}
	apply(4, purge)
	if rep.Purged != 1 || rep.Horizon.Wall != 500 || len(rep.BlockedBy) != 0 {
		t.Fatalf("purge after removing the silent member = %+v, want 1 purged at horizon 500", rep)
	}

	// The mark survives a snapshot and restore; registering again clears it.
	dst := mustOpen(t, filepath.Join(t.TempDir(), "copy.db"))
	mustRestoreFrom(t, s, dst)
	if removed, err := dst.Removed(); err != nil || len(removed) != 2 {
		t.Errorf("restored removed = %v, %v; want n2 and n3", removed, err)
	}
	apply(5, func(tx *Tx) error { return tx.PutMember(replication.Member{ID: "n3"}) })
	if removed, err := s.Removed(); err != nil || len(removed) != 1 || !removed["n2"] {
		t.Errorf("removed after n3 registered again = %v, %v; want n2 only", removed, err)
	}
	if err := s.Apply(6, func(tx *Tx) error {
		if tx.IsRemoved("n3") || !tx.IsRemoved("n2") {
			t.Errorf("IsRemoved: n3 %v (want false), n2 %v (want true)", tx.IsRemoved("n3"), tx.IsRemoved("n2"))
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

func TestClockFloorOnlyRisesAndSurvivesReopening(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s := mustOpen(t, path)
	if v, err := s.ClockFloor(); err != nil || !v.IsZero() {
		t.Fatalf("a new store's clock floor = %v, %v; want zero", v, err)
	}
	high := consistency.Version{Wall: 200}
	for _, v := range []consistency.Version{{Wall: 100}, high, {Wall: 150}} {
		if err := s.SetClockFloor(v); err != nil {
			t.Fatal(err)
		}
	}
	if v, _ := s.ClockFloor(); v != high {
		t.Fatalf("clock floor = %v, want the highest set, %v", v, high)
	}
	s.Close()
	s = mustOpen(t, path)
	if v, err := s.ClockFloor(); err != nil || v != high {
		t.Fatalf("clock floor after reopening = %v, %v; want %v", v, err, high)
	}
}

// Storing tentative writes this node stamped raises its clock floor above the newest of them, in
// the same commit, and writes it again only once a stored version reaches it (about once per
// second of clock). Writes other nodes stamped leave it alone.
func TestStoringOwnTentativeWritesRaisesTheClockFloor(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	open := func() *Store {
		s, err := Open(path, Options{OpenTimeout: DefaultOptions().OpenTimeout, InitialMmapSize: 1 << 20, NodeID: "n1"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	s := open()
	lead := int64(storedFloorLead)
	base := int64(1_000_000_000_000)
	if _, err := s.MergeTentative([]replication.Write{write("a", "1", base+5, "n1"), write("b", "1", base+9*lead, "n2")}); err != nil {
		t.Fatal(err)
	}
	want := consistency.Version{Wall: base + 5 + lead}
	if v, err := s.ClockFloor(); err != nil || v != want {
		t.Fatalf("clock floor after storing n1's write at %d (and n2's far ahead) = %v, %v; want %v", base+5, v, err, want)
	}
	// Below the floor: it stays.
	if _, err := s.MergeTentative([]replication.Write{write("c", "1", base+lead, "n1")}); err != nil {
		t.Fatal(err)
	}
	if v, _ := s.ClockFloor(); v != want {
		t.Fatalf("clock floor = %v after a write below it, want it unchanged at %v", v, want)
	}
	// A write refused (older than what the key holds) stores nothing and moves nothing.
	if stored, err := s.MergeTentative([]replication.Write{write("b", "0", base+2*lead, "n1")}); err != nil || len(stored) != 0 {
		t.Fatalf("an older write of b was stored: %v, %v", stored, err)
	}
	// At the floor: it rises again, and a reopened store still has it.
	if _, err := s.MergeTentative([]replication.Write{write("d", "1", base+5+lead, "n1")}); err != nil {
		t.Fatal(err)
	}
	want = consistency.Version{Wall: base + 5 + 2*lead}
	s.Close()
	s = open()
	if v, err := s.ClockFloor(); err != nil || v != want {
		t.Fatalf("clock floor after reopening = %v, %v; want %v", v, err, want)
	}
}

// PendingTentative stops decoding at its byte budget (the first entry is returned whatever its
// size) and counts what include accepted but it left out, so that a committer scan over a
// backlog of large values reads about one batch, not the backlog.
func TestPendingTentativeStopsAtItsByteBudget(t *testing.T) {
	s := mustOpen(t, filepath.Join(t.TempDir(), "state.db"))
	big := strings.Repeat("x", 100_000)
	for i := range 10 {
		mustMerge(t, s, write(fmt.Sprintf("k%d", i), big, int64(i+1), "n1"))
	}
	mustMerge(t, s, write("other", big, 50, "n2"))
	mine := func(_ []byte, v consistency.Version) bool { return v.Node == "n1" }
	for _, c := range []struct {
		limit, maxBytes, want int
	}{
		{0, 0, 10},
		{0, 350_000, 3},
		{0, 10, 1}, // the first whatever its size
		{2, 350_000, 2},
	} {
		got, sum, err := s.PendingTentative(mine, c.limit, c.maxBytes)
		if err != nil || len(got) != c.want || sum.Left != 10-c.want || sum.Count != 11 {
			t.Errorf("limit %d, budget %d: %d entries, left %d, count %d, err %v; want %d, left %d, count 11",
				c.limit, c.maxBytes, len(got), sum.Left, sum.Count, err, c.want, 10-c.want)
		}
		for _, w := range got {
			if w.Origin() != "n1" {
				t.Errorf("include refused %s's write, returned: %s", w.Origin(), w.Key)
			}
		}
	}
}

// PendingTentative stops at the first entry over its byte budget: a smaller entry after it is
// left out too, so that what it returns is the first entries include accepts, in key order.
func TestPendingTentativeLeavesEverythingPastTheBudget(t *testing.T) {
	s := mustOpen(t, filepath.Join(t.TempDir(), "state.db"))
	mustMerge(t, s, write("a", strings.Repeat("x", 1_000), 1, "n1"))
	mustMerge(t, s, write("b", strings.Repeat("x", 100_000), 2, "n1"))
	mustMerge(t, s, write("c", strings.Repeat("x", 1_000), 3, "n1"))
	got, sum, err := s.PendingTentative(nil, 0, 50_000)
	if err != nil || len(got) != 1 || got[0].Key != "a" || sum.Left != 2 {
		var keys []string
		for _, w := range got {
			keys = append(keys, w.Key)
		}
		t.Errorf("budget 50,000 over a (1,000), b (100,000), c (1,000): returned %v, left %d, err %v; want a, left 2", keys, sum.Left, err)
	}
}

// A merge the group committer has taken when the store closes is answered with what that
// commit did. MergeTentative gave up at once instead, with ErrClosed, while the commit went on
// and made the write durable: a node stopping (kvd --shutdown, a handler outliving the HTTP
// server's grace period) answered an eventual write 500, "not accepted", and committed it
// after its restart.
func TestMergeTakenWhenClosingIsAnsweredWithItsCommit(t *testing.T) {
	var stall atomic.Bool
	stalled, release := make(chan struct{}), make(chan struct{})
	opts := Options{OpenTimeout: DefaultOptions().OpenTimeout, InitialMmapSize: 1 << 20, viewTaken: func(merges int) {
		// Only the commit that carries the write: Open's prune runs in a commit of its own,
		// which, late on a loaded machine, stalled here in the write's place.
		if merges > 0 && stall.CompareAndSwap(true, false) {
			close(stalled)
			<-release
		}
	}}
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	stall.Store(true)
	type merged struct {
		stored []replication.Write
		err    error
	}
	answer := make(chan merged, 1)
	go func() {
		stored, err := s.MergeTentative([]replication.Write{write("k", "v", 100, "n1")})
		answer <- merged{stored, err}
	}()
	<-stalled // the group commit has the write
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	var m merged
	select {
	case m = <-answer:
		t.Errorf("MergeTentative answered (%d stored, %v) while its commit was still running", len(m.stored), m.err)
		close(release)
	case <-time.After(100 * time.Millisecond):
		close(release)
		m = <-answer
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	s, err = Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, held, err := s.Tentative("k")
	if err != nil {
		t.Fatal(err)
	}
	if held != (m.err == nil && len(m.stored) == 1) {
		t.Errorf("the write is durable: %v; MergeTentative answered %d stored, %v", held, len(m.stored), m.err)
	}
}
