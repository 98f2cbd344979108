package jepsen

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Fault kinds a nemesis can inject.
const (
	FaultPartition = "partition"
	FaultKill      = "kill"
	FaultPause     = "pause"
	FaultClock     = "clock"
	FaultSlow      = "slow"
	// FaultMember removes a node from the cluster (it hands its uncommitted writes over and
	// stops), and at the end of the window starts it again from an empty data directory, joining.
	FaultMember = "member"
)

// FaultKinds lists every kind, in the order help texts show them.
var FaultKinds = []string{FaultPartition, FaultKill, FaultPause, FaultClock, FaultSlow, FaultMember}

// Modes of each kind; a window picks one at random.
var faultModes = map[string][]string{
	FaultPartition: {"halves", "isolate-leader", "bridge", "one-way"},
	FaultKill:      {"random", "leader"},
	FaultPause:     {"random", "leader"},
	FaultClock:     {"skew", "strobe"},
	FaultSlow:      {"delay", "loss"},
	FaultMember:    {"random", "leader"},
}

// ParseNemesis parses a nemesis list: comma-separated alternatives, each one kind or several
// joined by "+" to inject together ("partition+clock,kill"). "none" or "" is no faults.
func ParseNemesis(s string) ([][]string, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "none" {
		return nil, nil
	}
	var out [][]string
	for _, alt := range strings.Split(s, ",") {
		var combo []string
		for _, k := range strings.Split(alt, "+") {
			k = strings.TrimSpace(k)
			if _, ok := faultModes[k]; !ok {
				return nil, fmt.Errorf("unknown nemesis %q: want %s (join with + to combine, e.g. partition+clock)", k, strings.Join(FaultKinds, ", "))
			}
			if !slices.Contains(combo, k) {
				combo = append(combo, k)
			}
		}
		if len(combo) > 1 && slices.Contains(combo, FaultMember) {
			return nil, fmt.Errorf("nemesis %q: member cannot be combined with other faults (removing a node needs a quorum that answers, and rejoining it the whole cluster); list it as its own alternative, e.g. member,partition", alt)
		}
		out = append(out, combo)
	}
	return out, nil
}

// Fault is one planned fault of a window. Random choices (nodes, offsets) are made when the
// schedule is planned, from the seed; the leader is looked up when the fault starts.
type Fault struct {
	Kind string `json:"kind"`
	Mode string `json:"mode"`
	// Groups of a partition (halves, bridge: the bridge node is Groups[2]); Nodes for the rest.
	Groups [][]string `json:"groups,omitempty"`
	Nodes  []string   `json:"nodes,omitempty"`
	// Offsets for clock faults, per node.
	Offsets map[string]time.Duration `json:"offsets,omitempty"`
	// Slowness for slow faults.
	Slowness Slowness `json:"slowness"`
}

// Window is one planned fault window, times relative to the run's start.
type Window struct {
	Start  time.Duration `json:"start"`
	End    time.Duration `json:"end"`
	Faults []Fault       `json:"faults"`
}

// PlanConfig shapes a schedule.
type PlanConfig struct {
	Seed  uint64
	Nodes []string
	// Kinds are the alternatives (see ParseNemesis); each window picks one.
	Kinds [][]string
	// Total is how long the workload runs; On and Off the lengths of fault and quiet periods.
	// The run starts quiet (Off), so the first Off is the baseline the throughput check reads.
	Total, On, Off time.Duration
}

// Plan computes a fault schedule: quiet Off, fault On, quiet Off, ... until Total. A window
// that would have less than half its length left before Total is not planned. The same
// config always gives the same schedule.
func Plan(cfg PlanConfig) []Window {
	if len(cfg.Kinds) == 0 || cfg.On <= 0 || len(cfg.Nodes) == 0 {
		return nil
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x6a65707365)) // "jepse"
	var out []Window
	for t := cfg.Off; t+cfg.On/2 <= cfg.Total; t += cfg.On + cfg.Off {
		w := Window{Start: t, End: min(t+cfg.On, cfg.Total)}
		stopped := map[string]bool{} // nodes a fault of this window kills, pauses or removes
		for _, kind := range cfg.Kinds[rng.IntN(len(cfg.Kinds))] {
			f := planFault(rng, kind, cfg.Nodes, stopped)
			if kind == FaultKill || kind == FaultPause || kind == FaultMember {
				for _, id := range f.Nodes {
					stopped[id] = true
				}
			}
			w.Faults = append(w.Faults, f)
		}
		out = append(out, w)
		if cfg.Off <= 0 {
			t += time.Millisecond // never loop in place
		}
	}
	return out
}

