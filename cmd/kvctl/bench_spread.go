package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/dialkv/dialkv/client"
	"github.com/dialkv/dialkv/consistency"
)

// kvctl bench spread measures how long an eventual write takes to be served by every node: one
// write per round, to each node in turn, while every node is polled until it answers with it.
//
// What bounds its resolution: a node is polled by one goroutine, one eventual GET at a time,
// resting --poll-interval between polls. The time reported for a node is when the first answer
// holding the write came back. The write arrived after the last poll that lacked it was sent
// (the node read after that), so the time is late by less than the window from that send to the
// answer that held it: the rest of the missed poll's round trip, the pause, and a whole round
// trip, i.e. up to one poll interval plus two GET round trips. The report gives that window as
// "poll window", measured, not assumed. Polling is load: at 1 ms each node
// takes up to ~1,000 GET/s while it lacks the write, so the report also says how many polls
// the run made.

// Limits of the spread workload, on top of the bench limits (duration, warm-up, value size).
const (
	spreadMaxRounds       = 100_000
	spreadMaxNodes        = 64
	spreadMinPollInterval = 100 * time.Microsecond
	spreadMaxPollInterval = time.Second
	spreadMaxRoundTimeout = time.Minute
	spreadMaxPause        = 10 * time.Second
)

const workloadSpread = "spread"

// spreadOptions are the spread workload's own flags.
type spreadOptions struct {
	rounds       int
	pollInterval time.Duration
	roundTimeout time.Duration
	maxPause     time.Duration
}

// spreadFlags are the flags only the spread workload takes; spreadForeignFlags those it refuses.
var (
	spreadFlags        = []string{"rounds", "poll-interval", "round-timeout", "max-pause"}
	spreadForeignFlags = []string{"clients", "keys", "ops", "read-ratio", "write-consistency", "read-consistency", "populate", "max-staleness"}
)

func addSpreadFlags(fs *flag.FlagSet, s *spreadOptions) {
	fs.IntVar(&s.rounds, "rounds", 100, "spread: measure `N` rounds, one fresh key each (with --duration, whichever ends first)")
	fs.DurationVar(&s.pollInterval, "poll-interval", time.Millisecond, "spread: rest `D` between two polls of one node (one GET in flight per node)")
	fs.DurationVar(&s.roundTimeout, "round-timeout", 5*time.Second, "spread: a node that has not answered with the write `D` after it was sent has missed the round")
	fs.DurationVar(&s.maxPause, "max-pause", 100*time.Millisecond, "spread: rest a random time up to `D` between rounds, so rounds do not fall into step with gossip's timers")
}

// validateSpread checks the options of the spread workload; set names the flags given.
func (b *benchOptions) validateSpread(set map[string]bool) error {
	for _, name := range spreadForeignFlags {
		if set[name] || name == "max-staleness" && b.maxStaleness != 0 {
			return usageErrorf("--%s does not apply to the spread workload", name)
		}
	}
	if n := len(b.endpoints); n < 2 || n > spreadMaxNodes {
		return usageErrorf("spread: --endpoints must name every node of the cluster, 2 to %d of them, not %d", spreadMaxNodes, n)
	}
	seen := map[string]bool{}
	for _, e := range b.endpoints {
		if seen[e] {
			return usageErrorf("spread: endpoint %s is listed twice", e)
		}
		seen[e] = true
	}
	s := &b.spread
	if s.rounds < 1 || s.rounds > spreadMaxRounds {
		return usageErrorf("--rounds must be between 1 and %d, not %d", spreadMaxRounds, s.rounds)
	}
	if s.pollInterval < spreadMinPollInterval || s.pollInterval > spreadMaxPollInterval {
		return usageErrorf("--poll-interval must be between %v and %v, not %v", spreadMinPollInterval, spreadMaxPollInterval, s.pollInterval)
	}
	if s.roundTimeout <= 0 || s.roundTimeout > spreadMaxRoundTimeout {
		return usageErrorf("--round-timeout must be positive and at most %v, not %v", spreadMaxRoundTimeout, s.roundTimeout)
	}
	if s.maxPause < 0 || s.maxPause > spreadMaxPause {
		return usageErrorf("--max-pause must be between 0 and %v, not %v", spreadMaxPause, s.maxPause)
	}
	if set["rounds"] && !set["duration"] {
		b.duration = benchMaxDuration // --rounds alone: the count ends the run, the hour bounds it
	}
	return nil
}

