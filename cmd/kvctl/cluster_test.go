package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dialkv/dialkv/client"
	"github.com/dialkv/dialkv/internal/freeport"
)

// TestMain lets the test binary stand in for kvd: started with fakeKVDEnv set, it serves
// /v1/status as a one-node cluster on its --http address until killed. This exercises the real
// process handling (detaching, pid files, signals, liveness) without the real kvd.
func TestMain(m *testing.M) {
	if os.Getenv(fakeKVDEnv) == "1" {
		fakeKVD(os.Args[1:])
		return
	}
	os.Exit(m.Run())
}

const fakeKVDEnv = "KVCTL_TEST_FAKE_KVD"

// fakeRemovedFile, in a fake kvd's data directory, lists the ids it answers 410 removed for.
const fakeRemovedFile = "fake-removed"

func fakeKVD(args []string) {
	fs := flag.NewFlagSet("kvd", flag.ExitOnError)
	id := fs.String("id", "", "")
	addr := fs.String("http", "", "")
	fs.String("raft", "", "")
	dataDir := fs.String("data-dir", "", "")
	fs.String("bootstrap", "", "")
	fs.String("join", "", "")
	fs.String("gossip", "", "")
	fs.String("gossip-profile", "", "")
	fs.String("gossip-join", "", "")
	fs.Bool("test-faults", false, "")
	fs.Parse(args)
	fmt.Printf("fake kvd %s on %s\n", *id, *addr)
	err := http.ListenAndServe(*addr, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The ids a test wrote to fakeRemovedFile in its data directory are removed members.
		if other, ok := strings.CutPrefix(r.URL.Path, "/v1/cluster/members/"); ok {
			if removed, _ := os.ReadFile(filepath.Join(*dataDir, fakeRemovedFile)); slices.Contains(strings.Fields(string(removed)), other) {
				w.WriteHeader(http.StatusGone)
				return
			}
		}
		json.NewEncoder(w).Encode(client.StatusResponse{Node: *id, Leader: *id, AppliedIndex: 1,
			Nodes: []client.NodeStatus{{ID: *id, HTTP: *addr, Role: "leader", Health: "ok"}}})
	}))
	fmt.Println("fake kvd:", err)
	os.Exit(1)
}

func TestPlanCluster(t *testing.T) {
	dir := t.TempDir()
	c, err := planCluster(3, defaultBasePort, dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Nodes) != 3 || c.DataDir != dir {
		t.Fatalf("plan = %+v", c)
	}
	n2 := c.Nodes[1]
	want := clusterNode{
		ID: "n2", HTTP: "127.0.0.1:7002", Raft: "127.0.0.1:7102", Gossip: "127.0.0.1:7202", Dir: filepath.Join(dir, "n2"),
		Args: []string{
			"--id", "n2",
			"--http", "127.0.0.1:7002",
			"--raft", "127.0.0.1:7102",
			"--data-dir", filepath.Join(dir, "n2"),
			"--bootstrap", "n1=127.0.0.1:7101,n2=127.0.0.1:7102,n3=127.0.0.1:7103",
			// Each node binds its own gossip port and joins the others.
			"--gossip", "127.0.0.1:7202", "--gossip-profile", "local", "--test-faults",
			"--gossip-join", "127.0.0.1:7201,127.0.0.1:7203",
		},
	}
	if !reflect.DeepEqual(n2, want) {
		t.Errorf("n2 =\n %+v\nwant\n %+v", n2, want)
	}
	if got := strings.Join(c.httpAddrs(), ","); got != defaultEndpoints {
		t.Errorf("endpoints %q, want the default %q", got, defaultEndpoints)
	}
	for _, n := range c.Nodes {
		if !isKVDCommand(append([]string{"/x/bin/kvd"}, n.Args...), n) {
			t.Errorf("%s: its own command line is not recognised as its process", n.ID)
		}
	}

	if one, _ := planCluster(1, defaultBasePort, dir); slices.Contains(one.Nodes[0].Args, "--gossip-join") {
		t.Errorf("a single node has nobody to join: %q", one.Nodes[0].Args)
	}

	nine, err := planCluster(99, defaultBasePort, dir)
	if err != nil {
		t.Fatal(err)
	}
	if last := nine.Nodes[98]; last.HTTP != "127.0.0.1:7099" || last.Raft != "127.0.0.1:7199" || last.Gossip != "127.0.0.1:7299" {
		t.Errorf("n99 = %s, %s, %s", last.HTTP, last.Raft, last.Gossip)
	}
	for _, n := range []int{0, -1, 100} {
		if _, err := planCluster(n, defaultBasePort, dir); err == nil {
			t.Errorf("planCluster(%d) succeeded", n)
		}
	}

	// A relative data dir is made absolute, so later commands work from anywhere.
	t.Chdir(dir)
	rel, err := planCluster(1, defaultBasePort, "data")
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "data", "n1"); rel.Nodes[0].Dir != want || !slices.Contains(rel.Nodes[0].Args, want) {
		t.Errorf("relative data dir gave %q, args %q; want %q", rel.Nodes[0].Dir, rel.Nodes[0].Args, want)
	}
}

func TestClusterFileRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if _, err := loadClusterFile(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing cluster.json: error %v, want fs.ErrNotExist", err)
	}
	c, err := planCluster(3, defaultBasePort, dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := saveClusterFile(c); err != nil {
		t.Fatal(err)
	}
	got, err := loadClusterFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, c) {
		t.Errorf("round trip\n got  %+v\n want %+v", got, c)
	}
	if n, err := got.node("n3"); err != nil || n.HTTP != "127.0.0.1:7003" {
		t.Errorf("node(n3) = %+v, %v", n, err)
	}
	if _, err := got.node("n4"); err == nil || !strings.Contains(err.Error(), "nodes: n1, n2, n3") {
		t.Errorf("node(n4) error = %v", err)
	}

	path := filepath.Join(dir, clusterFileName)
	for name, content := range map[string]string{
		"corrupt":      "{",
		"other format": `{"format": 2, "nodes": [{"id": "n1"}]}`,
		"no nodes":     `{"format": 1, "nodes": []}`,
	} {
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := loadClusterFile(dir); err == nil {
			t.Errorf("%s cluster.json loaded without error", name)
		}
	}
}

// TestPlanClusterBasePort: --base-port moves every block of the layout together, and refuses a
// base whose blocks do not fit the node count between 1024 and 65535.
func TestPlanClusterBasePort(t *testing.T) {
	dir := t.TempDir()
	c, err := planCluster(3, 17000, dir)
	if err != nil {
		t.Fatal(err)
	}
	if c.BasePort != 17000 || c.basePort() != 17000 {
		t.Errorf("base port recorded %d (basePort %d), want 17000", c.BasePort, c.basePort())
	}
	// The default plan with every port 10000 higher: every address, the voter set and the
	// gossip peers included.
	def, err := planCluster(3, defaultBasePort, dir)
	if err != nil {
		t.Fatal(err)
	}
	def.BasePort = 17000
	b, _ := json.Marshal(def)
	var want clusterFile
	if err := json.Unmarshal([]byte(strings.ReplaceAll(string(b), "127.0.0.1:7", "127.0.0.1:17")), &want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("plan from 17000 =\n %+v\nwant\n %+v", c, want)
	}
	if n2 := c.Nodes[1]; n2.HTTP != "127.0.0.1:17002" || n2.Raft != "127.0.0.1:17102" || n2.Gossip != "127.0.0.1:17202" {
		t.Errorf("n2 on %s, %s, %s", n2.HTTP, n2.Raft, n2.Gossip)
	}

	for _, tt := range []struct {
		nodes, base int
		ok          bool
	}{
		{3, 1024, true},
		{3, 1023, false},
		{3, 0, false},
		{3, -7000, false},
		{3, 65332, true}, // n3's gossip port is 65535
		{3, 65333, false},
		{99, 65236, true},
		{99, 65237, false},
		{1, 65334, true},
	} {
		_, err := planCluster(tt.nodes, tt.base, dir)
		var ue *usageError
		switch {
		case tt.ok && err != nil:
			t.Errorf("planCluster(%d, %d): %v", tt.nodes, tt.base, err)
		case !tt.ok && (!errors.As(err, &ue) || !strings.Contains(err.Error(), "--base-port must be between 1024 and")):
			t.Errorf("planCluster(%d, %d): error %v, want a usage error about --base-port", tt.nodes, tt.base, err)
		}
	}
}

// TestClusterFileBasePort: cluster.json keeps the base port, and a file written before it had
// one (no "base_port") is a cluster on the default layout.
func TestClusterFileBasePort(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	c, err := planCluster(2, 17000, dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := saveClusterFile(c); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, clusterFileName))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), `"base_port": 17000`) {
		t.Errorf("cluster.json does not record the base port:\n%s", raw)
	}
	got, err := loadClusterFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, c) || got.basePort() != 17000 {
		t.Errorf("round trip\n got  %+v\n want %+v", got, c)
	}

	// As an older kvctl wrote it.
	old := fmt.Sprintf(`{
  "format": 1,
  "data_dir": %q,
  "nodes": [
    {"id": "n1", "http": "127.0.0.1:7001", "raft": "127.0.0.1:7101", "gossip": "127.0.0.1:7201", "dir": %q, "args": ["--id", "n1"]}
  ]
}
`, dir, filepath.Join(dir, "n1"))
	if err := os.WriteFile(filepath.Join(dir, clusterFileName), []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err = loadClusterFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got.basePort() != defaultBasePort || got.Nodes[0].HTTP != "127.0.0.1:7001" {
		t.Errorf("old cluster.json: base port %d, n1 on %s; want %d, 127.0.0.1:7001", got.basePort(), got.Nodes[0].HTTP, defaultBasePort)
	}
}

