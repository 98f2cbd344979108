// Command kvjepsen is dialkv's partition-test harness: it starts a cluster of kvd processes,
// runs workloads against it while a nemesis injects faults, heals, checks the history against
// the guarantees of DESIGN.md and writes a report.
//
//	kvjepsen --backend netns --workload register,set,session --nemesis partition,kill,pause \
//	         --nodes 5 --time 60s --clients 12 --rate 300
//
// It exits 0 when the verdict is PASS, 1 on FAIL, 2 when the run could not be carried out.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/dialkv/dialkv/internal/plant"
	"github.com/dialkv/dialkv/jepsen"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "selftest" {
		return selfTest(args[1:], stdout, stderr)
	}
	cfg, clean, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "kvjepsen: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if clean {
		removed, err := jepsen.CleanStale(ctx)
		for _, r := range removed {
			fmt.Fprintf(stdout, "removed %s\n", r)
		}
		if err != nil {
			fmt.Fprintf(stderr, "kvjepsen: clean: %v\n", err)
			return 2
		}
		fmt.Fprintf(stdout, "%d leftovers removed\n", len(removed))
		return 0
	}
	if cfg.Backend == "netns" {
		logf := func(format string, args ...any) { fmt.Fprintf(stdout, format+"\n", args...) }
		if err := jepsen.EnsureNetnsTools(ctx, logf); err != nil {
			fmt.Fprintf(stderr, "kvjepsen: %v (or use --backend local)\n", err)
			return 2
		}
	}
	cfg.Out = stdout
	res, err := jepsen.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "kvjepsen: %v\n", err)
		return 2
	}
	if res.Verdict != jepsen.VerdictPass {
		return 1
	}
	return 0
}

const usage = `usage: kvjepsen [flags]
       kvjepsen selftest [--bin DIR] [--case NAME,...] (kvjepsen selftest -h)

Starts a dialkv cluster, runs workloads against it while a nemesis injects faults, heals,
settles, reads every key back on every node at every level, checks the history against the
guarantees of DESIGN.md and writes history, checker results, plots and report.md under
STORE/<test>/<time>/. Prints one progress line per second, then a summary table and PASS or
FAIL. Exit status: 0 PASS, 1 FAIL, 2 the run could not be carried out.

Workloads (--workload, comma-separated; the clients are split between them):
  register   strong reads, writes and compare-and-sets; linearizability per key (porcupine)
  mixed      strong reads and writes with eventual writes on the same keys; linearizability
  set        unique keys written strong and eventual; no acknowledged write lost, none invented
  session    session reads and writes from node to node, strong deletes and creates-if-absent
             of keys just written eventually; read-your-writes (deletes included), monotonic reads
  staleness  bounded and eventual reads of a counter; staleness in versions and ms
  delete     strong and eventual writes and deletes while tombstones are purged; no deleted
             key comes back, no acknowledged write lost

Nemeses (--nemesis, comma-separated alternatives, one per fault window; join with + to
combine, e.g. partition+clock; "none" for no faults):
  partition  random halves, isolate the leader, bridge, one-way
  kill       kill -9 a random node or the leader, restart it at the end of the window
  pause      SIGSTOP a random node or the leader, SIGCONT at the end of the window
  clock      skew the clocks of 1 to half the nodes by 0.2-2s, or strobe them (fault hook)
  slow       delay+jitter or packet loss on what 1 to half the nodes send to the others
             (fault hook; loss via nftables on netns)
  member     remove a random node or the leader from the cluster (kvctl member remove; it hands
             its uncommitted writes over and stops), rejoin it empty at the end of the window

Backends (--backend): netns (Linux, root: each node in its own network namespace, partitions
as nftables rules; default when available) or local (127.0.0.1, no root; network faults
through kvd's fault hook, docs/faults.md) or docker (each node a container of $KVJEPSEN_IMAGE,
default dialkv:dev from make image, on a private network; network faults through the fault hook,
kill and pause with docker kill and docker pause).

Flags:
`

