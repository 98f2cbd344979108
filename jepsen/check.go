package jepsen

import (
	"fmt"
	"strings"
	"time"

	"github.com/dialkv/dialkv/client"
	"github.com/dialkv/dialkv/consistency"
)

// Checker names (CheckResult.Checker).
const (
	CheckerLinearizable = "linearizable"
	CheckerDurability   = "durability"
	CheckerSet          = "set"
	CheckerSession      = "session"
	CheckerStaleness    = "staleness"
	CheckerClock        = "clock"
	CheckerDeletes      = "deletes"
	CheckerConvergence  = "convergence"
	CheckerThroughput   = "throughput"
	CheckerHarness      = "harness"
	CheckerLevels       = "levels"
)

// CheckResult is one checker's verdict on one workload.
type CheckResult struct {
	Checker  string `json:"checker"`
	Workload string `json:"workload,omitempty"`
	Valid    bool   `json:"valid"`
	// Summary is one line for the report.
	Summary   string         `json:"summary"`
	Anomalies []Anomaly      `json:"anomalies,omitempty"`
	Stats     map[string]any `json:"stats,omitempty"`
	// Files the checker wrote (e.g. porcupine visualizations), relative to the run directory.
	Files []string `json:"files,omitempty"`
}

// Anomaly is one violation, with the operations that show it.
type Anomaly struct {
	Kind        string `json:"kind"`
	Level       string `json:"level,omitempty"`
	Key         string `json:"key,omitempty"`
	Node        string `json:"node,omitempty"`
	Description string `json:"description"`
	// Ops are the offending operations, one line each (see describeOp).
	Ops []string `json:"ops,omitempty"`
}

// maxAnomalies caps how many anomalies of one checker are kept in full; the count is exact.
const maxAnomalies = 50

// anomalies collects anomalies, keeping the first maxAnomalies and counting all.
type anomalies struct {
	list  []Anomaly
	count int
	// byLevel counts anomalies per consistency level.
	byLevel map[string]int
}

func (a *anomalies) add(an Anomaly) {
	a.count++
	if a.byLevel == nil {
		a.byLevel = map[string]int{}
	}
	a.byLevel[an.Level]++
	if len(a.list) < maxAnomalies {
		a.list = append(a.list, an)
	}
}

func (a *anomalies) stats(m map[string]any) map[string]any {
	if m == nil {
		m = map[string]any{}
	}
	m["anomalies"] = a.count
	if len(a.byLevel) > 0 {
		m["anomalies_by_level"] = a.byLevel
	}
	return m
}

// nothingChecked fails cr when the checker examined none of what its verdict rests on (what
// says what that is, e.g. "acknowledged writes"): a check that looked at nothing proves nothing,
// and a run whose operations all failed, or that never ran the operations a guarantee is about,
// must not come out PASS on that guarantee. The workloads make plenty of each kind in any run
// the harness makes; none at all means the run, the cluster or the harness broke.
func nothingChecked(cr *CheckResult, what string) {
	cr.Valid = false
	why := "nothing checked: no " + what + " in the history, so this check cannot pass"
	cr.Anomalies = append(cr.Anomalies, Anomaly{Kind: "nothing-checked", Description: why})
	if cr.Stats == nil {
		cr.Stats = map[string]any{}
	}
	n, _ := cr.Stats["anomalies"].(int)
	cr.Stats["anomalies"] = n + 1
	cr.Summary = why + "; " + cr.Summary
}

// tentativeReads flags the answered reads at level that say they showed tentative data: strong
// and bounded reads see the committed layer only (DESIGN.md, Reads; "A strong read never shows
// tentative data"). Such a value may still be overwritten or never committed, and the other
// checks cannot always tell: an eventual write may take effect at any time after it was issued,
// so a strong read of it before its commit usually linearizes.
func tentativeReads(an *anomalies, ops []*Op, level string) {
	for _, op := range ops {
		if op.F == FRead && op.Level == level && op.Type == TypeOK && op.State == client.StateTentative {
			an.add(Anomaly{Kind: "tentative-read", Level: level, Key: op.Key, Node: op.ServedBy,
				Description: fmt.Sprintf("%s read of %s on %s answered with tentative (uncommitted) data: %s reads see the committed layer only", level, op.Key, op.ServedBy, level),
				Ops:         []string{describeOp(op)}})
		}
	}
}