// planFault plans one fault. A random kill, pause or removal takes a node that is not in
// stopped (another fault of the window stops it already) while there is one.
func planFault(rng *rand.Rand, kind string, nodes []string, stopped map[string]bool) Fault {
	modes := faultModes[kind]
	f := Fault{Kind: kind, Mode: modes[rng.IntN(len(modes))]}
	shuffled := slices.Clone(nodes)
	rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	n := len(shuffled)
	switch kind {
	case FaultPartition:
		switch f.Mode {
		case "halves":
			f.Groups = [][]string{sorted(shuffled[:n/2]), sorted(shuffled[n/2:])}
		case "bridge":
			if n < 3 {
				f.Mode = "halves"
				f.Groups = [][]string{sorted(shuffled[:n/2]), sorted(shuffled[n/2:])}
				break
			}
			half := (n - 1) / 2
			f.Groups = [][]string{sorted(shuffled[:half]), sorted(shuffled[half : n-1]), {shuffled[n-1]}}
		case "one-way":
			f.Nodes = []string{shuffled[0]}
		}
	case FaultKill, FaultPause, FaultMember:
		if f.Mode == "random" {
			i := slices.IndexFunc(shuffled, func(id string) bool { return !stopped[id] })
			f.Nodes = []string{shuffled[max(i, 0)]}
		}
	case FaultClock:
		count := 1 + rng.IntN(max(1, n/2))
		f.Nodes = sorted(shuffled[:count])
		f.Offsets = map[string]time.Duration{}
		for _, id := range f.Nodes {
			d := time.Duration(200+rng.IntN(1800)) * time.Millisecond
			if rng.IntN(2) == 0 {
				d = -d
			}
			f.Offsets[id] = d
		}
	case FaultSlow:
		count := 1 + rng.IntN(max(1, n/2))
		f.Nodes = sorted(shuffled[:count])
		if f.Mode == "delay" {
			f.Slowness = Slowness{Delay: time.Duration(50+rng.IntN(150)) * time.Millisecond, Jitter: time.Duration(10+rng.IntN(40)) * time.Millisecond}
		} else {
			f.Slowness = Slowness{Loss: float64(5+rng.IntN(20)) / 100}
		}
	}
	return f
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	sort.Strings(s)
	return s
}

// NeedsHook reports whether injecting kind on backend needs kvd's fault hook.
func NeedsHook(kind, backend string) bool {
	switch kind {
	case FaultClock, FaultSlow:
		return true // delays exist only in kvd's transports (netns drops packets with nftables, but cannot delay them)
	case FaultPartition:
		return backend != "netns"
	}
	return false
}

// cutsBetween is every directed link between two groups, both ways.
func cutsBetween(a, b []string) []Link {
	var out []Link
	for _, x := range a {
		for _, y := range b {
			out = append(out, Link{x, y}, Link{y, x})
		}
	}
	return out
}

// minoritySide returns the nodes that, with links cut, cannot be in a majority: their
// component (counting a link only when both directions work) has at most half the nodes.
func minoritySide(nodes []string, cuts []Link) map[string]bool {
	cut := map[Link]bool{}
	for _, l := range cuts {
		cut[l] = true
	}
	seen := map[string]bool{}
	out := map[string]bool{}
	for _, start := range nodes {
		if seen[start] {
			continue
		}
		comp := []string{start}
		seen[start] = true
		for i := 0; i < len(comp); i++ {
			for _, o := range nodes {
				if !seen[o] && !cut[Link{comp[i], o}] && !cut[Link{o, comp[i]}] {
					seen[o] = true
					comp = append(comp, o)
				}
			}
		}
		if 2*len(comp) <= len(nodes) {
			for _, id := range comp {
				out[id] = true
			}
		}
	}
	return out
}

