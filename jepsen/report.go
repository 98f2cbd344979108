package jepsen

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"
)

// Verdicts.
const (
	VerdictPass = "PASS"
	VerdictFail = "FAIL"
)

// Result is a finished run.
type Result struct {
	Name    string          `json:"name"`
	Dir     string          `json:"dir"`
	Verdict string          `json:"verdict"`
	Config  ConfigSummary   `json:"config"`
	Summary Summary         `json:"summary"`
	Checks  []CheckResult   `json:"checks"`
	Windows []AppliedWindow `json:"fault_windows"`
	// Notes are things the reader should know (fault hook missing, keys sampled...).
	Notes    []string `json:"notes,omitempty"`
	Started  string   `json:"started"`
	Duration string   `json:"duration"`
}

// ConfigSummary is the run's configuration as the report shows it.
type ConfigSummary struct {
	Backend   string   `json:"backend"`
	Workloads []string `json:"workloads"`
	Nemesis   string   `json:"nemesis"`
	Nodes     int      `json:"nodes"`
	Clients   int      `json:"clients"`
	Rate      float64  `json:"rate"`
	Time      string   `json:"time"`
	FaultOn   string   `json:"fault_on"`
	FaultOff  string   `json:"fault_off"`
	Keys      int      `json:"keys"`
	Unsafe    string   `json:"unsafe,omitempty"`
	Plant     string   `json:"plant,omitempty"`
	Seed      uint64   `json:"seed"`
}

// Valid reports whether every check passed.
func (r *Result) Valid() bool {
	for _, c := range r.Checks {
		if !c.Valid {
			return false
		}
	}
	return len(r.Checks) > 0
}

func pct(v float64) string {
	if v < 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", v*100)
}

func ms(v float64) string {
	if v < 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f", v)
}

// WriteTable prints the summary table, the partition trade-off, the checks and the verdict.
func (r *Result) WriteTable(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "level\tok\tfailed\tindeterminate\tavail. in faults\tavail. quiet\tp50 ms\tp99 ms\tanomalies\t")
	for _, l := range r.Summary.Levels {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t%d\t\n", l.Level, l.OK, l.Fail, l.Info, pct(l.AvailFaulted), pct(l.AvailQuiet), ms(l.P50), ms(l.P99), l.Anomalies)
	}
	tw.Flush()
	if len(r.Summary.Partition) > 0 {
		fmt.Fprintln(w, "\nduring partitions, by the side of the node that took the request:")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "level\tside\tok\tfailed\tindeterminate\tavailability\tp50 ms\tp99 ms\t")
		for _, s := range r.Summary.Partition {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\t%s\t%s\t\n", s.Level, s.Side, s.OK, s.Fail, s.Info, pct(s.Avail), ms(s.P50), ms(s.P99))
		}
		tw.Flush()
	}
	fmt.Fprintln(w)
	for _, c := range r.Checks {
		mark := "ok  "
		if !c.Valid {
			mark = "FAIL"
		}
		name := c.Checker
		if c.Workload != "" {
			name = c.Workload + " " + c.Checker
		}
		fmt.Fprintf(w, "%s %-22s %s\n", mark, name, c.Summary)
		for i, a := range c.Anomalies {
			if i == 3 {
				fmt.Fprintf(w, "       ... %d more in report.md\n", len(c.Anomalies)-3)
				break
			}
			fmt.Fprintf(w, "       %s: %s\n", a.Kind, a.Description)
			for j, o := range a.Ops {
				if j == 4 {
					break
				}
				fmt.Fprintf(w, "         %s\n", o)
			}
		}
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	fmt.Fprintf(w, "\nhistory, results, plots and report.md in %s\n%s\n", r.Dir, r.Verdict)
}

// writeFiles writes results.json and report.md into the run directory.
func (r *Result) writeFiles() error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(r.Dir, "results.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(r.Dir, "report.md"), []byte(r.markdown()), 0o644)
}