// TestClusterUpBasePortChecks: a --base-port out of range is a usage error before anything is
// made, and one other than the cluster's own on a directory that holds a cluster is refused
// (its nodes' Raft configuration names their old addresses), the old files without a base port
// counting as the default layout.
func TestClusterUpBasePortChecks(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "data")
	for _, tt := range []struct{ args, want string }{
		{"--base-port 80", "kvctl: --base-port must be between 1024 and 65332 for 3 nodes (node i takes B+i, B+100+i and B+200+i), not 80\n"},
		{"--base-port 65333", "kvctl: --base-port must be between 1024 and 65332 for 3 nodes (node i takes B+i, B+100+i and B+200+i), not 65333\n"},
		{"--base-port 65300 --nodes 99", "kvctl: --base-port must be between 1024 and 65236 for 99 nodes (node i takes B+i, B+100+i and B+200+i), not 65300\n"},
	} {
		args := append([]string{"cluster", "up", "--data-dir", dir, "--kvd", "/nonexistent/kvd"}, strings.Fields(tt.args)...)
		r := kvctl(t, nil, "", args...)
		if r.code != 2 || r.stderr != tt.want {
			t.Errorf("cluster up %s: exit %d, stderr %q; want 2, %q", tt.args, r.code, r.stderr, tt.want)
		}
		if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("cluster up %s left its data dir (%v)", tt.args, err)
		}
	}

	c, _ := planCluster(3, 17000, dir)
	if err := saveClusterFile(c); err != nil {
		t.Fatal(err)
	}
	r := kvctl(t, nil, "", "cluster", "up", "--base-port", "18000", "--data-dir", dir, "--kvd", "/nonexistent/kvd")
	if r.code != 1 || !strings.Contains(r.stderr, "holds a cluster on base port 17000; use --base-port 17000") {
		t.Errorf("cluster up --base-port 18000 on a cluster at 17000: exit %d, stderr %q", r.code, r.stderr)
	}
	r = kvctl(t, nil, "", "cluster", "up", "--base-port", "80", "--data-dir", dir, "--kvd", "/nonexistent/kvd")
	if r.code != 2 || !strings.Contains(r.stderr, "--base-port must be between 1024 and 65332 for 3 nodes") {
		t.Errorf("cluster up --base-port 80 on a cluster at 17000: exit %d, stderr %q", r.code, r.stderr)
	}
	// Its own base port, given or not, passes (and then no kvd is found).
	for _, args := range [][]string{{"--base-port", "17000"}, nil} {
		r := kvctl(t, nil, "", append([]string{"cluster", "up", "--data-dir", dir, "--kvd", "/nonexistent/kvd"}, args...)...)
		if r.code != 1 || !strings.Contains(r.stderr, "/nonexistent/kvd") {
			t.Errorf("cluster up %q on a cluster at 17000: exit %d, stderr %q; want it to look for kvd", args, r.code, r.stderr)
		}
	}

	// A cluster.json from before base ports were recorded is on the default layout.
	old := fmt.Sprintf(`{"format": 1, "data_dir": %q, "nodes": [{"id": "n1", "http": "127.0.0.1:7001", "raft": "127.0.0.1:7101", "dir": %q, "args": []}]}`,
		dir, filepath.Join(dir, "n1"))
	if err := os.WriteFile(filepath.Join(dir, clusterFileName), []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	r = kvctl(t, nil, "", "cluster", "up", "--base-port", "17000", "--data-dir", dir, "--kvd", "/nonexistent/kvd")
	if r.code != 1 || !strings.Contains(r.stderr, "holds a cluster on base port 7000; use --base-port 7000") {
		t.Errorf("cluster up --base-port 17000 on an old cluster.json: exit %d, stderr %q", r.code, r.stderr)
	}
}

// TestClusterUpKeepsBasePort: cluster up --base-port lays the nodes out from it and records it,
// and a later cluster up on the directory, without the flag, starts them there again (the seam
// records the base it is asked for; the nodes themselves run on free ports).
func TestClusterUpKeepsBasePort(t *testing.T) {
	kvd, _ := fakeLocalCluster(t, 1) // the fake kvd is a cluster of one
	free := localPorts
	var bases []int
	localPorts = func(base, i int) (int, int, int) {
		bases = append(bases, base)
		return free(base, i)
	}
	t.Cleanup(func() { localPorts = free })
	dir := filepath.Join(t.TempDir(), "data")
	t.Cleanup(func() { kvctl(t, nil, "", "cluster", "down", "--data-dir", dir) })

	for _, args := range [][]string{{"--nodes", "1", "--base-port", "17000"}, nil} {
		bases = nil
		r := kvctl(t, nil, "", append([]string{"cluster", "up", "--data-dir", dir, "--kvd", kvd, "--wait", "20s"}, args...)...)
		if r.code != 0 {
			t.Fatalf("cluster up %q: exit %d, stderr %q", args, r.code, r.stderr)
		}
		if len(bases) == 0 || slices.ContainsFunc(bases, func(b int) bool { return b != 17000 }) {
			t.Errorf("cluster up %q laid the ports out from %v, want 17000", args, bases)
		}
		c, err := loadClusterFile(dir)
		if err != nil {
			t.Fatal(err)
		}
		if c.BasePort != 17000 {
			t.Errorf("cluster up %q recorded base port %d, want 17000", args, c.BasePort)
		}
		if r := kvctl(t, nil, "", "cluster", "down", "--data-dir", dir); r.code != 0 {
			t.Fatalf("cluster down: exit %d, stderr %q", r.code, r.stderr)
		}
	}
}

