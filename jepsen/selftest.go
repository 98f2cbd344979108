package jepsen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dialkv/dialkv/internal/plant"
)

// The self-test shows that the harness fails a store that breaks a guarantee: it runs kvd built
// with -tags plantbugs once per planted bug (internal/plant), with the workload and nemesis that
// should catch that bug, and once with no bug planted. It passes only when every bug's run
// fails with a checker expected to catch it, and the control run passes.

// SelfTestCase is one self-test run: the bug to plant ("" for the control run, which must
// pass) and the run that must catch it.
type SelfTestCase struct {
	Bug       string
	Workloads []string
	Nemesis   string
	// Clients, Rate, Keys and OpsPerKey override the base configuration's when set.
	Clients, Keys, OpsPerKey int
	Rate                     float64
	Time, FaultOn, FaultOff  time.Duration
	// Schedule, when set, picks the seed: the first from 1 whose fault schedule it accepts.
	Schedule func([]Window) bool
	// CaughtBy are the checkers expected to fail the run; any one of them suffices.
	CaughtBy []string
}

// Control is the name the self-test gives the run with no bug planted.
const Control = "none"

// Name is the case's bug, or Control.
func (c SelfTestCase) Name() string {
	if c.Bug == "" {
		return Control
	}
	return c.Bug
}

// SelfTestCases are the standard self-test: every planted bug, with a short run on 3 local
// nodes that catches it, and the control run over all the workloads those use.
var SelfTestCases = []SelfTestCase{
	{Bug: plant.NameStrongReadLocal, Workloads: []string{WorkloadRegister}, Nemesis: FaultPartition,
		Time: 15 * time.Second, FaultOn: 5 * time.Second, FaultOff: 5 * time.Second, Schedule: WithMinority,
		CaughtBy: []string{CheckerLinearizable}},
	// Writes the isolated leader acknowledges until it steps down are lost; the majority's
	// reads after its election show the older values. Without faults too, a read right after
	// such an acknowledgement may miss the write: few keys and more clients make both likely.
	{Bug: plant.NameStrongAckEarly, Workloads: []string{WorkloadRegister}, Nemesis: FaultPartition,
		Clients: 12, Rate: 150, Keys: 3, OpsPerKey: 1000, Time: 15 * time.Second, FaultOn: 5 * time.Second, FaultOff: 5 * time.Second, Schedule: EveryWindow("isolate-leader"),
		CaughtBy: []string{CheckerLinearizable, CheckerDurability}},
	{Bug: plant.NameEventualAckEarly, Workloads: []string{WorkloadSet}, Nemesis: FaultKill,
		Time: 15 * time.Second, FaultOn: 5 * time.Second, FaultOff: 5 * time.Second,
		CaughtBy: []string{CheckerSet}},
	{Bug: plant.NameMergeKeepsOlder, Workloads: []string{WorkloadMixed}, Nemesis: "none",
		Time: 10 * time.Second, CaughtBy: []string{CheckerDurability, CheckerLinearizable}},
	// One-way: the cut-off node misses what the others commit and gossip, yet answers every
	// request (its own to the leader are answered), so the session clients that ask it take
	// its answers. Behind a two-way cut it refuses more often, and when roaming clients stayed
	// with the node that last answered, a run with one "halves" partition caught nothing (see
	// jepsen/README.md).
	{Bug: plant.NameSessionIgnoresToken, Workloads: []string{WorkloadSession}, Nemesis: FaultPartition,
		Time: 15 * time.Second, FaultOn: 5 * time.Second, FaultOff: 5 * time.Second, Schedule: EveryWindow("one-way"),
		CaughtBy: []string{CheckerSession}},
	{Bug: plant.NameBoundedUnchecked, Workloads: []string{WorkloadStaleness}, Nemesis: FaultPartition,
		Time: 15 * time.Second, FaultOn: 5 * time.Second, FaultOff: 5 * time.Second, Schedule: WithMinority,
		CaughtBy: []string{CheckerStaleness}},
	// A partition longer than the purge interval (5 s): the majority purges tombstones while
	// the cut-off node holds older eventual writes of the same keys, and submits them when it
	// is back. Such a write comes back only if its key is not written again: 5 key slots of 20
	// operations each make many keys end during the partition.
	{Bug: plant.NamePurgeUnacknowledged, Workloads: []string{WorkloadDelete}, Nemesis: FaultPartition,
		Keys: 5, OpsPerKey: 400, Time: 20 * time.Second, FaultOn: 8 * time.Second, FaultOff: 4 * time.Second,
		CaughtBy: []string{CheckerDeletes}},
	{Workloads: []string{WorkloadRegister, WorkloadMixed, WorkloadSet, WorkloadSession, WorkloadStaleness, WorkloadDelete},
		Nemesis: FaultPartition + "," + FaultKill, Clients: 12, Rate: 120,
		Time: 30 * time.Second, FaultOn: 6 * time.Second, FaultOff: 5 * time.Second},
}