// CheckLevels holds every answered operation to the level it asked for: each answer names the
// level it served (DESIGN.md, Reads: "the level served"), and a node that cannot give a level
// refuses it (a bounded read it cannot promise, a strong write without a quorum) rather than
// serving another. An answer that names no level (one from before the header, or a 404 without
// metadata) is not held against the run; answered operations that all name none are nothing
// checked.
func CheckLevels(ops []*Op) CheckResult {
	var an anomalies
	checked := 0
	for _, op := range ops {
		if op.Type != TypeOK || op.Served == "" {
			continue
		}
		checked++
		if op.Served != op.Level {
			an.add(Anomaly{Kind: "level-served", Level: op.Level, Key: op.Key, Node: op.ServedBy,
				Description: fmt.Sprintf("%s %s of %s answered as served at %s", op.Level, op.F, op.Key, op.Served),
				Ops:         []string{describeOp(op)}})
		}
	}
	cr := CheckResult{Checker: CheckerLevels, Valid: an.count == 0, Anomalies: an.list,
		Stats:   an.stats(map[string]any{"operations": checked}),
		Summary: fmt.Sprintf("%d answered operations served at the level they asked for", checked)}
	if an.count > 0 {
		cr.Summary = fmt.Sprintf("%d of %d answered operations were served at another level than they asked for", an.count, checked)
	}
	if checked == 0 {
		nothingChecked(&cr, "answered operation naming the level it was served at")
	}
	return cr
}

// describeOp is one line about an operation, for reports: who, where, what, when, and what
// the server said.
func describeOp(op *Op) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[%s..%s] p%d ", fmtTime(op.Invoke), fmtTime(op.Complete), op.Process)
	if op.Session > 0 {
		fmt.Fprintf(&b, "session %d ", op.Session)
	}
	fmt.Fprintf(&b, "%s %s %s %s", op.Node, op.Level, op.F, op.Key)
	switch op.F {
	case FRead:
		switch {
		case op.Type != TypeOK:
		case op.Absent:
			b.WriteString(" -> absent")
		default:
			fmt.Fprintf(&b, " -> %q", op.Value)
		}
	case FWrite:
		fmt.Fprintf(&b, " %q", op.Value)
	case FCAS:
		from := fmt.Sprintf("%q", op.From)
		if op.FromAbsent {
			from = "absent"
		}
		fmt.Fprintf(&b, " %s -> %q", from, op.Value)
	}
	fmt.Fprintf(&b, " : %s", op.Type)
	var notes []string
	if op.ReceivedBy != "" && op.ReceivedBy != op.Node && op.ReceivedBy != op.ServedBy {
		notes = append(notes, "received by "+op.ReceivedBy) // the client failed over from op.Node
	}
	if op.ServedBy != "" && op.ServedBy != op.Node {
		notes = append(notes, "served by "+op.ServedBy)
	}
	if op.Served != "" && op.Served != op.Level {
		notes = append(notes, "served as "+op.Served)
	}
	if op.Version != "" {
		notes = append(notes, "version "+op.Version)
	}
	if op.State != "" && op.State != "committed" {
		notes = append(notes, op.State)
	}
	if op.Error != "" {
		notes = append(notes, op.Error)
	}
	if len(notes) > 0 {
		b.WriteString(" (" + strings.Join(notes, ", ") + ")")
	}
	return b.String()
}

// fmtTime is a run time in seconds with milliseconds, "never" for an operation that has no
// return (indeterminate).
func fmtTime(ns int64) string {
	if ns == maxTime {
		return "never"
	}
	return fmt.Sprintf("%.3fs", float64(ns)/1e9)
}

// parseVersion parses a version the server reported; the zero Version when absent or garbled.
func parseVersion(s string) consistency.Version {
	v, err := consistency.ParseVersion(s)
	if err != nil {
		return consistency.Version{}
	}
	return v
}

// compareVersions orders version texts as the server does ("" is oldest).
func compareVersions(a, b string) int {
	return parseVersion(a).Compare(parseVersion(b))
}

// byWorkload returns the operations of one workload.
func byWorkload(ops []*Op, name string) []*Op {
	var out []*Op
	for _, op := range ops {
		if op.Workload == name {
			out = append(out, op)
		}
	}
	return out
}

func durationMS(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