// TestKeyCommandsFindTheLocalCluster: without --endpoints or KV_ENDPOINTS the key commands talk
// to the nodes ./data/cluster.json lists, so a cluster up --base-port B needs no --endpoints
// either; the environment still wins over it.
func TestKeyCommandsFindTheLocalCluster(t *testing.T) {
	local, other := newFakeCluster(t), newFakeCluster(t)
	dir := t.TempDir()
	t.Chdir(dir)
	data, err := filepath.Abs(defaultDataDir)
	if err != nil {
		t.Fatal(err)
	}
	addr := strings.TrimPrefix(local.URL, "http://")
	c := clusterFile{Format: clusterFileFormat, DataDir: data, BasePort: 17000,
		Nodes: []clusterNode{{ID: "n1", HTTP: addr, Raft: freeAddr(t), Dir: filepath.Join(data, "n1")}}}
	if err := saveClusterFile(c); err != nil {
		t.Fatal(err)
	}
	if r := kvctl(t, nil, "", "put", "k", "local"); r.code != 0 {
		t.Fatalf("put without --endpoints: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := kvctl(t, nil, "", "get", "k", "-v"); r.code != 0 || r.stdout != "local" || !strings.Contains(r.stderr, "n1") {
		t.Errorf("get without --endpoints: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if got := mustKvctl(t, addr, "get", "k").stdout; got != "local" {
		t.Errorf("the local cluster's node holds %q, want \"local\"", got)
	}
	otherAddr := strings.TrimPrefix(other.URL, "http://")
	if r := kvctl(t, map[string]string{"KV_ENDPOINTS": otherAddr}, "", "put", "k", "env"); r.code != 0 {
		t.Fatalf("put with KV_ENDPOINTS: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := kvctl(t, nil, "", "put", "k", "flag", "--endpoints", otherAddr); r.code != 0 {
		t.Fatalf("put with --endpoints: exit %d, stderr %q", r.code, r.stderr)
	}
	if got := mustKvctl(t, addr, "get", "k").stdout; got != "local" {
		t.Errorf("KV_ENDPOINTS or --endpoints went to the local cluster: it holds %q", got)
	}
	if got := mustKvctl(t, otherAddr, "get", "k").stdout; got != "flag" {
		t.Errorf("the node KV_ENDPOINTS and --endpoints name holds %q, want \"flag\"", got)
	}
}

// freeAddr is a 127.0.0.1 address nothing listens on (just released).
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func TestPurgeOnlyClusterDirs(t *testing.T) {
	dir := t.TempDir()
	precious := filepath.Join(dir, "precious")
	os.WriteFile(precious, []byte("x"), 0o644)
	r := kvctl(t, nil, "", "cluster", "down", "--purge", "--data-dir", dir)
	if r.code != 1 || !strings.Contains(r.stderr, "not purging") {
		t.Errorf("purge of a foreign dir: exit %d, stderr %q", r.code, r.stderr)
	}
	if _, err := os.Stat(precious); err != nil {
		t.Fatalf("purge removed a foreign file: %v", err)
	}
}

// TestClusterHealSaysWhatItReached: heal reports nodes it could not reach, and does not claim
// to have healed "the others" when it reached none.
func TestClusterHealSaysWhatItReached(t *testing.T) {
	node := func() string {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodDelete || r.URL.Path != "/v1/test/faults" {
				http.Error(w, "unexpected "+r.Method+" "+r.URL.Path, http.StatusBadRequest)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, "{}")
		}))
		t.Cleanup(s.Close)
		return strings.TrimPrefix(s.URL, "http://")
	}
	heal := func(addrs ...string) result {
		t.Helper()
		dir := filepath.Join(t.TempDir(), "data")
		c, _ := planCluster(len(addrs), defaultBasePort, dir)
		for i, a := range addrs {
			c.Nodes[i].HTTP = a
		}
		if err := saveClusterFile(c); err != nil {
			t.Fatal(err)
		}
		return kvctl(t, nil, "", "cluster", "heal", "--data-dir", dir)
	}
	if r := heal(node(), node()); r.code != 0 || r.stdout != "healed: no faults on 2 nodes\n" {
		t.Errorf("all reached: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if r := heal(node(), freeAddr(t)); r.code != 1 || !strings.Contains(r.stderr, "kvctl: healed the others; could not reach n2 (") {
		t.Errorf("one down: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := heal(freeAddr(t), freeAddr(t)); r.code != 1 || !strings.Contains(r.stderr, "kvctl: healed no node: could not reach n1 (") {
		t.Errorf("all down: exit %d, stderr %q", r.code, r.stderr)
	}
}

// TestClusterSlowAndSkewNeedAValue: without its flags slow or skew would set nothing and say it
// did; that is a usage error, made before any node is asked. Flags given as 0 undo the fault.
func TestClusterSlowAndSkewNeedAValue(t *testing.T) {
	var mu sync.Mutex
	faults := client.Faults{Delay: "1s", ClockOffset: "3s"}
	requests := 0
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		requests++
		if r.Method == http.MethodPut {
			faults = client.Faults{}
			json.NewDecoder(r.Body).Decode(&faults)
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(faults)
	}))
	t.Cleanup(s.Close)
	dir := filepath.Join(t.TempDir(), "data")
	c, _ := planCluster(1, defaultBasePort, dir)
	c.Nodes[0].HTTP = strings.TrimPrefix(s.URL, "http://")
	if err := saveClusterFile(c); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args           []string
		code           int
		stdout, stderr string
		want           client.Faults
	}{
		{args: []string{"slow", "n1"}, code: 2, stderr: "kvctl: kvctl cluster slow needs --delay D, --jitter D or --loss P (e.g. --delay 100ms)\n"},
		{args: []string{"skew", "n1"}, code: 2, stderr: "kvctl: kvctl cluster skew needs --offset D (e.g. --offset 2s, or -2s for behind; 0s puts the clock back)\n"},
		{args: []string{"slow", "n1", "--loss", "0.5"}, stdout: "n1: outgoing traffic delayed 0s (+ up to 0s), 50% lost\n",
			want: client.Faults{Loss: 0.5, ClockOffset: "3s"}},
		{args: []string{"slow", "n1", "--delay", "0s"}, stdout: "n1: outgoing traffic no longer delayed or lost\n",
			want: client.Faults{ClockOffset: "3s"}},
		{args: []string{"skew", "n1", "--offset", "0s"}, stdout: "n1: clock no longer shifted\n", want: client.Faults{}},
	} {
		mu.Lock()
		requests = 0
		before := faults
		mu.Unlock()
		r := kvctl(t, nil, "", append([]string{"cluster"}, append(c.args, "--data-dir", dir)...)...)
		mu.Lock()
		n, after := requests, faults
		mu.Unlock()
		if r.code != c.code || r.stdout != c.stdout || r.stderr != c.stderr {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want %d, %q, %q", c.args, r.code, r.stdout, r.stderr, c.code, c.stdout, c.stderr)
		}
		if c.code != 0 {
			if n != 0 || !reflect.DeepEqual(after, before) {
				t.Errorf("%q: %d requests, faults %+v; a usage error must touch no node", c.args, n, after)
			}
		} else if !reflect.DeepEqual(after, c.want) {
			t.Errorf("%q: faults %+v, want %+v", c.args, after, c.want)
		}
	}
}

// TestWaitMustBePositive: the commands that wait for nodes refuse --wait 0 (or less) before they
// start or kill anything, instead of acting and then giving up at once.
func TestWaitMustBePositive(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	c, _ := planCluster(1, defaultBasePort, dir)
	if err := saveClusterFile(c); err != nil {
		t.Fatal(err)
	}
	// A kvd that cannot be found: reaching for it would fail with exit 1 instead.
	for _, args := range [][]string{{"up"}, {"restart", "n1"}, {"rejoin", "n1"}} {
		for _, wait := range []string{"0s", "-1s"} {
			r := kvctl(t, nil, "", append([]string{"cluster"}, append(args, "--wait", wait, "--data-dir", dir, "--kvd", "/nonexistent/kvd")...)...)
			want := "kvctl: --wait must be positive, not " + wait + ": it bounds the wait for the nodes to be ready\n"
			if r.code != 2 || r.stderr != want || r.stdout != "" {
				t.Errorf("cluster %q --wait %s: exit %d, stdout %q, stderr %q; want 2, %q", args, wait, r.code, r.stdout, r.stderr, want)
			}
		}
	}
}

func TestClusterUpRefusesOtherNodeCount(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	c, _ := planCluster(3, defaultBasePort, dir)
	if err := saveClusterFile(c); err != nil {
		t.Fatal(err)
	}
	r := kvctl(t, nil, "", "cluster", "up", "--nodes", "5", "--data-dir", dir)
	if r.code != 1 || !strings.Contains(r.stderr, "holds a 3-node cluster; use --nodes 3") {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
}

// fakeKVDPath returns a kvd to start: this test binary posing as one (see TestMain).
func fakeKVDPath(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	kvd := filepath.Join(t.TempDir(), "kvd") // named kvd, so its command line says kvd
	if err := os.Symlink(exe, kvd); err != nil {
		t.Fatal(err)
	}
	t.Setenv(fakeKVDEnv, "1")
	return kvd
}

// useFreePorts points planCluster at free loopback ports for n nodes, whatever the base port, for
// the rest of the test, away from the 7001-7203 a developer's own local cluster uses.
func useFreePorts(t *testing.T, n int) {
	t.Helper()
	ports := make([][3]int, n+1)
	for i := 1; i <= n; i++ {
		for j := range ports[i] {
			addr, err := freeport.Loopback()
			if err != nil {
				t.Fatal(err)
			}
			_, p, _ := net.SplitHostPort(addr)
			ports[i][j], _ = strconv.Atoi(p)
		}
	}
	saved := localPorts
	localPorts = func(_, i int) (int, int, int) { return ports[i][0], ports[i][1], ports[i][2] }
	t.Cleanup(func() { localPorts = saved })
}

// fakeLocalCluster plans an n-node local cluster on free ports, in a fresh data dir, with the
// fake kvd to start its nodes; whatever the test leaves running is stopped at its end. Linux
// only: liveness checks read /proc.
func fakeLocalCluster(t *testing.T, n int) (kvd string, c clusterFile) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("liveness checks read /proc")
	}
	kvd = fakeKVDPath(t)
	useFreePorts(t, n)
	c, err := planCluster(n, defaultBasePort, filepath.Join(t.TempDir(), "data"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopNodes(context.Background(), c.Nodes, io.Discard) })
	return kvd, c
}

