package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dialkv/dialkv/client"
	"github.com/dialkv/dialkv/internal/syncbuf"
)

// spreadFake is a cluster of fake nodes in which an eventual write taken by one node becomes
// visible on node j delays[j] after it was taken (on its origin at once; never when delays[j]
// is negative). Visibility is decided from the clock at each read, so no timer or goroutine
// moves data and the test's expectations are exact lower bounds.
type spreadFake struct {
	nodes  []*httptest.Server
	delays []time.Duration

	mu      sync.Mutex
	clock   int
	writes  map[string]spreadFakeWrite
	puts    []int // puts taken, by node
	failPut bool  // answer every write with no_leader
	// noVersion makes write answers carry no version, as no dialkv node answers.
	noVersion bool
}

type spreadFakeWrite struct {
	origin  int
	version string
	at      time.Time
}

func newSpreadFake(t *testing.T, delays ...time.Duration) *spreadFake {
	t.Helper()
	f := &spreadFake{delays: delays, writes: map[string]spreadFakeWrite{}, puts: make([]int, len(delays))}
	for i := range delays {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { f.serve(i, w, r) }))
		t.Cleanup(srv.Close)
		f.nodes = append(f.nodes, srv)
	}
	return f
}

func (f *spreadFake) endpoints() string {
	var eps []string
	for _, n := range f.nodes {
		eps = append(eps, n.Listener.Addr().String())
	}
	return strings.Join(eps, ",")
}

func (f *spreadFake) serve(i int, w http.ResponseWriter, r *http.Request) {
	key := strings.TrimPrefix(r.URL.Path, "/v1/kv/")
	h := w.Header()
	h.Set(client.HeaderNode, fmt.Sprintf("n%d", i+1))
	h.Set(client.HeaderConsistency, r.URL.Query().Get("consistency"))
	f.mu.Lock()
	defer f.mu.Unlock()
	fail := func(status int, code, msg string) {
		h.Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(client.ErrorBody{Error: msg, Code: code})
	}
	switch r.Method {
	case http.MethodPut:
		if r.URL.Query().Get("consistency") != client.ConsistencyEventual {
			fail(400, client.CodeBadRequest, "the spread workload must write eventually")
			return
		}
		if f.failPut {
			fail(503, client.CodeNoLeader, "no leader within 5s")
			return
		}
		f.clock++
		wr := spreadFakeWrite{origin: i, version: fmt.Sprintf("%d.0@n%d", f.clock, i+1), at: time.Now()}
		f.writes[key] = wr
		f.puts[i]++
		if !f.noVersion {
			h.Set(client.HeaderVersion, wr.version)
		}
		h.Set(client.HeaderState, client.StateTentative)
	case http.MethodGet:
		wr, ok := f.writes[key]
		if !ok || wr.origin != i && (f.delays[i] < 0 || time.Since(wr.at) < f.delays[i]) {
			fail(404, client.CodeNotFound, fmt.Sprintf("key %q not found", key))
			return
		}
		h.Set(client.HeaderVersion, wr.version)
		h.Set(client.HeaderState, client.StateTentative)
		h.Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(client.ValueResponse{KV: client.KV{Key: key, Value: "v", Version: wr.version, State: client.StateTentative}})
	}
}

func (f *spreadFake) putsByNode() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]int(nil), f.puts...)
}

func spreadJSON(t *testing.T, r result) spreadReport {
	t.Helper()
	var rep spreadReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("stdout is not one JSON report (exit %d, stderr %q): %v\n%s", r.code, r.stderr, err, r.stdout)
	}
	return rep
}

