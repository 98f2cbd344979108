package eventual

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dialkv/dialkv/consistency"
	"github.com/dialkv/dialkv/replication"
)

// memStore is the in-memory twin of the node's tentative layer: last writer wins by version.
// It models no committed layer.
type memStore struct {
	mu sync.Mutex
	m  map[string]replication.Write
	// digestRead counts the entries TentativeDigest returned, as many as a real store reads.
	digestRead atomic.Int64
}

func newMemStore() *memStore { return &memStore{m: map[string]replication.Write{}} }

func (s *memStore) MergeTentative(ws []replication.Write) ([]replication.Write, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var stored []replication.Write
	for _, w := range ws {
		if cur, ok := s.m[w.Key]; ok && !w.Value.Version.Newer(cur.Value.Version) {
			continue
		}
		w.Value.Data = append([]byte(nil), w.Value.Data...)
		s.m[w.Key] = w
		stored = append(stored, w)
	}
	return stored, nil
}

func (s *memStore) TentativeDigest(from, to string) (map[string]consistency.Version, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := make(map[string]consistency.Version, len(s.m))
	for k, w := range s.m {
		if k >= from && (to == "" || k < to) {
			d[k] = w.Value.Version
		}
	}
	s.digestRead.Add(int64(len(d)))
	return d, nil
}

func (s *memStore) GetTentative(keys []string) ([]replication.Write, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []replication.Write
	for _, k := range keys {
		if w, ok := s.m[k]; ok {
			out = append(out, w)
		}
	}
	return out, nil
}

func (s *memStore) get(key string) (replication.Write, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w, ok := s.m[key]
	return w, ok
}

// has reports whether the store holds key at exactly version v.
func (s *memStore) has(key string, v consistency.Version) bool {
	w, ok := s.get(key)
	return ok && w.Value.Version == v
}

var _ Store = (*memStore)(nil)

// testNode is one engine with its store and HTTP server. Restarting it keeps the store and the
// HTTP address, as a node process restart would.
type testNode struct {
	t      testing.TB
	id     string
	store  *memStore
	srv    *httptest.Server
	engine atomic.Pointer[Engine]
	cfg    Config
}

// testLogger writes warnings (or everything, with DIALKV_TEST_LOG=debug) to the test log, and
// nothing once the test is over (joins still dialling may log late).
func testLogger(t testing.TB) *slog.Logger {
	t.Helper()
	level := slog.LevelWarn
	if os.Getenv("DIALKV_TEST_LOG") == "debug" {
		level = slog.LevelDebug
	}
	w := &testWriter{t: t}
	t.Cleanup(func() { w.mu.Lock(); w.done = true; w.mu.Unlock() })
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

type testWriter struct {
	t    testing.TB
	mu   sync.Mutex
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

var _ io.Writer = (*testWriter)(nil)

// testConfig is a fast local-profile config for node id, labelled per test so that parallel
// tests (and reused ports) never mix clusters.
func testConfig(t testing.TB, id string) Config {
	cfg := DefaultConfig()
	cfg.NodeID = id
	cfg.BindAddr = "127.0.0.1:0"
	cfg.Profile = ProfileLocal
	cfg.Label = "test-" + strings.NewReplacer("/", "-", " ", "-").Replace(t.Name())
	cfg.RaftAddr = "127.0.0.1:9" + id[len(id)-1:] // recognisable metadata
	cfg.RejoinInterval = 500 * time.Millisecond
	cfg.RequestTimeout = 5 * time.Second
	return cfg
}

// newTestNode starts a node; adjust may change its config (Peers, intervals, hooks).
func newTestNode(t testing.TB, id string, adjust func(*Config)) *testNode {
	t.Helper()
	n := &testNode{t: t, id: id, store: newMemStore()}
	n.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if e := n.engine.Load(); e != nil {
			e.Handler().ServeHTTP(w, r)
			return
		}
		http.Error(w, "engine down", http.StatusServiceUnavailable)
	}))
	t.Cleanup(n.srv.Close)
	n.cfg = testConfig(t, id)
	n.cfg.HTTPAddr = n.srv.Listener.Addr().String()
	n.cfg.Logger = testLogger(t).With("node", id)
	if adjust != nil {
		adjust(&n.cfg)
	}
	n.start()
	t.Cleanup(n.shutdown)
	return n
}

func (n *testNode) start() {
	n.t.Helper()
	e, err := Open(n.cfg, n.store)
	if err != nil {
		n.t.Fatalf("open %s: %v", n.id, err)
	}
	n.engine.Store(e)
}

func (n *testNode) e() *Engine { return n.engine.Load() }

func (n *testNode) shutdown() {
	if e := n.engine.Swap(nil); e != nil {
		if err := e.Shutdown(); err != nil {
			n.t.Errorf("shutdown %s: %v", n.id, err)
		}
	}
}

// crash stops the node without leaving: the others must detect it by probing.
func (n *testNode) crash() {
	if e := n.engine.Swap(nil); e != nil {
		e.stop(false)
	}
}

// restart opens a new engine on the same store and HTTP address, binding bindAddr.
func (n *testNode) restart(bindAddr string) {
	n.t.Helper()
	n.cfg.BindAddr = bindAddr
	n.start()
}

// startCluster starts n nodes n1..nN; each joins the first one.
func startCluster(t testing.TB, size int, adjust func(i int, c *Config)) []*testNode {
	t.Helper()
	var nodes []*testNode
	for i := 1; i <= size; i++ {
		id := fmt.Sprintf("n%d", i)
		nodes = append(nodes, newTestNode(t, id, func(c *Config) {
			if i > 1 {
				c.Peers = []string{nodes[0].e().LocalAddr()}
			}
			if adjust != nil {
				adjust(i, c)
			}
		}))
	}
	waitAllAlive(t, nodes, 10*time.Second)
	return nodes
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := start.Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(time.Millisecond) // fine enough for the delivery times some tests log
	}
	return time.Since(start)
}

func memberState(n *testNode, id string) (Member, bool) {
	for _, m := range n.e().Members() {
		if m.ID == id {
			return m, true
		}
	}
	return Member{}, false
}

// waitAllAlive waits until every node sees every other one alive.
func waitAllAlive(t testing.TB, nodes []*testNode, within time.Duration) {
	t.Helper()
	waitFor(t, within, "every node sees every node alive", func() bool {
		for _, n := range nodes {
			for _, o := range nodes {
				if m, ok := memberState(n, o.id); !ok || m.State != StateAlive {
					return false
				}
			}
		}
		return true
	})
}

// stamp returns a version at wall time wall (nanoseconds) by node.
func stamp(wall int64, node string) consistency.Version {
	return consistency.Version{Wall: wall, Node: node}
}

func put(key, value string, v consistency.Version) replication.Write {
	return replication.Write{Key: key, Value: consistency.Value{Version: v, Data: []byte(value)}}
}

// writeLocal stores w on n as a local eventual write and broadcasts it, as the node does.
func writeLocal(t testing.TB, n *testNode, ws ...replication.Write) {
	t.Helper()
	stored, err := n.store.MergeTentative(ws)
	if err != nil {
		t.Fatal(err)
	}
	n.e().Broadcast(stored)
}
