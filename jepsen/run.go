package jepsen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/dialkv/dialkv/client"
	"github.com/dialkv/dialkv/internal/plant"
)

// Unsafe modes (Config.Unsafe): deliberately broken behaviour the checkers must catch.
const (
	UnsafeStrongReads    = "strong-reads"
	UnsafeEventualCommit = "eventual-commit"
)

// Config is one run.
type Config struct {
	// Backend is netns, local or docker.
	Backend string
	// Workloads run together, the clients split between them.
	Workloads []string
	// Nemesis is a nemesis list (see ParseNemesis).
	Nemesis string
	Nodes   int
	Clients int
	// Rate is the target of all clients together, operations per second.
	Rate float64
	// Time is how long the workloads run (faults included); healing, settling and checking
	// come after.
	Time time.Duration
	// FaultOn and FaultOff are the lengths of fault windows and of the quiet periods between
	// them (the run starts with a quiet period).
	FaultOn, FaultOff time.Duration
	// Keys is the number of register/mixed key slots; OpsPerKey rotates each to a fresh key.
	Keys, OpsPerKey int
	// Unsafe is "", strong-reads or eventual-commit.
	Unsafe string
	// Plant names bugs planted in kvd (internal/plant: DIALKV_PLANT, comma-separated); it needs
	// a kvd built with -tags plantbugs. "" plants none.
	Plant string
	// Bin holds kvd; Store is where run directories go (Store/<name>/<time>).
	Bin, Store string
	// Name overrides the test name (default: workloads and nemeses).
	Name string
	// Seed makes the schedule, the targets and the operations reproducible; 0 picks one.
	Seed uint64
	// OpTimeout bounds one operation (an unanswered write is then indeterminate).
	OpTimeout time.Duration
	// Settle bounds waiting for the healed cluster to agree and commit everything.
	Settle time.Duration
	// CheckTimeout bounds the linearizability search per key.
	CheckTimeout time.Duration
	// MaxStaleness is the bound of bounded reads; StalenessTolerance is added before a
	// bounded read counts as too stale.
	MaxStaleness, StalenessTolerance time.Duration
	// MinBaseline is the fraction of Rate the ok throughput before the first fault must reach.
	MinBaseline float64
	// FinalSample caps the set keys read one by one on every node at every level after the
	// run (all other keys are always read; every key is compared through lists).
	FinalSample int
	// LeaderWait is kvd's --leader-wait.
	LeaderWait time.Duration
	Keep       bool
	LogLevel   string
	// Out receives progress lines and the final table (nil: discard).
	Out io.Writer
}

// DefaultConfig is the standard run of issue 7: 5 nodes, 16 clients, 300 ops/s, 60 s, a
// fault window of 5 s every 10 s. (Strong writes take tens of ms on a small machine; 16
// clients keep enough operations in flight to reach the rate.)
func DefaultConfig() Config {
	return Config{
		Backend: DefaultBackend(), Workloads: []string{WorkloadRegister, WorkloadSet, WorkloadSession},
		Nemesis: "partition,kill,pause", Nodes: 5, Clients: 16, Rate: 300, Time: 60 * time.Second,
		FaultOn: 5 * time.Second, FaultOff: 5 * time.Second, Keys: 10, OpsPerKey: 1000,
		Bin: "bin", Store: filepath.Join("jepsen", "store"),
		OpTimeout: 5 * time.Second, Settle: 60 * time.Second, CheckTimeout: 30 * time.Second,
		MaxStaleness: time.Second, StalenessTolerance: 100 * time.Millisecond, MinBaseline: 0.5,
		FinalSample: 300, LeaderWait: 1500 * time.Millisecond, LogLevel: "info",
	}
}

