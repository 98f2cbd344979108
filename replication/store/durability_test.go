package store

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/dialkv/dialkv/consistency"
)

// crash closes s as a killed process would leave it: no sync, no clean mark.
func crash(t *testing.T, s *Store) {
	t.Helper()
	s.closeOnce.Do(func() {
		close(s.stop)
		s.merging.Wait()
		s.db.Close()
		s.tdb.Close()
	})
}

func openBooted(t *testing.T, path, boot string) *Store {
	t.Helper()
	s, err := Open(path, Options{OpenTimeout: time.Second, InitialMmapSize: 1 << 20, BootID: func() string { return boot }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// settle waits until the group committer has handled every drop queued so far.
func settle(t *testing.T, s *Store) {
	t.Helper()
	want := s.dropsSeen.Load()
	select {
	case s.dropWake <- struct{}{}:
	default:
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.dropsDone.Load() < want {
		if time.Now().After(deadline) {
			t.Fatalf("tentative drops not committed within 5s (%d of %d)", s.dropsDone.Load(), want)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestProcessCrashKeepsUnsyncedCommittedLayer(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s := openBooted(t, path, "boot-1")
	mustPut(t, s, 9, map[string]consistency.Value{"a": val("1", 10)})
	mustMerge(t, s, write("t", "tentative", 20, "n1"))
	crash(t, s)

	// Same boot: the page cache kept every write, the file is whole.
	s = openBooted(t, path, "boot-1")
	if s.Torn {
		t.Fatal("a process crash (same boot) was taken for a machine crash")
	}
	if s.AppliedIndex() != 9 {
		t.Errorf("applied = %d, want 9", s.AppliedIndex())
	}
	if v, ok := mustGet(t, s, "a"); !ok || string(v.Data) != "1" {
		t.Errorf("a = %+v ok=%v", v, ok)
	}
	if _, ok, _ := s.Tentative("t"); !ok {
		t.Error("tentative write lost")
	}
}

func TestMachineCrashSetsTheCommittedLayerAside(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s := openBooted(t, path, "boot-1")
	mustPut(t, s, 9, map[string]consistency.Value{"a": val("1", 10)})
	mustMerge(t, s, write("t", "tentative", 20, "n1"))
	crash(t, s)

	// Another boot, and the file was open: unsynced pages may be lost. Start empty.
	s = openBooted(t, path, "boot-2")
	if !s.Torn || s.TornPath == "" {
		t.Fatalf("Torn = %v (%q), want the file set aside", s.Torn, s.TornPath)
	}
	if _, err := os.Stat(s.TornPath); err != nil {
		t.Errorf("set-aside file: %v", err)
	}
	if s.AppliedIndex() != 0 {
		t.Errorf("applied = %d, want 0 (rebuilt from raft)", s.AppliedIndex())
	}
	if _, ok := mustGet(t, s, "a"); ok {
		t.Error("committed data survived being set aside")
	}
	// The tentative layer is fsynced: an acknowledged eventual write survives a machine crash.
	if v, ok, _ := s.Tentative("t"); !ok || string(v.Data) != "tentative" {
		t.Errorf("tentative t = %+v ok=%v", v, ok)
	}
}

func TestCleanCloseSurvivesAReboot(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s := openBooted(t, path, "boot-1")
	mustPut(t, s, 3, map[string]consistency.Value{"a": val("1", 10)})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openBooted(t, path, "boot-2")
	if s.Torn || s.AppliedIndex() != 3 {
		t.Errorf("after a clean close and a reboot: torn=%v applied=%d, want false, 3", s.Torn, s.AppliedIndex())
	}
	// Unknown boot ids (no /proc): a clean close still counts.
	s.Close()
	s = openBooted(t, path, "")
	if s.Torn {
		t.Error("clean file taken for torn with an unknown boot id")
	}
	crash(t, s)
	s = openBooted(t, path, "")
	if !s.Torn {
		t.Error("an unclean stop with an unknown boot id must count as a machine crash")
	}
}

func TestOldSingleFileTentativeLayerIsMoved(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	// The layout before the split: the tentative bucket inside state.db, no mark file.
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket(bucketTentative)
		if err != nil {
			return err
		}
		return b.Put([]byte("old"), encodeRecord(write("old", "kept", 5, "n2").Value))
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	s := openBooted(t, path, "boot-1")
	if s.Torn {
		t.Fatal("a file without a mark was taken for torn")
	}
	if v, ok, _ := s.Tentative("old"); !ok || string(v.Data) != "kept" {
		t.Fatalf("old tentative entry = %+v ok=%v, want it moved", v, ok)
	}
	s.Close()
	db, err = bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketTentative) != nil {
			t.Error("the old tentative bucket is still in the committed layer's file")
		}
		return nil
	})
}

func TestOpenPrunesTentativeEntriesTheCommittedLayerCaughtUpWith(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s := openBooted(t, path, "boot-1")
	mustPut(t, s, 1, map[string]consistency.Value{"a": val("c", 10)})
	crash(t, s)
	// As if the process died after the commit and before the group committer dropped a's entry.
	tdb, err := bolt.Open(TentativePath(path), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = tdb.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketTentative)
		if err := b.Put([]byte("a"), encodeRecord(write("a", "t", 10, "n1").Value)); err != nil {
			return err
		}
		return b.Put([]byte("b"), encodeRecord(write("b", "t", 30, "n1").Value))
	})
	tdb.Close()
	if err != nil {
		t.Fatal(err)
	}
	s = openBooted(t, path, "boot-1")
	settle(t, s)
	if _, ok, _ := s.Tentative("a"); ok {
		t.Error("tentative a, committed before the crash, survived the reopen")
	}
	if _, ok, _ := s.Tentative("b"); !ok {
		t.Error("tentative b was dropped")
	}
}
