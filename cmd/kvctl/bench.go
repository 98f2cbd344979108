package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/dialkv/dialkv/client"
	"github.com/dialkv/dialkv/consistency"
)

// Limits of kvctl bench: every run is bounded in time, in memory and in what it writes.
const (
	benchMaxClients   = 4096
	benchMaxKeys      = 1_000_000 // a get workload writes every key first
	benchMaxValueSize = 1 << 20   // the server's default --max-value-size
	benchMaxDuration  = time.Hour
	benchMaxWarmup    = 10 * time.Minute
	benchMaxOps       = 1_000_000_000
	// benchShards spreads the workers' latency recording over this many locks, so recording
	// never contends much and memory stays fixed (the histograms are 29 KiB each) whatever
	// --clients is.
	benchShards = 16
	// benchMaxErrorKinds caps the distinct error kinds kept; later kinds count as "other".
	benchMaxErrorKinds = 32
	// benchMaxServedBy caps the distinct "served by" labels kept per operation.
	benchMaxServedBy = 16
	// benchErrorPause is how long a worker rests after a failed operation, so that a cluster
	// that is down is not hammered in a tight loop. The pause is not part of any latency.
	benchErrorPause = 5 * time.Millisecond
	// benchPopulateWorkers is the concurrency of the pre-population (at most --clients).
	benchPopulateWorkers = 32
)

// benchCommand is kvctl bench's entry in the command table. run hands it every word after
// "bench", so its own flags (newBenchFlagSet) may stand anywhere; a "--" there, which older
// usage needed, is dropped.
func benchCommand() command {
	return command{
		name: "bench", args: "put|get|mixed|spread [FLAGS]",
		minArgs: 1, maxArgs: 64, flags: []string{"endpoints", "timeout", "json", "max-staleness"}, run: runBench,
		summary: `closed-loop load generator: ops/s and latency percentiles per operation and level; spread: time for an eventual write to reach every node (kvctl bench -h lists its flags)`,
	}
}

// benchOptions is one parsed kvctl bench command line.
type benchOptions struct {
	workload         string // put, get, mixed or spread
	endpoints        []string
	endpointsSource  string // where endpoints came from, for errors (options.endpointsSource)
	timeout          time.Duration
	json             bool
	clients          int
	keys             int
	valueSize        int
	duration         time.Duration
	ops              int64
	warmup           time.Duration
	readRatio        float64
	writeConsistency string
	readConsistency  string
	maxStaleness     time.Duration
	populate         bool
	spread           spreadOptions
}

// Workloads and their operations.
const (
	workloadPut   = "put"
	workloadGet   = "get"
	workloadMixed = "mixed"
)

type benchOp int

const (
	opPut benchOp = iota
	opGet
	numBenchOps
)

func (o benchOp) String() string { return [...]string{"put", "get"}[o] }

func (b *benchOptions) writes() bool { return b.workload != workloadGet }
func (b *benchOptions) reads() bool  { return b.workload != workloadPut }

// level returns the consistency level operation op runs at.
func (b *benchOptions) level(op benchOp) string {
	if op == opPut {
		return b.writeConsistency
	}
	return b.readConsistency
}