// AppliedWindow is a fault window as it happened (times in ns since the run started).
type AppliedWindow struct {
	Start int64  `json:"start"`
	End   int64  `json:"end"`
	Kinds string `json:"kinds"`
	// Description says what was done to which nodes.
	Description string `json:"description"`
	// Minority are the nodes cut off from any majority (partitions only).
	Minority []string `json:"minority,omitempty"`
	// Affected are the nodes killed, paused, skewed or slowed.
	Affected []string `json:"affected,omitempty"`
	Errors   []string `json:"errors,omitempty"`
}

// Nemesis executes a schedule against a backend, recording each window.
type Nemesis struct {
	b    Backend
	rec  *Recorder
	plan []Window
	logf func(string, ...any)

	mu      sync.Mutex
	applied []AppliedWindow
	current string
}

// NewNemesis returns a nemesis that will run plan; logf receives one line per change.
func NewNemesis(b Backend, rec *Recorder, plan []Window, logf func(string, ...any)) *Nemesis {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	return &Nemesis{b: b, rec: rec, plan: plan, logf: logf}
}

// Current describes the fault in force ("" when none).
func (nm *Nemesis) Current() string {
	nm.mu.Lock()
	defer nm.mu.Unlock()
	return nm.current
}

// Applied returns the windows run so far.
func (nm *Nemesis) Applied() []AppliedWindow {
	nm.mu.Lock()
	defer nm.mu.Unlock()
	return slices.Clone(nm.applied)
}

// Run executes the plan until it ends or ctx ends; a window in progress is reverted either way.
func (nm *Nemesis) Run(ctx context.Context) {
	for _, w := range nm.plan {
		if !waitUntil(ctx, nm.rec.Start().Add(w.Start)) {
			return
		}
		nm.runWindow(ctx, w)
		if ctx.Err() != nil {
			return
		}
	}
}