func (r *Result) markdown() string {
	var b strings.Builder
	c := r.Config
	fmt.Fprintf(&b, "# kvjepsen %s: %s\n\n", r.Name, r.Verdict)
	fmt.Fprintf(&b, "Started %s, ran %s. Backend **%s**, %d nodes, %d clients at %.0f ops/s for %s; workloads %s; nemesis %s (%s on, %s off)",
		r.Started, r.Duration, c.Backend, c.Nodes, c.Clients, c.Rate, c.Time, strings.Join(c.Workloads, ", "), orNone(c.Nemesis), c.FaultOn, c.FaultOff)
	if c.Unsafe != "" {
		fmt.Fprintf(&b, "; **unsafe mode %s**", c.Unsafe)
	}
	if c.Plant != "" {
		fmt.Fprintf(&b, "; **planted bug %s**", c.Plant)
	}
	fmt.Fprintf(&b, "; seed %d.\n\n", c.Seed)
	b.WriteString("## Summary per consistency level\n\n")
	b.WriteString("| level | ok | failed | indeterminate | availability during faults | availability quiet | p50 ms | p99 ms | anomalies |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, l := range r.Summary.Levels {
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %s | %s | %s | %s | %d |\n", l.Level, l.OK, l.Fail, l.Info, pct(l.AvailFaulted), pct(l.AvailQuiet), ms(l.P50), ms(l.P99), l.Anomalies)
	}
	fmt.Fprintf(&b, "\n%d operations; ok throughput before the first fault: %.0f ops/s. \"ok\" includes compare-and-sets answered \"conflict\" (a correct answer, not an outage). Indeterminate operations (the client could not know whether a write was applied) are never counted as failed by the checkers.\n\n", r.Summary.Total, r.Summary.Baseline)
	if len(r.Summary.Partition) > 0 {
		b.WriteString("## The trade-off under partitions\n\nOperations invoked while a partition was in force, by the side of the node that took the request (minority: cut off from every majority). Register, mixed, set and staleness clients talk to one node each; session clients fail over, so theirs count where they landed.\n\n")
		b.WriteString("| level | side | ok | failed | indeterminate | availability | p50 ms | p99 ms |\n|---|---|---:|---:|---:|---:|---:|---:|\n")
		for _, s := range r.Summary.Partition {
			fmt.Fprintf(&b, "| %s | %s | %d | %d | %d | %s | %s | %s |\n", s.Level, s.Side, s.OK, s.Fail, s.Info, pct(s.Avail), ms(s.P50), ms(s.P99))
		}
		b.WriteString("\n")
	}
	b.WriteString("## Checks\n\n")
	for _, ch := range r.Checks {
		mark := "pass"
		if !ch.Valid {
			mark = "**FAIL**"
		}
		name := ch.Checker
		if ch.Workload != "" {
			name = ch.Workload + " / " + ch.Checker
		}
		fmt.Fprintf(&b, "- %s — %s: %s\n", name, mark, ch.Summary)
		for _, f := range ch.Files {
			fmt.Fprintf(&b, "  - [%s](%s)\n", f, f)
		}
	}
	b.WriteString("\n")
	for _, ch := range r.Checks {
		if len(ch.Anomalies) == 0 {
			continue
		}
		name := ch.Checker
		if ch.Workload != "" {
			name = ch.Workload + " / " + ch.Checker
		}
		fmt.Fprintf(&b, "### Anomalies: %s\n\n", name)
		for _, a := range ch.Anomalies {
			fmt.Fprintf(&b, "- **%s**", a.Kind)
			if a.Key != "" {
				fmt.Fprintf(&b, " `%s`", a.Key)
			}
			fmt.Fprintf(&b, ": %s\n", a.Description)
			if len(a.Ops) > 0 {
				b.WriteString("\n  ```\n")
				for _, o := range a.Ops {
					fmt.Fprintf(&b, "  %s\n", o)
				}
				b.WriteString("  ```\n")
			}
		}
		b.WriteString("\n")
	}
	b.WriteString("## Fault windows\n\n")
	if len(r.Windows) == 0 {
		b.WriteString("None.\n")
	} else {
		b.WriteString("| start | end | fault | minority side | errors |\n|---:|---:|---|---|---|\n")
		for _, w := range r.Windows {
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", fmtTime(w.Start), fmtTime(w.End), cell(w.Description), strings.Join(w.Minority, ","), cell(strings.Join(w.Errors, "; ")))
		}
	}
	b.WriteString("\n## Plots and files\n\n![latency](latency.svg)\n\n![throughput](throughput.svg)\n\n![availability](availability.svg)\n\n")
	b.WriteString("`history.jsonl` (every invocation and completion), `results.json` (this report as data), `nodes/` (kvd logs).\n")
	if len(r.Notes) > 0 {
		b.WriteString("\n## Notes\n\n")
		for _, n := range r.Notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
	}
	return b.String()
}

// cell escapes text for a markdown table cell.
func cell(s string) string { return strings.ReplaceAll(s, "|", "\\|") }

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// writePlots writes latency.svg, throughput.svg and availability.svg.
func writePlots(dir string, ops []*Op, ws []AppliedWindow, runFor time.Duration) error {
	// Operations completing after the run's end (in flight when it ended) fall outside the
	// plots: a last, partial second would look like an outage.
	seconds := max(secondsOf(runFor), 1)
	t := buildTimeline(ops, seconds)
	files := map[string]string{
		"latency.svg":      latencyPlot(ops, ws, float64(seconds)),
		"throughput.svg":   throughputPlot(t, ws),
		"availability.svg": availabilityPlot(t, ws),
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			return err
		}
	}
	return nil
}