// spreadRun is one execution of the spread workload.
type spreadRun struct {
	opts     *benchOptions
	clients  []*client.Client // one per endpoint, talking to that node only
	progress io.Writer
	value    []byte
	prefix   string // keys are PREFIX/ROUND: fresh in every run

	polls atomic.Int64 // polls sent in measured rounds
	errs  errorLog     // opPut: writes; opGet: polls

	write, all, window histogram
	interval           histogram       // time to all nodes since the last progress line
	nodes              []spreadNodeAcc // by endpoint
	rounds, complete   int64
	failedWrites       int64
	warmRounds         int64
	arrivals           int64 // measured arrivals at replicas (nodes other than the round's origin)
	committedArrivals  int64 // ... of which the node answered from its committed layer
}

// spreadNodeAcc is what the measured rounds saw of one node.
type spreadNodeAcc struct {
	id      string
	replica histogram // time until it served the write, in rounds another node took it
	origin  int64     // rounds it took the write
	missed  int64
}

// arrival is what polling one node found in one round.
type arrival struct {
	found   bool
	at      time.Duration // from sending the write to the answer holding it
	window  time.Duration // from the send of the last poll that lacked it to that answer
	version string
	state   string
	node    string // the id the node answered with
}

func newSpreadRun(b *benchOptions, progress io.Writer) (*spreadRun, error) {
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 0))
	s := &spreadRun{opts: b, progress: progress, value: make([]byte, b.valueSize),
		prefix: "spread/" + strconv.FormatUint(rng.Uint64()%1e12, 36)}
	for i := range s.value {
		s.value[i] = 'a' + byte(rng.IntN(26)) // printable, as in the other workloads
	}
	for _, e := range b.endpoints {
		one := *b
		one.endpoints, one.clients = []string{e}, 1
		cl, err := newBenchClient(&one)
		if err != nil {
			return nil, err
		}
		s.clients = append(s.clients, cl)
	}
	s.nodes = make([]spreadNodeAcc, len(b.endpoints))
	return s, nil
}

func runSpread(ctx context.Context, b *benchOptions, inv *invocation) error {
	s, err := newSpreadRun(b, inv.stderr)
	if err != nil {
		return err
	}
	rep := s.run(ctx)
	if b.json {
		err = writeJSON(inv.stdout, rep)
	} else {
		err = writeSpreadReport(inv.stdout, rep)
	}
	if err != nil {
		return err
	}
	switch {
	case rep.Interrupted:
		return errors.New("bench spread: interrupted; the report covers the rounds measured until then")
	case rep.FailedWrites > 0 || rep.Incomplete > 0:
		return fmt.Errorf("bench spread: of %d measured rounds, %d writes failed and %d rounds were incomplete (a node had not served the write within %v)",
			rep.Rounds, rep.FailedWrites, rep.Incomplete, b.spread.roundTimeout)
	}
	return nil
}

// run does rounds until --rounds were measured, --duration ended, or ctx is done.
func (s *spreadRun) run(ctx context.Context) *spreadReport {
	b := s.opts
	start := time.Now()
	measureFrom := start.Add(b.warmup)
	end := measureFrom.Add(b.duration)
	fmt.Fprintf(s.progress, "bench: spread over %d nodes, %d-byte eventual writes, polls every %v per node; %v warm-up, then %d rounds or %v, whichever first\n",
		len(b.endpoints), b.valueSize, b.spread.pollInterval, b.warmup, b.spread.rounds, b.duration)
	rng := rand.New(rand.NewPCG(uint64(start.UnixNano()), 1))
	var cpuFrom cpuSample
	var measuredFrom time.Time
	lastProgress := start
	for n := 0; ; n++ {
		now := time.Now()
		if ctx.Err() != nil || !now.Before(end) || s.rounds >= int64(b.spread.rounds) {
			break
		}
		measured := !now.Before(measureFrom)
		if measured && measuredFrom.IsZero() {
			measuredFrom, cpuFrom = now, sampleCPU()
		}
		origin := n % len(s.clients)
		arrivals, took, err := s.round(ctx, origin, fmt.Sprintf("%s/%07d", s.prefix, n), measured)
		if ctx.Err() != nil {
			break // interrupted: this round says nothing about the cluster
		}
		s.record(origin, arrivals, took, err, measured)
		if now := time.Now(); now.Sub(lastProgress) >= time.Second {
			s.reportProgress(now.Sub(start), measured, now.Sub(lastProgress))
			lastProgress = now
		}
		if pause := time.Duration(rng.Int64N(int64(b.spread.maxPause) + 1)); pause > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(pause):
			}
		}
	}
	stopped := time.Now()
	cpuTo := sampleCPU()
	var elapsed time.Duration
	if !measuredFrom.IsZero() {
		elapsed = stopped.Sub(measuredFrom)
	}
	rep := s.report(elapsed)
	rep.Interrupted = ctx.Err() != nil
	rep.cpuUse = cpuFrom.usage(cpuTo)
	return rep
}

