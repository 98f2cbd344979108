package store

import (
	"fmt"
	"path/filepath"
	"strconv"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/dialkv/dialkv/consistency"
	"github.com/dialkv/dialkv/internal/benchload"
	"github.com/dialkv/dialkv/replication"
)

// benchKeys is the key space of the benchmarks, as in kvctl bench's default.
const benchKeys = 10000

func benchKey(i int) string { return fmt.Sprintf("bench/%010d", i) }

// openBench opens a store with kvd's own options (store.DefaultOptions) in a temporary directory.
func openBench(b *testing.B) *Store {
	b.Helper()
	s, err := Open(filepath.Join(b.TempDir(), "state.db"), DefaultOptions())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// commits is the number of write transactions bbolt has committed in s's tentative file: a read
// transaction sees the id of the last one. Each commit costs two fdatasyncs (pages, then meta).
func commits(b *testing.B, s *Store) int {
	var id int
	if err := s.tdb.View(func(tx *bolt.Tx) error { id = tx.ID(); return nil }); err != nil {
		b.Fatal(err)
	}
	return id
}

// BenchmarkMergeTentative is the eventual write's durable step: one write per call, from 1 or
// 64 concurrent writers. Concurrent callers share one transaction and one fsync (group commit):
// commits/op says how many commits each write cost, fsyncs-saved the share of the 1-commit-per-
// write baseline that group commit avoided.
func BenchmarkMergeTentative(b *testing.B) {
	for _, writers := range []int{1, 64} {
		b.Run("writers="+strconv.Itoa(writers), func(b *testing.B) {
			s := openBench(b)
			value := make([]byte, 128)
			before := commits(b, s)
			b.ReportAllocs()
			benchload.Clients(b, writers, func(i int) error {
				w := replication.Write{Key: benchKey(i % benchKeys),
					Value: consistency.Value{Version: consistency.Version{Wall: int64(i), Node: "n1"}, Data: value}}
				_, err := s.MergeTentative([]replication.Write{w})
				return err
			})
			n := commits(b, s) - before
			b.ReportMetric(float64(n)/float64(b.N), "commits/op")
			b.ReportMetric(float64(b.N)/float64(max(n, 1)), "writes/commit")
			b.ReportMetric(100*(1-float64(n)/float64(b.N)), "fsyncs-saved-%")
		})
	}
}

// BenchmarkGet is a committed-layer read (strong and bounded GETs): one bbolt read transaction.
func BenchmarkGet(b *testing.B) {
	s := openBench(b)
	fillCommitted(b, s)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			if _, ok, err := s.Get(benchKey(i % benchKeys)); err != nil || !ok {
				b.Fatalf("get: ok=%v err=%v", ok, err)
			}
		}
	})
}

// BenchmarkPendingTentative is the committer's scan (node.nextBatch) of a tentative layer that
// holds backlog writes: it reads every entry to summarize the layer, whatever the batch limit.
// The summary/ rows are the backlog gauges' scan (SummarizeTentative), which copies no values.
func BenchmarkPendingTentative(b *testing.B) {
	for _, backlog := range []int{100, 10000} {
		s := openBacklog(b, backlog)
		b.Run("backlog="+strconv.Itoa(backlog), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, sum, err := s.PendingTentative(nil, 512, 0); err != nil || sum.Count != backlog {
					b.Fatalf("pending: %+v %v", sum, err)
				}
			}
		})
		b.Run("summary/backlog="+strconv.Itoa(backlog), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if sum, err := s.SummarizeTentative(); err != nil || sum.Count != backlog || sum.Oldest.Wall != 1 {
					b.Fatalf("summary: %+v %v", sum, err)
				}
			}
		})
	}
}

// openBacklog opens a store whose tentative layer holds backlog writes of 128 bytes.
func openBacklog(b *testing.B, backlog int) *Store {
	s := openBench(b)
	ws := make([]replication.Write, backlog)
	for i := range ws {
		ws[i] = replication.Write{Key: benchKey(i), Value: consistency.Value{Version: consistency.Version{Wall: int64(i + 1), Node: "n1"}, Data: make([]byte, 128)}}
	}
	if _, err := s.MergeTentative(ws); err != nil {
		b.Fatal(err)
	}
	return s
}

func fillCommitted(b *testing.B, s *Store) {
	b.Helper()
	err := s.Apply(1, func(tx *Tx) error {
		for i := range benchKeys {
			if err := tx.Put(benchKey(i), consistency.Value{Version: consistency.Version{Wall: int64(i + 1), Node: "n1"}, Data: make([]byte, 128)}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}