func TestBenchSpreadArgumentValidation(t *testing.T) {
	two := "127.0.0.1:1,127.0.0.1:2"
	tests := []struct {
		name   string
		args   []string
		stderr string
	}{
		{"one node", []string{"bench", "spread", "--endpoints", "127.0.0.1:1"}, "must name every node of the cluster, 2 to 64 of them, not 1"},
		{"a node twice", []string{"bench", "spread", "--endpoints", "127.0.0.1:1,127.0.0.1:1"}, "endpoint 127.0.0.1:1 is listed twice"},
		{"no rounds", []string{"bench", "spread", "--endpoints", two, "--rounds", "0"}, "--rounds must be between 1 and 100000"},
		{"busy polling", []string{"bench", "spread", "--endpoints", two, "--poll-interval", "10us"}, "--poll-interval must be between 100µs and 1s"},
		{"no round timeout", []string{"bench", "spread", "--endpoints", two, "--round-timeout", "0s"}, "--round-timeout must be positive and at most 1m0s"},
		{"long pause", []string{"bench", "spread", "--endpoints", two, "--max-pause", "1m"}, "--max-pause must be between 0 and 10s"},
		{"clients", []string{"bench", "spread", "--endpoints", two, "--clients", "4"}, "--clients does not apply to the spread workload"},
		{"ops", []string{"bench", "spread", "--endpoints", two, "--ops", "4"}, "--ops does not apply to the spread workload"},
		{"level", []string{"bench", "spread", "--endpoints", two, "--write-consistency", "strong"}, "--write-consistency does not apply"},
		{"staleness before bench", []string{"--max-staleness", "1s", "bench", "spread", "--endpoints", two}, "--max-staleness does not apply"},
		{"spread flag on put", []string{"bench", "put", "--rounds", "5"}, "--rounds applies only to the spread workload"},
		{"poll interval on get", []string{"bench", "get", "--poll-interval", "5ms"}, "--poll-interval applies only to the spread workload"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := kvctl(t, nil, "", tc.args...)
			if r.code != 2 || !strings.Contains(r.stderr, tc.stderr) {
				t.Errorf("kvctl %q: exit %d, stderr %q; want exit 2 and %q", tc.args, r.code, r.stderr, tc.stderr)
			}
		})
	}
	b, _, err := parseBench(&options{endpoints: two, timeout: time.Second}, []string{"spread", "--rounds", "7"}, nil)
	if err != nil || b.spread.rounds != 7 || b.duration != benchMaxDuration {
		t.Errorf("--rounds 7 alone: %+v, %v; want 7 rounds bounded by %v", b, err, benchMaxDuration)
	}
	r := kvctl(t, nil, "", "bench", "-h")
	for _, want := range []string{"spread  rounds of one eventual write", "--poll-interval D", "--round-timeout D", "poll window"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("kvctl bench -h lacks %q:\n%s", want, r.stdout)
		}
	}
}