// Validate reports the first problem with the configuration.
func (c Config) Validate() error {
	if len(c.Workloads) == 0 {
		return errors.New("no workload")
	}
	seen := map[string]bool{}
	for _, w := range c.Workloads {
		if !slices.Contains(Workloads, w) {
			return fmt.Errorf("unknown workload %q: want %s", w, strings.Join(Workloads, ", "))
		}
		if seen[w] {
			return fmt.Errorf("workload %q listed twice", w)
		}
		seen[w] = true
	}
	if _, err := ParseNemesis(c.Nemesis); err != nil {
		return err
	}
	if _, err := plant.Parse(c.Plant); err != nil {
		return err
	}
	switch {
	case c.Backend != "netns" && c.Backend != "local" && c.Backend != "docker":
		return fmt.Errorf("backend %q: want netns, local or docker", c.Backend)
	case c.Nodes < 1 || c.Nodes > 9:
		return fmt.Errorf("nodes %d: want 1 to 9", c.Nodes)
	case c.Clients < len(c.Workloads):
		return fmt.Errorf("%d clients for %d workloads: want at least one each", c.Clients, len(c.Workloads))
	case seen[WorkloadStaleness] && c.Clients/len(c.Workloads) < 2:
		return fmt.Errorf("%d clients for %d workloads: the staleness workload needs two (a writer and a reader)", c.Clients, len(c.Workloads))
	case c.Rate <= 0:
		return fmt.Errorf("rate %v: want > 0", c.Rate)
	case c.Time <= 0:
		return fmt.Errorf("time %v: want > 0", c.Time)
	case c.Unsafe != "" && c.Unsafe != UnsafeStrongReads && c.Unsafe != UnsafeEventualCommit:
		return fmt.Errorf("unsafe %q: want %s or %s", c.Unsafe, UnsafeStrongReads, UnsafeEventualCommit)
	case c.Plant != "" && c.Backend == "docker":
		return errors.New("planted bugs need a plantbugs build of kvd, which the docker image is not: use --backend local or netns")
	case c.OpTimeout <= 0 || c.Settle <= 0 || c.CheckTimeout <= 0:
		return errors.New("timeouts must be positive")
	case c.Store == "":
		return errors.New("no store directory")
	}
	return nil
}

// TestName is the run's name: workloads, nemeses and backend.
func (c Config) TestName() string {
	if c.Name != "" {
		return sanitize(c.Name)
	}
	nem := strings.ReplaceAll(c.Nemesis, ",", "-")
	if nem == "" {
		nem = "none"
	}
	name := strings.Join(c.Workloads, "-") + "_" + nem + "_" + c.Backend
	if c.Unsafe != "" {
		name += "_unsafe-" + c.Unsafe
	}
	if c.Plant != "" {
		name += "_plant-" + strings.ReplaceAll(c.Plant, ",", "-")
	}
	return sanitize(name)
}

