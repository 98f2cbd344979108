// Command anchorverdict reads the side-by-side anchor runs (scripts/bench.sh anchors) and says,
// for each of issue 5's targets, the ratio each run measured, their median and whether the
// median meets the target.
//
//	anchorverdict RUN.jsonl...
//
// Each file is one run of ../shared/bench/run-anchors.sh (its history/*.jsonl): lines
// "RESULT {json}" with a group (etcd-..., go-http-memkv..., dialkv(strong put) or
// dialkv(eventual put), hashicorp-raft-3node...) and a workload name. Ratios are taken within
// each run, never across runs: absolute numbers on the shared 2-core machine move by tens of per
// cent between runs. A target's side condition (strong put: p99 no worse than etcd's; eventual
// put: p50 under 2 ms) must hold in most runs for a met verdict. A target a run cannot speak to
// (a strong-put target in a run whose dialkv put was eventual, a missing row) is left out for
// that run. Below the verdicts it prints what bounds each target in the same runs: the CPU one
// operation costs against the cores, and the floors that the fixed libraries and a bare HTTP
// server set under the sequential strong put and the eventual put. Exit 1 only on input it
// cannot read.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
)

func main() {
	fs := flag.NewFlagSet("anchorverdict", flag.ContinueOnError)
	cores := fs.Int("cores", runtime.NumCPU(), "cores of the machine the runs were measured on (the CPU table's budget; the default is this machine's)")
	fs.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: anchorverdict [--cores N] RUN.jsonl... (the anchor harness's history files)")
		fs.PrintDefaults()
	}
	if err := fs.Parse(os.Args[1:]); err != nil || fs.NArg() == 0 || *cores < 1 {
		if err == nil {
			fs.Usage()
		}
		os.Exit(2)
	}
	var runs []run
	for _, path := range fs.Args() {
		r, err := readRun(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, "anchorverdict:", err)
			os.Exit(1)
		}
		runs = append(runs, r)
	}
	writeVerdicts(os.Stdout, runs)
	fmt.Println()
	writeCPUBounds(os.Stdout, runs, *cores)
	fmt.Println()
	writeLatencyFloor(os.Stdout, runs)
	fmt.Println()
	writeLibraryRate(os.Stdout, runs)
	fmt.Println()
	writeHTTPFloor(os.Stdout, runs)
	fmt.Println()
	writeEventualFloor(os.Stdout, runs)
}

// result is the part of one RESULT line that the targets use.
type result struct {
	Group     string  `json:"group"`
	Name      string  `json:"name"`
	OpsPerSec float64 `json:"ops_per_s"`
	P50ms     float64 `json:"p50_ms"`
	P99ms     float64 `json:"p99_ms"`
	Errors    int64   `json:"errors"`
	// CPU the servers and the load generator used while the workload ran (100 = one core).
	ServersCPU float64 `json:"servers_cpu_pct"`
	LoadgenCPU float64 `json:"loadgen_cpu_pct"`
}

// cpuPerOp is the CPU, in microseconds, that one operation cost the servers and the load
// generator together; ok is false when the harness did not measure it.
func (r result) cpuPerOp() (us float64, ok bool) {
	if r.ServersCPU <= 0 || r.LoadgenCPU <= 0 || r.OpsPerSec <= 0 {
		return 0, false
	}
	return (r.ServersCPU + r.LoadgenCPU) / 100 * 1e6 / r.OpsPerSec, true
}

// run is one harness run: its name (the file's) and its results by system and workload.
type run struct {
	name string
	// results[system][workload]; system is one of the sys* constants.
	results map[string]map[string]result
	// putLevel is the level of dialkv's put workload in this run: "strong" or "eventual".
	putLevel string
}

// The systems a run compares.
const (
	sysEtcd   = "etcd"
	sysMemkv  = "memkv"
	sysDialkv = "dialkv"
	sysRaft   = "raft" // three bare hashicorp/raft nodes with raft-boltdb, in one process
)