// waitUntil waits for t; false when ctx ended first.
func waitUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func (nm *Nemesis) runWindow(ctx context.Context, w Window) {
	aw := AppliedWindow{}
	var kinds, descs []string
	// restarts (kill, member) are undone after the other faults: a restarted kvd has none of
	// its fault-hook faults until it answers and they are pushed again, and in the meantime it
	// joins gossip over TCP, which a receiver cannot drop (docs/faults.md: streams are cut at the
	// sender), so it must not come back into a network still cut through the hook.
	var reverts, restarts []func(context.Context) error
	minority := map[string]bool{}
	affected := map[string]bool{}
	for _, f := range w.Faults {
		kinds = append(kinds, f.Kind)
		desc, revert, err := nm.apply(ctx, f, minority, affected)
		descs = append(descs, desc)
		if err != nil {
			aw.Errors = append(aw.Errors, fmt.Sprintf("%s: %v", f.Kind, err))
			nm.logf("nemesis: %s failed: %v", desc, err)
		}
		switch {
		case revert == nil:
		case f.Kind == FaultKill || f.Kind == FaultMember:
			restarts = append(restarts, revert)
		default:
			reverts = append(reverts, revert)
		}
	}
	// The window starts once its faults are in force (loading rules, killing a process and
	// finding the leader take a little while) and ends once they are reverted.
	aw.Start = nm.rec.Now()
	aw.Kinds = strings.Join(kinds, "+")
	aw.Description = strings.Join(descs, "; ")
	aw.Minority, aw.Affected = keys(minority), keys(affected)
	nm.rec.Nemesis("start "+aw.Kinds, aw.Description)
	nm.logf("nemesis: start %s", aw.Description)
	nm.mu.Lock()
	nm.current = aw.Description
	nm.mu.Unlock()

	waitUntil(ctx, nm.rec.Start().Add(w.End))
	// Revert even when the run is being cancelled: a cut network or a paused node must not
	// outlive its window. The final heal in Run catches whatever this misses.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	slices.Reverse(reverts)
	for _, revert := range append(reverts, restarts...) {
		if err := revert(rctx); err != nil {
			aw.Errors = append(aw.Errors, "revert: "+err.Error())
			nm.logf("nemesis: revert failed: %v", err)
		}
	}
	aw.End = nm.rec.Now()
	nm.rec.Nemesis("stop "+aw.Kinds, aw.Description)
	nm.logf("nemesis: stop %s", aw.Kinds)
	nm.mu.Lock()
	nm.current = ""
	nm.applied = append(nm.applied, aw)
	nm.mu.Unlock()
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// apply starts one fault and returns its description and how to revert it.
func (nm *Nemesis) apply(ctx context.Context, f Fault, minority, affected map[string]bool) (string, func(context.Context) error, error) {
	ids := nodeIDs(nm.b)
	firstRunning := func() string {
		for _, id := range ids {
			if nm.b.Running(id) {
				return id
			}
		}
		return ids[0]
	}
	// target is the node the fault acts on: the planned one, or in leader mode the leader the
	// live nodes name. A node that is not running (killed earlier in this window; a dead leader
	// is named until the next election) is none: the first running node is taken instead, and
	// how says so instead of claiming the plan or the leader.
	target := func() (id, how string) {
		if len(f.Nodes) > 0 && f.Mode != "leader" {
			if planned := f.Nodes[0]; !nm.b.Running(planned) {
				id = firstRunning()
				return id, fmt.Sprintf("%s: %s was down, took %s", f.Mode, planned, id)
			}
			return f.Nodes[0], f.Mode
		}
		if l := FindLeader(ctx, nm.b); l != "" && nm.b.Running(l) {
			return l, "leader"
		}
		return firstRunning(), "no leader found"
	}
	switch f.Kind {
	case FaultPartition:
		var cuts []Link
		var desc string
		switch f.Mode {
		case "halves":
			cuts = cutsBetween(f.Groups[0], f.Groups[1])
			desc = fmt.Sprintf("partition halves %s | %s", strings.Join(f.Groups[0], ","), strings.Join(f.Groups[1], ","))
		case "bridge":
			cuts = cutsBetween(f.Groups[0], f.Groups[1])
			desc = fmt.Sprintf("partition bridge %s | %s | %s (bridge %s)", strings.Join(f.Groups[0], ","), f.Groups[2][0], strings.Join(f.Groups[1], ","), f.Groups[2][0])
		case "isolate-leader":
			l, how := target()
			cuts = cutsBetween([]string{l}, without(ids, l))
			desc = fmt.Sprintf("partition isolate leader %s", l)
			if how != "leader" {
				desc = fmt.Sprintf("partition isolate %s (%s)", l, how)
			}
		case "one-way":
			x, _ := target()
			for _, o := range without(ids, x) {
				cuts = append(cuts, Link{From: o, To: x})
			}
			desc = fmt.Sprintf("partition one-way: %s receives nothing", x)
		}
		for id := range minoritySide(ids, cuts) {
			minority[id] = true
		}
		err := nm.b.Cut(ctx, cuts)
		return desc, func(ctx context.Context) error { return nm.b.Cut(ctx, nil) }, err
	case FaultKill:
		id, how := target()
		affected[id] = true
		err := nm.b.Kill(ctx, id)
		return fmt.Sprintf("kill -9 %s (%s)", id, how), func(ctx context.Context) error { return nm.b.Restart(ctx, id) }, err
	case FaultMember:
		id, how := target()
		affected[id] = true
		err := nm.b.Remove(ctx, id)
		return fmt.Sprintf("remove member %s (%s), rejoin it empty", id, how), func(ctx context.Context) error {
			if !nm.b.Removed(id) {
				return nil // the removal failed: nothing to undo (HealAll restarts it if it stopped)
			}
			return nm.b.Rejoin(ctx, id)
		}, err
	case FaultPause:
		id, how := target()
		affected[id] = true
		err := nm.b.Pause(ctx, id)
		return fmt.Sprintf("pause %s (%s)", id, how), func(ctx context.Context) error { return nm.b.Resume(ctx, id) }, err
	case FaultClock:
		var parts []string
		var errs []error
		for _, id := range f.Nodes {
			affected[id] = true
			parts = append(parts, fmt.Sprintf("%s %+v", id, f.Offsets[id]))
			errs = append(errs, nm.b.Clock(ctx, id, f.Offsets[id]))
		}
		revert := func(ctx context.Context) error {
			var errs []error
			for _, id := range f.Nodes {
				errs = append(errs, nm.b.Clock(ctx, id, 0))
			}
			return errors.Join(errs...)
		}
		if f.Mode == "strobe" {
			stop := nm.strobe(ctx, f)
			inner := revert
			revert = func(ctx context.Context) error { stop(); return inner(ctx) }
			return "clock strobe " + strings.Join(parts, ", "), revert, errors.Join(errs...)
		}
		return "clock skew " + strings.Join(parts, ", "), revert, errors.Join(errs...)
	case FaultSlow:
		var errs []error
		for _, id := range f.Nodes {
			affected[id] = true
			errs = append(errs, nm.b.Slow(ctx, id, f.Slowness))
		}
		desc := fmt.Sprintf("slow %s: delay %v jitter %v", strings.Join(f.Nodes, ","), f.Slowness.Delay, f.Slowness.Jitter)
		if f.Mode == "loss" {
			desc = fmt.Sprintf("lossy %s: %.0f%% loss", strings.Join(f.Nodes, ","), f.Slowness.Loss*100)
		}
		return desc, func(ctx context.Context) error {
			var errs []error
			for _, id := range f.Nodes {
				errs = append(errs, nm.b.Slow(ctx, id, Slowness{}))
			}
			return errors.Join(errs...)
		}, errors.Join(errs...)
	}
	return f.Kind, nil, fmt.Errorf("unknown fault kind %q", f.Kind)
}

// strobe flips the skewed nodes' offsets between +d and -d every 200ms until stopped.
func (nm *Nemesis) strobe(ctx context.Context, f Fault) (stop func()) {
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		sign := time.Duration(-1)
		for {
			select {
			case <-sctx.Done():
				return
			case <-tick.C:
			}
			for _, id := range f.Nodes {
				_ = nm.b.Clock(sctx, id, sign*f.Offsets[id]) // a missed flip is harmless
			}
			sign = -sign
		}
	}()
	return func() { cancel(); <-done }
}