// Run starts a cluster, runs the workloads under the nemesis, heals, settles, checks and
// writes the run directory. It returns an error only when the run could not be carried out
// (cluster would not start, a needed fault hook is missing, cancelled); a run that found
// anomalies returns a Result with Verdict FAIL.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	out := cfg.Out
	if out == nil {
		out = io.Discard
	}
	var outMu sync.Mutex
	logf := func(format string, args ...any) {
		outMu.Lock()
		defer outMu.Unlock()
		fmt.Fprintf(out, format+"\n", args...)
	}
	if cfg.Plant != "" && !kvdPlantable(cfg.Bin) {
		return nil, fmt.Errorf("planted bug %s: the kvd in %s is not a plantbugs build (build it with go build -tags hashicorpmetrics,plantbugs)", cfg.Plant, cfg.Bin)
	}
	kinds, _ := ParseNemesis(cfg.Nemesis)
	started := time.Now()
	if cfg.Seed == 0 {
		cfg.Seed = uint64(started.UnixNano())
	}
	res := &Result{Name: cfg.TestName(), Started: started.Format(time.RFC3339), Config: ConfigSummary{
		Backend: cfg.Backend, Workloads: cfg.Workloads, Nemesis: cfg.Nemesis, Nodes: cfg.Nodes, Clients: cfg.Clients,
		Rate: cfg.Rate, Time: cfg.Time.String(), FaultOn: cfg.FaultOn.String(), FaultOff: cfg.FaultOff.String(),
		Keys: cfg.Keys, Unsafe: cfg.Unsafe, Plant: cfg.Plant, Seed: cfg.Seed}}
	res.Dir = filepath.Join(cfg.Store, res.Name, started.Format("20060102T150405.000"))
	if err := os.MkdirAll(res.Dir, 0o755); err != nil {
		return nil, err
	}
	dataDir, err := os.MkdirTemp("", "kvjepsen-data-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dataDir)
	if cfg.Keep {
		dataDir = filepath.Join(res.Dir, "data")
	}
	ccfg := ClusterConfig{Nodes: cfg.Nodes, Bin: cfg.Bin, DataDir: dataDir, LogDir: filepath.Join(res.Dir, "nodes"),
		Keep: cfg.Keep, LogLevel: cfg.LogLevel, LeaderWait: cfg.LeaderWait, Logf: logf,
		// Always set: a DIALKV_PLANT in the harness's own environment must not plant bugs in a
		// run that asked for none.
		Env: []string{plant.EnvVar + "=" + cfg.Plant}}
	b, err := NewBackend(cfg.Backend, ccfg)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err := b.Close(); err != nil {
			logf("cleanup: %v", err)
		}
	}()
	logf("kvjepsen %s: starting %d kvd nodes (%s backend); output in %s", res.Name, cfg.Nodes, cfg.Backend, res.Dir)
	if err := b.Start(ctx); err != nil {
		return nil, fmt.Errorf("starting the cluster: %w", err)
	}
	hookErr := b.FaultHook()
	for _, combo := range kinds {
		for _, k := range combo {
			if NeedsHook(k, cfg.Backend) && hookErr != nil {
				return nil, fmt.Errorf("nemesis %s on the %s backend needs kvd's fault hook (docs/faults.md): %w", k, cfg.Backend, hookErr)
			}
		}
	}
	if cfg.Plant != "" {
		logf("planted bug %s on every node: the checkers should fail this run", cfg.Plant)
	}
	if cfg.Unsafe != "" {
		if hookErr != nil {
			return nil, fmt.Errorf("--unsafe needs kvd's fault hook: %w", hookErr)
		}
		if err := b.Unsafe(ctx, cfg.Unsafe == UnsafeStrongReads, cfg.Unsafe == UnsafeEventualCommit); err != nil {
			return nil, fmt.Errorf("switching on unsafe %s: %w", cfg.Unsafe, err)
		}
		logf("unsafe mode %s on every node: the checkers should fail this run", cfg.Unsafe)
	}
	if hookErr != nil {
		res.Notes = append(res.Notes, "fault hook unavailable ("+hookErr.Error()+"): clock and slow nemeses, local partitions and unsafe modes could not be used")
	}

	// The run proper.
	histFile, err := os.Create(filepath.Join(res.Dir, "history.jsonl"))
	if err != nil {
		return nil, err
	}
	rec := NewRecorder(time.Now(), histFile)
	defer rec.Close()
	e, err := newEnv(rec, b.Nodes(), cfg.OpTimeout)
	if err != nil {
		return nil, err
	}
	wcfg := WorkloadConfig{Keys: cfg.Keys, OpsPerKey: cfg.OpsPerKey, MaxStaleness: cfg.MaxStaleness}
	var workloads []Workload
	for _, name := range cfg.Workloads {
		w, err := NewWorkload(name, wcfg)
		if err != nil {
			return nil, err
		}
		workloads = append(workloads, w)
	}
	plan := Plan(PlanConfig{Seed: cfg.Seed, Nodes: nodeIDs(b), Kinds: kinds, Total: cfg.Time, On: cfg.FaultOn, Off: cfg.FaultOff})
	nem := NewNemesis(b, rec, plan, logf)
	runCtx, stopRun := context.WithDeadline(ctx, rec.Start().Add(cfg.Time))
	defer stopRun()
	var workers sync.WaitGroup
	interval := time.Duration(float64(cfg.Clients) / cfg.Rate * float64(time.Second))
	g := 0
	for i, wl := range workloads {
		n := cfg.Clients / len(workloads)
		if i < cfg.Clients%len(workloads) {
			n++
		}
		for j := range n {
			w := &Worker{env: e, Index: j, Node: e.nodes[g%len(e.nodes)], Process: e.newProcess(),
				Rng: rand.New(rand.NewPCG(cfg.Seed, uint64(g)+1)), workload: wl.Name(), interval: interval}
			g++
			workers.Go(func() { wl.Worker(runCtx, w) })
		}
	}
	var nemDone sync.WaitGroup
	nemDone.Go(func() { nem.Run(runCtx) })
	progressDone := make(chan struct{})
	var progressWG sync.WaitGroup
	progressWG.Go(func() { progress(rec, nem, cfg.Time, progressDone, logf) })
	workers.Wait()
	nemDone.Wait()
	close(progressDone)
	progressWG.Wait()
	_ = rec.Flush()
	res.Windows = nem.Applied()
	if err := ctx.Err(); err != nil {
		hctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		_ = HealAll(hctx, b, hookErr == nil)
		cancel()
		return nil, fmt.Errorf("run cancelled: %w (history so far in %s)", err, res.Dir)
	}

	// Heal, settle, read everything back, check.
	logf("healing every fault and waiting for the cluster to settle (at most %v)", cfg.Settle)
	healErr := HealAll(ctx, b, hookErr == nil)
	leader, settleErr := settle(ctx, b, cfg.Settle)
	ops := rec.Ops()
	var final map[string]FinalValue
	var conv CheckResult
	if settleErr != nil {
		conv = CheckResult{Checker: CheckerConvergence, Summary: "cluster did not settle: " + settleErr.Error(),
			Anomalies: []Anomaly{{Kind: "not-settled", Description: settleErr.Error()}}}
	} else {
		logf("settled (leader %s); final reads on every node at every level", leader)
		final, conv = converge(ctx, b, leader, ops, cfg, &res.Notes)
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("run cancelled while checking: %w", ctx.Err())
	}
	logf("checking %d operations", len(ops))
	in := CheckInput{Final: final, Linear: LinearConfig{Timeout: cfg.CheckTimeout, Budget: 2 * cfg.CheckTimeout, Dir: res.Dir, Windows: res.Windows},
		Stale: StalenessConfig{Tolerance: cfg.StalenessTolerance}}
	for _, wl := range workloads {
		in.Ops = byWorkload(ops, wl.Name())
		if final == nil {
			// Without final state only the history checks can run.
			for _, c := range wl.Check(in) {
				if c.Checker == CheckerLinearizable || c.Checker == CheckerSession || c.Checker == CheckerStaleness {
					res.Checks = append(res.Checks, c)
				}
			}
			continue
		}
		res.Checks = append(res.Checks, wl.Check(in)...)
	}
	res.Checks = append(res.Checks, conv)
	res.Summary = Summarize(ops, res.Windows, nil)
	res.Checks = append(res.Checks, throughputCheck(res.Summary, cfg, len(res.Windows) > 0))
	res.Checks = append(res.Checks, checkHarness(kinds, res.Windows, healErr))
	res.Checks = append(res.Checks, CheckLevels(ops))
	// Anomalies per level: the exact counts where a checker kept them (it lists at most
	// maxAnomalies), else the ones listed.
	byLevel := map[string]int{}
	for _, c := range res.Checks {
		if exact, ok := c.Stats["anomalies_by_level"].(map[string]int); ok {
			for l, n := range exact {
				byLevel[l] += n
			}
			continue
		}
		for _, a := range c.Anomalies {
			byLevel[a.Level]++
		}
	}
	res.Summary = Summarize(ops, res.Windows, byLevel)
	res.Verdict = VerdictFail
	if res.Valid() {
		res.Verdict = VerdictPass
	}
	res.Duration = time.Since(started).Round(time.Second).String()
	if err := writePlots(res.Dir, ops, res.Windows, cfg.Time); err != nil {
		res.Notes = append(res.Notes, "plots: "+err.Error())
	}
	if err := res.writeFiles(); err != nil {
		return res, err
	}
	outMu.Lock()
	fmt.Fprintln(out)
	res.WriteTable(out)
	outMu.Unlock()
	return res, nil
}