func parseFlags(args []string, stderr io.Writer) (jepsen.Config, bool, error) {
	cfg := jepsen.DefaultConfig()
	fs := flag.NewFlagSet("kvjepsen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	workloads := fs.String("workload", strings.Join(cfg.Workloads, ","), "workloads to run together: "+strings.Join(jepsen.Workloads, ","))
	fs.StringVar(&cfg.Backend, "backend", cfg.Backend, "cluster backend: netns, local or docker")
	fs.StringVar(&cfg.Nemesis, "nemesis", cfg.Nemesis, "faults: partition,kill,pause,clock,slow,member (+ combines; none)")
	fs.IntVar(&cfg.Nodes, "nodes", cfg.Nodes, "cluster size")
	fs.DurationVar(&cfg.Time, "time", cfg.Time, "how long the workload runs (healing, settling and checking come after)")
	fs.IntVar(&cfg.Clients, "clients", cfg.Clients, "concurrent clients, split between the workloads and spread over the nodes")
	fs.Float64Var(&cfg.Rate, "rate", cfg.Rate, "target operations per second, all clients together")
	fs.DurationVar(&cfg.FaultOn, "fault-on", cfg.FaultOn, "length of each fault window")
	fs.DurationVar(&cfg.FaultOff, "fault-off", cfg.FaultOff, "quiet time before the first and between fault windows")
	fs.IntVar(&cfg.Keys, "keys", cfg.Keys, "register/mixed key slots (each rotated to a fresh key after --ops-per-key operations)")
	fs.IntVar(&cfg.OpsPerKey, "ops-per-key", cfg.OpsPerKey, "operations per register key before it rotates")
	fs.StringVar(&cfg.Unsafe, "unsafe", "", "switch on a deliberately unsafe mode the checkers must catch: strong-reads or eventual-commit")
	fs.StringVar(&cfg.Plant, "plant", "", "switch on bugs planted in kvd, comma-separated (needs kvd built with -tags plantbugs; see kvjepsen selftest): "+strings.Join(plant.Names(), ","))
	bin := fs.String("bin", "", "directory with kvd (default: next to kvjepsen, else ./bin)")
	fs.StringVar(&cfg.Store, "store", cfg.Store, "where run directories are written")
	fs.StringVar(&cfg.Name, "name", "", "test name (default from workloads, nemeses and backend)")
	fs.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "random seed (schedule, targets, operations); 0 picks one, the report says which")
	fs.DurationVar(&cfg.OpTimeout, "op-timeout", cfg.OpTimeout, "bound on one operation; an unanswered write is then indeterminate")
	fs.DurationVar(&cfg.Settle, "settle", cfg.Settle, "bound on waiting for the healed cluster to settle")
	fs.DurationVar(&cfg.CheckTimeout, "check-timeout", cfg.CheckTimeout, "bound on the linearizability search per key (reaching it fails the run)")
	fs.DurationVar(&cfg.MaxStaleness, "max-staleness", cfg.MaxStaleness, "bound of the staleness workload's bounded reads")
	fs.DurationVar(&cfg.StalenessTolerance, "staleness-tolerance", cfg.StalenessTolerance, "tolerance added to a bounded read's bound before it counts as too stale")
	fs.Float64Var(&cfg.MinBaseline, "min-baseline", cfg.MinBaseline, "fraction of --rate the ok throughput before the first fault must reach")
	fs.IntVar(&cfg.FinalSample, "final-sample", cfg.FinalSample, "set keys read one by one on every node at every level after the run (all are compared through lists)")
	fs.DurationVar(&cfg.LeaderWait, "leader-wait", cfg.LeaderWait, "kvd --leader-wait: how long a request waits for a leader before 503")
	fs.BoolVar(&cfg.Keep, "keep", false, "keep the nodes' data directories (under the run directory)")
	fs.StringVar(&cfg.LogLevel, "log-level", cfg.LogLevel, "kvd --log-level")
	clean := fs.Bool("clean", false, "remove namespaces and interfaces left by netns runs that were killed, then exit")
	if err := fs.Parse(args); err != nil {
		return cfg, false, err
	}
	if fs.NArg() > 0 {
		return cfg, false, fmt.Errorf("unexpected argument %q (see kvjepsen -h)", fs.Arg(0))
	}
	cfg.Workloads = splitList(*workloads)
	cfg.Bin = *bin
	if cfg.Bin == "" {
		cfg.Bin = defaultBin()
	}
	if *clean {
		return cfg, true, nil
	}
	return cfg, false, cfg.Validate()
}

