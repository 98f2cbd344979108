package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dialkv/dialkv/client"
	"github.com/dialkv/dialkv/internal/syncbuf"
)

func TestBenchArgumentValidation(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string // substring
		stdout string // substring
	}{
		{"no workload", []string{"bench"}, 2, "usage: kvctl bench put|get|mixed", ""},
		{"unknown workload", []string{"bench", "--", "scan"}, 2, `unknown workload "scan"`, ""},
		{"two workloads", []string{"bench", "put", "get"}, 2, "usage: kvctl bench", ""},
		{"help after --", []string{"bench", "--", "-h"}, 0, "", "--read-consistency LEVEL"},
		{"help shows flags without --", []string{"bench", "-h"}, 0, "", "Usage: kvctl bench put|get|mixed|spread [FLAGS]\n"},
		{"usage error points at bench -h", []string{"bench"}, 2, "(kvctl bench -h lists the flags)", ""},
		{"zero clients", []string{"bench", "put", "--", "--clients", "0"}, 2, "--clients must be between 1 and 4096", ""},
		{"flags without --", []string{"bench", "put", "--clients", "0"}, 2, "--clients must be between 1 and 4096", ""},
		{"kvctl flags before bench", []string{"--timeout", "3s", "bench", "put", "--keys", "0"}, 2, "--keys must be between 1", ""},
		{"too many keys", []string{"bench", "put", "--", "--keys", "2000000"}, 2, "--keys must be between 1 and 1000000", ""},
		{"negative value size", []string{"bench", "put", "--", "--value-size", "-1"}, 2, "--value-size must be between 0", ""},
		{"value over the server limit", []string{"bench", "put", "--", "--value-size", "2000000"}, 2, "--value-size must be between 0 and 1048576", ""},
		{"zero duration", []string{"bench", "put", "--", "--duration", "0s"}, 2, "--duration must be positive", ""},
		{"unbounded duration", []string{"bench", "put", "--", "--duration", "2h"}, 2, "at most 1h0m0s", ""},
		{"negative ops", []string{"bench", "put", "--", "--ops", "-5"}, 2, "--ops must be between 0", ""},
		{"long warm-up", []string{"bench", "put", "--", "--warmup", "11m"}, 2, "--warmup must be between 0 and 10m0s", ""},
		{"bad duration syntax", []string{"bench", "put", "--", "--duration", "ten"}, 2, "want a duration", ""},
		{"read ratio on put", []string{"bench", "put", "--", "--read-ratio", "0.5"}, 2, "--read-ratio applies only to the mixed workload", ""},
		{"read ratio out of range", []string{"bench", "mixed", "--", "--read-ratio", "1.5"}, 2, "--read-ratio must be between 0 and 1", ""},
		{"write level on get", []string{"bench", "get", "--", "--write-consistency", "eventual"}, 2, "--write-consistency applies to put and mixed", ""},
		{"read level on put", []string{"bench", "put", "--", "--read-consistency", "eventual"}, 2, "--read-consistency applies to get and mixed", ""},
		{"populate on put", []string{"bench", "put", "--", "--populate=false"}, 2, "--populate applies to get and mixed", ""},
		{"bounded write", []string{"bench", "put", "--", "--write-consistency", "bounded"}, 2, `--write-consistency "bounded": want strong or eventual`, ""},
		{"unknown read level", []string{"bench", "get", "--", "--read-consistency", "linearizable"}, 2, `--read-consistency "linearizable"`, ""},
		{"staleness without bounded", []string{"bench", "get", "--", "--max-staleness", "1s"}, 2, "--max-staleness applies only to --read-consistency bounded", ""},
		{"shared staleness flag is checked too", []string{"bench", "--max-staleness", "1s", "get"}, 2, "--max-staleness applies only", ""},
		{"zero timeout", []string{"bench", "put", "--", "--timeout", "0s"}, 2, "--timeout must be positive", ""},
		{"empty endpoints", []string{"bench", "put", "--", "--endpoints", " , "}, 2, "--endpoints is empty", ""},
		{"bad endpoint", []string{"bench", "put", "--", "--endpoints", "ftp://x:1"}, 2, "scheme must be http or https", ""},
		{"flag of another command", []string{"bench", "put", "--nodes", "3"}, 2, "unknown flag --nodes (kvctl bench -h lists its flags)", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := kvctl(t, nil, "", tc.args...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.stderr) || !strings.Contains(r.stdout, tc.stdout) {
				t.Errorf("kvctl %q: exit %d, stdout %q, stderr %q; want exit %d, stderr with %q, stdout with %q",
					tc.args, r.code, r.stdout, r.stderr, tc.code, tc.stderr, tc.stdout)
			}
		})
	}
}