// Three nodes that see a write 0, 40 and 120 ms after it is taken (the origin at once): each
// node's reported time is never below its delay, the time to all nodes is the slowest
// replica's, the origin rotates, and the poll window stays far below the delays at a 1 ms poll.
func TestBenchSpreadMeasuresEachNode(t *testing.T) {
	delays := []time.Duration{0, 40 * time.Millisecond, 120 * time.Millisecond}
	f := newSpreadFake(t, delays...)
	r := kvctl(t, nil, "", "bench", "spread", "--endpoints", f.endpoints(), "--json",
		"--rounds", "6", "--warmup", "0s", "--max-pause", "0s", "--poll-interval", "1ms", "--value-size", "16")
	if r.code != 0 {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	rep := spreadJSON(t, r)
	if rep.Rounds != 6 || rep.Complete != 6 || rep.Incomplete != 0 || rep.FailedWrites != 0 || len(rep.Nodes) != 3 {
		t.Fatalf("rounds %+v", rep)
	}
	if got := f.putsByNode(); got[0] != 2 || got[1] != 2 || got[2] != 2 {
		t.Errorf("writes by node %v, want the origin to rotate: 2 each", got)
	}
	const slack = time.Second // an upper bound generous enough for a loaded machine
	for i, n := range rep.Nodes {
		if n.Node != fmt.Sprintf("n%d", i+1) || n.Origin != 2 || n.Replica.Count != 4 || n.Missed != 0 {
			t.Errorf("node %d: %+v", i, n)
		}
		if lo := millis(delays[i]); n.Replica.P50ms < lo || n.Replica.Maxms > lo+millis(slack) {
			t.Errorf("node %d (delay %v): replica times %+v, want between %v and %v ms", i, delays[i], n.Replica, lo, lo+millis(slack))
		}
	}
	// Rounds taken by n1 or n2 wait for n3 (120 ms), those taken by n3 for n2 (40 ms).
	if rep.AllNodes.Count != 6 || rep.AllNodes.P50ms < 120 || rep.AllNodes.Maxms > 120+millis(slack) {
		t.Errorf("all nodes %+v, want 6 rounds with p50 >= 120 ms", rep.AllNodes)
	}
	if rep.PollWindow.Count != 18 || rep.PollWindow.P50ms >= 40 {
		t.Errorf("poll window %+v, want 18 arrivals resolved far below the 40 ms delay", rep.PollWindow)
	}
	if rep.Write.Count != 6 || rep.Polls < 18 || rep.PollsPerSec <= 0 || rep.CommittedPct != 0 {
		t.Errorf("write %+v, polls %d (%v/s), committed %v%%", rep.Write, rep.Polls, rep.PollsPerSec, rep.CommittedPct)
	}
}

// A node that never sees other nodes' writes misses every round it did not take; a cluster
// that refuses writes fails every round. Both end in exit status 1 with the report printed.
func TestBenchSpreadReportsMissesAndFailures(t *testing.T) {
	f := newSpreadFake(t, 0, 0, -1)
	r := kvctl(t, nil, "", "bench", "spread", "--endpoints", f.endpoints(), "--json",
		"--rounds", "3", "--warmup", "0s", "--max-pause", "0s", "--round-timeout", "150ms")
	rep := spreadJSON(t, r)
	if r.code != 1 || !strings.Contains(r.stderr, "of 3 measured rounds, 0 writes failed and 2 rounds were incomplete") {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
	if rep.Complete != 1 || rep.Incomplete != 2 || rep.Nodes[2].Missed != 2 || rep.Nodes[0].Missed != 0 || rep.AllNodes.Count != 1 {
		t.Errorf("report %+v", rep)
	}

	f = newSpreadFake(t, 0, 0)
	f.failPut = true
	r = kvctl(t, nil, "", "bench", "spread", "--endpoints", f.endpoints(), "--json", "--rounds", "2", "--warmup", "0s", "--max-pause", "0s")
	rep = spreadJSON(t, r)
	if r.code != 1 || rep.FailedWrites != 2 || rep.WriteErrors["no_leader"] != 2 || rep.AllNodes.Count != 0 ||
		!strings.Contains(rep.FirstWriteErrors["no_leader"], "no leader within 5s") {
		t.Errorf("exit %d, report %+v", r.code, rep)
	}

	// A write answered without a version cannot be told from an older one: the round fails, and
	// the error is the answer's, not the transport's.
	f = newSpreadFake(t, 0, 0)
	f.noVersion = true
	r = kvctl(t, nil, "", "bench", "spread", "--endpoints", f.endpoints(), "--json", "--rounds", "2", "--warmup", "0s", "--max-pause", "0s")
	rep = spreadJSON(t, r)
	if r.code != 1 || rep.FailedWrites != 2 || rep.WriteErrors["bad_answer"] != 2 ||
		!strings.Contains(rep.FirstWriteErrors["bad_answer"], "no usable version") {
		t.Errorf("exit %d, write errors %v %v", r.code, rep.WriteErrors, rep.FirstWriteErrors)
	}
}

// An interrupted run still prints the rounds it measured, and says it was interrupted. The
// interrupt comes once the first progress line is out.
func TestBenchSpreadInterrupt(t *testing.T) {
	f := newSpreadFake(t, 0, 10*time.Millisecond)
	var stdout bytes.Buffer
	var stderr syncbuf.Buffer
	ctx := interruptWhen(t, &stderr, func(s string) bool { return strings.Contains(s, "bench:    1s measure") })
	err := run(ctx, []string{"bench", "spread", "--endpoints", f.endpoints(), "--rounds", "100000", "--duration", "1m", "--warmup", "0s", "--max-pause", "5ms"},
		strings.NewReader(""), &stdout, &stderr, func(string) string { return "" })
	if err == nil || !strings.Contains(err.Error(), "interrupted") {
		t.Fatalf("interrupted run returned %v", err)
	}
	if !strings.Contains(stderr.String(), "bench:    1s measure") || !strings.Contains(stdout.String(), "(interrupted)") ||
		!strings.Contains(stdout.String(), "all nodes") {
		t.Errorf("stdout %q\nstderr %q", stdout.String(), stderr.String())
	}
}

func TestSpreadReportFormatting(t *testing.T) {
	opts := &benchOptions{workload: workloadSpread, endpoints: []string{"127.0.0.1:7001", "127.0.0.1:7002"}, valueSize: 128,
		warmup: time.Second, spread: spreadOptions{rounds: 4, pollInterval: time.Millisecond, roundTimeout: 5 * time.Second}}
	s := &spreadRun{opts: opts, nodes: make([]spreadNodeAcc, 2)}
	ms := func(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }
	s.record(0, []arrival{{found: true, at: ms(2), window: ms(1), node: "n1"}, {found: true, at: ms(10), window: ms(1.5), node: "n2", state: client.StateCommitted}}, ms(2), nil, true)
	s.record(1, []arrival{{found: true, at: ms(20), window: ms(1), node: "n1"}, {found: true, at: ms(3), window: ms(1), node: "n2"}}, ms(3), nil, true)
	s.record(0, []arrival{{found: true, at: ms(2), window: ms(1), node: "n1"}, {node: "n2"}}, ms(2), nil, true)
	s.record(1, nil, ms(9), &client.Error{Status: 503, Code: client.CodeNoLeader, Message: "no leader"}, true)
	s.record(0, nil, 0, nil, false)
	s.polls.Store(50)
	rep := s.report(2 * time.Second)
	rep.LoadgenCPUPct, rep.MachineBusyPct = 12, 80
	var text bytes.Buffer
	if err := writeSpreadReport(&text, rep); err != nil {
		t.Fatal(err)
	}
	// Percentiles are the top of their histogram bucket (at most 1.6 % above): 2 ms shows as 2.02ms.
	want := `workload spread: 2 nodes, 128-byte eventual writes to each node in turn; polls every 1.00ms per node; measured 2.0s after 1s warm-up
rounds: 4 measured, 2 complete, 1 incomplete (a node lacked the write after 5s), 1 failed writes
                   count     p50     p99     max    mean
  write at origin      3  2.02ms  3.00ms  3.00ms  2.33ms
        all nodes      2  10.1ms  20.0ms  20.0ms  15.0ms
      poll window      5  1.01ms  1.50ms  1.50ms  1.10ms
per node, in rounds another node took the write:
  node        endpoint  count     p50     p99     max  missed
    n1  127.0.0.1:7001      1  20.0ms  20.0ms  20.0ms       0
    n2  127.0.0.1:7002      1  10.0ms  10.0ms  10.0ms       1
arrivals first seen committed (by Raft, not gossip): 50%
polls: 50 (25/s)
errors: write no_leader: 1 (first: no_leader: no leader)
cpu: kvctl bench 12% of a core; machine 80% busy
`
	if text.String() != want {
		t.Errorf("text report:\n%s\nwant:\n%s", text.String(), want)
	}
	if rep.WarmupRounds != 1 || rep.Nodes[0].Origin != 2 || rep.Nodes[1].Origin != 2 {
		t.Errorf("warm-up rounds %d, origins %d and %d; want 1, 2, 2 (the failed write's round counts for n2)", rep.WarmupRounds, rep.Nodes[0].Origin, rep.Nodes[1].Origin)
	}
	var js bytes.Buffer
	if err := writeJSON(&js, rep); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"workload":"spread"`, `"all_nodes":{"count":2,`, `"committed_pct":50`, `"write_errors":{"no_leader":1}`, `"missed":1`} {
		if !strings.Contains(js.String(), key) {
			t.Errorf("JSON report lacks %s: %s", key, js.String())
		}
	}
	if strings.Count(strings.TrimSpace(js.String()), "\n") != 0 {
		t.Errorf("JSON report is not one line: %s", js.String())
	}
}