const selfTestUsage = `usage: kvjepsen selftest [flags]

Shows that the harness fails a store that breaks a guarantee: runs a kvd built with
-tags plantbugs (go build -tags hashicorpmetrics,plantbugs -o DIR/ ./cmd/kvd ./cmd/kvctl, or
make jepsen-selftest) once per planted bug, with the workload and nemesis that should catch it,
and once with no bug planted, on 3 local nodes (about 4 minutes in all). Exit status 0 only
when every bug's run FAILS by a checker expected to catch it and the control run PASSES; 1
otherwise; 2 when the self-test could not be carried out.

Cases (--case, comma-separated; default all):
%s
Flags:
`

// selfTest is kvjepsen selftest.
func selfTest(args []string, stdout, stderr io.Writer) int {
	base := jepsen.SelfTestDefaults()
	fs := flag.NewFlagSet("kvjepsen selftest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		var cases strings.Builder
		for _, c := range jepsen.SelfTestCases {
			fmt.Fprintf(&cases, "  %-22s %s, nemesis %s: %s\n", c.Name(), strings.Join(c.Workloads, ","), c.Nemesis, c.Expected())
		}
		fmt.Fprintf(stderr, selfTestUsage, cases.String())
		fs.PrintDefaults()
	}
	bin := fs.String("bin", "", "directory with a plantbugs build of kvd (default: next to kvjepsen, else ./bin)")
	fs.StringVar(&base.Store, "store", base.Store, "where run directories are written")
	names := fs.String("case", "", "cases to run, comma-separated (default all)")
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		return 0
	} else if err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "kvjepsen selftest: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	base.Bin = *bin
	if base.Bin == "" {
		base.Bin = defaultBin()
	}
	cases, err := jepsen.SelectSelfTestCases(splitList(*names))
	if err != nil {
		fmt.Fprintf(stderr, "kvjepsen selftest: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Fprintf(stdout, "kvjepsen selftest: %d runs with kvd from %s\n", len(cases), base.Bin)
	outcomes := jepsen.SelfTest(ctx, base, cases, func(o jepsen.SelfTestOutcome) {
		got := o.Verdict
		if o.Err != nil {
			got = "ERROR: " + o.Err.Error()
		}
		mark := "as expected"
		if !o.OK {
			mark = "NOT AS EXPECTED"
		}
		fmt.Fprintf(stdout, "%-22s %s in %v (expected %s): %s; failed checks: %s; %s\n", o.Case.Name(), got, o.Took.Round(time.Second),
			o.Case.Expected(), mark, orDash(strings.Join(o.Failed, "; ")), o.Dir)
	})
	fmt.Fprintln(stdout)
	jepsen.WriteSelfTestTable(stdout, outcomes)
	for _, o := range outcomes {
		if o.Err != nil {
			fmt.Fprintln(stdout, "\nSELFTEST ERROR: a run could not be carried out")
			return 2
		}
	}
	if !jepsen.SelfTestPassed(outcomes) || len(outcomes) < len(cases) {
		fmt.Fprintln(stdout, "\nSELFTEST FAIL: the harness missed a planted bug, or failed the control run (see the run directories)")
		return 1
	}
	fmt.Fprintln(stdout, "\nSELFTEST PASS: every planted bug was caught by the checker expected, and the control run passed")
	return 0
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// defaultBin is the directory of the kvjepsen binary when kvd is there (make build puts all
// three in bin/), else ./bin.
func defaultBin() string {
	if exe, err := os.Executable(); err == nil {
		dir := filepath.Dir(exe)
		if _, err := os.Stat(filepath.Join(dir, "kvd")); err == nil {
			return dir
		}
	}
	return "bin"
}

// splitList reads a comma-separated flag value: its items, trimmed, empty ones dropped.
func splitList(s string) []string {
	var items []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			items = append(items, item)
		}
	}
	return items
}
