package main

import (
	"bytes"
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Lines as scale.sh writes them: reports cut down to the fields scalereport reads, plus one
// measurement whose kvctl printed nothing.
const sampleResults = `{"nodes":3,"row":"spread","clients":0,"exit":0,"report":{"workload":"spread","rounds":100,"complete":100,"failed_writes":0,"incomplete":0,"all_nodes":{"count":100,"p50_ms":4.2,"p99_ms":9.5,"max_ms":12},"poll_window":{"count":300,"p50_ms":1.3},"committed_pct":2,"polls_per_s":900,"loadgen_cpu_pct":20,"machine_busy_pct":70,"steal_pct":3}}
{"nodes":3,"row":"strong put","clients":1,"exit":0,"report":{"total":{"ops":900,"ops_per_s":180,"p50_ms":5.1,"p99_ms":20.4,"max_ms":40,"errors":0},"loadgen_cpu_pct":5,"machine_busy_pct":60,"steal_pct":12.4}}
{"nodes":7,"row":"spread","clients":0,"exit":1,"report":{"workload":"spread","rounds":100,"complete":98,"failed_writes":0,"incomplete":2,"all_nodes":{"count":98,"p50_ms":60,"p99_ms":180,"max_ms":900},"poll_window":{"count":690,"p50_ms":1.5},"committed_pct":30,"polls_per_s":2500,"loadgen_cpu_pct":40,"machine_busy_pct":90}}
{"nodes":7,"row":"strong put","clients":1,"exit":1,"report":null}

{"nodes":5,"row":"strong put","clients":1,"exit":0,"report":{"total":{"ops":800,"ops_per_s":160,"p50_ms":6,"p99_ms":25,"max_ms":50,"errors":0},"loadgen_cpu_pct":5,"machine_busy_pct":60}}
`

func TestTableAndPlot(t *testing.T) {
	dir := t.TempDir()
	in, svg := filepath.Join(dir, "results.jsonl"), filepath.Join(dir, "scaling.svg")
	if err := os.WriteFile(in, []byte(sampleResults), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run(in, svg, "2026-11-22, load 3.1 & rising", &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 6 || !strings.HasPrefix(lines[0], "nodes  measurement") {
		t.Fatalf("table:\n%s", out.String())
	}
	for i, want := range []string{
		"3      eventual write reaches all nodes        100         -      4.20      9.50     12.00       0      20     70      3  poll window p50 1.30 ms; 2% came by Raft first; 900 polls/s",
		"3      strong put, sequential                  900       180      5.10     20.40     40.00       0       5     60     12",
		// Results from before kvctl measured steal: "-".
		"7      eventual write reaches all nodes         98         -     60.00    180.00    900.00       2      40     90      -",
		"7      strong put, sequential             FAILED (exit 1, no measurement)",
		"5      strong put, sequential                  800       160      6.00     25.00     50.00       0       5     60      -",
	} {
		if !strings.HasPrefix(lines[i+1], want) {
			t.Errorf("table line %d:\n%q\nwant it to start with\n%q", i+1, lines[i+1], want)
		}
	}

	data, err := os.ReadFile(svg)
	if err != nil {
		t.Fatal(err)
	}
	plot := string(data)
	dec := xml.NewDecoder(strings.NewReader(plot))
	for {
		if _, err := dec.Token(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("the plot is not well-formed XML: %v", err)
		}
	}
	// Two curves, each a p50 and a p99 line; the strong put curve skips the failed 7-node point
	// and is drawn in node order (3, 5), not input order.
	if n := strings.Count(plot, "<path d=\"M"); n != 1+4 {
		t.Errorf("%d paths, want the axes and 4 lines", n)
	}
	for _, want := range []string{
		"eventual write reaches all nodes, 7 nodes: p99 180 ms",
		"strong put, sequential, 5 nodes: p50 6 ms",
		"2026-11-22, load 3.1 &amp; rising",
		`>nodes</text>`, `>p99</text>`,
	} {
		if !strings.Contains(plot, want) {
			t.Errorf("plot lacks %q", want)
		}
	}
	if strings.Contains(plot, "strong put, sequential, 7 nodes") {
		t.Error("the failed measurement was plotted")
	}
	if i3, i5 := strings.Index(plot, "strong put, sequential, 3 nodes: p50"), strings.Index(plot, "strong put, sequential, 5 nodes: p50"); i3 < 0 || i5 < i3 {
		t.Error("points are not in node order")
	}
}

func TestBadInput(t *testing.T) {
	for name, input := range map[string]string{
		"empty":       "\n",
		"not JSON":    "nodes=3\n",
		"unknown row": `{"nodes":3,"row":"scan","report":null}` + "\n",
		"no nodes":    `{"row":"spread","report":null}` + "\n",
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := readMeasurements(strings.NewReader(input)); err == nil {
				t.Errorf("%q accepted", input)
			}
		})
	}
}
