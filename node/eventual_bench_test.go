package node

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/dialkv/dialkv/client"
	"github.com/dialkv/dialkv/internal/benchload"
)

// BenchmarkEventualPut is BenchmarkHTTP's eventual put on 3 nodes (to the leader), reporting
// what kvctl bench reports besides throughput: the latency percentiles (p50-ms, p99-ms) and
// ops/s, for one client (the sequential case: no batching may delay a lone write) and for 64.
func BenchmarkEventualPut(b *testing.B) {
	nodes := startBenchCluster(b, 3)
	var leader *Node
	for _, n := range nodes {
		if n.raft.IsLeader() {
			leader = n
		}
	}
	if leader == nil {
		b.Fatal("no leader")
	}
	cl := benchClient(b, leader)
	value := make([]byte, 128)
	for i := range value {
		value[i] = 'a' + byte(i%26)
	}
	for _, clients := range []int{1, 64} {
		b.Run("clients="+strconv.Itoa(clients), func(b *testing.B) {
			b.ReportAllocs()
			var mu sync.Mutex
			latencies := make([]time.Duration, 0, b.N)
			start := time.Now()
			benchload.Clients(b, clients, func(i int) error {
				t0 := time.Now()
				_, err := cl.Put(context.Background(), benchHTTPKey(i), value, client.PutOptions{Consistency: client.ConsistencyEventual})
				d := time.Since(t0)
				mu.Lock()
				latencies = append(latencies, d)
				mu.Unlock()
				return err
			})
			elapsed := time.Since(start)
			slices.Sort(latencies)
			at := func(q float64) float64 {
				return float64(latencies[int(q*float64(len(latencies)-1))]) / float64(time.Millisecond)
			}
			b.ReportMetric(at(0.50), "p50-ms")
			b.ReportMetric(at(0.99), "p99-ms")
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "ops/s")
		})
	}
}
