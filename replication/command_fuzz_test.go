package replication

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/dialkv/dialkv/consistency"
)

// Every log entry a node applies goes through DecodeCommand, and so does every body posted to
// /v1/internal/propose and /v1/internal/commit: it must refuse what it cannot parse without
// panicking, and what it accepts must survive an Encode and a DecodeCommand unchanged (the
// leader re-encodes what it decodes, and every replica decodes that again).
//
// In a plain `go test` run only the seeds below run. To search:
//
//	go test -tags hashicorpmetrics -run XXX -fuzz FuzzDecodeCommand -fuzztime 60s ./replication/
func FuzzDecodeCommand(f *testing.F) {
	stamp := consistency.Version{Wall: 1732298000123456789, Logical: 4, Node: "n2/s"}
	seeds := []Command{
		{Type: CmdPut, Key: "a", Value: []byte("1"), Stamp: stamp},
		{Type: CmdPut, Key: "cas", Value: []byte{0, 1}, Stamp: stamp, Cond: CondIfVersion, IfVersion: consistency.Version{Wall: 9, Node: "n1"}},
		{Type: CmdPut, Key: "new", Stamp: stamp, Cond: CondIfAbsent},
		{Type: CmdDelete, Key: "gone", Stamp: stamp},
		{Type: CmdRegister, Member: Member{ID: "n1", RaftAddr: "127.0.0.1:7101", HTTPAddr: "127.0.0.1:7001", GossipAddr: "127.0.0.1:7201"}},
		{Type: CmdRemove, Member: Member{ID: "n3"}},
		{Type: CmdEventualBatch, Reporter: "n2", Watermark: stamp, Writes: []Write{
			{Key: "x", Value: consistency.Value{Version: stamp, Data: []byte("v")}},
			{Key: "y", Value: consistency.Value{Version: stamp, Tombstone: true}},
		}},
		{Type: CmdEventualBatch, Reporter: "n1", Unsafe: true},
		{Type: CmdPurge, Stamp: stamp},
		{Type: CmdBatch, Batch: []Command{
			{Type: CmdPut, Key: "a", Value: []byte("1"), Stamp: stamp},
			{Type: CmdDelete, Key: "b", Stamp: stamp},
		}},
	}
	for i := range seeds {
		f.Add(seeds[i].Encode())
	}
	f.Add([]byte{commandFormat, byte(CmdBatch), 0xff, 0xff, 0xff, 0x7f})   // a count far over the bytes
	f.Add([]byte{commandFormat, byte(CmdEventualBatch), 0, 0, 0, 0, 0, 0}) // truncated
	f.Add([]byte{commandFormat, 99})
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := DecodeCommand(data)
		if b, berr := DecodeBatch(data, 4); berr == nil && (err != nil || !sameCommand(b, c) || len(b.Batch) > 4) {
			t.Fatalf("DecodeBatch took %x as %+v, DecodeCommand as %+v, %v", data, b, c, err)
		}
		if err != nil {
			return
		}
		again, err := DecodeCommand(c.Encode())
		if err != nil {
			t.Fatalf("decoded %+v, which does not decode once encoded: %v", c, err)
		}
		if !sameCommand(c, again) {
			t.Fatalf("round trip changed the command:\n got %+v\nwant %+v", again, c)
		}
	})
}

// FuzzDecodeWrites covers the writes of committer batches, gossip messages, anti-entropy pushes
// and fetch answers (replication/eventual decodes them all with DecodeWrites).
func FuzzDecodeWrites(f *testing.F) {
	v := consistency.Version{Wall: 5, Logical: 1, Node: "n1"}
	f.Add(EncodeWrites(nil))
	f.Add(EncodeWrites([]Write{{Key: "a", Value: consistency.Value{Version: v, Data: []byte("x")}}}))
	f.Add(EncodeWrites([]Write{{Key: "a", Value: consistency.Value{Version: v, Tombstone: true}}, {Key: "", Value: consistency.Value{}}}))
	f.Add([]byte{0xff, 0xff, 0xff, 0x0f, 1, 2, 3})
	f.Fuzz(func(t *testing.T, data []byte) {
		ws, err := DecodeWrites(data)
		if err != nil {
			return
		}
		again, err := DecodeWrites(EncodeWrites(ws))
		if err != nil || !sameWrites(ws, again) {
			t.Fatalf("round trip: %v\n got %+v\nwant %+v", err, again, ws)
		}
	})
}

// FuzzDecodeVersion covers the binary version form of log entries, records, session tokens and
// the Dialkv-Session-Seen header.
func FuzzDecodeVersion(f *testing.F) {
	f.Add(AppendVersion(nil, consistency.Version{}))
	f.Add(AppendVersion(nil, consistency.Version{Wall: -1, Logical: ^uint32(0), Node: "n1/s"}))
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0x80})
	f.Fuzz(func(t *testing.T, data []byte) {
		v, rest, err := DecodeVersion(data)
		if err != nil {
			return
		}
		enc := AppendVersion(nil, v)
		if !bytes.Equal(append(enc, rest...), data) && len(enc)+len(rest) == len(data) {
			// A non-minimal length varint decodes fine but re-encodes shorter; that is the
			// only way the bytes may differ, and then the lengths differ too.
			t.Fatalf("version %+v re-encodes as %x, from %x", v, enc, data)
		}
		w, _, err := DecodeVersion(enc)
		if err != nil || w != v {
			t.Fatalf("round trip: %v: %+v, want %+v", err, w, v)
		}
	})
}

// sameCommand is reflect.DeepEqual that takes a nil and an empty byte slice for the same
// (decoding gives one or the other depending on the input's layout).
func sameCommand(a, b Command) bool {
	if !bytes.Equal(a.Value, b.Value) || !sameWrites(a.Writes, b.Writes) || len(a.Batch) != len(b.Batch) {
		return false
	}
	for i := range a.Batch {
		if !sameCommand(a.Batch[i], b.Batch[i]) {
			return false
		}
	}
	a.Value, b.Value, a.Writes, b.Writes, a.Batch, b.Batch = nil, nil, nil, nil, nil, nil
	return reflect.DeepEqual(a, b)
}

func sameWrites(a, b []Write) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.Key != y.Key || x.Value.Version != y.Value.Version || x.Value.Tombstone != y.Value.Tombstone || !bytes.Equal(x.Value.Data, y.Value.Data) {
			return false
		}
	}
	return true
}