// round writes key at the origin node while polling every node for it, and returns what each
// node showed, the write's latency, and its error. Polling starts with the write, not after
// its acknowledgement: a node may have the write before its origin answers.
func (s *spreadRun) round(ctx context.Context, origin int, key string, measured bool) ([]arrival, time.Duration, error) {
	rctx, cancel := context.WithTimeout(ctx, s.opts.spread.roundTimeout)
	defer cancel()
	t0 := time.Now()
	arrivals := make([]arrival, len(s.clients))
	var wg sync.WaitGroup
	for i := range s.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			arrivals[i] = s.poll(rctx, i, key, t0, measured)
		}()
	}
	meta, err := s.clients[origin].Put(rctx, key, s.value, client.PutOptions{Consistency: client.ConsistencyEventual})
	took := time.Since(t0)
	if err != nil {
		cancel() // nothing acknowledged to wait for
	}
	wg.Wait()
	if err != nil {
		return arrivals, took, err
	}
	written, err := consistency.ParseVersion(meta.Version)
	if err != nil || written.IsZero() {
		return arrivals, took, fmt.Errorf("%w: the write's answer carries no usable version %q", client.ErrBadAnswer, meta.Version)
	}
	for i := range arrivals {
		a := &arrivals[i]
		if !a.found {
			continue
		}
		// The key is fresh, so anything found is this write, or newer if someone else wrote it.
		if v, err := consistency.ParseVersion(a.version); err != nil || written.Newer(v) {
			a.found = false
			if measured {
				s.errs.add(opGet, "stale_version", fmt.Errorf("node %s answered version %q for %s, older than the write's %s", s.opts.endpoints[i], a.version, key, meta.Version))
			}
		}
	}
	return arrivals, took, nil
}

// poll asks node i for key (eventual read) until it answers with a value or ctx ends.
func (s *spreadRun) poll(ctx context.Context, i int, key string, t0 time.Time, measured bool) arrival {
	var a arrival
	lastMiss := t0
	pause := time.NewTimer(time.Hour)
	pause.Stop() // since Go 1.23 a stopped timer delivers nothing stale after Reset
	for {
		sent := time.Now()
		_, meta, err := s.clients[i].Get(ctx, key, client.GetOptions{Consistency: client.ConsistencyEventual})
		got := time.Now()
		if measured {
			s.polls.Add(1)
		}
		if meta.Node != "" {
			a.node = meta.Node
		}
		switch {
		case err == nil:
			a.found, a.at, a.window, a.version, a.state = true, got.Sub(t0), got.Sub(lastMiss), meta.Version, meta.State
			return a
		case ctx.Err() != nil:
			return a
		case client.IsNotFound(err):
			lastMiss = sent
		case measured:
			s.errs.add(opGet, errorKind(err), err)
		}
		pause.Reset(s.opts.spread.pollInterval)
		select {
		case <-ctx.Done():
			return a
		case <-pause.C:
		}
	}
}

// record adds one round to the results (or to the warm-up count).
func (s *spreadRun) record(origin int, arrivals []arrival, took time.Duration, err error, measured bool) {
	if !measured {
		s.warmRounds++
		return
	}
	s.rounds++
	for i, a := range arrivals {
		if a.node != "" {
			s.nodes[i].id = a.node
		}
	}
	s.nodes[origin].origin++
	if err != nil {
		s.failedWrites++
		s.errs.add(opPut, errorKind(err), err)
		return
	}
	s.write.record(took)
	var all time.Duration
	complete := true
	for i, a := range arrivals {
		if !a.found {
			complete = false
			s.nodes[i].missed++
			continue
		}
		all = max(all, a.at)
		s.window.record(a.window)
		if i != origin {
			s.nodes[i].replica.record(a.at)
			s.arrivals++
			if a.state == client.StateCommitted {
				s.committedArrivals++
			}
		}
	}
	if complete {
		s.complete++
		s.all.record(all)
		s.interval.record(all)
	}
}

