package node

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dialkv/dialkv/client"
	"github.com/dialkv/dialkv/consistency"
	"github.com/dialkv/dialkv/internal/benchload"
)

// BenchmarkReadPath measures what a read costs the machine, not only how long it takes: besides
// ns/op it reports cpu-ns/op, the CPU time of the whole process (the three nodes and the clients)
// per read, which a busy shared machine disturbs far less than wall time. On a follower it also
// reports read-index calls to the leader per strong read.
func BenchmarkReadPath(b *testing.B) {
	nodes := startBenchCluster(b, 3)
	i := slices.IndexFunc(nodes, func(n *Node) bool { return n.raft.IsLeader() })
	if i < 0 {
		b.Fatal("no leader")
	}
	leader, follower := nodes[i], nodes[(i+1)%len(nodes)]
	ctx := context.Background()
	toLeader := benchClient(b, leader)
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			for i := w; i < benchHTTPKeys; i += 16 {
				if _, err := toLeader.Put(ctx, benchHTTPKey(i), []byte("value"), client.PutOptions{Consistency: client.ConsistencyStrong}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}
	cases := []struct {
		name  string
		node  *Node
		level string
	}{
		{"strong-get", leader, client.ConsistencyStrong},
		{"eventual-get", leader, client.ConsistencyEventual},
		{"strong-get-on-follower", follower, client.ConsistencyStrong},
	}
	for _, c := range cases {
		cl := benchClient(b, c.node)
		b.Run(fmt.Sprintf("%s/clients=64", c.name), func(b *testing.B) {
			b.ReportAllocs()
			calls := c.node.readIndexes.calls.Load()
			cpu := processCPU(b)
			benchload.Clients(b, 64, func(i int) error {
				_, _, err := cl.Get(ctx, benchHTTPKey(i), client.GetOptions{Consistency: c.level})
				return err
			})
			b.ReportMetric(float64(processCPU(b)-cpu)/float64(b.N), "cpu-ns/op")
			if c.node == follower {
				b.ReportMetric(float64(c.node.readIndexes.calls.Load()-calls)/float64(b.N), "calls/op")
			}
		})
	}
}

// processCPU is the CPU time this process has used so far, user and system.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkReadHandler is the server's own work for one read, without network or client: the
// node's whole handler chain (request id, metrics, routing, the read, the JSON answer) called
// directly on a one-node cluster.
func BenchmarkReadHandler(b *testing.B) {
	n := startBenchCluster(b, 1)[0]
	cl := benchClient(b, n)
	if _, err := cl.Put(context.Background(), "k", []byte("value"), client.PutOptions{Consistency: client.ConsistencyStrong}); err != nil {
		b.Fatal(err)
	}
	// Session tokens: a small one is passed through as it is; one past shedAfterEntries (keys
	// all committed) makes the node read the entries' versions in one transaction and shed them.
	small := sessionToken{}.saw("k", consistency.Version{Wall: 1, Node: "n0"})
	crowded := small
	for i := 0; i < shedAfterEntries; i++ {
		key := fmt.Sprintf("k%d", i)
		if _, err := cl.Put(context.Background(), key, []byte("value"), client.PutOptions{Consistency: client.ConsistencyStrong}); err != nil {
			b.Fatal(err)
		}
		crowded = crowded.saw(key, consistency.Version{Wall: 1, Node: "n0"})
	}
	h := n.routes()
	cases := []struct{ name, level, token string }{
		{"strong-get", client.ConsistencyStrong, ""},
		{"eventual-get", client.ConsistencyEventual, ""},
		{"session-get/entries=1", client.ConsistencySession, small.String()},
		{fmt.Sprintf("session-get/entries=%d", len(crowded.seen)), client.ConsistencySession, crowded.String()},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest(http.MethodGet, "/v1/kv/k?consistency="+c.level, nil)
				req.Header.Set("Accept", "application/json")
				req.Header.Set(client.HeaderRequestID, "bench")
				if c.token != "" {
					req.Header.Set(client.HeaderSession, c.token)
				}
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("%d %s", rec.Code, rec.Body)
				}
			}
		})
	}
}
