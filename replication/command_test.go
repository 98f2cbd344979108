package replication

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"runtime"
	"testing"

	"github.com/dialkv/dialkv/consistency"
)

func TestCommandRoundTrip(t *testing.T) {
	stamp := consistency.Version{Wall: 1732298000123456789, Logical: 4, Node: "n2"}
	cases := []Command{
		{Type: CmdPut, Key: "a", Value: []byte("1"), Stamp: stamp},
		{Type: CmdPut, Key: "k/with/slashes", Value: []byte{}, Stamp: stamp, Cond: CondIfAbsent},
		{Type: CmdPut, Key: "cas", Value: []byte{0, 1, 2}, Stamp: stamp, Cond: CondIfVersion, IfVersion: consistency.Version{Wall: 9, Node: "n1"}},
		{Type: CmdDelete, Key: "gone", Stamp: stamp},
		{Type: CmdDelete, Key: "gone", Stamp: stamp, Cond: CondIfVersion},
		{Type: CmdRegister, Member: Member{ID: "n1", RaftAddr: "127.0.0.1:7101", HTTPAddr: "127.0.0.1:7001", GossipAddr: "127.0.0.1:7201"}},
		{Type: CmdRemove, Member: Member{ID: "n3"}},
		{Type: CmdEventualBatch, Reporter: "n2", Watermark: stamp, Writes: []Write{
			{Key: "e", Value: consistency.Value{Version: stamp, Data: []byte("v")}},
			{Key: "d", Value: consistency.Value{Version: stamp, Tombstone: true}},
		}},
		{Type: CmdEventualBatch, Reporter: "n3", Unsafe: true, Writes: []Write{}},
		{Type: CmdPurge, Stamp: stamp},
		{Type: CmdBatch, Batch: []Command{
			{Type: CmdPut, Key: "a", Value: []byte("1"), Stamp: stamp},
			{Type: CmdDelete, Key: "a", Stamp: stamp, Cond: CondIfVersion, IfVersion: stamp},
			{Type: CmdPut, Key: "b", Value: []byte("2"), Stamp: stamp, Cond: CondIfAbsent},
		}},
	}
	for _, want := range cases {
		got, err := DecodeCommand(want.Encode())
		if err != nil {
			t.Fatalf("%v: %v", want.Type, err)
		}
		if len(got.Value) == 0 {
			got.Value = want.Value // nil and empty are the same value
		}
		for i := range got.Batch {
			if len(got.Batch[i].Value) == 0 && i < len(want.Batch) {
				got.Batch[i].Value = want.Batch[i].Value
			}
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("round trip:\n got %+v\nwant %+v", got, want)
		}
	}
}

func TestDecodeRejectsGarbage(t *testing.T) {
	full := (&Command{Type: CmdPut, Key: "key", Value: []byte("value"), Stamp: consistency.Version{Wall: 1, Node: "n1"}}).Encode()
	for n := 0; n < len(full); n++ {
		if _, err := DecodeCommand(full[:n]); err == nil {
			t.Errorf("decoding %d of %d bytes succeeded", n, len(full))
		}
	}
	if _, err := DecodeCommand([]byte{commandFormat, 99}); !errors.Is(err, ErrUnknownCommand) {
		t.Errorf("unknown type: %v, want ErrUnknownCommand", err)
	}
	if _, err := DecodeCommand([]byte{42, byte(CmdPut)}); !errors.Is(err, ErrUnknownCommand) {
		t.Errorf("unknown format: %v, want ErrUnknownCommand", err)
	}
}