// system names the system a harness group measured, or "" for one the targets do not use
// (Redis, physical limits, raft without fsync).
func system(group string) (sys, putLevel string) {
	switch {
	case strings.HasPrefix(group, "etcd-"):
		return sysEtcd, ""
	case strings.HasPrefix(group, "hashicorp-raft") && !strings.Contains(group, "NoSync"):
		// The harness also runs raft without fsync, to show the disk's share; a floor
		// under dialkv (which syncs) must sync too.
		return sysRaft, ""
	case strings.HasPrefix(group, "go-http-memkv"):
		return sysMemkv, ""
	case strings.HasPrefix(group, "dialkv(strong"):
		return sysDialkv, "strong"
	case strings.HasPrefix(group, "dialkv(eventual"):
		return sysDialkv, "eventual"
	}
	return "", ""
}

func readRun(path string) (run, error) {
	f, err := os.Open(path)
	if err != nil {
		return run{}, err
	}
	defer f.Close()
	r, err := parseRun(f)
	if err != nil {
		return run{}, fmt.Errorf("%s: %w", path, err)
	}
	r.name = strings.TrimSuffix(filepath.Base(path), ".jsonl")
	return r, nil
}

func parseRun(in io.Reader) (run, error) {
	r := run{results: map[string]map[string]result{}}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for line := 1; sc.Scan(); line++ {
		text, ok := strings.CutPrefix(sc.Text(), "RESULT ")
		if !ok {
			continue
		}
		var res result
		if err := json.Unmarshal([]byte(text), &res); err != nil {
			return r, fmt.Errorf("line %d: %w", line, err)
		}
		sys, level := system(res.Group)
		if sys == "" {
			continue
		}
		if level != "" {
			if r.putLevel != "" && r.putLevel != level {
				return r, fmt.Errorf("line %d: dialkv measured with both strong and eventual puts in one run", line)
			}
			r.putLevel = level
		}
		if r.results[sys] == nil {
			r.results[sys] = map[string]result{}
		}
		r.results[sys][res.Name] = res
	}
	if err := sc.Err(); err != nil {
		return r, err
	}
	if len(r.results[sysDialkv]) == 0 {
		return r, errors.New("no dialkv results (was the store phase run?)")
	}
	return r, nil
}

// get returns the result of workload name for sys, if the run has a clean one.
func (r run) get(sys, name string) (result, bool) {
	res, ok := r.results[sys][name]
	return res, ok && res.Errors == 0 && res.OpsPerSec > 0
}

// target is one of issue 5's targets: dialkv's result on workload against the baseline system's
// in the same run, as a ratio of throughputs, or of p50 latencies when latency is set. A target
// with a putLevel speaks only to runs whose dialkv put was at that level. condition, if not nil,
// is the target's side condition (p99 no worse than etcd's, p50 under 2 ms); met says whether a
// ratio meets the goal.
type target struct {
	name               string
	want               float64 // the goal: ratio >= want, or <= want for a latency target
	baseline, workload string
	putLevel           string
	latency            bool
	condition          func(dialkv, base result) bool
}

func (t target) goal() string {
	if t.latency {
		return fmt.Sprintf("<= %gx", t.want)
	}
	return fmt.Sprintf(">= %gx", t.want)
}

func (t target) met(v float64) bool {
	if t.latency {
		return v <= t.want
	}
	return v >= t.want
}

// results returns dialkv's and the baseline's results for the target in run r; ok is false when
// the run cannot speak to the target (a missing or failed row, the other put level).
func (t target) results(r run) (dialkv, base result, ok bool) {
	d, ok1 := r.get(sysDialkv, t.workload)
	b, ok2 := r.get(t.baseline, t.workload)
	if !ok1 || !ok2 || t.putLevel != "" && r.putLevel != t.putLevel {
		return result{}, result{}, false
	}
	return d, b, true
}

// measure returns the run's ratio, whether the side condition held, and whether the run can
// speak to the target at all.
func (t target) measure(r run) (value float64, condition, ok bool) {
	d, b, ok := t.results(r)
	if !ok {
		return 0, false, false
	}
	value = d.OpsPerSec / b.OpsPerSec
	if t.latency {
		if b.P50ms <= 0 {
			return 0, false, false
		}
		value = d.P50ms / b.P50ms
	}
	return value, t.condition == nil || t.condition(d, b), true
}

