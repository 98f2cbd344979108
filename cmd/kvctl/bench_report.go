package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// benchReport is the outcome of a run: the text report and the --json object.
type benchReport struct {
	Workload         string   `json:"workload"`
	Endpoints        []string `json:"endpoints"`
	Clients          int      `json:"clients"`
	Keys             int      `json:"keys"`
	ValueSize        int      `json:"value_size"`
	ReadRatio        *float64 `json:"read_ratio,omitempty"`
	WriteConsistency string   `json:"write_consistency,omitempty"`
	ReadConsistency  string   `json:"read_consistency,omitempty"`
	WarmupSecs       float64  `json:"warmup_s"`
	// Secs is the measured window: from the end of the warm-up until --duration ended, or until
	// the run stopped if that was earlier (--ops, interrupt). Operations started in it count even
	// when they answered after it.
	Secs         float64 `json:"secs"`
	Interrupted  bool    `json:"interrupted,omitempty"`
	WarmupOps    int64   `json:"warmup_ops"`
	WarmupErrors int64   `json:"warmup_errors"`
	// PopulatedKeys is how many keys were written before the run (get and mixed).
	PopulatedKeys int `json:"populated_keys"`
	// cpuUse is what the measured window cost the machine (its fields stand in the JSON's top
	// level).
	cpuUse
	// Total is every measured operation together; Results has one entry per (operation, level).
	Total   benchResult   `json:"total"`
	Results []benchResult `json:"results"`
}

// benchResult is the measured operations of one kind. Latencies are of successful operations,
// in milliseconds; OpsPerSec counts successful operations only.
type benchResult struct {
	Op        string  `json:"op"` // put, get, or all
	Level     string  `json:"level,omitempty"`
	Ops       int64   `json:"ops"`
	OpsPerSec float64 `json:"ops_per_s"`
	P50ms     float64 `json:"p50_ms"`
	P99ms     float64 `json:"p99_ms"`
	P999ms    float64 `json:"p999_ms"`
	Maxms     float64 `json:"max_ms"`
	Meanms    float64 `json:"mean_ms"`
	Errors    int64   `json:"errors"`
	// ErrorsByKind counts failures by error code ("no_leader", ...), "http_STATUS", "bad_answer" or
	// "transport" (errorKind).
	ErrorsByKind map[string]int64 `json:"errors_by_kind,omitempty"`
	// FirstErrors holds the first message of each kind.
	FirstErrors map[string]string `json:"first_errors,omitempty"`
	// ServedBy counts answers by the node that served them ("n1>n2": asked n1, forwarded to n2).
	ServedBy map[string]int64 `json:"served_by,omitempty"`
}

func (r *benchRun) report(elapsed time.Duration) *benchReport {
	b := r.opts
	rep := &benchReport{
		Workload: b.workload, Endpoints: b.endpoints, Clients: b.clients, Keys: b.keys, ValueSize: b.valueSize,
		WarmupSecs: b.warmup.Seconds(), Secs: elapsed.Seconds(), cpuUse: unknownCPU(),
	}
	if b.writes() {
		rep.WriteConsistency = b.writeConsistency
	}
	if b.reads() {
		rep.ReadConsistency = b.readConsistency
	}
	if b.workload == workloadMixed {
		ratio := b.readRatio
		rep.ReadRatio = &ratio
	}
	var hists [numBenchOps]histogram
	var all histogram
	var errs [numBenchOps]int64
	served := [numBenchOps]map[string]int64{{}, {}}
	for i := range r.shards {
		s := &r.shards[i]
		s.mu.Lock()
		for op := range numBenchOps {
			hists[op].merge(&s.total[op])
			errs[op] += s.errors[op]
			for k, v := range s.servedBy[op] {
				served[op][k] += v
			}
		}
		rep.WarmupOps += s.warmOps
		rep.WarmupErrors += s.warmErrs
		s.mu.Unlock()
	}
	r.errs.mu.Lock()
	kinds := r.errs.kinds
	r.errs.mu.Unlock()
	total := benchResult{Op: "all"}
	for op := range numBenchOps {
		if op == opPut && !b.writes() || op == opGet && !b.reads() {
			continue
		}
		res := resultOf(&hists[op], elapsed)
		res.Op, res.Level, res.Errors = op.String(), b.level(op), errs[op]
		if len(served[op]) > 0 {
			res.ServedBy = served[op]
		}
		for k, c := range kinds {
			if k.op != op {
				continue
			}
			if res.ErrorsByKind == nil {
				res.ErrorsByKind, res.FirstErrors = map[string]int64{}, map[string]string{}
			}
			res.ErrorsByKind[k.kind] += c.n
			res.FirstErrors[k.kind] = c.first
			if total.ErrorsByKind == nil {
				total.ErrorsByKind, total.FirstErrors = map[string]int64{}, map[string]string{}
			}
			total.ErrorsByKind[k.kind] += c.n
			total.FirstErrors[k.kind] = c.first
		}
		rep.Results = append(rep.Results, res)
		all.merge(&hists[op])
		total.Errors += errs[op]
	}
	t := resultOf(&all, elapsed)
	t.Op, t.Errors, t.ErrorsByKind, t.FirstErrors = total.Op, total.Errors, total.ErrorsByKind, total.FirstErrors
	if len(rep.Results) == 1 {
		t.Level = rep.Results[0].Level
	}
	rep.Total = t
	return rep
}