func (s *spreadRun) reportProgress(since time.Duration, measured bool, window time.Duration) {
	phase := "measure"
	if !measured {
		phase = "warm-up"
	}
	fmt.Fprintf(s.progress, "bench: %4.0fs %-7s %5.1f rounds/s  all nodes p50 %s  max %s  rounds %d  incomplete %d\n",
		since.Seconds(), phase, float64(s.interval.count())/window.Seconds(), formatMillis(s.interval.quantile(0.5)),
		formatMillis(s.interval.maximum()), s.rounds, s.rounds-s.complete-s.failedWrites)
	s.interval.reset()
}

// spreadReport is the outcome of a spread run: the text report and the --json object.
type spreadReport struct {
	Workload       string   `json:"workload"` // spread
	Endpoints      []string `json:"endpoints"`
	ValueSize      int      `json:"value_size"`
	PollIntervalMs float64  `json:"poll_interval_ms"`
	RoundTimeoutS  float64  `json:"round_timeout_s"`
	MaxPauseMs     float64  `json:"max_pause_ms"`
	WarmupSecs     float64  `json:"warmup_s"`
	// Secs is the measured window: from the first measured round until the run stopped.
	Secs         float64 `json:"secs"`
	Interrupted  bool    `json:"interrupted,omitempty"`
	WarmupRounds int64   `json:"warmup_rounds"`
	// Rounds counts measured rounds: Complete ones (every node served the write), FailedWrites
	// (the eventual write itself failed), and Incomplete ones (a node had not served it by the
	// round timeout).
	Rounds       int64 `json:"rounds"`
	Complete     int64 `json:"complete"`
	FailedWrites int64 `json:"failed_writes"`
	Incomplete   int64 `json:"incomplete"`
	// Write is the eventual write's latency at its origin. AllNodes is, per complete round, the
	// time from sending the write until the last node answered with it. PollWindow is, per node
	// and round, how much earlier than reported the write may have arrived.
	Write      spreadStat `json:"write"`
	AllNodes   spreadStat `json:"all_nodes"`
	PollWindow spreadStat `json:"poll_window"`
	// Nodes has one entry per endpoint: its time to serve writes other nodes took.
	Nodes []spreadNode `json:"nodes"`
	// CommittedPct is the share of arrivals at replicas first seen in the committed layer: the
	// write came by Raft (through the committer) before gossip brought it, or within the same
	// poll window.
	CommittedPct float64 `json:"committed_pct"`
	Polls        int64   `json:"polls"`
	PollsPerSec  float64 `json:"polls_per_s"`
	// Errors by kind: of the writes, and of the polls (a failed poll is retried until the
	// round's timeout).
	WriteErrors      map[string]int64  `json:"write_errors,omitempty"`
	PollErrors       map[string]int64  `json:"poll_errors,omitempty"`
	FirstWriteErrors map[string]string `json:"first_write_errors,omitempty"`
	FirstPollErrors  map[string]string `json:"first_poll_errors,omitempty"`
	cpuUse
}

// spreadStat summarises durations, in milliseconds.
type spreadStat struct {
	Count  int64   `json:"count"`
	P50ms  float64 `json:"p50_ms"`
	P99ms  float64 `json:"p99_ms"`
	Maxms  float64 `json:"max_ms"`
	Meanms float64 `json:"mean_ms"`
}

type spreadNode struct {
	Endpoint string `json:"endpoint"`
	Node     string `json:"node,omitempty"`
	// Replica is its time to serve the write in the rounds another node took it.
	Replica spreadStat `json:"replica"`
	Origin  int64      `json:"origin_rounds"`
	Missed  int64      `json:"missed"`
}

func statOf(h *histogram) spreadStat {
	return spreadStat{Count: int64(h.count()), P50ms: millis(h.quantile(0.50)), P99ms: millis(h.quantile(0.99)),
		Maxms: millis(h.maximum()), Meanms: millis(h.mean())}
}