// TestLocalNodeLifecycle drives restart, status, stop, kill and down against real processes:
// the test binary posing as kvd (see TestMain) on free ports.
func TestLocalNodeLifecycle(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("liveness checks read /proc")
	}
	dir := filepath.Join(t.TempDir(), "data")
	kvd := fakeKVDPath(t)

	// A two-node cluster.json on free ports, as `cluster up` writes it.
	useFreePorts(t, 2)
	c, err := planCluster(2, defaultBasePort, dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := saveClusterFile(c); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Whatever happened above, leave no process behind.
		stopNodes(context.Background(), c.Nodes, &bytes.Buffer{})
	})
	cluster := func(args ...string) result {
		t.Helper()
		return kvctl(t, nil, "", append([]string{"cluster"}, append(args, "--data-dir", dir)...)...)
	}
	must := func(args ...string) result {
		t.Helper()
		r := cluster(args...)
		if r.code != 0 {
			t.Fatalf("cluster %q: exit %d, stderr %q", args, r.code, r.stderr)
		}
		return r
	}
	pidOf := func(n clusterNode) int {
		t.Helper()
		pid, err := runningPID(n)
		if err != nil {
			t.Fatal(err)
		}
		return pid
	}

	r := must("restart", "n1", "--kvd", kvd, "--wait", "20s")
	if !strings.Contains(r.stdout, "n1: restarted (pid ") || !strings.Contains(r.stdout, "leader n1") {
		t.Errorf("restart output %q", r.stdout)
	}
	first := pidOf(c.Nodes[0])
	if first == 0 {
		t.Fatal("n1 not running after restart")
	}
	log, _ := os.ReadFile(c.Nodes[0].logPath())
	if !strings.Contains(string(log), "fake kvd n1 on "+c.Nodes[0].HTTP) {
		t.Errorf("n1's output did not reach its log:\n%s", log)
	}

	must("restart", "n1", "--kvd", kvd, "--wait", "20s")
	if second := pidOf(c.Nodes[0]); second == 0 || second == first || isNodeProcess(first, c.Nodes[0]) {
		t.Errorf("restart: pid %d -> %d; the old process must be gone and a new one running", first, second)
	}

	r = must("status", "--json")
	var reports []localNodeReport
	if err := json.Unmarshal([]byte(r.stdout), &reports); err != nil {
		t.Fatalf("cluster status --json: %v\n%s", err, r.stdout)
	}
	if len(reports) != 2 || !reports[0].Running || reports[0].Status == nil || reports[0].Status.Leader != "n1" || reports[1].Running {
		t.Errorf("cluster status = %+v", reports)
	}
	// The help says what --json prints here: an array, not the one object of other commands.
	if h := kvctl(t, nil, "", "help", "cluster", "status"); !strings.Contains(h.stdout, "one JSON array") {
		t.Errorf("kvctl help cluster status does not say --json prints an array:\n%s", h.stdout)
	}

	if r = must("kill", "n2"); !strings.Contains(r.stdout, "n2: not running") {
		t.Errorf("kill of a stopped node: %q", r.stdout)
	}
	running := pidOf(c.Nodes[0])
	if r = must("stop", "n1"); !strings.Contains(r.stdout, fmt.Sprintf("n1: stopped (pid %d)", running)) {
		t.Errorf("stop output %q", r.stdout)
	}
	if pidOf(c.Nodes[0]) != 0 {
		t.Error("n1 still running after stop")
	}
	if _, err := os.Stat(c.Nodes[0].pidPath()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("pid file left after stop: %v", err)
	}

	must("restart", "n1", "--kvd", kvd)
	must("restart", "n2", "--kvd", kvd)
	running = pidOf(c.Nodes[1])
	if r = must("kill", "n2"); !strings.Contains(r.stdout, fmt.Sprintf("n2: killed (pid %d)", running)) {
		t.Errorf("kill output %q", r.stdout)
	}
	// Rejoining a removed node: refused while it runs; else its data (not its log) is wiped and
	// it starts with --join through a running node instead of --bootstrap.
	if r := cluster("rejoin", "n1", "--kvd", kvd); r.code != 1 || !strings.Contains(r.stderr, "is running") ||
		!strings.Contains(r.stderr, "wait until kvctl cluster status shows it stopped") {
		t.Errorf("rejoin of a running node: exit %d, stderr %q", r.code, r.stderr)
	}
	state := filepath.Join(c.Nodes[1].Dir, "state.db")
	if err := os.WriteFile(state, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Stopped, not removed: its data may hold writes no other node has, and stays.
	if r := cluster("rejoin", "n2", "--kvd", kvd); r.code != 1 || !strings.Contains(r.stderr, "n2 is still a member") ||
		!strings.Contains(r.stderr, "kvctl cluster restart n2") {
		t.Errorf("rejoin of a member that was not removed: exit %d, stderr %q", r.code, r.stderr)
	}
	if _, err := os.Stat(state); err != nil {
		t.Errorf("a refused rejoin touched the data: %v", err)
	}
	if err := os.WriteFile(filepath.Join(c.Nodes[0].Dir, fakeRemovedFile), []byte("n2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r = must("rejoin", "n2", "--kvd", kvd, "--wait", "20s"); !strings.Contains(r.stdout, "n2: rejoined (pid ") {
		t.Errorf("rejoin output %q", r.stdout)
	}
	if _, err := os.Stat(state); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("rejoin left the old data: %v", err)
	}
	log, _ = os.ReadFile(c.Nodes[1].logPath())
	header := string(log)[strings.LastIndex(string(log), "=== kvctl"):]
	if header = header[:strings.Index(header, "\n")]; !strings.Contains(header, "--join "+c.Nodes[0].HTTP) || strings.Contains(header, "--bootstrap") {
		t.Errorf("rejoin started n2 with %q, want --join %s and no --bootstrap", header, c.Nodes[0].HTTP)
	}
	must("kill", "n2")

	if r = must("down", "--purge"); !strings.Contains(r.stdout, "n1: stopped") || !strings.Contains(r.stdout, "cluster down: stopped 1 node\n") {
		t.Errorf("down output %q", r.stdout)
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("--purge left %s: %v", dir, err)
	}
}

// cluster status marks a stopped node removed when a running one says so (410), and only then.
func TestRemovedByCluster(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/cluster/members/n3" {
			w.WriteHeader(http.StatusGone)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	live := localNodeReport{ID: "n1", HTTP: srv.Listener.Addr().String(), Running: true, Status: &client.StatusResponse{}}
	reports := []localNodeReport{live, {ID: "n2"}, {ID: "n3"}}
	cl, err := newProbeClient([]clusterNode{{ID: "n1", HTTP: live.HTTP}})
	if err != nil {
		t.Fatal(err)
	}
	if !removedByCluster(context.Background(), cl, reports, "n3") {
		t.Error("n3 (410) not reported removed")
	}
	if removedByCluster(context.Background(), cl, reports, "n2") {
		t.Error("n2 (200) reported removed")
	}
	if removedByCluster(context.Background(), cl, []localNodeReport{{ID: "n1"}, {ID: "n3"}}, "n3") {
		t.Error("reported removed with no running node to ask")
	}
}

// TestPurgeRemovesOnlyWhatUpMade: --purge on a --data-dir that held other files before
// cluster up (the project directory, say) removes the node directories and cluster.json, and
// nothing else; a cluster.json whose node ids would reach outside DIR removes nothing.
func TestPurgeRemovesOnlyWhatUpMade(t *testing.T) {
	dir := t.TempDir()
	precious := filepath.Join(dir, "precious")
	if err := os.WriteFile(precious, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "src"), 0o755); err != nil {
		t.Fatal(err)
	}
	c, _ := planCluster(2, defaultBasePort, dir)
	if err := saveClusterFile(c); err != nil {
		t.Fatal(err)
	}
	for _, n := range c.Nodes {
		if err := os.MkdirAll(n.Dir, 0o755); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(n.logPath(), []byte("log\n"), 0o644)
	}
	r := kvctl(t, nil, "", "cluster", "down", "--purge", "--data-dir", dir)
	if r.code != 0 {
		t.Fatalf("down --purge: exit %d, stderr %q", r.code, r.stderr)
	}
	for _, kept := range []string{precious, filepath.Join(dir, "src")} {
		if _, err := os.Stat(kept); err != nil {
			t.Errorf("--purge removed %s, which cluster up did not create: %v", kept, err)
		}
	}
	for _, gone := range []string{c.Nodes[0].Dir, c.Nodes[1].Dir, filepath.Join(dir, clusterFileName)} {
		if _, err := os.Stat(gone); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("--purge left %s: %v", gone, err)
		}
	}
	if !strings.Contains(r.stdout, "kept "+dir) {
		t.Errorf("down --purge does not say it kept %s: %q", dir, r.stdout)
	}

	// A hand-edited cluster.json naming a node "..": nothing is removed.
	data := filepath.Join(dir, "data")
	c, _ = planCluster(1, defaultBasePort, data)
	c.Nodes[0].ID = ".."
	if err := saveClusterFile(c); err != nil {
		t.Fatal(err)
	}
	r = kvctl(t, nil, "", "cluster", "down", "--purge", "--data-dir", data)
	if r.code != 1 || !strings.Contains(r.stderr, "not purging") {
		t.Errorf("purge of a cluster.json naming node \"..\": exit %d, stderr %q", r.code, r.stderr)
	}
	if _, err := os.Stat(precious); err != nil {
		t.Fatalf("purge removed a file outside its data dir: %v", err)
	}
}