func without(ids []string, x string) []string {
	var out []string
	for _, id := range ids {
		if id != x {
			out = append(out, id)
		}
	}
	return out
}

func nodeIDs(b Backend) []string {
	var ids []string
	for _, n := range b.Nodes() {
		ids = append(ids, n.ID)
	}
	return ids
}

// FindLeader asks the live nodes who leads and returns the answer most of them give ("" when
// none names one).
func FindLeader(ctx context.Context, b Backend) string {
	cl := statusClient(b.Nodes())
	votes := map[string]int{}
	best := ""
	for _, n := range b.Nodes() {
		if !b.Running(n.ID) || b.Paused(n.ID) {
			continue
		}
		qctx, cancel := context.WithTimeout(ctx, time.Second)
		st, err := cl.StatusOf(qctx, n.HTTP)
		cancel()
		if err != nil || st.Leader == "" {
			continue
		}
		votes[st.Leader]++
		if votes[st.Leader] > votes[best] {
			best = st.Leader
		}
	}
	return best
}

// HealAll ends every fault: network, slowness, clocks, pauses, restarts killed nodes and
// rejoins removed ones. It
// keeps the unsafe modes (they are the system under test, not a fault).
func HealAll(ctx context.Context, b Backend, hook bool) error {
	var errs []error
	netns := b.Name() == "netns"
	if err := b.Cut(ctx, nil); err != nil && (hook || netns) {
		errs = append(errs, err)
	}
	for _, n := range b.Nodes() {
		if b.Paused(n.ID) {
			errs = append(errs, b.Resume(ctx, n.ID))
		}
	}
	for _, n := range b.Nodes() {
		switch {
		case b.Removed(n.ID):
			errs = append(errs, b.Rejoin(ctx, n.ID))
		case !b.Running(n.ID):
			errs = append(errs, b.Restart(ctx, n.ID))
		}
	}
	for _, n := range b.Nodes() {
		if hook || netns {
			errs = append(errs, b.Slow(ctx, n.ID, Slowness{}))
		}
		if hook {
			errs = append(errs, b.Clock(ctx, n.ID, 0))
		}
	}
	return errors.Join(errs...)
}
