package node

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	gometrics "github.com/hashicorp/go-metrics"

	"github.com/dialkv/dialkv/client"
	"github.com/dialkv/dialkv/internal/benchload"
	"github.com/dialkv/dialkv/replication/strong"
)

// The HTTP benchmarks run whole nodes in this process (real TCP on loopback for HTTP, Raft and
// gossip; state on disk with fsync) with kvd's default timings, and drive them through the Go
// client as kvctl bench does: request encoding, routing by level, the engines, and the answer.
// A CPU profile of one sub-benchmark is the profile of that operation's server path, plus the
// client's share (package client, net/http's client side).

const benchHTTPKeys = 1000

func benchHTTPKey(i int) string { return fmt.Sprintf("bench/%010d", i%benchHTTPKeys) }

// startBenchCluster is startCluster for benchmarks: size nodes with kvd's default Raft timings.
func startBenchCluster(b *testing.B, size int) []*Node {
	b.Helper()
	var peers []strong.Peer
	raftAddrs := make([]string, size)
	for i := range raftAddrs {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		raftAddrs[i] = ln.Addr().String()
		ln.Close()
		peers = append(peers, strong.Peer{ID: fmt.Sprintf("n%d", i+1), Addr: raftAddrs[i]})
	}
	dir := b.TempDir()
	var nodes []*Node
	for i := range size {
		cfg := DefaultConfig()
		cfg.ID = fmt.Sprintf("n%d", i+1)
		cfg.HTTPAddr = "" // startNode picks a free port
		cfg.DataDir = filepath.Join(dir, cfg.ID)
		cfg.Raft.RaftAddr = raftAddrs[i]
		cfg.Raft.Bootstrap = peers
		cfg.Gossip.BindAddr = "127.0.0.1:0"
		cfg.Gossip.Profile = "local"
		cfg.Gossip.Label = "bench-" + filepath.Base(dir)
		for _, earlier := range nodes {
			cfg.Gossip.Peers = append(cfg.Gossip.Peers, earlier.gossipAddr())
		}
		n, cancel, done := startNode(b, cfg)
		b.Cleanup(func() { cancel(); <-done })
		nodes = append(nodes, n)
	}
	deadline := time.Now().Add(20 * time.Second)
	for !clusterReady(nodes) {
		if time.Now().After(deadline) {
			b.Fatal("no registered leader, or nodes not joined, within 20s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nodes
}

// benchClient is one shared client for many goroutines, with an idle connection for each.
func benchClient(b *testing.B, n *Node) *client.Client {
	b.Helper()
	cfg := client.DefaultConfig()
	cfg.Endpoints = []string{n.HTTPAddr()}
	cfg.HTTPClient = &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 256, DisableCompression: true}}
	cl, err := client.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	return cl
}

// raftMetricsEnv, when set to a file name, makes every HTTP sub-benchmark append to that file
// hashicorp/raft's own timing and size metrics recorded during it (all nodes of the process
// together, go-metrics' in-memory sink): where a strong write's time goes, from the leader's log
// write (leader.dispatchLog) and the replication round trip (replication.appendEntries.rpc,
// follower rpc.appendEntries.storeLogs) to commit (commitTime) and the state machine
// (fsm.applyBatch), with the batch sizes (leader.dispatchNumLogs, fsm.applyBatchNum). Timings
// are in milliseconds. A file, not the output: go test merges stderr into the result lines.
const raftMetricsEnv = "DIALKV_BENCH_RAFT_METRICS"

// recordRaftMetrics routes raft's metrics to a fresh in-memory sink until the returned function
// appends them to the file raftMetricsEnv names and routes them back to nowhere.
func recordRaftMetrics(b *testing.B) func() {
	path := os.Getenv(raftMetricsEnv)
	if path == "" {
		return func() {}
	}
	sink := gometrics.NewInmemSink(time.Hour, 2*time.Hour)
	cfg := gometrics.DefaultConfig("")
	cfg.EnableHostname, cfg.EnableRuntimeMetrics, cfg.EnableHostnameLabel = false, false, false
	if _, err := gometrics.NewGlobal(cfg, sink); err != nil {
		b.Fatal(err)
	}
	return func() {
		gometrics.NewGlobal(cfg, &gometrics.BlackholeSink{})
		type agg struct {
			count    int
			sum, max float64
		}
		all := map[string]*agg{}
		for _, interval := range sink.Data() {
			interval.RLock()
			for name, sv := range interval.Samples {
				if !strings.HasPrefix(name, "raft.") || sv.AggregateSample == nil {
					continue
				}
				a := all[name]
				if a == nil {
					a = &agg{}
					all[name] = a
				}
				a.count += sv.Count
				a.sum += sv.Sum
				a.max = max(a.max, sv.Max)
			}
			interval.RUnlock()
		}
		names := make([]string, 0, len(all))
		for name := range all {
			names = append(names, name)
		}
		slices.Sort(names)
		var out strings.Builder
		fmt.Fprintf(&out, "%s (b.N=%d): raft metrics (count, mean, max; times in ms):\n", b.Name(), b.N)
		for _, name := range names {
			a := all[name]
			fmt.Fprintf(&out, "  %-52s %8d %9.3f %9.3f\n", name, a.count, a.sum/float64(max(a.count, 1)), a.max)
		}
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err == nil {
			_, err = f.WriteString(out.String())
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			b.Errorf("%s: %v", raftMetricsEnv, err)
		}
	}
}

// BenchmarkHTTP measures PUT and GET at each level on a 1-node and a 3-node cluster, sent to
// the leader (and strong puts also through a follower, which forwards them).
func BenchmarkHTTP(b *testing.B) {
	for _, size := range []int{1, 3} {
		b.Run("nodes="+strconv.Itoa(size), func(b *testing.B) {
			nodes := startBenchCluster(b, size)
			var leader, follower *Node
			for _, n := range nodes {
				if n.raft.IsLeader() {
					leader = n
				} else {
					follower = n
				}
			}
			if leader == nil {
				b.Fatal("no leader")
			}
			ctx := context.Background()
			value := make([]byte, 128)
			for i := range value {
				value[i] = 'a' + byte(i%26)
			}
			toLeader := benchClient(b, leader)
			var populate sync.WaitGroup // what the reads read
			for w := range 32 {
				populate.Add(1)
				go func() {
					defer populate.Done()
					for i := w; i < benchHTTPKeys; i += 32 {
						if _, err := toLeader.Put(ctx, benchHTTPKey(i), value, client.PutOptions{Consistency: client.ConsistencyStrong}); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			populate.Wait()
			if b.Failed() {
				b.FailNow()
			}
			put := func(cl *client.Client, level string) func(int) error {
				return func(i int) error {
					_, err := cl.Put(ctx, benchHTTPKey(i), value, client.PutOptions{Consistency: level})
					return err
				}
			}
			get := func(cl *client.Client, level string) func(int) error {
				return func(i int) error {
					_, _, err := cl.Get(ctx, benchHTTPKey(i), client.GetOptions{Consistency: level})
					return err
				}
			}
			cases := []struct {
				name    string
				clients int
				op      func(int) error
			}{
				{"strong-put", 1, put(toLeader, client.ConsistencyStrong)},
				{"strong-put", 64, put(toLeader, client.ConsistencyStrong)},
				{"strong-get", 64, get(toLeader, client.ConsistencyStrong)},
				{"bounded-get", 64, get(toLeader, client.ConsistencyBounded)},
				{"eventual-put", 64, put(toLeader, client.ConsistencyEventual)},
				{"eventual-get", 64, get(toLeader, client.ConsistencyEventual)},
			}
			if follower != nil {
				viaFollower := benchClient(b, follower)
				cases = append(cases,
					struct {
						name    string
						clients int
						op      func(int) error
					}{"strong-put-via-follower", 64, put(viaFollower, client.ConsistencyStrong)},
					struct {
						name    string
						clients int
						op      func(int) error
					}{"strong-get-on-follower", 64, get(viaFollower, client.ConsistencyStrong)})
			}
			for _, c := range cases {
				b.Run(fmt.Sprintf("%s/clients=%d", c.name, c.clients), func(b *testing.B) {
					b.ReportAllocs()
					report := recordRaftMetrics(b)
					benchload.Clients(b, c.clients, c.op)
					report()
				})
			}
		})
	}
}