// checkHarness fails the run when it did not test what it claims: a fault that could not be
// applied or healed, or a nemesis asked for (kinds) of which no window was applied at all (a run
// too short for its first window, say), which would otherwise pass as a run under faults.
func checkHarness(kinds [][]string, windows []AppliedWindow, healErr error) CheckResult {
	var harness anomalies
	if healErr != nil {
		harness.add(Anomaly{Kind: "heal-failed", Description: healErr.Error()})
	}
	for _, w := range windows {
		for _, e := range w.Errors {
			harness.add(Anomaly{Kind: "nemesis-error", Description: fmt.Sprintf("%s at %s: %s", w.Kinds, fmtTime(w.Start), e)})
		}
	}
	cr := CheckResult{Checker: CheckerHarness, Valid: harness.count == 0, Anomalies: harness.list, Summary: "every fault applied and healed"}
	if harness.count > 0 {
		cr.Summary = fmt.Sprintf("%d fault(s) could not be applied or healed: the run did not test what it claims", harness.count)
	}
	if len(kinds) > 0 && len(windows) == 0 {
		why := "no fault window was applied: the run ended before the first one (make --time longer than --fault-off plus half of --fault-on), so it tested no fault"
		cr.Valid, cr.Summary = false, why
		cr.Anomalies = append(cr.Anomalies, Anomaly{Kind: "no-fault", Description: why})
	}
	return cr
}

