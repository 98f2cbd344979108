package store

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/dialkv/dialkv/consistency"
	"github.com/dialkv/dialkv/replication"
)

// mustSetMeta stores raw under key in the committed layer's meta bucket, as a damaged disk or
// a bug of another binary might have left it.
func mustSetMeta(t *testing.T, s *Store, key, raw []byte) {
	t.Helper()
	err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketCommitted).Bucket(bucketMeta).Put(key, raw)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A stored purge horizon that does not decode is an error naming the file, the bucket and the
// key, wherever it is read: taken as zero, it let this replica take eventual writes below the
// horizon that every other replica refuses (a deleted key could come back on it alone), and
// keep new keys' versions below it.
func TestCorruptPurgeHorizonFailsLoudly(t *testing.T) {
	horizon := replication.AppendVersion(nil, consistency.Version{Wall: 1000, Node: "n1"})
	cases := map[string][]byte{
		"truncated":       horizon[:len(horizon)-1],
		"cut to the wall": horizon[:5],
		"trailing bytes":  append(horizon[:len(horizon):len(horizon)], 0xff),
	}
	for name, raw := range cases {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.db")
			s := mustOpen(t, path)
			mustSetMeta(t, s, keyPurgeHorizon, raw)
			wantCorrupt := func(what string, err error) {
				t.Helper()
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("%s: %v, want ErrCorrupt", what, err)
				}
				for _, want := range []string{path, "committed/meta", "purge_horizon", "move " + path + " aside"} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("%s: %q does not say %q", what, err, want)
					}
				}
			}
			h, err := s.PurgeHorizon()
			if err == nil {
				t.Fatalf("PurgeHorizon = %v, nil from a corrupt value", h)
			}
			wantCorrupt("PurgeHorizon", err)
			_, _, _, err = s.CommittedVersions([]string{"k"})
			wantCorrupt("CommittedVersions", err)
			err = s.Apply(1, func(tx *Tx) error {
				_, err := tx.PurgeHorizon()
				return err
			})
			wantCorrupt("Tx.PurgeHorizon", err)
			if s.AppliedIndex() != 0 {
				t.Errorf("applied index %d after a failed apply", s.AppliedIndex())
			}
			// Below the horizon the value held: refused, not stored.
			stored, err := s.MergeTentative([]replication.Write{{Key: "k", Value: val("old", 500)}})
			wantCorrupt("MergeTentative", err)
			if len(stored) != 0 {
				t.Errorf("MergeTentative stored %v under a corrupt horizon", stored)
			}
		})
	}
}

func TestCorruptNewestVersionFailsLoudly(t *testing.T) {
	s := mustOpen(t, filepath.Join(t.TempDir(), "state.db"))
	mustSetMeta(t, s, keyNewest, []byte{0, 1, 2})
	if v, err := s.NewestVersion(); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "newest_version") {
		t.Fatalf("NewestVersion = %v, %v; want ErrCorrupt naming the key", v, err)
	}
	err := s.Apply(1, func(tx *Tx) error { return tx.NoteVersion(consistency.Version{Wall: 5, Node: "n1"}) })
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("NoteVersion over a corrupt value: %v, want ErrCorrupt", err)
	}
}

// Purging reads every member's watermark and the tombstone index: one that does not decode
// fails the purge (and so stops the node applying it, as a failing disk does) with an error
// naming the file, the bucket and the key, not a bare "truncated command".
func TestPurgeNamesACorruptWatermarkOrTombstone(t *testing.T) {
	good := replication.AppendVersion(nil, consistency.Version{Wall: 1000, Node: "n1"})
	for _, c := range []struct{ bucket, key string }{{"watermarks", "n1"}, {"tombstones", "gone"}} {
		t.Run(c.bucket, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.db")
			s := mustOpen(t, path)
			err := s.Apply(1, func(tx *Tx) error {
				if err := tx.PutMember(replication.Member{ID: "n1"}); err != nil {
					return err
				}
				if err := tx.SetWatermark("n1", consistency.Version{Wall: 2000, Node: "n1"}); err != nil {
					return err
				}
				return tx.Put("gone", consistency.Value{Version: consistency.Version{Wall: 500, Node: "n1"}, Tombstone: true})
			})
			if err != nil {
				t.Fatal(err)
			}
			err = s.db.Update(func(tx *bolt.Tx) error {
				return tx.Bucket(bucketCommitted).Bucket([]byte(c.bucket)).Put([]byte(c.key), good[:7])
			})
			if err != nil {
				t.Fatal(err)
			}
			err = s.Apply(2, func(tx *Tx) error {
				_, err := tx.Purge()
				return err
			})
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "committed/"+c.bucket) || !strings.Contains(err.Error(), c.key) {
				t.Fatalf("Purge: %v; want ErrCorrupt naming %s, bucket committed/%s and key %s", err, path, c.bucket, c.key)
			}
		})
	}
}

// A clock floor that does not decode stops the start, naming the file and the key, instead of
// failing with a bare decode error.
func TestCorruptClockFloorNamesTheFile(t *testing.T) {
	s := mustOpen(t, filepath.Join(t.TempDir(), "state.db"))
	if err := s.SetClockFloor(consistency.Version{Wall: 1000, Node: "n1"}); err != nil {
		t.Fatal(err)
	}
	if err := s.tdb.Update(func(tx *bolt.Tx) error {
		raw := tx.Bucket(bucketLocal).Get(keyClockFloor)
		return tx.Bucket(bucketLocal).Put(keyClockFloor, raw[:len(raw)-1])
	}); err != nil {
		t.Fatal(err)
	}
	_, err := s.ClockFloor()
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("ClockFloor of a cut value: %v, want ErrCorrupt", err)
	}
	for _, want := range []string{s.tdb.Path(), string(bucketLocal), string(keyClockFloor), "kvctl member remove"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not say %q", err, want)
		}
	}
}