// The eventual put's target (issue 5): this many times etcd's put rate, with a p50 under this
// many milliseconds. writeEventualFloor measures the bare server against the same numbers.
const (
	eventualPutGoal       = 5
	eventualPutP50LimitMs = 2.0
)

// targets are issue 5's, in its order.
var targets = []target{
	{name: "strong put 64c vs etcd put (p99 no worse)", want: 2, baseline: sysEtcd, workload: "put", putLevel: "strong",
		condition: func(d, e result) bool { return d.P99ms <= e.P99ms }},
	{name: "strong get 64c vs etcd linearizable get", want: 2, baseline: sysEtcd, workload: "get-lin"},
	{name: "sequential strong put p50, dialkv / etcd", want: 1, baseline: sysEtcd, workload: "put-seq@leader", putLevel: "strong",
		latency: true},
	{name: "eventual put 64c vs etcd put (p50 < 2 ms)", want: eventualPutGoal, baseline: sysEtcd, workload: "put", putLevel: "eventual",
		condition: func(d, _ result) bool { return d.P50ms < eventualPutP50LimitMs }},
	{name: "eventual get 64c vs the bare HTTP server", want: 0.7, baseline: sysMemkv, workload: "get-ser"},
}

// writeVerdicts prints one row per target: each run's value (in input order; "*" marks a run
// that missed the target's side condition), the median over the runs that measured it, and the
// verdict: met when the median meets the goal and the side condition held in most runs.
func writeVerdicts(w io.Writer, runs []run) {
	fmt.Fprintf(w, "Issue 5's targets over %d anchor run(s): ratios within each run, the verdict on their median.\n", len(runs))
	names := make([]string, len(runs))
	for i, r := range runs {
		names[i] = r.name + " (dialkv put " + r.putLevel + ")"
	}
	fmt.Fprintf(w, "runs, in column order: %s\n", strings.Join(names, ", "))
	fmt.Fprintf(w, "%-44s %-8s %-32s %8s  %s\n", "target", "goal", "per run (* side condition missed)", "median", "verdict")
	for _, t := range targets {
		var values []float64
		var cells []string
		held := 0
		for _, r := range runs {
			v, condition, ok := t.measure(r)
			if !ok {
				cells = append(cells, "-")
				continue
			}
			values = append(values, v)
			cell := fmt.Sprintf("%.2f", v)
			if condition {
				held++
			} else {
				cell += "*"
			}
			cells = append(cells, cell)
		}
		median, verdict := "-", "not measured"
		if len(values) > 0 {
			m := medianOf(values)
			median = fmt.Sprintf("%.2f", m)
			switch {
			case !t.met(m):
				verdict = "MISSED"
			case 2*held <= len(values):
				verdict = "MISSED (side condition)"
			default:
				verdict = "met"
			}
		}
		fmt.Fprintf(w, "%-44s %-8s %-32s %8s  %s\n", t.name, t.goal(), strings.Join(cells, " "), median, verdict)
	}
}

