package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dialkv/dialkv/consistency"
	"github.com/dialkv/dialkv/replication"
)

// pair is a key and value of a bucket in a snapshot stream.
type pair struct{ k, v string }

// snapshotStream encodes a snapshot stream (the format Snapshot.WriteTo writes) holding, in each
// named bucket, the given pairs in order.
func snapshotStream(buckets map[string][]pair) []byte {
	b := []byte(snapshotMagic)
	chunk := func(p string) {
		b = binary.AppendUvarint(b, uint64(len(p)))
		b = append(b, p...)
	}
	for name, pairs := range buckets {
		chunk(name)
		for _, p := range pairs {
			chunk(p.k)
			chunk(p.v)
		}
		chunk("")
	}
	chunk("")
	return b
}

// mustRestorableStore is a store with some of everything a snapshot carries.
func mustRestorableStore(t testing.TB) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "state.db"), Options{OpenTimeout: DefaultOptions().OpenTimeout, InitialMmapSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	err = s.Apply(7, func(tx *Tx) error {
		for _, key := range []string{"a", "b", "gone"} {
			if err := tx.Put(key, val("v-"+key, 10)); err != nil {
				return err
			}
		}
		if err := tx.Put("gone", consistency.Value{Version: consistency.Version{Wall: 20, Node: "n1"}, Tombstone: true}); err != nil {
			return err
		}
		if err := tx.PutMember(replication.Member{ID: "n1", RaftAddr: "r1", HTTPAddr: "h1"}); err != nil {
			return err
		}
		if err := tx.SetWatermark("n1", consistency.Version{Wall: 15, Node: "n1"}); err != nil {
			return err
		}
		return tx.NoteVersion(consistency.Version{Wall: 20, Node: "n1"})
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// A snapshot holding a value the committed layer could not read back (a record, a version, a
// member, an applied index that does not decode) is refused whole, naming the bucket and key,
// and the state stays as it was. Restored, the node failed reads of it, or stopped applying
// the log when an entry touched it, far from the snapshot that brought it.
func TestRestoreRefusesValuesTheLayerCouldNotRead(t *testing.T) {
	good := replication.AppendVersion(nil, consistency.Version{Wall: 5, Node: "n1"})
	cases := []struct {
		name, bucket, key, value string
	}{
		{"record", "kv", "k", "garbage"},
		{"record cut short", "kv", "k", string(encodeRecord(val("x", 5))[:6])},
		{"tombstone index", "tombstones", "k", string(good[:4])},
		{"watermark", "watermarks", "n1", string(append(good[:len(good):len(good)], 0))},
		{"member", "members", "n1", "{not json"},
		{"applied index", "meta", "applied_index", "abc"},
		{"purge horizon", "meta", "purge_horizon", string(good[:len(good)-1])},
		{"newest version", "meta", "newest_version", "\x00"},
	}
	s := mustRestorableStore(t)
	before := snapshotBytes(t, s)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := s.Restore(bytes.NewReader(snapshotStream(map[string][]pair{c.bucket: {{c.key, c.value}}})))
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), c.bucket) || !strings.Contains(err.Error(), c.key) {
				t.Fatalf("Restore: %v; want ErrCorrupt naming bucket %s and key %s", err, c.bucket, c.key)
			}
			if after := snapshotBytes(t, s); !bytes.Equal(after, before) {
				t.Errorf("the refused snapshot changed the state")
			}
		})
	}
	// Meta keys this binary does not know pass: a newer one may write more.
	if err := s.Restore(bytes.NewReader(snapshotStream(map[string][]pair{"meta": {{"applied_index", "\x00\x00\x00\x00\x00\x00\x00\x09"}, {"some_new_key", "x"}}}))); err != nil {
		t.Fatalf("Restore with an unknown meta key: %v", err)
	}
}

// A stream cut anywhere before its end marker is refused, saying so, and the state stays as it
// was: a snapshot is taken whole or not at all.
func TestRestoreRefusesEveryCutOfTheStream(t *testing.T) {
	s := mustRestorableStore(t)
	full := snapshotBytes(t, s)
	for n := len(snapshotMagic); n < len(full); n++ {
		err := s.Restore(bytes.NewReader(full[:n]))
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "cut short") {
			t.Fatalf("Restore of the first %d of %d bytes: %v; want ErrCorrupt, cut short", n, len(full), err)
		}
	}
	if after := snapshotBytes(t, s); !bytes.Equal(after, full) {
		t.Errorf("refused snapshots changed the state")
	}
}
