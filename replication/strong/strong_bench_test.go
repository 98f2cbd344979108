package strong

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/dialkv/dialkv/consistency"
	"github.com/dialkv/dialkv/internal/benchload"
	"github.com/dialkv/dialkv/replication"
	"github.com/dialkv/dialkv/replication/store"
)

func benchKey(i int) string { return fmt.Sprintf("bench/%010d", i) }

// newBenchFSM is newTestFSM for benchmarks, over a store opened with kvd's own options.
func newBenchFSM(b *testing.B) *fsm {
	b.Helper()
	st, err := store.Open(filepath.Join(b.TempDir(), "state.db"), store.DefaultOptions())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	return &fsm{store: st, clock: consistency.NewClock("bench", nil), logger: slog.New(slog.DiscardHandler)}
}

// BenchmarkFSMApplyBatch applies strong puts (128-byte values, 10,000 keys) in batches of the
// given size, as raft hands them over with BatchApplyCh: one bbolt transaction, hence one
// commit and its fsyncs, per batch. ns/op is per put.
func BenchmarkFSMApplyBatch(b *testing.B) {
	for _, size := range []int{1, 8, 64, 512} {
		b.Run("batch="+strconv.Itoa(size), func(b *testing.B) {
			f := newBenchFSM(b)
			value := make([]byte, 128)
			// A ring of encoded entries, re-indexed as the log grows.
			ring := make([][]byte, 4096)
			for i := range ring {
				c := replication.Command{Type: replication.CmdPut, Key: benchKey(i * 7919 % 10000), Value: value,
					Stamp: consistency.Version{Wall: int64(i + 1), Node: "n1"}}
				ring[i] = c.Encode()
			}
			logs := make([]*raft.Log, size)
			for i := range logs {
				logs[i] = &raft.Log{Term: 1, Type: raft.LogCommand}
			}
			index := uint64(0)
			b.ReportAllocs()
			b.ResetTimer()
			for done := 0; done < b.N; done += size {
				batch := logs[:min(size, b.N-done)]
				for _, l := range batch {
					index++
					l.Index, l.Data = index, ring[index%uint64(len(ring))]
				}
				for _, r := range f.ApplyBatch(batch) {
					if res, ok := r.(replication.Result); !ok || res.Err != nil {
						b.Fatalf("apply: %v", r)
					}
				}
			}
			batches := (b.N + size - 1) / size
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(batches), "µs/batch")
		})
	}
}

// benchEngines is a 3-node cluster over raft's in-memory transport, with raft-boltdb and the
// committed layer on disk (fsync on): the strong path without HTTP and TCP.
type benchEngines struct {
	engines []*Engine
	leader  *Engine
}

func startBenchEngines(b *testing.B) *benchEngines {
	b.Helper()
	const n = 3
	type member struct {
		id    string
		dir   string
		addr  raft.ServerAddress
		trans *raft.InmemTransport
	}
	var members []member
	var peers []Peer
	for i := 1; i <= n; i++ {
		id := "n" + strconv.Itoa(i)
		addr, trans := raft.NewInmemTransport(raft.ServerAddress(id))
		members = append(members, member{id: id, dir: b.TempDir(), addr: addr, trans: trans})
		peers = append(peers, Peer{ID: id, Addr: string(addr)})
	}
	for _, a := range members {
		for _, o := range members {
			if a.id != o.id {
				a.trans.Connect(o.addr, o.trans)
			}
		}
	}
	be := &benchEngines{}
	for _, m := range members {
		st, err := store.Open(filepath.Join(m.dir, "state.db"), store.DefaultOptions())
		if err != nil {
			b.Fatal(err)
		}
		cfg := DefaultConfig() // production timings: CommitTimeout and batching as kvd runs them
		cfg.NodeID, cfg.Dir, cfg.Bootstrap, cfg.Transport = m.id, m.dir, peers, m.trans
		eng, err := Open(cfg, st, consistency.NewClock(m.id, nil))
		if err != nil {
			st.Close()
			b.Fatal(err)
		}
		b.Cleanup(func() { eng.Shutdown(); st.Close() })
		be.engines = append(be.engines, eng)
	}
	deadline := time.Now().Add(15 * time.Second)
	for be.leader == nil {
		for _, e := range be.engines {
			if e.IsLeader() && e.readyTerm.Load() != 0 {
				be.leader = e
			}
		}
		if time.Now().After(deadline) {
			b.Fatal("no ready leader within 15s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return be
}

// BenchmarkEngine measures Propose (a strong put: leader log append with fsync, replication to
// a quorum, FSM apply) and ReadIndex (a leadership round) on the leader, from 1 and 64
// concurrent callers.
func BenchmarkEngine(b *testing.B) {
	be := startBenchEngines(b)
	value := make([]byte, 128)
	clock := consistency.NewClock("bench", nil)
	ctx := context.Background()
	for _, clients := range []int{1, 64} {
		b.Run("propose/clients="+strconv.Itoa(clients), func(b *testing.B) {
			b.ReportAllocs()
			entries := be.leader.stats.proposalEntries.Load()
			benchload.Clients(b, clients, func(i int) error {
				_, err := be.leader.Propose(ctx, &replication.Command{Type: replication.CmdPut, Key: benchKey(i % 10000), Value: value, Stamp: clock.Now()})
				return err
			})
			// How many writes shared a log entry (proposal packing).
			b.ReportMetric(float64(b.N)/float64(max(1, be.leader.stats.proposalEntries.Load()-entries)), "writes/entry")
		})
	}
	for _, clients := range []int{1, 64} {
		b.Run("readindex/clients="+strconv.Itoa(clients), func(b *testing.B) {
			b.ReportAllocs()
			benchload.Clients(b, clients, func(int) error {
				index, err := be.leader.ReadIndex(ctx)
				if err != nil {
					return err
				}
				return be.leader.WaitApplied(ctx, index)
			})
		})
	}
}
