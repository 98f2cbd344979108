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
// that run. Exit 1 only on input it cannot read.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

func main() {
	if len(os.Args) < 2 || strings.HasPrefix(os.Args[1], "-") {
		fmt.Fprintln(os.Stderr, "usage: anchorverdict RUN.jsonl... (the anchor harness's history files)")
		os.Exit(2)
	}
	var runs []run
	for _, path := range os.Args[1:] {
		r, err := readRun(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, "anchorverdict:", err)
			os.Exit(1)
		}
		runs = append(runs, r)
	}
	writeVerdicts(os.Stdout, runs)
}

// result is the part of one RESULT line that the targets use.
type result struct {
	Group     string  `json:"group"`
	Name      string  `json:"name"`
	OpsPerSec float64 `json:"ops_per_s"`
	P50ms     float64 `json:"p50_ms"`
	P99ms     float64 `json:"p99_ms"`
	Errors    int64   `json:"errors"`
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
)

// system names the system a harness group measured, or "" for one the targets do not use (raw
// raft, Redis, physical limits).
func system(group string) (sys, putLevel string) {
	switch {
	case strings.HasPrefix(group, "etcd-"):
		return sysEtcd, ""
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
	name, goal         string
	baseline, workload string
	putLevel           string
	latency            bool
	condition          func(dialkv, base result) bool
	met                func(float64) bool
}

// measure returns the run's ratio, whether the side condition held, and whether the run can
// speak to the target at all.
func (t target) measure(r run) (value float64, condition, ok bool) {
	d, ok1 := r.get(sysDialkv, t.workload)
	b, ok2 := r.get(t.baseline, t.workload)
	if !ok1 || !ok2 || t.putLevel != "" && r.putLevel != t.putLevel {
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

func atLeast(goal float64) func(float64) bool { return func(v float64) bool { return v >= goal } }

// targets are issue 5's, in its order.
var targets = []target{
	{name: "strong put 64c vs etcd put (p99 no worse)", goal: ">= 2x", baseline: sysEtcd, workload: "put", putLevel: "strong",
		condition: func(d, e result) bool { return d.P99ms <= e.P99ms }, met: atLeast(2)},
	{name: "strong get 64c vs etcd linearizable get", goal: ">= 2x", baseline: sysEtcd, workload: "get-lin", met: atLeast(2)},
	{name: "sequential strong put p50, dialkv / etcd", goal: "<= 1x", baseline: sysEtcd, workload: "put-seq@leader", putLevel: "strong",
		latency: true, met: func(v float64) bool { return v <= 1 }},
	{name: "eventual put 64c vs etcd put (p50 < 2 ms)", goal: ">= 5x", baseline: sysEtcd, workload: "put", putLevel: "eventual",
		condition: func(d, _ result) bool { return d.P50ms < 2 }, met: atLeast(5)},
	{name: "eventual get 64c vs the bare HTTP server", goal: ">= 0.7x", baseline: sysMemkv, workload: "get-ser", met: atLeast(0.7)},
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
		fmt.Fprintf(w, "%-44s %-8s %-32s %8s  %s\n", t.name, t.goal, strings.Join(cells, " "), median, verdict)
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
