package node

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dialkv/dialkv/client"
	"github.com/dialkv/dialkv/consistency"
	"github.com/dialkv/dialkv/internal/freeport"
	"github.com/dialkv/dialkv/replication/store"
	"github.com/dialkv/dialkv/replication/strong"
	bolt "go.etcd.io/bbolt"
)

// testCluster runs n nodes in this process, each with real TCP listeners on loopback.
type testCluster struct {
	t      *testing.T
	nodes  []*Node
	cancel []context.CancelFunc
	done   []chan error
}

// freeAddr is a loopback address below the kernel's ephemeral range, so that a node restarted
// on it finds it free (see internal/freeport).
func freeAddr(t *testing.T) string {
	t.Helper()
	addr, err := freeport.Loopback()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// kvdRaftTimings gives c kvd's Raft heartbeat, election and lease timeouts in place of the
// tests' short ones, for a test that is not about elections: under -race on a loaded machine the
// short ones depose leaders mid-test. It fits startCluster's tweaks.
func kvdRaftTimings(_ int, c *Config) {
	d := strong.DefaultConfig()
	c.Raft.HeartbeatTimeout, c.Raft.ElectionTimeout, c.Raft.LeaderLeaseTimeout = d.HeartbeatTimeout, d.ElectionTimeout, d.LeaderLeaseTimeout
}

func startCluster(t *testing.T, size int, tweaks ...func(i int, c *Config)) *testCluster {
	t.Helper()
	// The Raft ports are picked free, closed, then bound by the node: on a busy machine another
	// process can take one in between. Start over with fresh ports when that happens.
	for attempt := 1; ; attempt++ {
		tc, err := tryStartCluster(t, size, tweaks)
		if err == nil {
			t.Cleanup(tc.stop)
			tc.waitReady()
			return tc
		}
		tc.stop()
		if !strings.Contains(err.Error(), "address already in use") || attempt == 3 {
			t.Fatal(err)
		}
		t.Logf("attempt %d: %v; retrying with fresh ports", attempt, err)
	}
}

func (tc *testCluster) stop() {
	for i := range tc.nodes {
		tc.cancel[i]()
		<-tc.done[i]
	}
	tc.nodes, tc.cancel, tc.done = nil, nil, nil
}

func tryStartCluster(t *testing.T, size int, tweaks []func(i int, c *Config)) (*testCluster, error) {
	tc := &testCluster{t: t}
	var peers []strong.Peer
	raftAddrs := make([]string, size)
	for i := range raftAddrs {
		raftAddrs[i] = freeAddr(t)
		peers = append(peers, strong.Peer{ID: fmt.Sprintf("n%d", i+1), Addr: raftAddrs[i]})
	}
	dir := t.TempDir()
	for i := 0; i < size; i++ {
		cfg := DefaultConfig()
		cfg.ID = fmt.Sprintf("n%d", i+1)
		cfg.DataDir = filepath.Join(dir, cfg.ID)
		cfg.LeaderWait = 3 * time.Second
		cfg.Raft.RaftAddr = raftAddrs[i]
		cfg.Raft.Bootstrap = peers
		cfg.Raft.HeartbeatTimeout = 200 * time.Millisecond
		cfg.Raft.ElectionTimeout = 200 * time.Millisecond
		cfg.Raft.LeaderLeaseTimeout = 100 * time.Millisecond
		cfg.Raft.CommitTimeout = 10 * time.Millisecond
		cfg.Gossip.BindAddr = "127.0.0.1:0"
		cfg.Gossip.Profile = "local"
		cfg.Gossip.Label = "test-" + filepath.Base(dir)
		cfg.Gossip.AntiEntropyInterval = 200 * time.Millisecond
		for _, earlier := range tc.nodes {
			cfg.Gossip.Peers = append(cfg.Gossip.Peers, earlier.gossipAddr())
		}
		for _, tweak := range tweaks {
			tweak(i, &cfg)
		}
		cfg.HTTPAddr = "" // a free port
		n, cancel, done, err := tryStartNode(cfg)
		if err != nil {
			return tc, err
		}
		tc.nodes = append(tc.nodes, n)
		tc.cancel = append(tc.cancel, cancel)
		tc.done = append(tc.done, done)
	}
	return tc, nil
}

// startNode starts a node from cfg, serving HTTP on cfg.HTTPAddr (a free port when empty), and
// returns it with its cancel and what Serve returns.
func startNode(tb testing.TB, cfg Config) (*Node, context.CancelFunc, chan error) {
	tb.Helper()
	n, cancel, done, err := tryStartNode(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return n, cancel, done
}

// tryStartNode is startNode returning what failed (listening, or New) instead of failing.
func tryStartNode(cfg Config) (*Node, context.CancelFunc, chan error, error) {
	addr := cfg.HTTPAddr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, nil, err
	}
	cfg.HTTPAddr = ln.Addr().String()
	n, err := New(cfg)
	if err != nil {
		ln.Close()
		return nil, nil, nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Serve(ctx, ln) }()
	return n, cancel, done, nil
}

// clusterReady reports whether every node knows a leader whose HTTP address is registered, and
// has caught up with its own registration (it takes eventual writes).
func clusterReady(nodes []*Node) bool {
	for _, n := range nodes {
		if id, addr := n.leaderHTTP(); id == "" || addr == "" && id != n.cfg.ID || !n.joined.Load() {
			return false
		}
	}
	return true
}

// waitReady polls until clusterReady.
func (tc *testCluster) waitReady() {
	tc.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !clusterReady(tc.nodes) {
		if time.Now().After(deadline) {
			tc.t.Fatal("cluster did not elect a registered leader, or its nodes did not join, within 15s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// leaderAndFollower waits for a leader (the one waitReady saw may have lost its leadership on
// a loaded machine since; a new one is elected within a few election timeouts) and returns it
// with one of its followers.
func (tc *testCluster) leaderAndFollower() (leader, follower *Node) {
	tc.t.Helper()
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		leader, follower = nil, nil
		for _, n := range tc.nodes {
			if n.raft.IsLeader() {
				leader = n
			} else {
				follower = n
			}
		}
		if leader != nil && follower != nil {
			return leader, follower
		}
		if time.Now().After(deadline) {
			tc.t.Fatal("no leader/follower pair within 15s")
		}
	}
}

// testHTTP bounds every test request: a node that never answers fails the test, not hangs it.
var testHTTP = &http.Client{Timeout: 30 * time.Second}

type reply struct {
	status int
	header http.Header
	body   string
}

func do(t *testing.T, method string, n *Node, path string, body string, header ...string) reply {
	t.Helper()
	r, err := tryDo(method, n, path, body, header...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// tryDo is do for goroutines other than the test's: it returns the error instead of failing.
func tryDo(method string, n *Node, path string, body string, header ...string) (reply, error) {
	req, err := http.NewRequest(method, "http://"+n.HTTPAddr()+path, strings.NewReader(body))
	if err != nil {
		return reply{}, err
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := testHTTP.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{status: resp.StatusCode, header: resp.Header, body: string(b)}, nil
}

func errCode(t *testing.T, r reply) string {
	t.Helper()
	var eb client.ErrorBody
	if err := json.Unmarshal([]byte(r.body), &eb); err != nil {
		t.Fatalf("error body %q is not JSON: %v", r.body, err)
	}
	if eb.Error == "" {
		t.Errorf("error body %q has no message", r.body)
	}
	return eb.Code
}

func TestStrongWriteThroughFollowerAndReadEverywhere(t *testing.T) {
	tc := startCluster(t, 3)
	leader, follower := tc.leaderAndFollower()

	put := do(t, "PUT", follower, "/v1/kv/a?consistency=strong", "1")
	if put.status != 200 {
		t.Fatalf("put via follower: %d %s", put.status, put.body)
	}
	if put.header.Get(client.HeaderVia) != follower.cfg.ID || put.header.Get(client.HeaderNode) != leader.cfg.ID {
		t.Errorf("forwarded put: via=%q node=%q, want via %s node %s", put.header.Get(client.HeaderVia), put.header.Get(client.HeaderNode), follower.cfg.ID, leader.cfg.ID)
	}
	version := put.header.Get(client.HeaderVersion)
	if version == "" {
		t.Fatal("put answered no version")
	}
	// The leader stamps strong writes, forwarded or not, in its strong space, where its clock
	// never stamps an eventual write (consistency.Clock.NowStrong).
	direct := do(t, "PUT", leader, "/v1/kv/b?consistency=strong", "2")
	for _, r := range []reply{put, direct} {
		if v, err := consistency.ParseVersion(r.header.Get(client.HeaderVersion)); err != nil || v.Node != leader.cfg.ID+"/s" || v.StampedBy() != leader.cfg.ID {
			t.Errorf("strong write answered version %q (%v), want one stamped by %s in its strong space", r.header.Get(client.HeaderVersion), err, leader.cfg.ID)
		}
	}
	for _, n := range tc.nodes {
		got := do(t, "GET", n, "/v1/kv/a?consistency=strong", "")
		if got.status != 200 || got.body != "1" {
			t.Fatalf("strong read on %s right after the write: %d %q, want 200 \"1\"", n.cfg.ID, got.status, got.body)
		}
		h := got.header
		if h.Get(client.HeaderNode) != n.cfg.ID || h.Get(client.HeaderConsistency) != "strong" || h.Get(client.HeaderState) != "committed" ||
			h.Get(client.HeaderStaleness) != "0s" || h.Get(client.HeaderVersion) != version || h.Get(client.HeaderAppliedIndex) == "" {
			t.Errorf("strong read metadata on %s: %v", n.cfg.ID, h)
		}
	}
	b := do(t, "GET", follower, "/v1/kv/a?consistency=bounded&max_staleness=2s", "", "Accept", "application/json")
	var vr client.ValueResponse
	if err := json.Unmarshal([]byte(b.body), &vr); err != nil || b.status != 200 {
		t.Fatalf("bounded JSON read: %d %q %v", b.status, b.body, err)
	}
	if vr.Value != "1" || vr.Meta.Consistency != "bounded" || vr.Meta.Staleness == "" {
		t.Errorf("bounded read = %+v", vr)
	}
	if d, err := time.ParseDuration(vr.Meta.Staleness); err != nil || d > 2*time.Second {
		t.Errorf("bounded staleness %q is over its bound", vr.Meta.Staleness)
	}
}

func TestConditionalWritesDeleteAndList(t *testing.T) {
	tc := startCluster(t, 3)
	_, f := tc.leaderAndFollower()

	create := do(t, "PUT", f, "/v1/kv/c?if_absent=true", "v1")
	if create.status != 200 {
		t.Fatalf("create: %d %s", create.status, create.body)
	}
	v1 := create.header.Get(client.HeaderVersion)
	again := do(t, "PUT", f, "/v1/kv/c?if_absent=true", "v2")
	if again.status != 409 || errCode(t, again) != client.CodeConflict {
		t.Fatalf("second create: %d %s, want 409 conflict", again.status, again.body)
	}
	cas := do(t, "PUT", f, "/v1/kv/c?if_version="+url.QueryEscape(v1), "v2")
	if cas.status != 200 {
		t.Fatalf("cas with current version: %d %s", cas.status, cas.body)
	}
	stale := do(t, "PUT", f, "/v1/kv/c?if_version="+url.QueryEscape(v1), "v3")
	if stale.status != 409 {
		t.Fatalf("cas with old version: %d %s, want 409", stale.status, stale.body)
	}
	var eb client.ErrorBody
	json.Unmarshal([]byte(stale.body), &eb)
	if eb.Version != cas.header.Get(client.HeaderVersion) {
		t.Errorf("conflict names version %q, want the current %q", eb.Version, cas.header.Get(client.HeaderVersion))
	}
	if got := do(t, "GET", f, "/v1/kv/c", ""); got.body != "v2" {
		t.Errorf("after cas: %q, want v2", got.body)
	}

	for _, k := range []string{"dir/1", "dir/2", "other"} {
		if r := do(t, "PUT", f, "/v1/kv/"+k, k); r.status != 200 {
			t.Fatalf("put %s: %d", k, r.status)
		}
	}
	if r := do(t, "DELETE", f, "/v1/kv/dir/2", ""); r.status != 200 {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	if r := do(t, "DELETE", f, "/v1/kv/dir/2", ""); r.status != 404 {
		t.Errorf("second delete: %d, want 404", r.status)
	}
	if r := do(t, "GET", f, "/v1/kv/dir/2", ""); r.status != 404 || errCode(t, r) != client.CodeNotFound {
		t.Errorf("get deleted: %d %s, want 404 not_found", r.status, r.body)
	}
	lr := do(t, "GET", f, "/v1/kv?prefix=dir/", "")
	var list client.ListResponse
	if err := json.Unmarshal([]byte(lr.body), &list); err != nil {
		t.Fatalf("list: %v %s", err, lr.body)
	}
	if len(list.Items) != 1 || list.Items[0].Key != "dir/1" || list.Items[0].Value != "dir/1" {
		t.Errorf("list dir/ = %+v, want only dir/1", list.Items)
	}
}

func TestBadRequests(t *testing.T) {
	tc := startCluster(t, 1)
	n := tc.nodes[0]
	big := strings.Repeat("x", int(n.cfg.MaxValueSize)+1)
	cases := []struct {
		name, method, path, body string
		status                   int
		code                     string
	}{
		{"unknown read level", "GET", "/v1/kv/a?consistency=linearizable", "", 400, client.CodeBadRequest},
		{"write level bounded", "PUT", "/v1/kv/a?consistency=bounded", "x", 400, client.CodeBadRequest},
		{"empty key", "PUT", "/v1/kv/", "x", 400, client.CodeBadRequest},
		// A key the store cannot hold must never reach the log: every replica would stop on it.
		{"key too long", "PUT", "/v1/kv/" + strings.Repeat("k", store.MaxKeySize+1) + "?consistency=strong", "x", 400, client.CodeBadRequest},
		{"key too long, eventual", "PUT", "/v1/kv/" + strings.Repeat("k", store.MaxKeySize+1) + "?consistency=eventual", "x", 400, client.CodeBadRequest},
		{"delete key too long", "DELETE", "/v1/kv/" + strings.Repeat("k", store.MaxKeySize+1), "", 400, client.CodeBadRequest},
		{"get key too long", "GET", "/v1/kv/" + strings.Repeat("k", store.MaxKeySize+1), "", 400, client.CodeBadRequest},
		{"cas on eventual", "PUT", "/v1/kv/a?consistency=eventual&if_absent=true", "x", 400, client.CodeBadRequest},
		{"bad version", "PUT", "/v1/kv/a?if_version=yesterday", "x", 400, client.CodeBadRequest},
		{"bad staleness", "GET", "/v1/kv/a?consistency=bounded&max_staleness=-1s", "", 400, client.CodeBadRequest},
		{"too large", "PUT", "/v1/kv/a", big, 413, client.CodeTooLarge},
		{"missing", "GET", "/v1/kv/nope", "", 404, client.CodeNotFound},
	}
	for _, tc := range cases {
		r := do(t, tc.method, n, tc.path, tc.body)
		if r.status != tc.status || errCode(t, r) != tc.code {
			t.Errorf("%s: %d %s, want %d %s", tc.name, r.status, r.body, tc.status, tc.code)
		}
	}
	// Nothing was written by any of them.
	if r := do(t, "GET", n, "/v1/kv/a", ""); r.status != 404 {
		t.Errorf("a rejected write left a value: %d %q", r.status, r.body)
	}
	// The longest key accepted is one the store holds, and the node keeps serving after it.
	if store.MaxKeySize != bolt.MaxKeySize {
		t.Errorf("store.MaxKeySize = %d, bbolt's MaxKeySize = %d", store.MaxKeySize, bolt.MaxKeySize)
	}
	longest := "/v1/kv/" + strings.Repeat("k", store.MaxKeySize)
	if r := do(t, "PUT", n, longest, "x"); r.status != 200 {
		t.Fatalf("put of a %d-byte key: %d %s", store.MaxKeySize, r.status, r.body)
	}
	if r := do(t, "GET", n, longest, ""); r.status != 200 || r.body != "x" {
		t.Errorf("get of a %d-byte key: %d %q", store.MaxKeySize, r.status, r.body)
	}
}

func TestSessionTokenReadYourWrites(t *testing.T) {
	tc := startCluster(t, 3)
	_, f := tc.leaderAndFollower()
	w := do(t, "PUT", f, "/v1/kv/s", "mine")
	token := w.header.Get(client.HeaderSession)
	if token == "" {
		t.Fatal("write returned no session token")
	}
	for _, n := range tc.nodes {
		r := do(t, "GET", n, "/v1/kv/s?consistency=session", "", client.HeaderSession, token)
		if r.status != 200 || r.body != "mine" {
			t.Errorf("session read on %s: %d %q, want the session's own write", n.cfg.ID, r.status, r.body)
		}
	}
	if r := do(t, "GET", f, "/v1/kv/s?consistency=session", "", client.HeaderSession, "garbage"); r.status != 400 {
		t.Errorf("garbage session token: %d, want 400", r.status)
	}
}

// A query parameter the server does not act on must never be taken as absent: a typo, a doubled
// name or a ';' separator would otherwise turn a compare-and-set into a plain write, or a
// request into a weaker one than the caller asked for, with a 200.
func TestQueryParametersAreTakenOrRefused(t *testing.T) {
	tc := startCluster(t, 1)
	n := tc.nodes[0]
	if r := do(t, "PUT", n, "/v1/kv/a", "v1"); r.status != 200 {
		t.Fatalf("put: %d %s", r.status, r.body)
	}
	v1 := url.QueryEscape(do(t, "GET", n, "/v1/kv/a", "").header.Get(client.HeaderVersion))
	refused := []struct{ name, method, path string }{
		{"typo in if_version", "PUT", "/v1/kv/a?if_verison=1.0@n9"},
		{"typo in if_absent", "PUT", "/v1/kv/a?ifabsent=true"},
		{"typo in consistency", "PUT", "/v1/kv/a?consistancy=strong"},
		{"consistency twice", "PUT", "/v1/kv/a?consistency=eventual&consistency=strong"},
		{"if_version twice", "PUT", "/v1/kv/a?if_version=" + v1 + "&if_version=1.0@n9"},
		{"semicolon separator", "PUT", "/v1/kv/a?consistency=strong;if_version=1.0@n9"},
		{"bad escape", "PUT", "/v1/kv/a?if_version=%zz"},
		{"if_absent on a delete", "DELETE", "/v1/kv/a?if_absent=true"},
		{"delete typo", "DELETE", "/v1/kv/a?if_versoin=1.0@n9"},
		{"read level twice", "GET", "/v1/kv/a?consistency=strong&consistency=eventual"},
		{"read typo", "GET", "/v1/kv/a?max_stalenes=5s"},
		{"list typo", "GET", "/v1/kv?prefx=b"},
		{"list parameter on a key", "GET", "/v1/kv/a?limit=1"},
		// Boolean parameters take one rule: bare or strconv.ParseBool's words, else 400.
		{"if_absent not a boolean", "PUT", "/v1/kv/a?if_absent=yes"},
		{"pretty not a boolean on a write", "PUT", "/v1/kv/a?pretty=maybe"},
		{"pretty not a boolean on a read", "GET", "/v1/kv/a?pretty=maybe"},
		{"pretty not a boolean on a list", "GET", "/v1/kv?pretty=yes"},
	}
	for _, c := range refused {
		r := do(t, c.method, n, c.path, "v2")
		if r.status != 400 || errCode(t, r) != client.CodeBadRequest {
			t.Errorf("%s: %s %s answered %d %s, want 400 bad_request", c.name, c.method, c.path, r.status, r.body)
		}
	}
	if r := do(t, "GET", n, "/v1/kv/a", ""); r.status != 200 || r.body != "v1" {
		t.Fatalf("after the refused requests a = %d %q, want v1 untouched", r.status, r.body)
	}

	// A bare if_absent is if_absent=true, as a bare pretty is pretty=true.
	if r := do(t, "PUT", n, "/v1/kv/a?if_absent", "v2"); r.status != 409 {
		t.Errorf("bare if_absent on an existing key: %d %s, want 409", r.status, r.body)
	}
	if r := do(t, "PUT", n, "/v1/kv/new?if_absent", "n"); r.status != 200 {
		t.Errorf("bare if_absent on a new key: %d %s, want 200", r.status, r.body)
	}
	if r := do(t, "PUT", n, "/v1/kv/a?if_version="+v1+"&", "v3"); r.status != 200 {
		t.Errorf("if_version and an empty pair: %d %s, want 200", r.status, r.body)
	}
	if r := do(t, "PUT", n, "/v1/kv/a?if_absent=false&consistency=strong&pretty", "v4"); r.status != 200 {
		t.Errorf("if_absent=false, consistency and pretty: %d %s, want 200", r.status, r.body)
	}
	for _, path := range []string{
		"/v1/kv/a?consistency=bounded&max_staleness=5s&pretty=true",
		"/v1/kv?prefix=a&limit=1&after=&consistency=eventual&max_staleness=1s",
	} {
		if r := do(t, "GET", n, path, ""); r.status != 200 {
			t.Errorf("GET %s: %d %s, want 200", path, r.status, r.body)
		}
	}
}

// A conflict names the key's current version in the body and in Dialkv-Version alike, on the
// leader and through a follower. For a deleted key that is no version (the key is absent: if_absent creates it); the header used to
// carry the tombstone's, so a 409 "version is not T" came with Dialkv-Version: T, and a client
// taking the version from the answer's metadata (kvctl -v, client.Meta) retried with T forever.
func TestConflictOnADeletedKeyNamesNoVersion(t *testing.T) {
	tc := startCluster(t, 3)
	leader, follower := tc.leaderAndFollower()
	if r := do(t, "PUT", leader, "/v1/kv/d", "v"); r.status != 200 {
		t.Fatalf("put: %d %s", r.status, r.body)
	}
	del := do(t, "DELETE", leader, "/v1/kv/d", "")
	if del.status != 200 {
		t.Fatalf("delete: %d %s", del.status, del.body)
	}
	tomb := del.header.Get(client.HeaderVersion)
	put := do(t, "PUT", leader, "/v1/kv/live", "v")
	if put.status != 200 {
		t.Fatalf("put: %d %s", put.status, put.body)
	}
	live := put.header.Get(client.HeaderVersion)
	for _, n := range []*Node{leader, follower} {
		for _, q := range []string{"if_version=" + url.QueryEscape(tomb), "if_version=" + url.QueryEscape("1.0@n1/s")} {
			r := do(t, "PUT", n, "/v1/kv/d?"+q, "w")
			var eb client.ErrorBody
			json.Unmarshal([]byte(r.body), &eb)
			if r.status != http.StatusConflict || eb.Version != "" || r.header.Get(client.HeaderVersion) != "" {
				t.Errorf("%s on %s of the deleted key: %d, body version %q, Dialkv-Version %q; want 409 naming no version (absent)",
					q, n.cfg.ID, r.status, eb.Version, r.header.Get(client.HeaderVersion))
			}
			if !strings.Contains(eb.Error, "no committed value") {
				t.Errorf("%s on %s of the deleted key: the conflict %q does not say the key is absent", q, n.cfg.ID, eb.Error)
			}
		}
		// A live key's conflict names its current version, the one a retry must give.
		r := do(t, "PUT", n, "/v1/kv/live?if_absent", "w")
		var eb client.ErrorBody
		json.Unmarshal([]byte(r.body), &eb)
		if r.status != http.StatusConflict || eb.Version != live || r.header.Get(client.HeaderVersion) != live {
			t.Errorf("if_absent on %s of a live key: %d, body version %q, Dialkv-Version %q; want 409 naming %q in both",
				n.cfg.ID, r.status, eb.Version, r.header.Get(client.HeaderVersion), live)
		}
	}
}
