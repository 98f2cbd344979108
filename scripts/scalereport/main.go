// Command scalereport turns the results of scripts/scale.sh into its table and its plot.
//
//	scalereport -in results.jsonl [-svg docs/scaling.svg] [-caption TEXT]
//
// Each input line is one measurement: {"nodes":N,"row":"strong put"|"eventual put"|"spread",
// "clients":C,"exit":RC,"report":{kvctl bench --json}} (report null when kvctl printed none). It
// prints one table on stdout, a row per line in input order, and with -svg draws latency
// against node count: p50 solid, p99 dashed, log scale. It reads only its input; it exits 1 on
// input it cannot read, never on a failed measurement (the table shows those as FAILED).
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

func main() {
	in := flag.String("in", "", "the results `FILE` scale.sh wrote (JSON lines)")
	svg := flag.String("svg", "", "also draw the plot into `FILE`")
	caption := flag.String("caption", "", "a line of `TEXT` under the plot's title (date, machine load)")
	flag.Parse()
	if *in == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: scalereport -in results.jsonl [-svg FILE] [-caption TEXT]")
		os.Exit(2)
	}
	if err := run(*in, *svg, *caption, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "scalereport:", err)
		os.Exit(1)
	}
}

func run(in, svgPath, caption string, stdout io.Writer) error {
	f, err := os.Open(in)
	if err != nil {
		return err
	}
	defer f.Close()
	ms, err := readMeasurements(f)
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	if err := writeTable(stdout, ms); err != nil {
		return err
	}
	if svgPath == "" {
		return nil
	}
	return os.WriteFile(svgPath, []byte(plot(ms, caption)), 0o644)
}

// Row names scale.sh writes.
const (
	rowStrongPut   = "strong put"
	rowEventualPut = "eventual put"
	rowSpread      = "spread"
)

// measurement is one input line; Report holds the fields of kvctl bench's JSON that are used.
type measurement struct {
	Nodes   int     `json:"nodes"`
	Row     string  `json:"row"`
	Clients int     `json:"clients"`
	Exit    int     `json:"exit"`
	Report  *report `json:"report"`
}

// report is the union of the put and the spread reports' fields used here.
type report struct {
	LoadgenCPUPct  float64 `json:"loadgen_cpu_pct"`
	MachineBusyPct float64 `json:"machine_busy_pct"`
	// StealPct is the CPU the hypervisor gave other machines; nil in results from before kvctl
	// measured it.
	StealPct *float64 `json:"steal_pct"`
	// kvctl bench put
	Total *struct {
		Ops       int64   `json:"ops"`
		OpsPerSec float64 `json:"ops_per_s"`
		P50ms     float64 `json:"p50_ms"`
		P99ms     float64 `json:"p99_ms"`
		Maxms     float64 `json:"max_ms"`
		Errors    int64   `json:"errors"`
	} `json:"total"`
	// kvctl bench spread
	Complete     int64      `json:"complete"`
	FailedWrites int64      `json:"failed_writes"`
	Incomplete   int64      `json:"incomplete"`
	AllNodes     *spreadSum `json:"all_nodes"`
	PollWindow   spreadSum  `json:"poll_window"`
	CommittedPct float64    `json:"committed_pct"`
	PollsPerSec  float64    `json:"polls_per_s"`
}

type spreadSum struct {
	Count int64   `json:"count"`
	P50ms float64 `json:"p50_ms"`
	P99ms float64 `json:"p99_ms"`
	Maxms float64 `json:"max_ms"`
}

func readMeasurements(r io.Reader) ([]measurement, error) {
	var ms []measurement
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for line := 1; sc.Scan(); line++ {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var m measurement
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		switch m.Row {
		case rowStrongPut, rowEventualPut, rowSpread:
		default:
			return nil, fmt.Errorf("line %d: unknown row %q", line, m.Row)
		}
		if m.Nodes < 1 {
			return nil, fmt.Errorf("line %d: nodes %d", line, m.Nodes)
		}
		ms = append(ms, m)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(ms) == 0 {
		return nil, errors.New("no measurements")
	}
	return ms, nil
}

// point is what a measurement contributes to the plot; ok is false when it has none.
func (m measurement) point() (p50, p99 float64, ok bool) {
	r := m.Report
	switch {
	case r == nil:
	case m.Row == rowSpread && r.AllNodes != nil && r.AllNodes.Count > 0:
		return r.AllNodes.P50ms, r.AllNodes.P99ms, true
	case m.Row != rowSpread && r.Total != nil && r.Total.Ops > 0:
		return r.Total.P50ms, r.Total.P99ms, true
	}
	return 0, 0, false
}

// name is the measurement's label in the table and the plot's legend.
func (m measurement) name() string {
	switch {
	case m.Row == rowSpread:
		return "eventual write reaches all nodes"
	case m.Clients == 1:
		return m.Row + ", sequential"
	}
	return fmt.Sprintf("%s, %d clients", m.Row, m.Clients)
}

// steal is the report's steal column: "-" where it was not measured.
func (r *report) steal() string {
	if r.StealPct == nil || *r.StealPct < 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f", *r.StealPct)
}

func writeTable(w io.Writer, ms []measurement) error {
	fmt.Fprintf(w, "%-5s  %-34s %8s %9s %9s %9s %9s %7s %7s %6s %6s  %s\n",
		"nodes", "measurement", "count", "ops/s", "p50 ms", "p99 ms", "max ms", "errors", "kvctl%", "busy%", "steal%", "note")
	for _, m := range ms {
		r := m.Report
		_, _, ok := m.point()
		if !ok {
			fmt.Fprintf(w, "%-5d  %-34s FAILED (exit %d, no measurement)\n", m.Nodes, m.name(), m.Exit)
			continue
		}
		if m.Row == rowSpread {
			a := r.AllNodes
			note := fmt.Sprintf("poll window p50 %.2f ms; %.0f%% came by Raft first; %.0f polls/s", r.PollWindow.P50ms, r.CommittedPct, r.PollsPerSec)
			fmt.Fprintf(w, "%-5d  %-34s %8d %9s %9.2f %9.2f %9.2f %7d %7.0f %6.0f %6s  %s\n", m.Nodes, m.name(), a.Count, "-",
				a.P50ms, a.P99ms, a.Maxms, r.FailedWrites+r.Incomplete, r.LoadgenCPUPct, r.MachineBusyPct, r.steal(), note)
			continue
		}
		t := r.Total
		fmt.Fprintf(w, "%-5d  %-34s %8d %9.0f %9.2f %9.2f %9.2f %7d %7.0f %6.0f %6s\n", m.Nodes, m.name(), t.Ops, t.OpsPerSec,
			t.P50ms, t.P99ms, t.Maxms, t.Errors, r.LoadgenCPUPct, r.MachineBusyPct, r.steal())
	}
	return nil
}