// Levels are read in any case, as kvctl's other commands and the server read them, and the
// report names them in their canonical form.
func TestBenchLevelsInAnyCase(t *testing.T) {
	b, _, err := parseBench(&options{endpoints: "127.0.0.1:1", timeout: time.Second}, []string{"mixed", "--write-consistency", "EVENTUAL", "--read-consistency", "Bounded", "--max-staleness", "2s"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if b.writeConsistency != client.ConsistencyEventual || b.readConsistency != client.ConsistencyBounded {
		t.Errorf("levels %q and %q, want eventual and bounded", b.writeConsistency, b.readConsistency)
	}
}

func TestBenchOpsAloneIsBoundedByAnHour(t *testing.T) {
	b, _, err := parseBench(&options{endpoints: "127.0.0.1:1", timeout: time.Second}, []string{"put", "--ops", "50"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if b.ops != 50 || b.duration != benchMaxDuration {
		t.Errorf("--ops 50 alone: ops %d, duration %v; want 50 and %v", b.ops, b.duration, benchMaxDuration)
	}
}

// exactQuantile is the nearest-rank q-quantile of sorted.
func exactQuantile(sorted []time.Duration, q float64) time.Duration {
	rank := int(math.Ceil(q * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

func TestHistogramQuantiles(t *testing.T) {
	repeat := func(d time.Duration, n int) []time.Duration {
		return slices.Repeat([]time.Duration{d}, n)
	}
	oneTo100 := make([]time.Duration, 100)
	for i := range oneTo100 {
		oneTo100[i] = time.Duration(i + 1) // nanoseconds: the exact region
	}
	tests := []struct {
		name   string
		values []time.Duration
		q      []float64
		want   []time.Duration
	}{
		{"empty", nil, []float64{0.5, 0.99}, []time.Duration{0, 0}},
		{"one value", []time.Duration{5 * time.Millisecond}, []float64{0.5, 0.999}, []time.Duration{5 * time.Millisecond, 5 * time.Millisecond}},
		{"small values are exact", oneTo100, []float64{0.01, 0.5, 0.99, 0.999, 1}, []time.Duration{1, 50, 99, 100, 100}},
		{"tail", append(repeat(time.Millisecond, 1000), repeat(100*time.Millisecond, 10)...),
			[]float64{0.5, 0.99, 0.999}, []time.Duration{time.Millisecond, time.Millisecond, 100 * time.Millisecond}},
		{"max is exact", []time.Duration{time.Millisecond, 3*time.Second + 7}, []float64{1}, []time.Duration{3*time.Second + 7}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var h histogram
			for _, v := range tc.values {
				h.record(v)
			}
			for i, q := range tc.q {
				got := h.quantile(q)
				// A bucket is at most 1/64 of its lower bound wide: allow that much above.
				if want := tc.want[i]; got < want || float64(got) > float64(want)*(1+1.0/histHalf) {
					t.Errorf("q%v = %v, want %v (within +1/%d)", q, got, want, histHalf)
				}
			}
		})
	}
}

// Against exact percentiles of random latencies spread over seven orders of magnitude, the
// histogram is never below and at most one bucket (1/64) above.
func TestHistogramAgainstExactPercentiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 20 {
		n := 1 + rng.IntN(5000)
		values := make([]time.Duration, n)
		var h histogram
		for i := range values {
			values[i] = time.Duration(math.Exp(rng.Float64()*math.Log(1e7)) * float64(time.Microsecond)) // 1µs .. 10s
			h.record(values[i])
		}
		slices.Sort(values)
		for _, q := range []float64{0.001, 0.25, 0.5, 0.9, 0.99, 0.999, 1} {
			want, got := exactQuantile(values, q), h.quantile(q)
			if got < want || float64(got) > float64(want)*(1+1.0/histHalf) {
				t.Fatalf("round %d (n=%d): q%v = %v, exact %v", round, n, q, got, want)
			}
		}
		if h.maximum() != values[n-1] || h.count() != uint64(n) {
			t.Fatalf("round %d: max %v count %d, want %v and %d", round, h.maximum(), h.count(), values[n-1], n)
		}
	}
}

func TestHistogramBuckets(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	check := func(v int64) {
		i := bucketOf(v)
		if i < 0 || i >= histBuckets {
			t.Fatalf("bucketOf(%d) = %d, outside [0, %d)", v, i, histBuckets)
		}
		if high := bucketHigh(i); high < v {
			t.Fatalf("bucket %d of %d ends at %d, below the value", i, v, high)
		}
		if i > 0 && bucketHigh(i-1) >= v {
			t.Fatalf("value %d also fits the previous bucket %d (ends at %d)", v, i-1, bucketHigh(i-1))
		}
	}
	for v := range int64(5000) {
		check(v)
	}
	for range 100000 {
		check(rng.Int64N(math.MaxInt64))
	}
	check(math.MaxInt64)
	if bucketOf(-5) != 0 {
		t.Errorf("a negative value goes to bucket %d, want 0", bucketOf(-5))
	}
}

func TestHistogramMergeEqualsRecordingAll(t *testing.T) {
	var a, b, all histogram
	for i := range 1000 {
		d := time.Duration(i*i) * time.Microsecond
		all.record(d)
		if i%3 == 0 {
			a.record(d)
		} else {
			b.record(d)
		}
	}
	a.merge(&b)
	if a != all {
		t.Fatal("merging two histograms differs from recording every value in one")
	}
	a.reset()
	if a.count() != 0 || a.quantile(0.5) != 0 || a.mean() != 0 {
		t.Error("reset left values behind")
	}
}

func TestBenchKey(t *testing.T) {
	for _, i := range []int{0, 7, 42, 9999, 1_000_000, 9_999_999_999} {
		if got, want := benchKey(i), fmt.Sprintf("bench/%010d", i); got != want {
			t.Errorf("benchKey(%d) = %q, want %q", i, got, want)
		}
	}
}

func TestErrorKind(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{&client.Error{Status: 503, Code: client.CodeNoLeader}, "no_leader"},
		{fmt.Errorf("wrapped: %w", &client.Error{Status: 504, Code: client.CodeOutcomeUnknown}), "outcome_unknown"},
		{&client.Error{Code: client.CodeOutcomeUnknown, Err: errors.New("EOF")}, "transport"}, // sent, no answer
		{&client.Error{Status: 502, Message: "Bad Gateway"}, "http_502"},
		{&net.OpError{Op: "dial", Err: errors.New("connection refused")}, "transport"},
		{fmt.Errorf("client: GET k from n1: %w: unexpected end of JSON input", client.ErrBadAnswer), "bad_answer"}, // an answer came
	}
	for _, tc := range tests {
		if got := errorKind(tc.err); got != tc.want {
			t.Errorf("errorKind(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

// A warm-up under a second is reported as it was, not rounded to 0s or 1s.
func TestBenchReportWarmupUnderASecond(t *testing.T) {
	opts := &benchOptions{workload: workloadPut, endpoints: []string{"127.0.0.1:7001"}, clients: 1, keys: 10, valueSize: 8,
		warmup: 500 * time.Millisecond, duration: 2 * time.Second, writeConsistency: client.ConsistencyStrong}
	var text bytes.Buffer
	if err := writeBenchReport(&text, newBenchRun(opts, nil, nil).report(2*time.Second)); err != nil {
		t.Fatal(err)
	}
	if first, _, _ := strings.Cut(text.String(), "\n"); !strings.HasSuffix(first, "measured 2.0s after 0.5s warm-up") {
		t.Errorf("first line %q, want it to end in %q", first, "measured 2.0s after 0.5s warm-up")
	}
}

// A mixed run's recordings, reported as text and as JSON.
func TestBenchReportFormatting(t *testing.T) {
	opts := &benchOptions{workload: workloadMixed, endpoints: []string{"127.0.0.1:7001"}, clients: 4, keys: 100, valueSize: 8,
		warmup: 2 * time.Second, duration: 10 * time.Second, readRatio: 0.75,
		writeConsistency: client.ConsistencyEventual, readConsistency: client.ConsistencyBounded}
	r := newBenchRun(opts, nil, nil)
	for i := range 300 { // gets: 1 ms .. 3 ms, on two shards
		s := &r.shards[i%2]
		s.total[opGet].record(time.Millisecond + time.Duration(i)*time.Millisecond/150)
		servedBy(s.servedBy[opGet], client.Meta{Node: "n1"})
	}
	for range 100 { // puts: 10 ms, forwarded
		r.shards[3].total[opPut].record(10 * time.Millisecond)
		servedBy(r.shards[3].servedBy[opPut], client.Meta{Node: "n2", Via: "n1"})
	}
	r.shards[1].errors[opPut] = 2
	r.errs.add(opPut, "no_leader", errors.New("no_leader: no leader within 5s"))
	r.errs.add(opPut, "no_leader", errors.New("no_leader: again"))
	r.shards[0].warmOps, r.shards[0].warmErrs = 40, 1

	rep := r.report(2 * time.Second)
	rep.LoadgenCPUPct, rep.MachineBusyPct = 37.4, 85
	var text bytes.Buffer
	if err := writeBenchReport(&text, rep); err != nil {
		t.Fatal(err)
	}
	want := `workload mixed: 4 clients, 100 keys, 8-byte values; measured 2.0s after 2s warm-up; 75% reads
   op     level  ops  ops/s     p50     p99   p99.9     max  errors
  put  eventual  100     50  10.0ms  10.0ms  10.0ms  10.0ms       2
  get   bounded  300    150  2.00ms  2.98ms  2.99ms  2.99ms       0
  all         -  400    200  2.36ms  10.0ms  10.0ms  10.0ms       2
errors: put eventual no_leader: 2 (first: no_leader: no leader within 5s)
served: put eventual by n1>n2 100%
served: get bounded by n1 100%
warm-up: 40 operations, 1 failed (not counted above)
cpu: kvctl bench 37% of a core; machine 85% busy
`
	if text.String() != want {
		t.Errorf("text report:\n%s\nwant:\n%s", text.String(), want)
	}

	var js bytes.Buffer
	if err := writeJSON(&js, rep); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(strings.TrimSpace(js.String()), "\n"); n != 0 {
		t.Errorf("JSON report is %d lines, want one object on one line", n+1)
	}
	var got benchReport
	if err := json.Unmarshal(js.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.Total.Ops != 400 || got.Total.OpsPerSec != 200 || got.Total.Errors != 2 || got.Total.ErrorsByKind["no_leader"] != 2 ||
		len(got.Results) != 2 || got.Results[0].Op != "put" || got.Results[0].Level != "eventual" || math.Abs(got.Results[1].P50ms-1.993) > 0.032 ||
		got.Results[0].ServedBy["n1>n2"] != 100 || got.WarmupOps != 40 || *got.ReadRatio != 0.75 || got.Secs != 2 {
		t.Errorf("JSON report %s", js.String())
	}
	for _, key := range []string{`"p50_ms":`, `"p99_ms":`, `"p999_ms":`, `"ops_per_s":`, `"errors_by_kind":{"no_leader":2}`, `"read_consistency":"bounded"`, `"loadgen_cpu_pct":37.4`, `"steal_pct":-1`} {
		if !strings.Contains(js.String(), key) {
			t.Errorf("JSON report lacks %s: %s", key, js.String())
		}
	}
}

// A short mixed run against the fake node: the keys are written first, exactly --ops operations
// are measured, and the report adds up.
func TestBenchRunAgainstFakeNode(t *testing.T) {
	f := newFakeCluster(t)
	r := kvctl(t, nil, "", "bench", "mixed", "--endpoints", f.addr(), "--json", "--",
		"--clients", "4", "--keys", "20", "--ops", "300", "--warmup", "0s", "--read-ratio", "0.5",
		"--value-size", "10")
	if r.code != 0 {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	var rep benchReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("stdout is not one JSON object: %v\n%s", err, r.stdout)
	}
	if rep.PopulatedKeys != 20 || rep.Total.Ops != 300 || rep.Total.Errors != 0 || len(rep.Results) != 2 {
		t.Fatalf("report %+v", rep)
	}
	if puts, gets := rep.Results[0].Ops, rep.Results[1].Ops; puts+gets != 300 || puts < 60 || gets < 60 {
		t.Errorf("puts %d + gets %d, want 300 split about evenly", puts, gets)
	}
	if rep.Total.P50ms <= 0 || rep.Total.P99ms < rep.Total.P50ms || rep.Total.Maxms < rep.Total.P999ms || rep.Total.OpsPerSec <= 0 {
		t.Errorf("latencies %+v", rep.Total)
	}
	if runtime.GOOS == "linux" && (rep.LoadgenCPUPct <= 0 || rep.MachineBusyPct <= 0) {
		t.Errorf("cpu use not measured: loadgen %v%%, machine %v%%", rep.LoadgenCPUPct, rep.MachineBusyPct)
	}
	if rep.Results[1].ServedBy["n1"] != rep.Results[1].Ops {
		t.Errorf("served by %v, want every get by n1", rep.Results[1].ServedBy)
	}
	f.mu.Lock()
	keys := len(f.values)
	f.mu.Unlock()
	if keys != 20 {
		t.Errorf("the fake holds %d keys, want the 20 of the key space", keys)
	}
	if !strings.Contains(r.stderr, "bench: writing 20 keys (strong) before the run") {
		t.Errorf("stderr %q lacks the population line", r.stderr)
	}
}

// Failures are counted by kind, the report still comes out, and the exit status says so.
func TestBenchCountsErrorsByKind(t *testing.T) {
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set(client.HeaderNode, "n9")
		w.WriteHeader(http.StatusServiceUnavailable)
		json.NewEncoder(w).Encode(client.ErrorBody{Error: "no leader within 5s", Code: client.CodeNoLeader})
	}))
	defer srv.Close()
	r := kvctl(t, nil, "", "bench", "put", "--endpoints", srv.Listener.Addr().String(), "--",
		"--clients", "2", "--ops", "10", "--warmup", "0s")
	if r.code != 1 || !strings.Contains(r.stderr, "kvctl: bench: 10 of 10 measured operations failed") {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	if !strings.Contains(r.stdout, "errors: put strong no_leader: 10 (first: no_leader: no leader within 5s (node n9))") {
		t.Errorf("report lacks the errors by kind:\n%s", r.stdout)
	}
	if calls.Load() != 10 {
		t.Errorf("%d requests for --ops 10", calls.Load())
	}

	// Nobody listening: transport errors.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	r = kvctl(t, nil, "", "bench", "get", "--endpoints", addr, "--json", "--", "--ops", "3", "--warmup", "0s", "--populate=false", "--clients", "1")
	var rep benchReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || r.code != 1 {
		t.Fatalf("exit %d, stdout %q: %v", r.code, r.stdout, err)
	}
	if rep.Total.ErrorsByKind["transport"] != 3 || !strings.Contains(rep.Total.FirstErrors["transport"], "connection refused") {
		t.Errorf("errors %v %v, want 3 transport (connection refused)", rep.Total.ErrorsByKind, rep.Total.FirstErrors)
	}

	// An answer that is not the JSON the API promises did come: not a transport error.
	garbled := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"key":`)
	}))
	defer garbled.Close()
	r = kvctl(t, nil, "", "bench", "get", "--endpoints", garbled.Listener.Addr().String(), "--json", "--ops", "3", "--warmup", "0s", "--populate=false", "--clients", "1")
	rep = benchReport{}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || r.code != 1 {
		t.Fatalf("exit %d, stdout %q: %v", r.code, r.stdout, err)
	}
	if rep.Total.ErrorsByKind["bad_answer"] != 3 || !strings.Contains(rep.Total.FirstErrors["bad_answer"], "bad answer: unexpected end of JSON input") {
		t.Errorf("errors %v %v, want 3 bad_answer", rep.Total.ErrorsByKind, rep.Total.FirstErrors)
	}
}

// An operation started inside --duration counts however late its answer comes, but waiting for
// that answer is not part of the measured window: one slow answer at the end must not lower the
// rate of everything measured before it. Here the second request is answered 1.5 s after it was
// sent, half a second after the 1 s window; the rate is 2 operations over 1 s, not over 1.5 s.
func TestBenchRateWindowEndsAtTheDuration(t *testing.T) {
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 2 {
			time.Sleep(1500 * time.Millisecond)
		}
		w.Header().Set(client.HeaderNode, "n1")
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	r := kvctl(t, nil, "", "bench", "put", "--endpoints", srv.Listener.Addr().String(), "--json",
		"--clients", "1", "--duration", "1s", "--warmup", "0s")
	if r.code != 0 {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	var rep benchReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("stdout is not one JSON object: %v\n%s", err, r.stdout)
	}
	if rep.Total.Ops != 2 || rep.Total.Maxms < 1500 {
		t.Fatalf("%d operations, max %v ms; want 2, the second 1.5 s late", rep.Total.Ops, rep.Total.Maxms)
	}
	if rep.Secs != 1 || rep.Total.OpsPerSec != 2 {
		t.Errorf("measured %v s at %v ops/s; want the 1 s window and the 2 operations started in it", rep.Secs, rep.Total.OpsPerSec)
	}
}

// A duration-bounded run prints a progress line a second; an interrupted one still reports.
// The interrupt comes once the first progress line is out.
func TestBenchProgressAndInterrupt(t *testing.T) {
	f := newFakeCluster(t)
	var stdout bytes.Buffer
	var stderr syncbuf.Buffer
	ctx := interruptWhen(t, &stderr, func(s string) bool { return strings.Contains(s, "ops/s  p50 ") })
	err := run(ctx, []string{"bench", "put", "--endpoints", f.addr(), "--", "--clients", "2", "--duration", "1m", "--warmup", "0s"},
		strings.NewReader(""), &stdout, &stderr, func(string) string { return "" })
	if err == nil || !strings.Contains(err.Error(), "interrupted") {
		t.Fatalf("interrupted run returned %v", err)
	}
	if !strings.Contains(stderr.String(), "bench:    1s measure") || !strings.Contains(stderr.String(), "ops/s  p50 ") {
		t.Errorf("no progress line on stderr: %q", stderr.String())
	}
	if !strings.Contains(stdout.String(), "(interrupted)") || !strings.Contains(stdout.String(), "put  strong") {
		t.Errorf("no report after the interrupt: %q", stdout.String())
	}
}

// The machine's CPU between two /proc/stat samples: busy counts steal (the hypervisor running
// other machines), and a run with more than a little steal says so, since its numbers compare
// with no other run.
func TestCPUUseReportsSteal(t *testing.T) {
	at := time.Now()
	from := cpuSample{at: at, self: time.Second, selfOK: true, busy: 1000, total: 4000, steal: 100}
	cases := []struct {
		name string
		to   cpuSample
		want cpuUse
		line string
	}{
		{"no steal", cpuSample{at: at.Add(time.Second), self: 1500 * time.Millisecond, selfOK: true, busy: 1100, total: 4200, steal: 100},
			cpuUse{50, 50, 0}, "cpu: kvctl bench 50% of a core; machine 50% busy\n"},
		{"a little steal", cpuSample{at: at.Add(time.Second), self: 1500 * time.Millisecond, selfOK: true, busy: 1150, total: 4200, steal: 104},
			cpuUse{50, 75, 2}, "cpu: kvctl bench 50% of a core; machine 75% busy, 2% of its CPU taken by the hypervisor for other machines\n"},
		{"much steal", cpuSample{at: at.Add(time.Second), self: 1500 * time.Millisecond, selfOK: true, busy: 1180, total: 4200, steal: 190},
			cpuUse{50, 90, 45}, "cpu: kvctl bench 50% of a core; machine 90% busy, 45% of its CPU taken by the hypervisor for other machines: compare this run with no other\n"},
		{"no /proc/stat", cpuSample{at: at.Add(time.Second), self: 1500 * time.Millisecond, selfOK: true},
			cpuUse{50, -1, -1}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := from.usage(c.to)
			if got != c.want {
				t.Errorf("usage = %+v, want %+v", got, c.want)
			}
			var line bytes.Buffer
			got.writeLine(&line)
			if line.String() != c.line {
				t.Errorf("line %q, want %q", line.String(), c.line)
			}
		})
	}
}

// interruptWhen returns a context that ends, as an interrupt would, once out holds what
// wants (or after 30 s, when it never does): a run interrupted at a fixed time had, on a loaded
// machine, not printed what the test looks for yet.
func interruptWhen(t *testing.T, out *syncbuf.Buffer, wants func(string) bool) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() {
		defer cancel()
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if wants(out.String()) {
				return
			}
		}
	}()
	return ctx
}
