package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Two runs as the harness writes them, cut down to the fields anchorverdict reads: a strong half
// (dialkv's put strong, raw raft and physical rows that must be ignored) and an eventual half.
const strongRun = `=== a log line the harness also writes
RESULT {"group":"phys","name":"fsync","ops_per_s":5000,"p50_ms":0.2,"p99_ms":0.5,"errors":0}
RESULT {"group":"hashicorp-raft-3node(1 process)","name":"apply","ops_per_s":9000,"p50_ms":6,"p99_ms":16,"errors":0}
RESULT {"group":"etcd-3.4.23-3node","name":"put-seq@leader","ops_per_s":1000,"p50_ms":0.8,"p99_ms":1.7,"errors":0}
RESULT {"group":"etcd-3.4.23-3node","name":"put","ops_per_s":5000,"p50_ms":10,"p99_ms":25,"errors":0}
RESULT {"group":"etcd-3.4.23-3node","name":"get-lin","ops_per_s":6000,"p50_ms":8,"p99_ms":25,"errors":0}
RESULT {"group":"go-http-memkv(1 node, no repl, no disk)","name":"get-ser","ops_per_s":30000,"p50_ms":1.6,"p99_ms":8,"errors":0}
RESULT {"group":"dialkv(strong put)","name":"put-seq@leader","ops_per_s":800,"p50_ms":1.2,"p99_ms":2.6,"errors":0}
RESULT {"group":"dialkv(strong put)","name":"put","ops_per_s":5500,"p50_ms":11,"p99_ms":24,"errors":0}
RESULT {"group":"dialkv(strong put)","name":"get-lin","ops_per_s":15000,"p50_ms":3,"p99_ms":15,"errors":0}
RESULT {"group":"dialkv(strong put)","name":"get-ser","ops_per_s":18000,"p50_ms":3,"p99_ms":13,"errors":0}
`

const eventualRun = `RESULT {"group":"etcd-3.4.23-3node","name":"put","ops_per_s":4000,"p50_ms":14,"p99_ms":35,"errors":0}
RESULT {"group":"etcd-3.4.23-3node","name":"get-lin","ops_per_s":5000,"p50_ms":12,"p99_ms":37,"errors":0}
RESULT {"group":"go-http-memkv(1 node, no repl, no disk)","name":"get-ser","ops_per_s":24000,"p50_ms":2,"p99_ms":9,"errors":0}
RESULT {"group":"dialkv(eventual put)","name":"put","ops_per_s":5000,"p50_ms":11,"p99_ms":37,"errors":0}
RESULT {"group":"dialkv(eventual put)","name":"get-lin","ops_per_s":9000,"p50_ms":5,"p99_ms":30,"errors":0}
RESULT {"group":"dialkv(eventual put)","name":"get-ser","ops_per_s":20000,"p50_ms":3,"p99_ms":15,"errors":0}
`

