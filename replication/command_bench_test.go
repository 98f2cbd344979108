package replication

import (
	"fmt"
	"testing"

	"github.com/dialkv/dialkv/consistency"
)

// Every strong write is encoded once by the proposer and decoded once per replica by the FSM;
// a committer batch carries up to 512 eventual writes (node.maxCommitBatch).

func benchCommands() []struct {
	name string
	cmd  Command
} {
	stamp := consistency.Version{Wall: 1_700_000_000_123_456_789, Logical: 2, Node: "n1"}
	batch := Command{Type: CmdEventualBatch, Reporter: "n1", Watermark: stamp}
	for i := range 512 {
		batch.Writes = append(batch.Writes, Write{Key: fmt.Sprintf("bench/%010d", i),
			Value: consistency.Value{Version: consistency.Version{Wall: stamp.Wall + int64(i), Node: "n2"}, Data: make([]byte, 128)}})
	}
	return []struct {
		name string
		cmd  Command
	}{
		{"put-128B", Command{Type: CmdPut, Key: "bench/0000000042", Value: make([]byte, 128), Stamp: stamp}},
		{"put-4KiB", Command{Type: CmdPut, Key: "bench/0000000042", Value: make([]byte, 4096), Stamp: stamp}},
		{"cas-128B", Command{Type: CmdPut, Key: "bench/0000000042", Value: make([]byte, 128), Stamp: stamp, Cond: CondIfVersion, IfVersion: stamp}},
		{"eventual-batch-512x128B", batch},
	}
}

func BenchmarkCommandEncode(b *testing.B) {
	for _, c := range benchCommands() {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(c.cmd.Encode())))
			for b.Loop() {
				c.cmd.Encode()
			}
		})
	}
}

func BenchmarkCommandDecode(b *testing.B) {
	for _, c := range benchCommands() {
		b.Run(c.name, func(b *testing.B) {
			data := c.cmd.Encode()
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := DecodeCommand(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