// TestClusterUpRefusesTakenPort: when another process holds one of a node's ports, cluster up
// says which, and starts nothing. Above all it must not take the answer of another cluster's n1
// on that port for its own node's (it used to report "cluster up" while its node had died).
func TestClusterUpRefusesTakenPort(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("liveness checks read /proc")
	}
	kvd := fakeKVDPath(t)
	useFreePorts(t, 1)
	for _, which := range []string{"HTTP", "Raft", "gossip"} {
		t.Run(which, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			c, _ := planCluster(1, defaultBasePort, dir)
			n := c.Nodes[0]
			t.Cleanup(func() { stopNodes(context.Background(), c.Nodes, io.Discard) })
			addr := map[string]string{"HTTP": n.HTTP, "Raft": n.Raft, "gossip": n.Gossip}[which]
			if which == "gossip" {
				// memberlist binds UDP as well as TCP on its port.
				pc, err := net.ListenPacket("udp", addr)
				if err != nil {
					t.Fatal(err)
				}
				defer pc.Close()
			} else {
				l, err := net.Listen("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				// Another cluster's healthy n1.
				srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					json.NewEncoder(w).Encode(client.StatusResponse{Node: "n1", Leader: "n1",
						Nodes: []client.NodeStatus{{ID: "n1", HTTP: n.HTTP, Role: "leader", Health: "ok"}}})
				})}
				go srv.Serve(l)
				defer srv.Close()
			}
			r := kvctl(t, nil, "", "cluster", "up", "--nodes", "1", "--data-dir", dir, "--kvd", kvd, "--wait", "20s")
			if r.code != 1 || !strings.Contains(r.stderr, "n1's "+which+" port "+addr+" is in use") {
				t.Errorf("cluster up with %s taken: exit %d, stdout %q, stderr %q", addr, r.code, r.stdout, r.stderr)
			}
			if pid, _ := readPID(n); pid != 0 {
				t.Errorf("cluster up started n1 (pid %d) on a taken port", pid)
			}
			if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("a cluster up that started nothing left its data dir %s (%v)", dir, err)
			}
			// restart checks as well.
			if err := saveClusterFile(c); err != nil {
				t.Fatal(err)
			}
			r = kvctl(t, nil, "", "cluster", "restart", "n1", "--data-dir", dir, "--kvd", kvd, "--wait", "20s")
			if r.code != 1 || !strings.Contains(r.stderr, "n1's "+which+" port "+addr+" is in use") {
				t.Errorf("cluster restart with %s taken: exit %d, stdout %q, stderr %q", addr, r.code, r.stdout, r.stderr)
			}
			if pid, _ := readPID(n); pid != 0 {
				t.Errorf("cluster restart started n1 (pid %d) on a taken port", pid)
			}
		})
	}
}