// newBenchFlagSet defines kvctl bench's flags on a fresh set bound to b. The shared flags
// (--endpoints, --timeout, --json, --max-staleness) are accepted on either side of "--"; their
// defaults come from the shared parse.
func newBenchFlagSet(b *benchOptions, shared *options, help *bool) *flag.FlagSet {
	fs := flag.NewFlagSet("kvctl bench", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.String("endpoints", shared.endpoints, "comma-separated host:port `ADDRS` of the nodes; one shared client starts at the first and fails over in order")
	fs.DurationVar(&b.timeout, "timeout", shared.timeout, "give up on one attempt after `D` (the error counts as the server's, or as transport)")
	fs.BoolVar(&b.json, "json", shared.json, "print the report as one JSON object on stdout")
	fs.DurationVar(&b.maxStaleness, "max-staleness", shared.maxStaleness, "bound of --read-consistency bounded reads, `D` (server default 1s)")
	fs.IntVar(&b.clients, "clients", 16, "`N` concurrent closed-loop clients (each waits for its answer before sending again)")
	fs.IntVar(&b.keys, "keys", 10000, "key space of `N` keys, picked uniformly at random")
	fs.IntVar(&b.valueSize, "value-size", 128, "`B` bytes per value written")
	fs.DurationVar(&b.duration, "duration", 10*time.Second, "measure for `D` (at most 1h); with --ops, whichever ends first")
	fs.Int64Var(&b.ops, "ops", 0, "stop after `N` measured operations (0: --duration alone)")
	fs.DurationVar(&b.warmup, "warmup", 2*time.Second, "run the workload for `D` first without counting it (connections, leader caches, page cache)")
	fs.Float64Var(&b.readRatio, "read-ratio", 0.9, "mixed: share `F` of operations that are gets (0 to 1)")
	fs.StringVar(&b.writeConsistency, "write-consistency", client.ConsistencyStrong, "`LEVEL` of puts: strong or eventual")
	fs.StringVar(&b.readConsistency, "read-consistency", client.ConsistencyStrong, "`LEVEL` of gets: strong, bounded, session or eventual")
	fs.BoolVar(&b.populate, "populate", true, "get and mixed: write every key once (strong) before the run, so reads find values")
	addSpreadFlags(fs, &b.spread)
	fs.BoolVar(help, "h", false, "show this help")
	fs.BoolVar(help, "help", false, "show this help")
	return fs
}

// benchFlagOrder is the order the help lists the flags in.
var benchFlagOrder = []string{"clients", "duration", "ops", "warmup", "keys", "value-size", "read-ratio",
	"write-consistency", "read-consistency", "max-staleness", "populate", "rounds", "poll-interval", "round-timeout",
	"max-pause", "endpoints", "timeout", "json"}

func writeBenchUsage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprint(w, `Usage: kvctl bench put|get|mixed|spread [FLAGS]

Runs a closed-loop load against the cluster through one shared client (keep-alive connections)
and reports ops/s and p50/p99/p99.9/max latency per operation and consistency level, and the
errors by kind. A progress line goes to stderr every second. Warm-up operations are not counted;
get and mixed first write every key once. Exit status 1 if any measured operation failed.

  put     every operation writes a random key at --write-consistency
  get     every operation reads a random key at --read-consistency
  mixed   gets (share --read-ratio) and puts
  spread  rounds of one eventual write each, to every node of --endpoints in turn (list them
          all), while one goroutine per node polls it with eventual GETs, --poll-interval apart,
          until it serves the write; reports the time from sending the write until every node
          served it, and each node's time. A time is when the answer holding the write came
          back: late by less than the "poll window" reported, from sending the last poll that
          lacked the write to that answer (the poll interval plus up to two GET round trips,
          as the node may read just before the write arrives). Polling is load (up to
          ~1/(interval + round trip) GET/s per node that lacks the write); the report counts
          the polls. --clients, --keys and the level flags
          do not apply; --duration, --warmup, --value-size and --timeout do.

Flags (before or after the workload; a "--" before them, as older usage had, is accepted):
`)
	writeFlagHelp(w, fs, benchFlagOrder)
	fmt.Fprint(w, `
Example: kvctl bench put --clients 64 --duration 10s --write-consistency eventual --json
         kvctl bench spread --endpoints 127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003 --rounds 100
`)
}