func (s *spreadRun) report(elapsed time.Duration) *spreadReport {
	b := s.opts
	rep := &spreadReport{
		Workload: workloadSpread, Endpoints: b.endpoints, ValueSize: b.valueSize,
		PollIntervalMs: millis(b.spread.pollInterval), RoundTimeoutS: b.spread.roundTimeout.Seconds(),
		MaxPauseMs: millis(b.spread.maxPause), WarmupSecs: b.warmup.Seconds(), Secs: elapsed.Seconds(),
		WarmupRounds: s.warmRounds, Rounds: s.rounds, Complete: s.complete, FailedWrites: s.failedWrites,
		Incomplete: s.rounds - s.complete - s.failedWrites,
		Write:      statOf(&s.write), AllNodes: statOf(&s.all), PollWindow: statOf(&s.window),
		Polls: s.polls.Load(), cpuUse: unknownCPU(),
	}
	if s.arrivals > 0 {
		rep.CommittedPct = 100 * float64(s.committedArrivals) / float64(s.arrivals)
	}
	if elapsed > 0 {
		rep.PollsPerSec = float64(rep.Polls) / elapsed.Seconds()
	}
	for i := range s.nodes {
		n := &s.nodes[i]
		rep.Nodes = append(rep.Nodes, spreadNode{Endpoint: b.endpoints[i], Node: n.id, Replica: statOf(&n.replica), Origin: n.origin, Missed: n.missed})
	}
	rep.WriteErrors, rep.FirstWriteErrors = s.errs.byKind(opPut)
	rep.PollErrors, rep.FirstPollErrors = s.errs.byKind(opGet)
	return rep
}

// byKind returns the counts and first messages of op's failures by kind (nil when none).
func (l *errorLog) byKind(op benchOp) (map[string]int64, map[string]string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var counts map[string]int64
	var first map[string]string
	for k, c := range l.kinds {
		if k.op != op {
			continue
		}
		if counts == nil {
			counts, first = map[string]int64{}, map[string]string{}
		}
		counts[k.kind] += c.n
		first[k.kind] = c.first
	}
	return counts, first
}

// writeSpreadReport prints the report: the write, the time to all nodes and the poll window,
// then one row per node.
func writeSpreadReport(w io.Writer, rep *spreadReport) error {
	fmt.Fprintf(w, "workload spread: %d nodes, %d-byte eventual writes to each node in turn; polls every %s per node; measured %.1fs after %gs warm-up",
		len(rep.Endpoints), rep.ValueSize, formatMillis(fromMillis(rep.PollIntervalMs)), rep.Secs, rep.WarmupSecs)
	if rep.Interrupted {
		fmt.Fprint(w, " (interrupted)")
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "rounds: %d measured, %d complete, %d incomplete (a node lacked the write after %gs), %d failed writes\n",
		rep.Rounds, rep.Complete, rep.Incomplete, rep.RoundTimeoutS, rep.FailedWrites)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\tcount\tp50\tp99\tmax\tmean\t")
	row := func(name string, st spreadStat) {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t\n", name, st.Count, formatMillis(fromMillis(st.P50ms)),
			formatMillis(fromMillis(st.P99ms)), formatMillis(fromMillis(st.Maxms)), formatMillis(fromMillis(st.Meanms)))
	}
	row("write at origin", rep.Write)
	row("all nodes", rep.AllNodes)
	row("poll window", rep.PollWindow)
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "per node, in rounds another node took the write:")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "node\tendpoint\tcount\tp50\tp99\tmax\tmissed\t")
	for _, n := range rep.Nodes {
		id := n.Node
		if id == "" {
			id = "?"
		}
		st := n.Replica
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%d\t\n", id, n.Endpoint, st.Count, formatMillis(fromMillis(st.P50ms)),
			formatMillis(fromMillis(st.P99ms)), formatMillis(fromMillis(st.Maxms)), n.Missed)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "arrivals first seen committed (by Raft, not gossip): %.0f%%\n", rep.CommittedPct)
	fmt.Fprintf(w, "polls: %d (%.0f/s)\n", rep.Polls, rep.PollsPerSec)
	for _, e := range []struct {
		what   string
		counts map[string]int64
		first  map[string]string
	}{{"write", rep.WriteErrors, rep.FirstWriteErrors}, {"poll", rep.PollErrors, rep.FirstPollErrors}} {
		for _, kind := range sortedKeys(e.counts) {
			fmt.Fprintf(w, "errors: %s %s: %d (first: %s)\n", e.what, kind, e.counts[kind], e.first[kind])
		}
	}
	rep.writeLine(w)
	return nil
}
