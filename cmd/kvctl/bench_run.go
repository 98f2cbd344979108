package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dialkv/dialkv/client"
)

// benchRun is one execution of a workload.
type benchRun struct {
	opts     *benchOptions
	cl       *client.Client
	progress io.Writer
	value    []byte
	seed     uint64

	shards [benchShards]benchShard
	errs   errorLog
	// claimed counts measured operations handed out, against --ops.
	claimed atomic.Int64
}

// benchShard is the recording state of the workers w with w % benchShards == its index.
type benchShard struct {
	mu       sync.Mutex
	total    [numBenchOps]histogram // measured operations that succeeded
	interval [numBenchOps]histogram // every operation that succeeded since the last progress line
	errors   [numBenchOps]int64     // measured failures
	servedBy [numBenchOps]map[string]int64
	warmOps  int64
	warmErrs int64
	intErrs  int64 // failures since the last progress line
}

func newBenchRun(b *benchOptions, cl *client.Client, progress io.Writer) *benchRun {
	r := &benchRun{opts: b, cl: cl, progress: progress, seed: uint64(time.Now().UnixNano())}
	// Printable bytes, so a value read back as JSON stays a string rather than base64.
	rng := rand.New(rand.NewPCG(r.seed, 0))
	r.value = make([]byte, b.valueSize)
	for i := range r.value {
		r.value[i] = 'a' + byte(rng.IntN(26))
	}
	for i := range r.shards {
		for op := range numBenchOps {
			r.shards[i].servedBy[op] = map[string]int64{}
		}
	}
	return r
}

// benchKey is the i-th key of the key space (0 <= i < 10^10): "bench/" and ten digits, 16 bytes
// as in the shared anchors' load generator. It is on every operation's path, so no fmt.
func benchKey(i int) string {
	b := []byte("bench/0000000000")
	for j := len(b) - 1; i > 0 && j >= len("bench/"); j-- {
		b[j] = byte('0' + i%10)
		i /= 10
	}
	return string(b)
}

// run populates (get and mixed), warms up, measures, and returns the report. It returns an error
// only when the run could not start (population failed or was interrupted); failed operations
// are in the report.
func (r *benchRun) run(ctx context.Context) (*benchReport, error) {
	b := r.opts
	populated := 0
	if b.reads() && b.populate {
		n, err := r.populateKeys(ctx)
		if err != nil {
			return nil, err
		}
		populated = n
	}
	start := time.Now()
	measureFrom := start.Add(b.warmup)
	end := measureFrom.Add(b.duration)
	fmt.Fprintf(r.progress, "bench: %s, %d clients, %d keys, %d-byte values, %s; %v warm-up, then %s\n",
		b.workload, b.clients, b.keys, b.valueSize, r.levels(), b.warmup, r.bound())

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for w := range b.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.worker(runCtx, w, measureFrom, end)
		}()
	}
	stopProgress := make(chan struct{})
	progressDone := make(chan struct{})
	go func() {
		defer close(progressDone)
		r.reportProgress(start, measureFrom, stopProgress)
	}()
	workersDone := make(chan struct{})
	go func() {
		wg.Wait()
		close(workersDone)
	}()
	var cpuFrom cpuSample
	select { // the CPU the measured window used, from its start
	case <-time.After(time.Until(measureFrom)):
		cpuFrom = sampleCPU()
	case <-workersDone:
	}
	<-workersDone
	stopped := time.Now()
	cpuTo := sampleCPU()
	close(stopProgress)
	<-progressDone

	// The window is that in which the measured operations started: it ends at --duration even
	// when the last of them answered later, or one slow answer at the end would lower the rate of
	// everything before it. A run stopped earlier (--ops, interrupt) ends when it stopped.
	windowEnd := stopped
	if windowEnd.After(end) {
		windowEnd = end
	}
	elapsed := windowEnd.Sub(measureFrom)
	if elapsed < 0 {
		elapsed = 0 // interrupted during the warm-up
	}
	rep := r.report(elapsed)
	rep.PopulatedKeys = populated
	rep.Interrupted = ctx.Err() != nil
	rep.cpuUse = cpuFrom.usage(cpuTo)
	return rep, nil
}

// cpuSample is a point in time with this process's CPU time and the machine's CPU counters
// (Linux /proc/stat, in ticks), to tell whether the load generator or something else on the
// machine, rather than the cluster, was the limit.
type cpuSample struct {
	at          time.Time
	self        time.Duration
	selfOK      bool
	busy, total uint64 // machine: ticks not idle, all ticks; total 0 when unknown
	steal       uint64 // machine: ticks the hypervisor ran other virtual machines instead
}

// procStatSteal is the position of the steal counter among /proc/stat's cpu fields (user nice
// system idle iowait irq softirq steal ...).
const procStatSteal = 7