func resultOf(h *histogram, elapsed time.Duration) benchResult {
	res := benchResult{
		Ops:    int64(h.count()),
		P50ms:  millis(h.quantile(0.50)),
		P99ms:  millis(h.quantile(0.99)),
		P999ms: millis(h.quantile(0.999)),
		Maxms:  millis(h.maximum()),
		Meanms: millis(h.mean()),
	}
	if elapsed > 0 {
		res.OpsPerSec = float64(res.Ops) / elapsed.Seconds()
	}
	return res
}

// millis is d in milliseconds, to the microsecond.
func millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// formatMillis renders d in milliseconds with three significant digits (at least one decimal).
func formatMillis(d time.Duration) string {
	ms := float64(d) / float64(time.Millisecond)
	switch {
	case ms < 1:
		return fmt.Sprintf("%.3fms", ms)
	case ms < 10:
		return fmt.Sprintf("%.2fms", ms)
	case ms < 100:
		return fmt.Sprintf("%.1fms", ms)
	}
	return fmt.Sprintf("%.0fms", ms)
}

func fromMillis(ms float64) time.Duration { return time.Duration(ms * float64(time.Millisecond)) }

// writeBenchReport prints the report as a table: one row per (operation, level), plus an "all"
// row when there is more than one; then the errors by kind and who served the operations.
func writeBenchReport(w io.Writer, rep *benchReport) error {
	fmt.Fprintf(w, "workload %s: %d clients, %d keys, %d-byte values; measured %.1fs after %gs warm-up",
		rep.Workload, rep.Clients, rep.Keys, rep.ValueSize, rep.Secs, rep.WarmupSecs)
	if rep.ReadRatio != nil {
		fmt.Fprintf(w, "; %.0f%% reads", *rep.ReadRatio*100)
	}
	if rep.Interrupted {
		fmt.Fprint(w, " (interrupted)")
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "op\tlevel\tops\tops/s\tp50\tp99\tp99.9\tmax\terrors\t")
	rows := rep.Results
	if len(rows) > 1 {
		rows = append(slices.Clone(rows), rep.Total)
	}
	for _, res := range rows {
		level := res.Level
		if level == "" {
			level = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.0f\t%s\t%s\t%s\t%s\t%d\t\n", res.Op, level, res.Ops, res.OpsPerSec,
			formatMillis(fromMillis(res.P50ms)), formatMillis(fromMillis(res.P99ms)),
			formatMillis(fromMillis(res.P999ms)), formatMillis(fromMillis(res.Maxms)), res.Errors)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, res := range rep.Results {
		for _, kind := range sortedKeys(res.ErrorsByKind) {
			fmt.Fprintf(w, "errors: %s %s %s: %d (first: %s)\n", res.Op, res.Level, kind, res.ErrorsByKind[kind], res.FirstErrors[kind])
		}
	}
	for _, res := range rep.Results {
		if len(res.ServedBy) == 0 {
			continue
		}
		parts := make([]string, 0, len(res.ServedBy))
		for _, k := range sortedKeys(res.ServedBy) {
			parts = append(parts, fmt.Sprintf("%s %.0f%%", k, 100*float64(res.ServedBy[k])/float64(res.Ops)))
		}
		fmt.Fprintf(w, "served: %s %s by %s\n", res.Op, res.Level, strings.Join(parts, ", "))
	}
	if rep.WarmupErrors > 0 {
		fmt.Fprintf(w, "warm-up: %d operations, %d failed (not counted above)\n", rep.WarmupOps, rep.WarmupErrors)
	}
	rep.writeLine(w)
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
