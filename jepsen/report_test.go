package jepsen

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dialkv/dialkv/client"
)

// sampleOps is a small run: strong and eventual operations, some during a partition on the
// minority side.
func sampleOps() ([]*Op, []AppliedWindow) {
	h := &hist{}
	for i := range int64(20) {
		h.write(1, "v", i*100, i*100+5, TypeOK).Node = "n1"
		ev := h.write(2, "e", i*100, i*100+2, TypeOK)
		ev.Level, ev.Node = client.ConsistencyEventual, "n3"
	}
	f := h.write(3, "x", 1600, 2700, TypeFail)
	f.Node, f.Code = "n3", client.CodeNoLeader
	i := h.write(3, "y", 1700, 1800, TypeInfo)
	i.Node = "n3"
	c := h.add(Op{Process: 4, F: FCAS, From: "a", Value: "b", Invoke: 1800, Complete: 1810, Type: TypeFail, Code: client.CodeConflict, Node: "n1"})
	_ = c
	ws := []AppliedWindow{{Start: 1500 * ms1, End: 2200 * ms1, Kinds: "partition", Description: "partition halves n3 | n1,n2", Minority: []string{"n3"}}}
	return h.ops, ws
}

func TestSummarize(t *testing.T) {
	ops, ws := sampleOps()
	s := Summarize(ops, ws, map[string]int{client.ConsistencyStrong: 2})
	if len(s.Levels) != 2 || s.Levels[0].Level != client.ConsistencyStrong || s.Levels[1].Level != client.ConsistencyEventual {
		t.Fatalf("levels %+v", s.Levels)
	}
	strong := s.Levels[0]
	// 20 writes + a cas answered conflict count as answered; one failed, one indeterminate.
	if strong.OK != 21 || strong.Fail != 1 || strong.Info != 1 || strong.Anomalies != 2 {
		t.Errorf("strong row %+v", strong)
	}
	if strong.AvailQuiet != 1 || strong.AvailFaulted >= 1 {
		t.Errorf("availability quiet %v, during faults %v", strong.AvailQuiet, strong.AvailFaulted)
	}
	var minority *SideStats
	for i := range s.Partition {
		if s.Partition[i].Level == client.ConsistencyStrong && s.Partition[i].Side == "minority" {
			minority = &s.Partition[i]
		}
	}
	if minority == nil || minority.Fail != 1 || minority.Info != 1 || minority.OK != 0 {
		t.Errorf("strong on the minority side: %+v (all %+v)", minority, s.Partition)
	}
	if s.Baseline <= 0 {
		t.Errorf("baseline %v", s.Baseline)
	}
}

func TestPercentile(t *testing.T) {
	xs := []float64{5, 1, 4, 2, 3}
	if p := percentile(xs, 50); p != 3 {
		t.Errorf("p50 %v", p)
	}
	if p := percentile(xs, 100); p != 5 {
		t.Errorf("max %v", p)
	}
	if p := percentile(nil, 99); p != 0 {
		t.Errorf("empty %v", p)
	}
}

func mustWellFormedSVG(t *testing.T, name, s string) {
	t.Helper()
	dec := xml.NewDecoder(strings.NewReader(s))
	root := ""
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s is not well-formed XML: %v", name, err)
		}
		if se, ok := tok.(xml.StartElement); ok && root == "" {
			root = se.Name.Local
		}
	}
	if root != "svg" {
		t.Errorf("%s: root element %q", name, root)
	}
}