// progress prints one line per second until done closes.
func progress(rec *Recorder, nem *Nemesis, total time.Duration, done <-chan struct{}, logf func(string, ...any)) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	seen := 0
	for {
		select {
		case <-done:
			return
		case <-tick.C:
		}
		ops := rec.Ops()
		counts := map[string]int{}
		perLevel := map[string]int{}
		for _, op := range ops[seen:] {
			counts[op.Type]++
			if op.Type == TypeOK {
				perLevel[op.Level]++
			}
		}
		seen = len(ops)
		var lv []string
		for _, l := range levels {
			if perLevel[l] > 0 {
				lv = append(lv, fmt.Sprintf("%s %d", l, perLevel[l]))
			}
		}
		fault := nem.Current()
		if fault == "" {
			fault = "no fault"
		}
		elapsed := time.Duration(rec.Now()).Round(time.Second)
		logf("%4s/%s | %3d ok %3d fail %3d info | %s | %s", elapsed, total, counts[TypeOK], counts[TypeFail], counts[TypeInfo], strings.Join(lv, " "), fault)
	}
}

// settle waits until every node runs, they agree on a leader that sees them all, every node
// has applied what the leader had committed when the round began, and no node holds
// uncommitted eventual writes: the cluster is quiet. It returns the leader.
func settle(ctx context.Context, b Backend, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cl := statusClient(b.Nodes())
	last := "no answer yet"
	stable := 0
	for {
		leader, state := clusterState(ctx, cl, b.Nodes(), func(string) bool { return true })
		if leader != "" {
			state = quiet(ctx, cl, b.Nodes(), leader)
			if state == "" {
				stable++
				if stable >= 2 {
					return leader, nil
				}
			} else {
				stable = 0
			}
		}
		if state != "" {
			last = state
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("not settled within %v: %s", timeout, last)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// quiet returns "" when every node has applied the leader's commit index and has no backlog,
// else what is still moving.
func quiet(ctx context.Context, cl *client.Client, nodes []Node, leader string) string {
	var leaderNode Node
	for _, n := range nodes {
		if n.ID == leader {
			leaderNode = n
		}
	}
	ls, err := statusOf(ctx, cl, leaderNode)
	if err != nil {
		return "leader not answering"
	}
	var moving []string
	for _, n := range nodes {
		st, err := statusOf(ctx, cl, n)
		if err != nil {
			moving = append(moving, n.ID+" not answering")
			continue
		}
		if st.AppliedIndex < ls.CommitIndex {
			moving = append(moving, fmt.Sprintf("%s applied %d of %d", n.ID, st.AppliedIndex, ls.CommitIndex))
		}
		for _, m := range st.Nodes {
			if m.ID == n.ID && m.Backlog > 0 {
				moving = append(moving, fmt.Sprintf("%s holds %d uncommitted eventual writes", n.ID, m.Backlog))
			}
		}
	}
	return strings.Join(moving, "; ")
}

func throughputCheck(s Summary, cfg Config, faults bool) CheckResult {
	want := cfg.MinBaseline * cfg.Rate
	where := "before the first fault"
	if !faults {
		where = "over the run"
	}
	c := CheckResult{Checker: CheckerThroughput, Valid: s.Baseline >= want,
		Stats:   map[string]any{"baseline_ops_per_s": s.Baseline, "target_ops_per_s": cfg.Rate},
		Summary: fmt.Sprintf("%.0f ok ops/s %s (target %.0f, at least %.0f required)", s.Baseline, where, cfg.Rate, want)}
	if !c.Valid {
		c.Anomalies = []Anomaly{{Kind: "low-throughput", Description: "the cluster or the harness could not keep up with the target rate before any fault: the run says little about faults"}}
	}
	return c
}

// converge reads every key back on every node at every level and compares with the committed
// state from a strong list through the leader (DESIGN.md, guarantee 2). It returns that state.
func converge(ctx context.Context, b Backend, leader string, ops []*Op, cfg Config, notes *[]string) (map[string]FinalValue, CheckResult) {
	cr := CheckResult{Checker: CheckerConvergence}
	var an anomalies
	clients := map[string]*client.Client{}
	for _, n := range b.Nodes() {
		c := client.DefaultConfig()
		c.Endpoints = []string{n.HTTP}
		c.Timeout = 10 * time.Second
		cl, err := client.New(c)
		if err != nil {
			cr.Summary = err.Error()
			return nil, cr
		}
		clients[n.ID] = cl
	}
	list := func(node, level string) (map[string]FinalValue, error) {
		var lastErr error
		for attempt := range 3 {
			if attempt > 0 && !waitUntil(ctx, time.Now().Add(500*time.Millisecond)) {
				break
			}
			lctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			items, _, err := clients[node].List(lctx, "", client.ListOptions{Consistency: level, MaxStaleness: 5 * time.Second})
			cancel()
			if err == nil {
				m := make(map[string]FinalValue, len(items))
				for _, it := range items {
					key, _ := it.RawKey()
					v, _ := it.Bytes()
					m[key] = FinalValue{Value: string(v), Version: it.Version}
				}
				return m, nil
			}
			lastErr = err
		}
		return nil, lastErr
	}
	final, err := list(leader, client.ConsistencyStrong)
	if err != nil {
		cr.Summary = "strong list through the leader failed: " + err.Error()
		cr.Anomalies = []Anomaly{{Kind: "final-read-failed", Level: client.ConsistencyStrong, Node: leader, Description: cr.Summary}}
		return nil, cr
	}
	diff := func(node, level, key string, got FinalValue, gotOK bool) {
		want, wantOK := final[key]
		if gotOK == wantOK && got == want {
			return
		}
		show := func(v FinalValue, ok bool) string {
			if !ok {
				return "absent"
			}
			return fmt.Sprintf("%q@%s", v.Value, v.Version)
		}
		an.add(Anomaly{Kind: "divergence", Level: level, Key: key, Node: node,
			Description: fmt.Sprintf("%s read of %s on %s gave %s, the strong read %s", level, key, node, show(got, gotOK), show(want, wantOK))})
	}
	lists := 0
	for _, n := range b.Nodes() {
		for _, level := range levels {
			m, err := list(n.ID, level)
			if err != nil {
				an.add(Anomaly{Kind: "final-read-failed", Level: level, Node: n.ID, Description: fmt.Sprintf("%s list on %s after settling: %v", level, n.ID, err)})
				continue
			}
			lists++
			for k, v := range m {
				diff(n.ID, level, k, v, true)
			}
			for k := range final {
				if _, ok := m[k]; !ok {
					diff(n.ID, level, k, FinalValue{}, false)
				}
			}
		}
	}
	// Key by key (lists show the committed layer only; gets also see tentative data).
	keySet := map[string]bool{}
	var setKeys []string
	for _, op := range ops {
		if keySet[op.Key] {
			continue
		}
		keySet[op.Key] = true
		if strings.HasPrefix(op.Key, WorkloadSet+"/") {
			setKeys = append(setKeys, op.Key)
		}
	}
	sort.Strings(setKeys)
	if len(setKeys) > cfg.FinalSample {
		rng := rand.New(rand.NewPCG(cfg.Seed, 7))
		rng.Shuffle(len(setKeys), func(i, j int) { setKeys[i], setKeys[j] = setKeys[j], setKeys[i] })
		for _, k := range setKeys[cfg.FinalSample:] {
			delete(keySet, k)
		}
		*notes = append(*notes, fmt.Sprintf("final per-key reads covered %d of %d set keys (a random sample); lists compared all of them on every node at every level", cfg.FinalSample, len(setKeys)))
	}
	keys := make([]string, 0, len(keySet))
	for k := range keySet {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	type job struct{ node, level, key string }
	jobs := make(chan job)
	var mu sync.Mutex
	var wg sync.WaitGroup
	gets := 0
	for range 8 {
		wg.Go(func() {
			for j := range jobs {
				var v []byte
				var meta client.Meta
				var err error
				for attempt := range 3 {
					if attempt > 0 && !waitUntil(ctx, time.Now().Add(300*time.Millisecond)) {
						break
					}
					gctx, cancel := context.WithTimeout(ctx, 10*time.Second)
					v, meta, err = clients[j.node].Get(gctx, j.key, client.GetOptions{Consistency: j.level, MaxStaleness: 5 * time.Second, Session: client.NewSession("")})
					cancel()
					if err == nil || client.IsNotFound(err) {
						break
					}
				}
				mu.Lock()
				gets++
				switch {
				case err == nil:
					diff(j.node, j.level, j.key, FinalValue{Value: string(v), Version: meta.Version}, true)
				case client.IsNotFound(err):
					diff(j.node, j.level, j.key, FinalValue{}, false)
				default:
					an.add(Anomaly{Kind: "final-read-failed", Level: j.level, Key: j.key, Node: j.node, Description: fmt.Sprintf("%s read of %s on %s after settling: %v", j.level, j.key, j.node, err)})
				}
				mu.Unlock()
			}
		})
	}
feed:
	for _, k := range keys {
		for _, n := range b.Nodes() {
			for _, level := range levels {
				select {
				case jobs <- job{n.ID, level, k}:
				case <-ctx.Done():
					break feed
				}
			}
		}
	}
	close(jobs)
	wg.Wait()
	cr.Valid = an.count == 0
	cr.Anomalies = an.list
	cr.Stats = an.stats(map[string]any{"keys": len(final), "lists": lists, "gets": gets})
	if cr.Valid {
		cr.Summary = fmt.Sprintf("every node agrees with the strong read at every level: %d keys listed on %d nodes x %d levels, %d per-key reads", len(final), len(b.Nodes()), len(levels), gets)
	} else {
		cr.Summary = fmt.Sprintf("%d divergences or failed final reads (%d keys, %d per-key reads)", an.count, len(final), gets)
	}
	if len(final) == 0 || gets == 0 {
		nothingChecked(&cr, "key in the committed state, or no final per-key read,")
	}
	return final, cr
}