func sampleCPU() cpuSample {
	s := cpuSample{at: time.Now()}
	s.self, s.selfOK = processCPUTime()
	if data, err := os.ReadFile("/proc/stat"); err == nil {
		line, _, _ := strings.Cut(string(data), "\n")
		if fields := strings.Fields(line); len(fields) > 5 && fields[0] == "cpu" {
			for i, f := range fields[1:] {
				v, err := strconv.ParseUint(f, 10, 64)
				if err != nil {
					return cpuSample{at: s.at, self: s.self, selfOK: s.selfOK}
				}
				s.total += v
				if i != 3 && i != 4 { // idle, iowait
					s.busy += v
				}
				if i == procStatSteal {
					s.steal = v
				}
			}
		}
	}
	return s
}

// cpuUse is what a benchmark's measured window cost the machine; each field is -1 when unknown.
type cpuUse struct {
	// LoadgenCPUPct is the CPU kvctl bench itself used (100 = one core). MachineBusyPct is how
	// busy the whole machine was (100 = every core), steal included: a machine near 100 % with a
	// cluster using little of it means something else competed.
	LoadgenCPUPct  float64 `json:"loadgen_cpu_pct"`
	MachineBusyPct float64 `json:"machine_busy_pct"`
	// StealPct is the share of the machine's CPU time its hypervisor gave to other virtual
	// machines (100 = every core). Above a few per cent the numbers say more about the host than
	// about dialkv, and compare with no other run.
	StealPct float64 `json:"steal_pct"`
}

func unknownCPU() cpuUse { return cpuUse{LoadgenCPUPct: -1, MachineBusyPct: -1, StealPct: -1} }

// stealWarnPct is the steal share from which the reports warn that the run is not comparable.
const stealWarnPct = 5

// writeLine prints the report's cpu line, if the machine's use is known.
func (c cpuUse) writeLine(w io.Writer) {
	if c.LoadgenCPUPct < 0 || c.MachineBusyPct < 0 {
		return
	}
	fmt.Fprintf(w, "cpu: kvctl bench %.0f%% of a core; machine %.0f%% busy", c.LoadgenCPUPct, c.MachineBusyPct)
	if c.StealPct >= 1 {
		fmt.Fprintf(w, ", %.0f%% of its CPU taken by the hypervisor for other machines", c.StealPct)
		if c.StealPct >= stealWarnPct {
			fmt.Fprint(w, ": compare this run with no other")
		}
	}
	fmt.Fprintln(w)
}

// usage returns what the machine's CPU did between s and later.
func (s cpuSample) usage(later cpuSample) cpuUse {
	u := unknownCPU()
	if wall := later.at.Sub(s.at); s.selfOK && later.selfOK && wall > 0 && !s.at.IsZero() {
		u.LoadgenCPUPct = 100 * float64(later.self-s.self) / float64(wall)
	}
	if s.total > 0 && later.total > s.total {
		ticks := float64(later.total - s.total)
		u.MachineBusyPct = 100 * float64(later.busy-s.busy) / ticks
		u.StealPct = 100 * float64(later.steal-s.steal) / ticks
	}
	return u
}

func (r *benchRun) levels() string {
	b := r.opts
	switch b.workload {
	case workloadPut:
		return "writes " + b.writeConsistency
	case workloadGet:
		return "reads " + b.readConsistency
	}
	return fmt.Sprintf("%.0f%% reads %s, writes %s", b.readRatio*100, b.readConsistency, b.writeConsistency)
}

func (r *benchRun) bound() string {
	if r.opts.ops > 0 {
		return fmt.Sprintf("%d operations or %v, whichever first", r.opts.ops, r.opts.duration)
	}
	return fmt.Sprintf("%v measured", r.opts.duration)
}