// SelectSelfTestCases returns the standard cases named (bug names, or Control), in the
// standard order; no names means all.
func SelectSelfTestCases(names []string) ([]SelfTestCase, error) {
	if len(names) == 0 {
		return SelfTestCases, nil
	}
	var known []string
	var cases []SelfTestCase
	for _, c := range SelfTestCases {
		known = append(known, c.Name())
		if slices.Contains(names, c.Name()) {
			cases = append(cases, c)
		}
	}
	for _, name := range names {
		if !slices.Contains(known, name) {
			return nil, fmt.Errorf("no self-test case %q: want %s", name, strings.Join(known, ", "))
		}
	}
	return cases, nil
}

// WithMinority is true when the schedule has fault windows and none of them is a bridge
// partition (which leaves no node in a minority).
func WithMinority(ws []Window) bool {
	if len(ws) == 0 {
		return false
	}
	for _, w := range ws {
		for _, f := range w.Faults {
			if f.Kind == FaultPartition && f.Mode == "bridge" {
				return false
			}
		}
	}
	return true
}

// EveryWindow is true when the schedule has fault windows and every one is a fault of mode
// (a partition "isolate-leader", say).
func EveryWindow(mode string) func([]Window) bool {
	return func(ws []Window) bool {
		for _, w := range ws {
			if !slices.ContainsFunc(w.Faults, func(f Fault) bool { return f.Mode == mode }) {
				return false
			}
		}
		return len(ws) > 0
	}
}

// SeedWhere returns the first seed from 1 whose fault schedule for cfg satisfies ok.
func SeedWhere(cfg Config, ok func([]Window) bool) (uint64, error) {
	kinds, err := ParseNemesis(cfg.Nemesis)
	if err != nil {
		return 0, err
	}
	var ids []string
	for i := 1; i <= cfg.Nodes; i++ {
		ids = append(ids, fmt.Sprintf("n%d", i))
	}
	for seed := uint64(1); seed < 10000; seed++ {
		if ok(Plan(PlanConfig{Seed: seed, Nodes: ids, Kinds: kinds, Total: cfg.Time, On: cfg.FaultOn, Off: cfg.FaultOff})) {
			return seed, nil
		}
	}
	return 0, errors.New("no seed gives the fault schedule wanted")
}

// Config is the case's run on base (backend, binaries, store, cluster size, rates).
func (c SelfTestCase) Config(base Config) (Config, error) {
	cfg := base
	cfg.Plant, cfg.Unsafe = c.Bug, ""
	cfg.Workloads, cfg.Nemesis = c.Workloads, c.Nemesis
	cfg.Name = "selftest_" + c.Name()
	if c.Clients > 0 {
		cfg.Clients = c.Clients
	}
	if c.Rate > 0 {
		cfg.Rate = c.Rate
	}
	if c.Keys > 0 {
		cfg.Keys, cfg.OpsPerKey = c.Keys, c.OpsPerKey
	}
	cfg.Time = c.Time
	if c.FaultOn > 0 {
		cfg.FaultOn, cfg.FaultOff = c.FaultOn, c.FaultOff
	}
	if c.Schedule != nil {
		seed, err := SeedWhere(cfg, c.Schedule)
		if err != nil {
			return cfg, fmt.Errorf("%s: %w", c.Name(), err)
		}
		cfg.Seed = seed
	}
	return cfg, cfg.Validate()
}