// parseBench turns the words after "bench" into options. The workload is the first positional
// word, on either side of "--".
func parseBench(shared *options, args []string, stdout io.Writer) (*benchOptions, bool, error) {
	b := &benchOptions{}
	var help bool
	fs := newBenchFlagSet(b, shared, &help)
	positional, err := parseInterspersed(fs, args)
	if err != nil {
		return nil, false, flagHint(err, []string{"bench"})
	}
	if help || shared.help { // -h before the word "bench" too
		writeBenchUsage(stdout, fs)
		return nil, true, nil
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if len(positional) != 1 {
		return nil, false, usageErrorf("usage: kvctl bench put|get|mixed|spread [FLAGS] (kvctl bench -h lists the flags)")
	}
	b.workload = positional[0]
	endpoints := fs.Lookup("endpoints").Value.String()
	b.endpointsSource = shared.endpointsSource()
	if set["endpoints"] {
		b.endpointsSource = "--endpoints"
	}
	b.endpoints = splitEndpoints(endpoints)
	if err := b.validate(set); err != nil {
		return nil, false, err
	}
	return b, false, nil
}

// validate checks the options alone and against each other. set names the flags given
// explicitly: a flag that does not apply to the workload is a mistake, not silently ignored.
func (b *benchOptions) validate(set map[string]bool) error {
	switch b.workload {
	case workloadPut, workloadGet, workloadMixed, workloadSpread:
	default:
		return usageErrorf("unknown workload %q: want put, get, mixed or spread", b.workload)
	}
	if len(b.endpoints) == 0 {
		return usageErrorf("%s is empty", b.endpointsSource)
	}
	if b.clients < 1 || b.clients > benchMaxClients {
		return usageErrorf("--clients must be between 1 and %d, not %d", benchMaxClients, b.clients)
	}
	if b.keys < 1 || b.keys > benchMaxKeys {
		return usageErrorf("--keys must be between 1 and %d, not %d", benchMaxKeys, b.keys)
	}
	if b.valueSize < 0 || b.valueSize > benchMaxValueSize {
		return usageErrorf("--value-size must be between 0 and %d, not %d", benchMaxValueSize, b.valueSize)
	}
	if b.duration <= 0 || b.duration > benchMaxDuration {
		return usageErrorf("--duration must be positive and at most %v, not %v", benchMaxDuration, b.duration)
	}
	if b.ops < 0 || b.ops > benchMaxOps {
		return usageErrorf("--ops must be between 0 (no limit) and %d, not %d", benchMaxOps, b.ops)
	}
	if set["ops"] && !set["duration"] {
		b.duration = benchMaxDuration // --ops alone: the count ends the run, the hour bounds it
	}
	if b.warmup < 0 || b.warmup > benchMaxWarmup {
		return usageErrorf("--warmup must be between 0 and %v, not %v", benchMaxWarmup, b.warmup)
	}
	if b.timeout <= 0 {
		return usageErrorf("--timeout must be positive")
	}
	if b.workload == workloadSpread {
		return b.validateSpread(set)
	}
	for _, name := range spreadFlags {
		if set[name] {
			return usageErrorf("--%s applies only to the spread workload", name)
		}
	}
	if set["read-ratio"] && b.workload != workloadMixed {
		return usageErrorf("--read-ratio applies only to the mixed workload")
	}
	if b.readRatio < 0 || b.readRatio > 1 {
		return usageErrorf("--read-ratio must be between 0 and 1, not %v", b.readRatio)
	}
	if set["write-consistency"] && !b.writes() {
		return usageErrorf("--write-consistency applies to put and mixed; the get workload writes only its strong pre-population")
	}
	if set["read-consistency"] && !b.reads() {
		return usageErrorf("--read-consistency applies to get and mixed")
	}
	if set["populate"] && !b.reads() {
		return usageErrorf("--populate applies to get and mixed")
	}
	// The levels are read as kvctl's other commands and the server read them (any case).
	w, err := consistency.ParseWrite(b.writeConsistency)
	if err != nil {
		return usageErrorf("--write-consistency %q: want strong or eventual", b.writeConsistency)
	}
	r, err := consistency.ParseRead(b.readConsistency)
	if err != nil {
		return usageErrorf("--read-consistency %q: want strong, bounded, session or eventual", b.readConsistency)
	}
	b.writeConsistency, b.readConsistency = w.String(), r.String()
	if b.maxStaleness != 0 && (b.readConsistency != client.ConsistencyBounded || !b.reads()) {
		return usageErrorf("--max-staleness applies only to --read-consistency bounded")
	}
	if b.maxStaleness < 0 {
		return usageErrorf("--max-staleness must be positive")
	}
	return nil
}

func runBench(ctx context.Context, inv *invocation) error {
	b, helped, err := parseBench(inv.opts, inv.args, inv.stdout)
	if err != nil || helped {
		return err
	}
	if b.workload == workloadSpread {
		return runSpread(ctx, b, inv)
	}
	cl, err := newBenchClient(b)
	if err != nil {
		return err
	}
	r := newBenchRun(b, cl, inv.stderr)
	rep, err := r.run(ctx)
	if err != nil {
		return err
	}
	if b.json {
		err = writeJSON(inv.stdout, rep)
	} else {
		err = writeBenchReport(inv.stdout, rep)
	}
	if err != nil {
		return err
	}
	switch {
	case rep.Interrupted:
		return errors.New("bench: interrupted; the report covers the operations measured until then")
	case rep.Total.Errors > 0:
		return fmt.Errorf("bench: %d of %d measured operations failed (errors by kind in the report)",
			rep.Total.Errors, rep.Total.Errors+rep.Total.Ops)
	}
	return nil
}

// newBenchClient builds the one client every worker shares. Its transport keeps an idle
// connection per worker and node, so a closed loop never dials once warm.
func newBenchClient(b *benchOptions) (*client.Client, error) {
	t := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: min(client.DefaultDialTimeout, b.timeout), KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        0, // no limit across nodes
		MaxIdleConnsPerHost: b.clients + benchPopulateWorkers,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	cfg := client.DefaultConfig()
	cfg.Endpoints = b.endpoints
	cfg.Timeout = b.timeout
	cfg.HTTPClient = &http.Client{
		Transport:     t,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	cl, err := client.New(cfg)
	if err != nil {
		return nil, usageErrorf("%s %q: %v", b.endpointsSource, strings.Join(b.endpoints, ","), err)
	}
	return cl, nil
}
