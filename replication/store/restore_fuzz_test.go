package store

import (
	"bytes"
	"testing"
)

// Restore reads a snapshot stream that comes over the network from the leader, or from a file
// on disk. Whatever it holds, Restore must not panic, must leave the state as it was when it
// refuses the stream, and must leave a state that reads back whole when it takes it.
//
//	go test -tags hashicorpmetrics -run '^$' -fuzz '^FuzzRestore$' -fuzztime 60s ./replication/store/
func FuzzRestore(f *testing.F) {
	s := mustRestorableStore(f)
	orig := snapshotBytes(f, s)
	f.Add(orig)
	f.Add(orig[:len(orig)/2])
	f.Add(snapshotStream(map[string][]pair{"kv": {{"k", "garbage"}}}))
	f.Add(snapshotStream(map[string][]pair{"meta": {{"applied_index", "abc"}}, "members": {{"n1", "{}"}}}))
	f.Add(snapshotStream(map[string][]pair{"nope": nil}))
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := s.Restore(bytes.NewReader(data)); err != nil {
			if after := snapshotBytes(t, s); !bytes.Equal(after, orig) {
				t.Fatalf("a refused snapshot (%v) changed the state", err)
			}
			return
		}
		// Taken: every part of the state reads back, and snapshots again to a stream that
		// restores to the same state.
		if _, _, _, _, err := s.List(ListRange{}); err != nil {
			t.Fatalf("List after restoring %q: %v", data, err)
		}
		if _, err := s.Members(); err != nil {
			t.Fatalf("Members after restoring %q: %v", data, err)
		}
		if _, _, err := s.PurgeStatus(); err != nil {
			t.Fatalf("PurgeStatus after restoring %q: %v", data, err)
		}
		if _, err := s.PurgeHorizon(); err != nil {
			t.Fatalf("PurgeHorizon after restoring %q: %v", data, err)
		}
		if _, err := s.NewestVersion(); err != nil {
			t.Fatalf("NewestVersion after restoring %q: %v", data, err)
		}
		again := snapshotBytes(t, s)
		if err := s.Restore(bytes.NewReader(again)); err != nil {
			t.Fatalf("restoring the snapshot of a restored state: %v", err)
		}
		if twice := snapshotBytes(t, s); !bytes.Equal(twice, again) {
			t.Fatalf("a snapshot restored does not snapshot the same")
		}
		if err := s.Restore(bytes.NewReader(orig)); err != nil {
			t.Fatal(err)
		}
	})
}

// Every committed and tentative record is decoded from a bbolt file (or a snapshot). A record
// that decodes must encode back to one that decodes the same; none may panic.
//
//	go test -tags hashicorpmetrics -run '^$' -fuzz '^FuzzDecodeRecord$' -fuzztime 60s ./replication/store/
func FuzzDecodeRecord(f *testing.F) {
	f.Add(encodeRecord(val("value", 5)))
	f.Add(encodeRecord(val("", 5)))
	f.Add([]byte{recordFormat})
	f.Add([]byte{2, 0})
	f.Fuzz(func(t *testing.T, raw []byte) {
		v, err := decodeRecord(raw)
		version, verr := recordVersion(raw)
		if (err == nil) != (verr == nil) || err == nil && version != v.Version {
			t.Fatalf("decodeRecord: %v, %v; recordVersion: %v, %v", v, err, version, verr)
		}
		if err != nil {
			return
		}
		again, err := decodeRecord(encodeRecord(v))
		if err != nil || again.Version != v.Version || again.Tombstone != v.Tombstone || !bytes.Equal(again.Data, v.Data) {
			t.Fatalf("%x decodes as %+v, which encodes to %+v, %v", raw, v, again, err)
		}
	})
}