func TestPlots(t *testing.T) {
	ops, ws := sampleOps()
	lat := latencyPlot(ops, ws, 3)
	mustWellFormedSVG(t, "latency", lat)
	for _, want := range []string{"strong ok", "eventual ok", "failed", "indeterminate", "fault window", "<circle", "#f4c7c3", "partition halves n3 | n1,n2"} {
		if !strings.Contains(lat, want) {
			t.Errorf("latency plot lacks %q", want)
		}
	}
	tl := buildTimeline(ops, 3)
	if tl.ok[client.ConsistencyStrong][0] != 10 {
		t.Errorf("strong ok in second 0: %v", tl.ok[client.ConsistencyStrong])
	}
	for name, s := range map[string]string{"throughput": throughputPlot(tl, ws), "availability": availabilityPlot(tl, ws)} {
		mustWellFormedSVG(t, name, s)
		if !strings.Contains(s, "<path d=\"M") || !strings.Contains(s, "fault window") {
			t.Errorf("%s plot has no line or no fault band", name)
		}
	}
	// Titles and labels are escaped.
	p := &plot{title: "a < b & c", xmax: 1, ymax: 1}
	mustWellFormedSVG(t, "escaped", p.svg())
}

func TestNiceTicks(t *testing.T) {
	got := niceTicks(60, 10)
	if got[0] != 0 || got[len(got)-1] != 60 || len(got) != 7 {
		t.Errorf("ticks %v", got)
	}
	if got := niceTicks(0, 5); len(got) != 1 {
		t.Errorf("ticks of 0: %v", got)
	}
}

func TestResultFiles(t *testing.T) {
	ops, ws := sampleOps()
	dir := t.TempDir()
	res := &Result{Name: "register_partition_local", Dir: dir, Verdict: VerdictFail, Windows: ws,
		Config:  ConfigSummary{Backend: "local", Workloads: []string{"register"}, Nemesis: "partition", Nodes: 3, Clients: 4, Rate: 100, Time: "3s"},
		Summary: Summarize(ops, ws, nil),
		Checks: []CheckResult{
			{Checker: CheckerLinearizable, Workload: "register", Valid: false, Summary: "NOT linearizable",
				Anomalies: []Anomaly{{Kind: "stale-read", Key: "register/s00.0", Description: "old value", Ops: []string{"stale read: ..."}}},
				Files:     []string{"linearizability-register_s00.0.html"}},
			{Checker: CheckerConvergence, Valid: true, Summary: "every node agrees"},
		}}
	if res.Valid() {
		t.Error("a failed check, yet valid")
	}
	if err := res.writeFiles(); err != nil {
		t.Fatal(err)
	}
	if err := writePlots(dir, ops, ws, 3*time.Second); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(dir, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"# kvjepsen register_partition_local: FAIL", "| strong |", "| eventual |", "## The trade-off under partitions",
		"| strong | minority |", "stale-read", "linearizability-register_s00.0.html", `partition halves n3 \| n1,n2`, "latency.svg"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report.md lacks %q", want)
		}
	}
	var back Result
	b, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &back); err != nil || back.Verdict != VerdictFail || len(back.Checks) != 2 {
		t.Errorf("results.json: %v %+v", err, back)
	}
	for _, f := range []string{"latency.svg", "throughput.svg", "availability.svg"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		mustWellFormedSVG(t, f, string(b))
	}
	var out bytes.Buffer
	res.WriteTable(&out)
	for _, want := range []string{"level", "strong", "minority", "FAIL register linearizable", "stale-read", "\nFAIL\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
}

func TestConfigValidate(t *testing.T) {
	ok := DefaultConfig()
	ok.Backend = "local"
	if err := ok.Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	bad := []func(*Config){
		func(c *Config) { c.Workloads = []string{"bank"} },
		func(c *Config) { c.Workloads = []string{"set", "set"} },
		func(c *Config) { c.Nemesis = "meteor" },
		func(c *Config) { c.Backend = "kubernetes" },
		func(c *Config) { c.Clients = 1 },
		func(c *Config) { c.Unsafe = "everything" },
		func(c *Config) { c.Rate = 0 },
	}
	for i, mutate := range bad {
		c := ok
		mutate(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("case %d: invalid config accepted", i)
		}
	}
	if name := ok.TestName(); name != "register-set-session_partition-kill-pause_local" {
		t.Errorf("test name %q", name)
	}
}