func mustParse(t *testing.T, name, text string) run {
	t.Helper()
	r, err := parseRun(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	r.name = name
	return r
}

// row returns the verdict table's line for the target whose name starts with prefix.
func row(t *testing.T, table, prefix string) string {
	t.Helper()
	for _, line := range strings.Split(table, "\n") {
		if strings.HasPrefix(line, prefix) {
			return strings.Join(strings.Fields(line), " ")
		}
	}
	t.Fatalf("no row %q in\n%s", prefix, table)
	return ""
}

func TestVerdicts(t *testing.T) {
	var out bytes.Buffer
	writeVerdicts(&out, []run{mustParse(t, "g1", strongRun), mustParse(t, "g2", eventualRun)})
	table := out.String()
	for _, want := range []struct{ prefix, row string }{
		// 5500/5000, p99 24 <= 25; the eventual run cannot speak to strong puts.
		{"strong put", "strong put 64c vs etcd put (p99 no worse) >= 2x 1.10 - 1.10 MISSED"},
		// 15000/6000 and 9000/5000: median of 2.50 and 1.80.
		{"strong get", "strong get 64c vs etcd linearizable get >= 2x 2.50 1.80 2.15 met"},
		{"sequential", "sequential strong put p50, dialkv / etcd <= 1x 1.50 - 1.50 MISSED"},
		// p50 11 ms misses the 2 ms side condition.
		{"eventual put", "eventual put 64c vs etcd put (p50 < 2 ms) >= 5x - 1.25* 1.25 MISSED"},
		{"eventual get", "eventual get 64c vs the bare HTTP server >= 0.7x 0.60 0.83 0.72 met"},
	} {
		if got := row(t, table, want.prefix); got != want.row {
			t.Errorf("got  %q\nwant %q", got, want.row)
		}
	}
}

func TestSideConditionAndMissingRows(t *testing.T) {
	// dialkv's p99 above etcd's: 4x etcd's throughput, and still no met verdict.
	slow := strings.Replace(strongRun, `"name":"put","ops_per_s":5500,"p50_ms":11,"p99_ms":24`, `"name":"put","ops_per_s":20000,"p50_ms":11,"p99_ms":26`, 1)
	// A run without etcd: nothing against etcd can be said, the bare-server target still can.
	noEtcd := "RESULT {\"group\":\"go-http-memkv\",\"name\":\"get-ser\",\"ops_per_s\":10000,\"errors\":0}\n" +
		"RESULT {\"group\":\"dialkv(strong put)\",\"name\":\"get-ser\",\"ops_per_s\":8000,\"errors\":0}\n" +
		"RESULT {\"group\":\"dialkv(strong put)\",\"name\":\"get-lin\",\"ops_per_s\":8000,\"errors\":3}\n"
	var out bytes.Buffer
	writeVerdicts(&out, []run{mustParse(t, "a", slow), mustParse(t, "b", noEtcd)})
	table := out.String()
	if got, want := row(t, table, "strong put"), "strong put 64c vs etcd put (p99 no worse) >= 2x 4.00* - 4.00 MISSED (side condition)"; got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	if got, want := row(t, table, "eventual get"), "eventual get 64c vs the bare HTTP server >= 0.7x 0.60 0.80 0.70 met"; got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	// A row with errors is not a measurement: the strong get of run b is left out.
	if got, want := row(t, table, "strong get"), "strong get 64c vs etcd linearizable get >= 2x 2.50 - 2.50 met"; got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

func TestBadInput(t *testing.T) {
	for name, text := range map[string]string{
		"no dialkv":      "RESULT {\"group\":\"etcd-3.4\",\"name\":\"put\",\"ops_per_s\":1}\n",
		"broken json":    "RESULT {\"group\":\n",
		"both put kinds": strongRun + eventualRun,
	} {
		if _, err := parseRun(strings.NewReader(text)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "20261202T211854Z.jsonl")
	if err := os.WriteFile(path, []byte(strongRun), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := readRun(path)
	if err != nil || r.name != "20261202T211854Z" || r.putLevel != "strong" {
		t.Errorf("readRun: %+v, %v", r.name, err)
	}
	if _, err := readRun(filepath.Join(dir, "missing.jsonl")); err == nil {
		t.Error("a missing file must be an error")
	}
}

// The CPU table: dialkv's and the baseline's CPU per operation, and the cores the goal's rate
// would need at dialkv's cost. Rows the harness measured no CPU for are left out.
func TestCPUBounds(t *testing.T) {
	withCPU := strings.NewReplacer(
		`"name":"put","ops_per_s":5500,"p50_ms":11,"p99_ms":24,"errors":0`, `"name":"put","ops_per_s":5500,"p50_ms":11,"p99_ms":24,"errors":0,"servers_cpu_pct":130,"loadgen_cpu_pct":30`,
		`"name":"put","ops_per_s":5000,"p50_ms":10,"p99_ms":25,"errors":0`, `"name":"put","ops_per_s":5000,"p50_ms":10,"p99_ms":25,"errors":0,"servers_cpu_pct":120,"loadgen_cpu_pct":45`,
		`"name":"get-ser","ops_per_s":18000,"p50_ms":3,"p99_ms":13,"errors":0`, `"name":"get-ser","ops_per_s":18000,"p50_ms":3,"p99_ms":13,"errors":0,"servers_cpu_pct":100,"loadgen_cpu_pct":80`,
		`"name":"get-ser","ops_per_s":30000,"p50_ms":1.6,"p99_ms":8,"errors":0`, `"name":"get-ser","ops_per_s":30000,"p50_ms":1.6,"p99_ms":8,"errors":0,"servers_cpu_pct":75,"loadgen_cpu_pct":45`,
	).Replace(strongRun)
	var out bytes.Buffer
	writeCPUBounds(&out, []run{mustParse(t, "h1", withCPU), mustParse(t, "h2", eventualRun)}, 2)
	table := out.String()
	// 160 % of a core over 5,500 puts/s = 291 us; etcd 165 % over 5,000 = 330 us; 2 x 5,000/s
	// at 291 us needs 2.91 cores: 31.25 % less CPU per put fits 2 cores, rounded up to 32.
	if got, want := row(t, table, "strong put"), "strong put 64c vs etcd put (p99 no worse) h1 291 330 10000 2.91 needs 32 % less CPU per op"; got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	// 180 % over 18,000 reads/s = 100 us; memkv 120 % over 30,000 = 40 us; 0.7 x 30,000/s at
	// 100 us needs 2.10 cores.
	if got, want := row(t, table, "eventual get"), "eventual get 64c vs the bare HTTP server h1 100 40 21000 2.10 needs 5 % less CPU per op"; got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	// No CPU measured for etcd's get-lin, nor anything in run h2; no latency target.
	for _, absent := range []string{"strong get", "sequential", "eventual put", "h2"} {
		if strings.Contains(table, absent) {
			t.Errorf("the table has a row for %q:\n%s", absent, table)
		}
	}
}

// The latency floor: raw raft's apply-seq p50 against etcd's put-seq@leader p50, next to
// dialkv's, for strong runs that measured all three.
func TestLatencyFloor(t *testing.T) {
	withSeq := strongRun + `RESULT {"group":"hashicorp-raft-3node(1 process)","name":"apply-seq","ops_per_s":900,"p50_ms":1.0,"p99_ms":2,"errors":0}` + "\n" +
		// The harness's run without fsync comes after and must not count.
		`RESULT {"group":"hashicorp-raft-3node(1 process) NoSync","name":"apply-seq","ops_per_s":9000,"p50_ms":0.1,"p99_ms":0.2,"errors":0}` + "\n"
	var out bytes.Buffer
	writeLatencyFloor(&out, []run{mustParse(t, "h1", withSeq), mustParse(t, "h2", strongRun), mustParse(t, "h3", eventualRun)})
	table := out.String()
	// 1.0 / 0.8 and 1.2 / 0.8; h2 has no raft row, h3 no sequential rows.
	if got, want := row(t, table, "h1"), "h1 1.000 0.800 1.200 1.25 1.50"; got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	if strings.Contains(table, "h2") || strings.Contains(table, "h3") {
		t.Errorf("rows for runs without all three measurements:\n%s", table)
	}
}

// The library's own rate: raw raft's apply at 64 clients against etcd's put, next to dialkv's,
// for strong runs only (the NoSync rows never count).
func TestLibraryRate(t *testing.T) {
	noSync := strongRun + `RESULT {"group":"hashicorp-raft-3node(1 process) NoSync","name":"apply","ops_per_s":30000,"p50_ms":1,"p99_ms":3,"errors":0}` + "\n"
	var out bytes.Buffer
	writeLibraryRate(&out, []run{mustParse(t, "h1", noSync), mustParse(t, "h2", eventualRun)})
	table := out.String()
	// 9000 / 5000 and 5500 / 5000.
	if got, want := row(t, table, "h1"), "h1 9000 5000 5500 1.80 1.10"; got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	if strings.Contains(table, "h2") {
		t.Errorf("a row for the eventual run:\n%s", table)
	}
}

// The sequential floor with HTTP: raw raft's apply-seq p50 plus the bare server's put-seq p50
// against etcd's put-seq@leader p50; out of reach when the sum is above etcd's.
func TestHTTPFloor(t *testing.T) {
	seq := `RESULT {"group":"hashicorp-raft-3node(1 process)","name":"apply-seq","ops_per_s":900,"p50_ms":0.7,"p99_ms":2,"errors":0}` + "\n"
	bare := func(p50 string) string {
		return `RESULT {"group":"go-http-memkv(1 node, no repl, no disk)","name":"put-seq","ops_per_s":9000,"p50_ms":` + p50 + `,"p99_ms":0.3,"errors":0}` + "\n"
	}
	var out bytes.Buffer
	writeHTTPFloor(&out, []run{
		mustParse(t, "h1", strongRun+seq+bare("0.1")),  // 0.8 of etcd's 0.8: nothing left
		mustParse(t, "h2", strongRun+seq+bare("0.25")), // 0.95: above
		mustParse(t, "h3", strongRun+seq+bare("0.05")), // 0.75: 0.05 ms left
		mustParse(t, "h4", strongRun+bare("0.1")),      // no raft row
		mustParse(t, "h5", eventualRun+seq+bare("0.1")),
	})
	table := out.String()
	for _, want := range []string{
		"h1 0.700 0.100 0.800 0.800 1.200 1.00 0.000 ms left for dialkv's own work",
		"h2 0.700 0.250 0.950 0.800 1.200 1.19 out of reach: the floor is 19 % above etcd's p50",
		"h3 0.700 0.050 0.750 0.800 1.200 0.94 0.050 ms left for dialkv's own work",
	} {
		if got := row(t, table, want[:2]); got != want {
			t.Errorf("got  %q\nwant %q", got, want)
		}
	}
	if strings.Contains(table, "h4") || strings.Contains(table, "h5") {
		t.Errorf("rows for runs without every measurement, or with eventual puts:\n%s", table)
	}
}

// The eventual floor: the bare server's put at 64 clients against 5x etcd's put rate and the
// 2 ms p50 limit, in both halves.
func TestEventualFloor(t *testing.T) {
	bare := func(rate, p50 string) string {
		return `RESULT {"group":"go-http-memkv(1 node, no repl, no disk)","name":"put","ops_per_s":` + rate + `,"p50_ms":` + p50 + `,"p99_ms":6,"errors":0}` + "\n"
	}
	var out bytes.Buffer
	writeEventualFloor(&out, []run{
		mustParse(t, "e1", eventualRun+bare("40000", "1.2")), // goal 20,000: half of it
		mustParse(t, "e2", eventualRun+bare("17000", "3.04")),
		mustParse(t, "e3", strongRun+bare("24000", "1.9")), // goal 25,000 > 24,000
		mustParse(t, "e4", eventualRun),                    // no bare put row
	})
	table := out.String()
	for _, want := range []string{
		"e1 40000 1.200 4000 20000 0.50 needs 50 % of the bare server's rate",
		"e2 17000 3.040 4000 20000 1.18 out of reach: the bare server's own p50 is 3.04 ms",
		"e3 24000 1.900 5000 25000 1.04 out of reach: the goal is faster than the bare server",
	} {
		if got := row(t, table, want[:2]); got != want {
			t.Errorf("got  %q\nwant %q", got, want)
		}
	}
	if strings.Contains(table, "e4") {
		t.Errorf("a row for a run without the bare server's put:\n%s", table)
	}
}