// SelfTestOutcome is what one case's run gave.
type SelfTestOutcome struct {
	Case    SelfTestCase
	Verdict string
	// Failed are the checkers that failed the run, with the kinds of anomaly each found.
	Failed []string
	// Caught: the run failed with a checker of Case.CaughtBy (for the control run: it passed).
	OK   bool
	Took time.Duration
	Dir  string
	Err  error
}

// SelfTestDefaults are the base configuration of the standard self-test: 3 local nodes, 6
// clients at 90 operations per second.
func SelfTestDefaults() Config {
	cfg := DefaultConfig()
	cfg.Backend = "local"
	cfg.Nodes, cfg.Clients, cfg.Rate = 3, 6, 90
	cfg.MinBaseline = 0.3 // two shared cores: the run is about the checkers, not throughput
	cfg.FinalSample = 100
	cfg.LogLevel = "warn"
	return cfg
}

// SelfTest runs cases one after the other on base (Bin must hold a plantbugs build of kvd),
// reporting each outcome to report as it comes; a run that could not be carried out is an
// outcome with Err set. It stops early only when ctx ends.
func SelfTest(ctx context.Context, base Config, cases []SelfTestCase, report func(SelfTestOutcome)) []SelfTestOutcome {
	var outcomes []SelfTestOutcome
	for _, c := range cases {
		if ctx.Err() != nil {
			break
		}
		o := runSelfTestCase(ctx, base, c)
		if report != nil {
			report(o)
		}
		outcomes = append(outcomes, o)
	}
	return outcomes
}

func runSelfTestCase(ctx context.Context, base Config, c SelfTestCase) SelfTestOutcome {
	o := SelfTestOutcome{Case: c}
	cfg, err := c.Config(base)
	if err != nil {
		o.Err = err
		return o
	}
	start := time.Now()
	res, err := Run(ctx, cfg)
	o.Took = time.Since(start)
	if err != nil {
		o.Err = err
		return o
	}
	o.Verdict, o.Dir = res.Verdict, res.Dir
	caught := false
	for _, check := range res.Checks {
		if check.Valid {
			continue
		}
		var kinds []string
		for _, a := range check.Anomalies {
			if !slices.Contains(kinds, a.Kind) {
				kinds = append(kinds, a.Kind)
			}
		}
		name := check.Checker
		if len(kinds) > 0 {
			name += " (" + strings.Join(kinds, ", ") + ")"
		}
		o.Failed = append(o.Failed, name)
		caught = caught || slices.Contains(c.CaughtBy, check.Checker)
	}
	if c.Bug == "" {
		o.OK = res.Verdict == VerdictPass
	} else {
		o.OK = res.Verdict == VerdictFail && caught
	}
	return o
}

// Expected says in words what the case's run must give.
func (c SelfTestCase) Expected() string {
	if c.Bug == "" {
		return "PASS"
	}
	return "FAIL by " + strings.Join(c.CaughtBy, " or ")
}

// SelfTestPassed reports whether every outcome is as expected (and there is at least one).
func SelfTestPassed(outcomes []SelfTestOutcome) bool {
	for _, o := range outcomes {
		if !o.OK {
			return false
		}
	}
	return len(outcomes) > 0
}

// WriteSelfTestTable writes one line per outcome: bug, run, what was expected, what happened.
func WriteSelfTestTable(w io.Writer, outcomes []SelfTestOutcome) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "bug\tworkload\tnemesis\texpected\tverdict\tfailed checks\ttook\t")
	for _, o := range outcomes {
		mark := "ok  "
		if !o.OK {
			mark = "BAD "
		}
		got := o.Verdict
		failed := strings.Join(o.Failed, "; ")
		if o.Err != nil {
			got, failed = "ERROR", o.Err.Error()
		}
		if failed == "" {
			failed = "-"
		}
		fmt.Fprintf(tw, "%s%s\t%s\t%s\t%s\t%s\t%s\t%v\t\n", mark, o.Case.Name(), strings.Join(o.Case.Workloads, ","), o.Case.Nemesis,
			o.Case.Expected(), got, failed, o.Took.Round(time.Second))
	}
	tw.Flush()
}