// A batch is all or nothing: a truncated one, one holding a bad command or a batch is refused.
func TestDecodeBatchRejectsBadParts(t *testing.T) {
	put := (&Command{Type: CmdPut, Key: "k", Value: []byte("v"), Stamp: consistency.Version{Wall: 1, Node: "n1"}}).Encode()
	full := EncodeBatch([][]byte{put, put})
	for n := 2; n < len(full); n++ {
		if _, err := DecodeCommand(full[:n]); err == nil {
			t.Errorf("decoding %d of %d bytes of a batch succeeded", n, len(full))
		}
	}
	if _, err := DecodeCommand(EncodeBatch([][]byte{put, {commandFormat, 99}})); !errors.Is(err, ErrUnknownCommand) {
		t.Errorf("batch with an unknown command: %v, want ErrUnknownCommand", err)
	}
	if _, err := DecodeCommand(EncodeBatch([][]byte{put, EncodeBatch([][]byte{put})})); !errors.Is(err, ErrUnknownCommand) {
		t.Errorf("batch inside a batch: %v, want ErrUnknownCommand", err)
	}
	// A count larger than the bytes that follow must not allocate for the claimed count.
	if _, err := DecodeCommand([]byte{commandFormat, byte(CmdBatch), 0xff, 0xff, 0xff, 0xff, 0x0f}); err == nil {
		t.Error("batch claiming 4G commands in no bytes decoded")
	}
	c, err := DecodeCommand(full)
	if err != nil || len(c.Batch) != 2 || c.Batch[1].Key != "k" {
		t.Errorf("whole batch: %+v, %v", c, err)
	}
}

func TestWritesRoundTrip(t *testing.T) {
	ws := []Write{
		{Key: "a", Value: consistency.Value{Version: consistency.Version{Wall: 5, Logical: 1, Node: "n1"}, Data: []byte("x")}},
		{Key: "gone", Value: consistency.Value{Version: consistency.Version{Wall: 6, Node: "n2"}, Tombstone: true}},
	}
	got, err := DecodeWrites(EncodeWrites(ws))
	if err != nil || !reflect.DeepEqual(got, ws) {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	if got[0].Origin() != "n1" {
		t.Errorf("origin = %q", got[0].Origin())
	}
	enc := EncodeWrites(ws)
	for n := 0; n < len(enc); n++ {
		if _, err := DecodeWrites(enc[:n]); err == nil {
			t.Errorf("decoding %d of %d bytes succeeded", n, len(enc))
		}
	}
}

// TestHostileCountsAllocateLittle: a count is read from the input before the elements it
// claims. Sized by it, a 1 MiB body posted to /v1/internal/propose claiming a batch of a
// million commands reserved 300 MiB before the first one failed to decode (the leader's limit
// of 272 MiB would have asked for 78 GB); a committer batch's writes, 80 MiB.
func TestHostileCountsAllocateLittle(t *testing.T) {
	const size = 1 << 20
	batch := binary.AppendUvarint([]byte{commandFormat, byte(CmdBatch)}, size)
	batch = append(batch, make([]byte, size)...)
	writes := binary.AppendUvarint(nil, size)
	writes = append(writes, bytes.Repeat([]byte{0xff}, size)...) // no write decodes
	for name, decode := range map[string]func(){
		"batch":  func() { DecodeCommand(batch) },
		"writes": func() { DecodeWrites(writes) },
	} {
		if got := allocatedBy(decode); got > size {
			t.Errorf("%s: decoding %d hostile bytes allocated %d", name, size, got)
		}
	}
}

// allocatedBy is the number of bytes fn allocates.
func allocatedBy(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func TestDecodeBatchRefusesFromTheHeader(t *testing.T) {
	sub := (&Command{Type: CmdPut, Key: "a", Value: []byte("1")}).Encode()
	two := EncodeBatch([][]byte{sub, sub})
	if c, err := DecodeBatch(two, 2); err != nil || len(c.Batch) != 2 {
		t.Errorf("a batch of 2, at most 2: %+v, %v", c, err)
	}
	if _, err := DecodeBatch(two, 1); !errors.Is(err, ErrInvalid) {
		t.Errorf("a batch of 2, at most 1: %v, want ErrInvalid", err)
	}
	if _, err := DecodeBatch(sub, 2); !errors.Is(err, ErrInvalid) {
		t.Errorf("a put, not a batch: %v, want ErrInvalid", err)
	}
	// The count alone is enough to refuse: the commands it claims are not there.
	if _, err := DecodeBatch(binary.AppendUvarint([]byte{commandFormat, byte(CmdBatch)}, 1<<40), 256); !errors.Is(err, ErrInvalid) {
		t.Errorf("a header claiming 2^40 commands: %v, want ErrInvalid", err)
	}
}