// TestClusterUpNodesRange: --nodes outside 1-99 is a usage error before anything else (it used
// to start the default three for --nodes 0, and to look for kvd first for --nodes 100).
func TestClusterUpNodesRange(t *testing.T) {
	for _, fresh := range []bool{true, false} {
		dir := filepath.Join(t.TempDir(), "data")
		if !fresh {
			c, _ := planCluster(3, defaultBasePort, dir)
			if err := saveClusterFile(c); err != nil {
				t.Fatal(err)
			}
		}
		for _, n := range []string{"0", "-1", "100", "100000"} {
			r := kvctl(t, nil, "", "cluster", "up", "--nodes", n, "--data-dir", dir, "--kvd", "/nonexistent/kvd")
			want := "kvctl: --nodes must be between 1 and 99, not " + n + "\n"
			if r.code != 2 || r.stderr != want {
				t.Errorf("cluster up --nodes %s (existing cluster.json: %v): exit %d, stderr %q; want 2, %q", n, !fresh, r.code, r.stderr, want)
			}
		}
	}
}

// TestClusterUpTwiceAtOnce: two cluster up on one --data-dir at the same time (make cluster
// in two terminals) leave one kvd per node, the one its pid file names, so that cluster down
// stops everything; and a later up finds the nodes running.
func TestClusterUpTwiceAtOnce(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("liveness checks read /proc")
	}
	kvd := fakeKVDPath(t)
	useFreePorts(t, 1)
	for round := range 5 {
		dir := filepath.Join(t.TempDir(), "data")
		c, _ := planCluster(1, defaultBasePort, dir)
		var wg sync.WaitGroup
		results := make([]result, 2)
		for i := range results {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i] = kvctl(t, nil, "", "cluster", "up", "--nodes", "1", "--data-dir", dir, "--kvd", kvd, "--wait", "20s")
			}()
		}
		wg.Wait()
		var fakes []int
		entries, _ := os.ReadDir("/proc")
		for _, e := range entries {
			if pid, err := strconv.Atoi(e.Name()); err == nil && isNodeProcess(pid, c.Nodes[0]) {
				if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); strings.Contains(string(b), dir) {
					fakes = append(fakes, pid)
				}
			}
		}
		pid, _ := runningPID(c.Nodes[0])
		r := kvctl(t, nil, "", "cluster", "down", "--data-dir", dir)
		for _, p := range fakes {
			signalProcess(p, syscall.SIGKILL)
		}
		if len(fakes) != 1 || pid != fakes[0] {
			t.Fatalf("round %d: n1 runs as %v, its pid file says %d (up: %+v; down: %q)", round, fakes, pid, results, r.stdout)
		}
		for i, res := range results {
			if res.code != 0 {
				t.Errorf("round %d: up %d: exit %d, stderr %q", round, i, res.code, res.stderr)
			}
		}
	}

	// A command that has to wait says so, and Ctrl-C (here a deadline) still ends it.
	dir := t.TempDir()
	unlock, err := lockCluster(context.Background(), &invocation{opts: &options{dataDir: dir}, stderr: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	var stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := lockCluster(ctx, &invocation{opts: &options{dataDir: dir}, stderr: &stderr}); err == nil ||
		stderr.String() != "waiting for another kvctl cluster command on "+dir+" to finish\n" {
		t.Errorf("second lock: error %v, stderr %q", err, stderr.String())
	}
}

// TestCopiedDataDirIsNotTheCluster: a copy of a running cluster's data directory (cp -r data
// data.bak) holds pid files naming the live nodes; commands on the copy must not take those
// nodes for its own: cluster down --purge on the backup stopped the live cluster.
func TestCopiedDataDirIsNotTheCluster(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("liveness checks read /proc")
	}
	kvd := fakeKVDPath(t)
	useFreePorts(t, 1)
	live := filepath.Join(t.TempDir(), "data")
	r := kvctl(t, nil, "", "cluster", "up", "--nodes", "1", "--data-dir", live, "--kvd", kvd, "--wait", "20s")
	if r.code != 0 {
		t.Fatalf("cluster up: exit %d, stderr %q", r.code, r.stderr)
	}
	c, _ := loadClusterFile(live)
	t.Cleanup(func() { stopNodes(context.Background(), c.Nodes, io.Discard) })
	pid, _ := runningPID(c.Nodes[0])
	if pid == 0 {
		t.Fatal("n1 not running after cluster up")
	}

	backup := filepath.Join(t.TempDir(), "data.bak")
	if out, err := exec.Command("cp", "-r", live, backup).CombinedOutput(); err != nil {
		t.Fatalf("cp -r: %v\n%s", err, out)
	}
	// The copy's nodes live in the copy (restart starts them there).
	bc, err := loadClusterFile(backup)
	if want := filepath.Join(backup, "n1"); err != nil || bc.Nodes[0].Dir != want || flagValue(bc.Nodes[0].Args, "data-dir") != want {
		t.Errorf("the copy's cluster.json: %+v, %v; want n1 in %s", bc, err, want)
	}
	if r := kvctl(t, nil, "", "cluster", "status", "--json", "--data-dir", backup); strings.Contains(r.stdout, `"running":true`) {
		t.Errorf("status of the copy shows the live node as its own: %s", r.stdout)
	}
	r = kvctl(t, nil, "", "cluster", "down", "--purge", "--data-dir", backup)
	if r.code != 0 || !strings.Contains(r.stdout, "no node was running") {
		t.Errorf("down --purge of the copy: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if !isNodeProcess(pid, c.Nodes[0]) {
		t.Errorf("down --purge of a copy of the data dir stopped the live n1 (pid %d)", pid)
	}
}

// TestMakeClusterKeepsTheClusterSize: make cluster passes --nodes only when NODES is given, so
// that after kvctl cluster up --nodes 5 it brings the same five back instead of failing with
// "holds a 5-node cluster; use --nodes 5" (kvctl cluster up alone starts 3 on a fresh dir).
func TestMakeClusterKeepsTheClusterSize(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("no make")
	}
	for _, tt := range []struct{ args, want string }{
		{"", "bin/kvctl cluster up"},
		{"NODES=5", "bin/kvctl cluster up --nodes 5"},
		{"BASE_PORT=17000", "bin/kvctl cluster up --base-port 17000"},
	} {
		args := []string{"-n", "--no-print-directory", "-C", filepath.Join("..", ".."), "cluster"}
		if tt.args != "" {
			args = append(args, tt.args)
		}
		out, err := exec.Command("make", args...).Output()
		if err != nil {
			t.Fatalf("make %q: %v", args, err)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if got := strings.TrimSpace(lines[len(lines)-1]); got != tt.want {
			t.Errorf("make cluster %s runs %q, want %q", tt.args, got, tt.want)
		}
	}
}