func medianOf(vs []float64) float64 {
	s := slices.Clone(vs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// writeCPUBounds prints, for each throughput target and run, what bounds it in CPU: on this
// shared machine the load generator and every server take turns on the same cores, so a rate
// is reachable only if the CPU one operation costs, times the rate, fits in the cores. The rows
// give the CPU per operation measured (servers plus load generator) for dialkv and the baseline,
// the goal's rate (the goal times the baseline's rate in that run), and the cores that rate would
// need at dialkv's measured cost, against the cores the runs' machine has (--cores; the history
// files do not record it).
func writeCPUBounds(w io.Writer, runs []run, cores int) {
	fmt.Fprintf(w, "CPU per operation (servers + load generator, as the harness measured them) and the cores the goal's rate would need at dialkv's cost; the runs' machine has %d (--cores).\n", cores)
	fmt.Fprintf(w, "%-44s %-18s %12s %14s %11s %13s  %s\n", "target", "run", "dialkv us/op", "baseline us/op", "goal ops/s", "cores needed", "to reach it")
	for _, t := range targets {
		if t.latency {
			continue
		}
		for _, r := range runs {
			d, b, ok := t.results(r)
			if !ok {
				continue
			}
			dus, ok1 := d.cpuPerOp()
			bus, ok2 := b.cpuPerOp()
			if !ok1 || !ok2 {
				continue
			}
			rate := t.want * b.OpsPerSec
			need := dus * rate / 1e6
			verdict := "fits"
			if need > float64(cores) {
				// Rounded up: a need just above the cores must not read "0 % less".
				verdict = fmt.Sprintf("needs %.0f %% less CPU per op", math.Ceil(100*(1-float64(cores)/need)))
			}
			fmt.Fprintf(w, "%-44s %-18s %12.0f %14.0f %11.0f %13.2f  %s\n", t.name, r.name, dus, bus, rate, need, verdict)
		}
	}
}

// libraryTable is one comparison of the bare libraries with etcd and dialkv, run by run:
// which rows (raw raft's workload, etcd's and dialkv's), which number of theirs, in what unit,
// printed with how many decimals.
type libraryTable struct {
	title      string
	raft, etcd string // workload names; dialkv's is etcd's
	unit       string
	value      func(result) float64
	decimals   int
}

// writeLatencyFloor prints, for the sequential strong put, the floor under dialkv's ratio that
// the fixed libraries set: three bare hashicorp/raft nodes with raft-boltdb (one process, an
// in-memory state machine, no HTTP) applying one entry at a time, against etcd's sequential put
// in the same run. dialkv's strong write is such an apply plus its own work, so its ratio
// cannot go below this one.
func writeLatencyFloor(w io.Writer, runs []run) {
	writeLibraryTable(w, runs, libraryTable{
		title: "Sequential strong put: bare hashicorp/raft + raft-boltdb apply-seq p50 against etcd's put-seq@leader p50 in the same run (the floor under dialkv's ratio):",
		raft:  "apply-seq", etcd: "put-seq@leader", unit: "ms", value: func(r result) float64 { return r.P50ms }, decimals: 3,
	})
}

// writeLibraryRate prints, for the strong put at 64 clients, what the fixed libraries alone do
// at that concurrency: three bare hashicorp/raft nodes with raft-boltdb (one process, no HTTP,
// an in-memory state machine, one write per entry) against etcd's put in the same run, next to
// dialkv's. It is a reference, not a hard ceiling: dialkv packs many writes into one entry, so
// in principle it could pass the bare library; in practice its HTTP and state machine cost more
// than the packing saves.
func writeLibraryRate(w io.Writer, runs []run) {
	writeLibraryTable(w, runs, libraryTable{
		title: "Strong put, 64 clients: bare hashicorp/raft + raft-boltdb apply against etcd's put in the same run (what the libraries alone do at that concurrency):",
		raft:  "apply", etcd: "put", unit: "ops/s", value: func(r result) float64 { return r.OpsPerSec }, decimals: 0,
	})
}

// writeLibraryTable prints t for every run with a strong put that measured all three rows.
func writeLibraryTable(w io.Writer, runs []run, t libraryTable) {
	fmt.Fprintln(w, t.title)
	fmt.Fprintf(w, "%-18s %12s %12s %12s %14s %14s\n", "run", "raft "+t.unit, "etcd "+t.unit, "dialkv "+t.unit, "raft / etcd", "dialkv / etcd")
	for _, r := range runs {
		raw, ok1 := r.get(sysRaft, t.raft)
		e, ok2 := r.get(sysEtcd, t.etcd)
		d, ok3 := r.get(sysDialkv, t.etcd)
		if !ok1 || !ok2 || !ok3 || t.value(e) <= 0 || r.putLevel != "strong" {
			continue
		}
		rv, ev, dv := t.value(raw), t.value(e), t.value(d)
		fmt.Fprintf(w, "%-18s %12.*f %12.*f %12.*f %14.2f %14.2f\n", r.name, t.decimals, rv, t.decimals, ev, t.decimals, dv, rv/ev, dv/ev)
	}
}

// writeHTTPFloor prints, for the sequential strong put, the floor under dialkv's latency once its
// API is counted too: the bare libraries' sequential apply p50 plus the bare in-memory HTTP
// server's sequential put p50 (one HTTP round trip that does nothing), against etcd's
// put-seq@leader p50 in the same run. A dialkv strong write is at least both, so where the sum
// is above etcd's p50 the target cannot be met in that run by any work of dialkv's own. (Adding
// two medians is an estimate of the median of the sum, not a bound in theory; for latencies,
// whose distributions lean right, the median of a sum is usually the larger.)
func writeHTTPFloor(w io.Writer, runs []run) {
	fmt.Fprintln(w, "Sequential strong put: bare hashicorp/raft + raft-boltdb apply-seq p50 plus the bare HTTP server's put-seq p50, against etcd's put-seq@leader p50 in the same run (the libraries and one HTTP round trip, nothing of dialkv's):")
	fmt.Fprintf(w, "%-18s %9s %9s %9s %9s %9s %12s  %s\n", "run", "raft ms", "http ms", "sum ms", "etcd ms", "dialkv ms", "sum / etcd", "the target in this run")
	for _, r := range runs {
		raw, ok1 := r.get(sysRaft, "apply-seq")
		bare, ok2 := r.get(sysMemkv, "put-seq")
		e, ok3 := r.get(sysEtcd, "put-seq@leader")
		d, ok4 := r.get(sysDialkv, "put-seq@leader")
		if !ok1 || !ok2 || !ok3 || !ok4 || e.P50ms <= 0 || r.putLevel != "strong" {
			continue
		}
		sum := raw.P50ms + bare.P50ms
		verdict := fmt.Sprintf("out of reach: the floor is %.0f %% above etcd's p50", 100*(sum/e.P50ms-1))
		if sum <= e.P50ms {
			verdict = fmt.Sprintf("%.3f ms left for dialkv's own work", e.P50ms-sum)
		}
		fmt.Fprintf(w, "%-18s %9.3f %9.3f %9.3f %9.3f %9.3f %12.2f  %s\n", r.name, raw.P50ms, bare.P50ms, sum, e.P50ms, d.P50ms, sum/e.P50ms, verdict)
	}
}

// writeEventualFloor prints, for the eventual put at 64 clients, what the bare in-memory HTTP
// server (one node, no replication, no disk) does with the same load generator in the same run,
// against the target: 5 times etcd's put rate with a p50 under 2 ms. An eventual write does
// everything that server does and more (it is synced to disk, gossiped to every node and later
// ordered by Raft on all of them), so where the bare server's own p50 is 2 ms or more, or the
// goal's rate is above the bare server's, the target cannot be met in that run. With closed-loop
// clients the mean latency is clients / rate (Little's law): a p50 near 2 ms at 64 clients needs
// a rate near 32,000 operations a second, whatever the store does with them.
func writeEventualFloor(w io.Writer, runs []run) {
	fmt.Fprintf(w, "Eventual put, 64 clients: the bare HTTP server's put (no replication, no disk) against the goal (%gx etcd's put rate, p50 under %g ms) in the same run:\n", float64(eventualPutGoal), eventualPutP50LimitMs)
	fmt.Fprintf(w, "%-18s %10s %9s %10s %11s %12s  %s\n", "run", "bare ops/s", "bare p50", "etcd ops/s", "goal ops/s", "goal / bare", "the target in this run")
	for _, r := range runs {
		bare, ok1 := r.get(sysMemkv, "put")
		e, ok2 := r.get(sysEtcd, "put")
		if !ok1 || !ok2 {
			continue
		}
		goal := eventualPutGoal * e.OpsPerSec
		var verdict string
		switch {
		case bare.P50ms >= eventualPutP50LimitMs:
			verdict = fmt.Sprintf("out of reach: the bare server's own p50 is %.2f ms", bare.P50ms)
		case goal > bare.OpsPerSec:
			verdict = "out of reach: the goal is faster than the bare server"
		default:
			verdict = fmt.Sprintf("needs %.0f %% of the bare server's rate", 100*goal/bare.OpsPerSec)
		}
		fmt.Fprintf(w, "%-18s %10.0f %9.3f %10.0f %11.0f %12.2f  %s\n", r.name, bare.OpsPerSec, bare.P50ms, e.OpsPerSec, goal, goal/bare.OpsPerSec, verdict)
	}
}
