package store

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/dialkv/dialkv/consistency"
	"github.com/dialkv/dialkv/replication"
)

func mustOpen(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(path, Options{OpenTimeout: DefaultOptions().OpenTimeout, InitialMmapSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func val(data string, wall int64) consistency.Value {
	return consistency.Value{Version: consistency.Version{Wall: wall, Node: "n1"}, Data: []byte(data)}
}

func mustPut(t *testing.T, s *Store, index uint64, kvs map[string]consistency.Value) {
	t.Helper()
	err := s.Apply(index, func(tx *Tx) error {
		for k, v := range kvs {
			if err := tx.Put(k, v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// mustRestoreFrom snapshots src's committed layer and restores dst from it.
func mustRestoreFrom(t *testing.T, src, dst *Store) {
	t.Helper()
	if err := dst.Restore(bytes.NewReader(snapshotBytes(t, src))); err != nil {
		t.Fatal(err)
	}
}

// snapshotBytes is a snapshot of src's committed layer, as its stream.
func snapshotBytes(t testing.TB, src *Store) []byte {
	t.Helper()
	snap, err := src.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Release()
	var buf bytes.Buffer
	if _, err := snap.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func mustGet(t *testing.T, s *Store, key string) (consistency.Value, bool) {
	t.Helper()
	v, ok, err := s.Get(key)
	if err != nil {
		t.Fatal(err)
	}
	return v, ok
}

func TestApplyGetAndAppliedIndexSurviveReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s := mustOpen(t, path)
	changed := s.AppliedChanged()
	mustPut(t, s, 7, map[string]consistency.Value{"a": val("1", 10), "b": {Version: consistency.Version{Wall: 11, Node: "n2"}, Tombstone: true}})
	select {
	case <-changed:
	default:
		t.Fatal("AppliedChanged not closed after Apply")
	}
	if got := s.AppliedIndex(); got != 7 {
		t.Fatalf("applied = %d, want 7", got)
	}
	s.Close()

	s = mustOpen(t, path)
	if got := s.AppliedIndex(); got != 7 {
		t.Fatalf("applied after reopen = %d, want 7", got)
	}
	if v, ok := mustGet(t, s, "a"); !ok || string(v.Data) != "1" || v.Version.Wall != 10 {
		t.Errorf("a = %+v ok=%v", v, ok)
	}
	if v, ok := mustGet(t, s, "b"); !ok || !v.Tombstone || v.Version.Node != "n2" {
		t.Errorf("b = %+v ok=%v, want tombstone by n2", v, ok)
	}
	if _, ok := mustGet(t, s, "c"); ok {
		t.Error("c exists")
	}
}

func TestFailedApplyChangesNothing(t *testing.T) {
	s := mustOpen(t, filepath.Join(t.TempDir(), "state.db"))
	mustPut(t, s, 1, map[string]consistency.Value{"a": val("1", 1)})
	err := s.Apply(2, func(tx *Tx) error {
		if err := tx.Put("a", val("2", 2)); err != nil {
			return err
		}
		return replication.ErrInvalid
	})
	if err == nil {
		t.Fatal("Apply returned nil for a failing callback")
	}
	if v, _ := mustGet(t, s, "a"); string(v.Data) != "1" || s.AppliedIndex() != 1 {
		t.Errorf("after failed apply: a=%q applied=%d; want 1, 1", v.Data, s.AppliedIndex())
	}
}

func TestListPrefixSkipsTombstonesAndHonoursLimit(t *testing.T) {
	s := mustOpen(t, filepath.Join(t.TempDir(), "state.db"))
	mustPut(t, s, 1, map[string]consistency.Value{
		"app/1": val("x", 1), "app/2": {Version: consistency.Version{Wall: 1}, Tombstone: true},
		"app/3": val("z", 1), "apq": val("no", 1), "ap": val("no", 1),
	})
	items, more, _, applied, err := s.List(ListRange{Prefix: "app/"})
	if err != nil || more || len(items) != 2 || items[0].Key != "app/1" || items[1].Key != "app/3" || applied != 1 {
		t.Fatalf("List = %+v more=%v applied=%d err=%v; want app/1, app/3 at index 1", items, more, applied, err)
	}
	items, more, _, _, _ = s.List(ListRange{Prefix: "app/", Limit: 1})
	if len(items) != 1 || !more {
		t.Errorf("List limit 1 = %d items more=%v; want 1, true", len(items), more)
	}
	// more is exact: a limit that leaves out only tombstones leaves out nothing.
	items, more, _, _, _ = s.List(ListRange{Prefix: "app/", After: "app/1", Limit: 1})
	if len(items) != 1 || items[0].Key != "app/3" || more {
		t.Errorf("List after app/1 limit 1 = %+v more=%v; want app/3 and no more", items, more)
	}
}

// Paging: each page goes on strictly after the key given, stays within the prefix whatever
// bytes the keys hold (keys that are not UTF-8, 0x00 and 0xff next to the prefix), and walking
// the pages from one page's last key to the next returns every live key once, in order.
func TestListPagesAfterKeys(t *testing.T) {
	s := mustOpen(t, filepath.Join(t.TempDir(), "state.db"))
	tomb := consistency.Value{Version: consistency.Version{Wall: 1}, Tombstone: true}
	mustPut(t, s, 7, map[string]consistency.Value{
		"\xfe\xff": val("before the prefix", 1),
		"\xff":     val("the prefix itself", 1),
		"\xff\x00": val("a", 1),
		"\xff\x01": tomb,
		"\xff\x80": val("b", 1),
		"\xff\xfe": val("c", 1),
		"\xff\xff": val("d", 1),
		"b":        val("after the prefix", 1),
		"a/1":      val("1", 1), "a/2": val("2", 1), "a0": val("past a/", 1), "a.": val("before a/", 1),
	})
	keys := func(items []Item) []string {
		var ks []string
		for _, it := range items {
			ks = append(ks, it.Key)
		}
		return ks
	}
	tests := []struct {
		name string
		r    ListRange
		want []string
		more bool
	}{
		{"prefix, no after", ListRange{Prefix: "\xff"}, []string{"\xff", "\xff\x00", "\xff\x80", "\xff\xfe", "\xff\xff"}, false},
		{"after the prefix itself", ListRange{Prefix: "\xff", After: "\xff"}, []string{"\xff\x00", "\xff\x80", "\xff\xfe", "\xff\xff"}, false},
		{"after a tombstone", ListRange{Prefix: "\xff", After: "\xff\x01"}, []string{"\xff\x80", "\xff\xfe", "\xff\xff"}, false},
		{"after a key that is not there", ListRange{Prefix: "\xff", After: "\xff\x7f\xff"}, []string{"\xff\x80", "\xff\xfe", "\xff\xff"}, false},
		{"after the last key", ListRange{Prefix: "\xff", After: "\xff\xff"}, nil, false},
		{"after past the prefix", ListRange{Prefix: "a/", After: "a0"}, nil, false},
		{"after below the prefix", ListRange{Prefix: "a/", After: "a."}, []string{"a/1", "a/2"}, false},
		{"after with no prefix", ListRange{After: "\xff\xfe"}, []string{"\xff\xff"}, false},
		{"after and a limit", ListRange{Prefix: "\xff", After: "\xff\x00", Limit: 2}, []string{"\xff\x80", "\xff\xfe"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			items, more, _, applied, err := s.List(tt.r)
			if err != nil || !slices.Equal(keys(items), tt.want) || more != tt.more || applied != 7 {
				t.Errorf("List(prefix %+q after %+q limit %d) = %+q more=%v applied=%d err=%v; want %+q more=%v applied 7", tt.r.Prefix, tt.r.After, tt.r.Limit, keys(items), more, applied, err, tt.want, tt.more)
			}
		})
	}

	var walked []string
	r := ListRange{Prefix: "\xff", Limit: 2}
	for pages := 1; ; pages++ {
		items, more, _, _, err := s.List(r)
		if err != nil || len(items) == 0 || pages > 3 {
			t.Fatalf("page %d after %q: %+q, %v", pages, r.After, keys(items), err)
		}
		walked = append(walked, keys(items)...)
		if !more {
			break
		}
		r.After = items[len(items)-1].Key
	}
	if want := []string{"\xff", "\xff\x00", "\xff\x80", "\xff\xfe", "\xff\xff"}; !slices.Equal(walked, want) {
		t.Errorf("pages of 2 walked %+q, want %+q", walked, want)
	}
}

// MaxBytes bounds one answer by the bytes of its keys and values, but never below one item: a
// value larger than the budget comes alone, so a walk never stalls.
func TestListMaxBytes(t *testing.T) {
	s := mustOpen(t, filepath.Join(t.TempDir(), "state.db"))
	mustPut(t, s, 1, map[string]consistency.Value{
		"k1": val("12345678", 1), "k2": val("12345678", 1), "k3": val(strings.Repeat("x", 100), 1), "k4": val("", 1),
	})
	tests := []struct {
		r    ListRange
		want []string
		more bool
	}{
		{ListRange{MaxBytes: 20}, []string{"k1", "k2"}, true}, // 10 + 10 bytes fit, k3 does not
		{ListRange{MaxBytes: 19}, []string{"k1"}, true},
		{ListRange{MaxBytes: 1}, []string{"k1"}, true}, // the first item always
		{ListRange{After: "k2", MaxBytes: 20}, []string{"k3"}, true},
		{ListRange{After: "k2", MaxBytes: 104}, []string{"k3", "k4"}, false},
		{ListRange{MaxBytes: 1 << 20, Limit: 3}, []string{"k1", "k2", "k3"}, true},
	}
	for _, tt := range tests {
		items, more, _, _, err := s.List(tt.r)
		var got []string
		for _, it := range items {
			got = append(got, it.Key)
		}
		if err != nil || !slices.Equal(got, tt.want) || more != tt.more {
			t.Errorf("List(%+v) = %q more=%v err=%v; want %q more=%v", tt.r, got, more, err, tt.want, tt.more)
		}
	}
}

// MaxScan bounds the records one List reads, tombstones included: a run of deleted keys longer
// than it (they wait for purging while a member is away, for one) ends the answer, with where
// to go on, instead of being read through in one transaction; walking on from there lists every
// live key once.
func TestListMaxScanCountsTombstones(t *testing.T) {
	s := mustOpen(t, filepath.Join(t.TempDir(), "state.db"))
	tomb := consistency.Value{Version: consistency.Version{Wall: 1}, Tombstone: true}
	mustPut(t, s, 1, map[string]consistency.Value{
		"d/0": val("a", 1), "d/1": tomb, "d/2": tomb, "d/3": tomb, "d/4": tomb, "d/5": tomb, "d/6": val("b", 1), "d/7": tomb,
	})
	type page struct {
		keys []string
		more bool
		next string
	}
	var pages []page
	r := ListRange{Prefix: "d/", Limit: 10, MaxScan: 3}
	for len(pages) < 10 {
		items, more, next, _, err := s.List(r)
		if err != nil {
			t.Fatal(err)
		}
		p := page{more: more, next: next}
		for _, it := range items {
			p.keys = append(p.keys, it.Key)
		}
		pages = append(pages, p)
		if !more {
			break
		}
		r.After = next
	}
	want := []page{
		{[]string{"d/0"}, true, "d/2"},
		{nil, true, "d/5"},
		{[]string{"d/6"}, false, ""}, // d/6 and the tombstone after it: 2 records
	}
	if !slices.EqualFunc(pages, want, func(a, b page) bool {
		return slices.Equal(a.keys, b.keys) && a.more == b.more && a.next == b.next
	}) {
		t.Errorf("pages of at most 3 records: %+v, want %+v", pages, want)
	}
	// Under MaxScan, the limit still cuts at the last item, and more stays exact.
	items, more, next, _, _ := s.List(ListRange{Prefix: "d/", Limit: 1, MaxScan: 100})
	if len(items) != 1 || !more || next != "d/0" {
		t.Errorf("limit 1: %d items more=%v next=%q; want d/0, more, next d/0", len(items), more, next)
	}
	if _, more, _, _, _ = s.List(ListRange{Prefix: "d/", After: "d/6", MaxScan: 100}); more {
		t.Errorf("after d/6: more, want none (only a tombstone is left)")
	}
}

// Walking a prefix from each answer's next lists every live key once, in order, whatever the
// limits and however tombstones lie among the keys; every answer reads at most MaxScan records.
func TestListWalksEveryLiveKeyOnceUnderAnyLimits(t *testing.T) {
	s := mustOpen(t, filepath.Join(t.TempDir(), "state.db"))
	rng := rand.New(rand.NewPCG(1, 2))
	kvs := map[string]consistency.Value{"q": val("outside", 1), "o": val("outside", 1)}
	var live []string
	for i := range 300 {
		k := fmt.Sprintf("p/%03d", i)
		switch {
		case rng.IntN(3) > 0 && i%50 < 40: // runs of tombstones, and stretches of mostly tombstones
			kvs[k] = consistency.Value{Version: consistency.Version{Wall: 1}, Tombstone: true}
		default:
			kvs[k] = val(strings.Repeat("v", rng.IntN(20)), 1)
			live = append(live, k)
		}
	}
	mustPut(t, s, 1, kvs)
	for range 200 {
		r := ListRange{Prefix: "p/", Limit: rng.IntN(6), MaxBytes: rng.IntN(60), MaxScan: 1 + rng.IntN(8)}
		if rng.IntN(4) == 0 {
			r.MaxScan = 0
		}
		var walked []string
		for answers := 0; ; answers++ {
			if answers > 400 {
				t.Fatalf("%+v: no end after %d answers", r, answers)
			}
			items, more, next, _, err := s.List(r)
			if err != nil {
				t.Fatal(err)
			}
			if r.MaxScan > 0 && len(items) > r.MaxScan {
				t.Fatalf("%+v: %d items from at most %d records", r, len(items), r.MaxScan)
			}
			for _, it := range items {
				walked = append(walked, it.Key)
			}
			if !more {
				if next != "" {
					t.Fatalf("%+v: next %q without more", r, next)
				}
				break
			}
			if next <= r.After {
				t.Fatalf("%+v: next %q does not move on", r, next)
			}
			r.After = next
		}
		if !slices.Equal(walked, live) {
			t.Fatalf("limits %+v walked %d keys %q, want the %d live ones", r, len(walked), walked, len(live))
		}
	}
}

func TestSnapshotRestoreReplacesState(t *testing.T) {
	src := mustOpen(t, filepath.Join(t.TempDir(), "src.db"))
	mustPut(t, src, 5, map[string]consistency.Value{"a": val("1", 1), "b": val("2", 1)})
	if err := src.Apply(6, func(tx *Tx) error {
		return tx.PutMember(replication.Member{ID: "n1", RaftAddr: "r1", HTTPAddr: "h1"})
	}); err != nil {
		t.Fatal(err)
	}
	snap, err := src.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	// Writes after the snapshot was taken must not leak into it.
	mustPut(t, src, 7, map[string]consistency.Value{"late": val("no", 2)})
	var buf bytes.Buffer
	if _, err := snap.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	snap.Release()
	snap.Release() // idempotent

	dst := mustOpen(t, filepath.Join(t.TempDir(), "dst.db"))
	mustPut(t, dst, 99, map[string]consistency.Value{"stale": val("must vanish", 1)})
	if err := dst.Restore(bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	if dst.AppliedIndex() != 6 {
		t.Errorf("applied after restore = %d, want 6", dst.AppliedIndex())
	}
	for key, want := range map[string]string{"a": "1", "b": "2"} {
		if v, ok := mustGet(t, dst, key); !ok || string(v.Data) != want {
			t.Errorf("%s = %q ok=%v, want %q", key, v.Data, ok, want)
		}
	}
	for _, gone := range []string{"stale", "late"} {
		if _, ok := mustGet(t, dst, gone); ok {
			t.Errorf("%s survived the restore", gone)
		}
	}
	members, err := dst.Members()
	if err != nil || members["n1"].HTTPAddr != "h1" {
		t.Errorf("members = %+v, %v", members, err)
	}

	// A corrupt stream leaves the restored state whole.
	corrupt := buf.Bytes()[:buf.Len()-3]
	if err := dst.Restore(bytes.NewReader(corrupt)); err == nil {
		t.Fatal("restore of a truncated snapshot succeeded")
	}
	if v, ok := mustGet(t, dst, "a"); !ok || string(v.Data) != "1" || dst.AppliedIndex() != 6 {
		t.Errorf("after failed restore: a=%q ok=%v applied=%d", v.Data, ok, dst.AppliedIndex())
	}
}

// A snapshot taken once the log had moved past the last entry Apply saw (no-ops and barriers
// never reach it) restores to that log index, and the state is otherwise the same.
func TestSnapshotCoveringLaterLogEntriesRestoresTheirIndex(t *testing.T) {
	src := mustOpen(t, filepath.Join(t.TempDir(), "src.db"))
	empty := mustOpen(t, filepath.Join(t.TempDir(), "empty.db"))
	mustPut(t, src, 5, map[string]consistency.Value{"a": val("1", 1)})
	if err := src.Apply(6, func(tx *Tx) error {
		if err := tx.PutMember(replication.Member{ID: "n1"}); err != nil {
			return err
		}
		return tx.SetWatermark("n1", consistency.Version{Wall: 3})
	}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name          string
		from          *Store
		covers, wantA uint64
	}{
		{"covers later entries", src, 9, 9},
		{"covers fewer entries than applied", src, 4, 6},
		{"covers nothing", src, 0, 6},
		{"state with nothing applied", empty, 2, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			snap, err := c.from.Snapshot()
			if err != nil {
				t.Fatal(err)
			}
			snap.CoverLogIndex(c.covers)
			var buf bytes.Buffer
			_, err = snap.WriteTo(&buf)
			snap.Release()
			if err != nil {
				t.Fatal(err)
			}
			dst := mustOpen(t, filepath.Join(t.TempDir(), "dst.db"))
			if err := dst.Restore(&buf); err != nil {
				t.Fatal(err)
			}
			if got := dst.AppliedIndex(); got != c.wantA {
				t.Errorf("applied after restore = %d, want %d", got, c.wantA)
			}
			if c.from == src {
				if v, ok := mustGet(t, dst, "a"); !ok || string(v.Data) != "1" {
					t.Errorf("a = %q ok=%v after restore", v.Data, ok)
				}
				if _, reports, err := dst.PurgeStatus(); err != nil || reports["n1"].Wall != 3 {
					t.Errorf("purge status after restore: %v %v", reports, err)
				}
			}
		})
	}
}

func TestMembersGenerationMovesOnlyWithMembers(t *testing.T) {
	s := mustOpen(t, filepath.Join(t.TempDir(), "state.db"))
	g0 := s.MembersGeneration()
	mustPut(t, s, 1, map[string]consistency.Value{"a": val("1", 1)})
	if s.MembersGeneration() != g0 {
		t.Fatal("a key write moved the members generation")
	}
	if err := s.Apply(2, func(tx *Tx) error { return tx.PutMember(replication.Member{ID: "n1"}) }); err != nil {
		t.Fatal(err)
	}
	if s.MembersGeneration() == g0 {
		t.Fatal("registering a member did not move the members generation")
	}
	g1 := s.MembersGeneration()
	mustRestoreFrom(t, s, s)
	if s.MembersGeneration() == g1 {
		t.Fatal("a restore did not move the members generation")
	}
}

// CommittedVersions reads the versions and the applied index of one state: tombstones count,
// absent keys give the zero version.
func TestCommittedVersionsReadOneState(t *testing.T) {
	s := mustOpen(t, filepath.Join(t.TempDir(), "state.db"))
	mustPut(t, s, 3, map[string]consistency.Value{"a": val("1", 10), "b": {Version: consistency.Version{Wall: 11, Node: "n2"}, Tombstone: true}})
	mustPut(t, s, 5, map[string]consistency.Value{"a": val("2", 12)})
	got, applied, horizon, err := s.CommittedVersions([]string{"b", "missing", "a"})
	if err != nil {
		t.Fatal(err)
	}
	want := []consistency.Version{{Wall: 11, Node: "n2"}, {}, {Wall: 12, Node: "n1"}}
	if applied != 5 || len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] || !horizon.IsZero() {
		t.Errorf("CommittedVersions = %v at %d (horizon %v), want %v at 5 (no horizon)", got, applied, horizon, want)
	}
}

// Restore writes a large snapshot in several transactions, not one that holds the whole state
// in memory, and still replaces the state at once: until the last transaction the old state is
// what readers see, a stream that breaks off midway leaves it whole, and a half-built state
// left by a crash is dropped when the store is opened again.
func TestRestoreInPartsReplacesTheStateAtOnce(t *testing.T) {
	src := mustOpen(t, filepath.Join(t.TempDir(), "src.db"))
	fresh := map[string]consistency.Value{}
	for i := range 64 {
		fresh[fmt.Sprintf("new%02d", i)] = val(strings.Repeat("n", 1000), 2)
	}
	mustPut(t, src, 9, fresh)
	stream := snapshotBytes(t, src)

	path := filepath.Join(t.TempDir(), "dst.db")
	staged := 0
	var dst *Store
	oldStateWhole := func(when string) {
		t.Helper()
		if v, ok := mustGet(t, dst, "old"); !ok || string(v.Data) != "kept" || dst.AppliedIndex() != 3 {
			t.Errorf("%s: old = %q ok=%v, applied %d; want the old state whole", when, v.Data, ok, dst.AppliedIndex())
		}
		if _, ok := mustGet(t, dst, "new00"); ok {
			t.Errorf("%s: the restored state shows already", when)
		}
	}
	opts := Options{OpenTimeout: time.Second, InitialMmapSize: 1 << 20, restoreTxBytes: 8 << 10, restoreStaged: func() {
		staged++
		oldStateWhole(fmt.Sprintf("after part %d", staged))
	}}
	dst, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	first := dst
	t.Cleanup(func() { first.Close() })
	mustPut(t, dst, 3, map[string]consistency.Value{"old": val("kept", 1)})

	if err := dst.Restore(bytes.NewReader(stream[:len(stream)*2/3])); err == nil {
		t.Fatal("restore of a truncated snapshot succeeded")
	}
	oldStateWhole("after a broken stream")
	if staged < 2 {
		t.Errorf("the broken restore committed %d parts before failing, want several", staged)
	}

	staged = 0
	if err := dst.Restore(bytes.NewReader(stream)); err != nil {
		t.Fatal(err)
	}
	if staged < 4 {
		t.Errorf("a %d-byte snapshot restored in %d parts of at most 8 KiB", len(stream), staged+1)
	}
	if _, ok := mustGet(t, dst, "old"); ok || dst.AppliedIndex() != 9 {
		t.Errorf("after the restore: old survived (%v) or applied %d, want 9", ok, dst.AppliedIndex())
	}
	for key, want := range fresh {
		if v, ok := mustGet(t, dst, key); !ok || !bytes.Equal(v.Data, want.Data) {
			t.Fatalf("%s after the restore: ok=%v, %d bytes", key, ok, len(v.Data))
		}
	}

	// A crash midway leaves the half-built layer in the file: Open drops it.
	if err := dst.db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucket(bucketRestoring)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	dst = mustOpen(t, path)
	if err := dst.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketRestoring) != nil {
			return errors.New("a half-built restore survived Open")
		}
		return nil
	}); err != nil {
		t.Error(err)
	}
	if dst.AppliedIndex() != 9 {
		t.Errorf("reopened at applied %d, want 9", dst.AppliedIndex())
	}
}