// populateKeys writes every key once with strong puts, so that every read level finds a
// committed value. It stops at the first failure: a read benchmark over missing keys measures
// not-found answers.
func (r *benchRun) populateKeys(parent context.Context) (int, error) {
	b := r.opts
	t0 := time.Now()
	fmt.Fprintf(r.progress, "bench: writing %d keys (strong) before the run\n", b.keys)
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	for range min(b.clients, benchPopulateWorkers) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= b.keys || ctx.Err() != nil {
					return
				}
				if _, err := r.cl.Put(ctx, benchKey(i), r.value, client.PutOptions{Consistency: client.ConsistencyStrong}); err != nil {
					once.Do(func() { firstErr = fmt.Errorf("bench: writing key %s before the run: %w", benchKey(i), err) })
					cancel()
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := parent.Err(); err != nil {
		return 0, fmt.Errorf("bench: interrupted while writing the keys: %w", err)
	}
	if firstErr != nil {
		return 0, firstErr
	}
	fmt.Fprintf(r.progress, "bench: wrote %d keys in %v\n", b.keys, time.Since(t0).Round(time.Millisecond))
	return b.keys, nil
}

// worker runs operations back to back until end, the --ops budget, or ctx. Operations that
// start before measureFrom are warm-up: counted apart, not in the results.
func (r *benchRun) worker(ctx context.Context, id int, measureFrom, end time.Time) {
	b := r.opts
	rng := rand.New(rand.NewPCG(r.seed, uint64(id)+1))
	shard := &r.shards[id%benchShards]
	var session *client.Session
	if b.readConsistency == client.ConsistencySession && b.reads() {
		session = client.NewSession("") // each worker is one session: it reads its own writes
	}
	for {
		t0 := time.Now()
		if !t0.Before(end) || ctx.Err() != nil {
			return
		}
		measured := !t0.Before(measureFrom)
		if measured && b.ops > 0 && r.claimed.Add(1) > b.ops {
			return
		}
		op := opPut
		if b.workload == workloadGet || b.workload == workloadMixed && rng.Float64() < b.readRatio {
			op = opGet
		}
		key := benchKey(rng.IntN(b.keys))
		var meta client.Meta
		var err error
		if op == opPut {
			meta, err = r.cl.Put(ctx, key, r.value, client.PutOptions{Consistency: b.writeConsistency, Session: session})
		} else {
			_, meta, err = r.cl.Get(ctx, key, client.GetOptions{Consistency: b.readConsistency, MaxStaleness: b.maxStaleness, Session: session})
		}
		took := time.Since(t0)
		if ctx.Err() != nil {
			return // interrupted: this operation's outcome says nothing about the cluster
		}
		shard.mu.Lock()
		switch {
		case err != nil && measured:
			shard.errors[op]++
			shard.intErrs++
		case err != nil:
			shard.warmErrs++
			shard.intErrs++
		case measured:
			shard.total[op].record(took)
			shard.interval[op].record(took)
			servedBy(shard.servedBy[op], meta)
		default:
			shard.warmOps++
			shard.interval[op].record(took)
		}
		shard.mu.Unlock()
		if err != nil {
			if measured {
				r.errs.add(op, errorKind(err), err)
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(benchErrorPause):
			}
		}
	}
}

// servedBy counts which node answered, "VIA>NODE" when the node that was asked forwarded it.
func servedBy(m map[string]int64, meta client.Meta) {
	label := meta.Node
	if label == "" {
		label = "?"
	}
	if meta.Via != "" && meta.Via != meta.Node {
		label = meta.Via + ">" + label
	}
	if _, ok := m[label]; !ok && len(m) >= benchMaxServedBy {
		label = "other"
	}
	m[label]++
}

// errorKind names the kind of a failed operation: the server's error code, "http_STATUS" for an
// error answer without one, "bad_answer" for a success answer the client could not read, or
// "transport" when no answer came (refused, reset, timed out; a write that got no answer may or
// may not have been applied).
func errorKind(err error) string {
	if errors.Is(err, client.ErrBadAnswer) {
		return "bad_answer"
	}
	var e *client.Error
	if errors.As(err, &e) {
		switch {
		case e.Status == 0:
			return "transport"
		case e.Code != "":
			return e.Code
		}
		return fmt.Sprintf("http_%d", e.Status)
	}
	return "transport"
}

// errorLog counts failures by operation and kind, keeping the first message of each kind. It is
// bounded: past benchMaxErrorKinds kinds, new ones count as "other".
type errorLog struct {
	mu    sync.Mutex
	kinds map[errorKey]*errorCount
}

type errorKey struct {
	op   benchOp
	kind string
}

type errorCount struct {
	n     int64
	first string
}

func (l *errorLog) add(op benchOp, kind string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.kinds == nil {
		l.kinds = map[errorKey]*errorCount{}
	}
	k := errorKey{op, kind}
	c, ok := l.kinds[k]
	if !ok {
		if len(l.kinds) >= benchMaxErrorKinds {
			k.kind = "other"
		}
		if c, ok = l.kinds[k]; !ok {
			c = &errorCount{first: oneLineMessage(err.Error(), 300)}
			l.kinds[k] = c
		}
	}
	c.n++
}

// oneLineMessage folds s to one line of at most limit bytes.
func oneLineMessage(s string, limit int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > limit {
		s = strings.ToValidUTF8(s[:limit], "") + "..."
	}
	return s
}

// reportProgress prints, every second until stop, what the last second did: operations per
// second, p50 and p99 of the operations that succeeded in it, and failures.
func (r *benchRun) reportProgress(start, measureFrom time.Time, stop <-chan struct{}) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	last := start
	var window histogram
	for {
		select {
		case <-stop:
			return
		case now := <-tick.C:
			window.reset()
			var errs int64
			for i := range r.shards {
				s := &r.shards[i]
				s.mu.Lock()
				for op := range numBenchOps {
					window.merge(&s.interval[op])
					s.interval[op].reset()
				}
				errs += s.intErrs
				s.intErrs = 0
				s.mu.Unlock()
			}
			phase := "measure"
			if last.Before(measureFrom) {
				phase = "warm-up" // the window began (at least) in the warm-up
			}
			secs := now.Sub(last).Seconds()
			last = now
			fmt.Fprintf(r.progress, "bench: %4.0fs %-7s %9.0f ops/s  p50 %s  p99 %s  errors %d\n",
				now.Sub(start).Seconds(), phase, float64(window.count())/secs,
				formatMillis(window.quantile(0.50)), formatMillis(window.quantile(0.99)), errs)
		}
	}
}
