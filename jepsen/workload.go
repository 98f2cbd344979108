package jepsen

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dialkv/dialkv/client"
)

// Workload names.
const (
	WorkloadRegister  = "register"
	WorkloadMixed     = "mixed"
	WorkloadSet       = "set"
	WorkloadSession   = "session"
	WorkloadStaleness = "staleness"
	WorkloadDelete    = "delete"
)

// Workloads lists every workload.
var Workloads = []string{WorkloadRegister, WorkloadMixed, WorkloadSet, WorkloadSession, WorkloadStaleness, WorkloadDelete}

// Workload generates one kind of traffic and checks its history. Its keys all start with
// Name()+"/", so workloads running together never touch each other's keys.
type Workload interface {
	Name() string
	// Worker is one client's loop: it runs operations, each through w.do, until ctx ends.
	Worker(ctx context.Context, w *Worker)
	// Check checks the workload's operations and the final committed state.
	Check(in CheckInput) []CheckResult
}

// CheckInput is what a workload's checkers get.
type CheckInput struct {
	Ops []*Op
	// Final is the committed state after the cluster settled (strong list), all keys.
	Final  map[string]FinalValue
	Linear LinearConfig
	Stale  StalenessConfig
}

// WorkloadConfig tunes the workloads.
type WorkloadConfig struct {
	// Keys is the number of keys (slots) the register and mixed workloads spread over.
	Keys int
	// OpsPerKey rotates a register slot to a fresh key after this many operations, so each
	// key's history stays small enough for the linearizability search.
	OpsPerKey int
	// MaxStaleness is the bound of bounded reads.
	MaxStaleness time.Duration
}

// NewWorkload returns the named workload.
func NewWorkload(name string, cfg WorkloadConfig) (Workload, error) {
	if cfg.Keys <= 0 {
		cfg.Keys = 10
	}
	if cfg.OpsPerKey <= 0 {
		cfg.OpsPerKey = 1000
	}
	if cfg.MaxStaleness <= 0 {
		cfg.MaxStaleness = time.Second
	}
	switch name {
	case WorkloadRegister:
		return &registerWorkload{keys: newKeyRing(name, cfg.Keys, cfg.OpsPerKey)}, nil
	case WorkloadMixed:
		// Eventual writes are the expensive part of the search: rotate faster.
		return &mixedWorkload{keys: newKeyRing(name, cfg.Keys, max(50, cfg.OpsPerKey/5))}, nil
	case WorkloadSet:
		return &setWorkload{}, nil
	case WorkloadSession:
		return &sessionWorkload{keys: min(cfg.Keys, 12)}, nil
	case WorkloadStaleness:
		return &stalenessWorkload{keys: 3, bound: cfg.MaxStaleness}, nil
	case WorkloadDelete:
		return &deleteWorkload{keys: newKeyRing(name, cfg.Keys, max(20, cfg.OpsPerKey/20))}, nil
	}
	return nil, fmt.Errorf("unknown workload %q: want %s", name, strings.Join(Workloads, ", "))
}

// env is what every worker of a run shares.
type env struct {
	rec   *Recorder
	nodes []Node
	// pinned has one client per node that talks to that node only: a worker pinned to a node
	// on the minority side must see what that side can do, not fail over to the majority.
	pinned map[string]*client.Client
	// roaming has one client per node that starts every operation there and fails over to the
	// others (client.Config.PreferFirst): the node a worker chose is the node asked first, also
	// after an earlier operation failed over from it.
	roaming map[string]*client.Client
	// anyNode fails over too but starts where the last operation was answered, as a client
	// does by default: for a worker that needs some node that works, not a chosen one.
	anyNode   *client.Client
	opTimeout time.Duration
	procs     atomic.Int64
	values    atomic.Int64
}

func newEnv(rec *Recorder, nodes []Node, opTimeout time.Duration) (*env, error) {
	e := &env{rec: rec, nodes: nodes, pinned: map[string]*client.Client{}, roaming: map[string]*client.Client{}, opTimeout: opTimeout}
	newClient := func(eps []string, preferFirst bool) (*client.Client, error) {
		cfg := client.DefaultConfig()
		cfg.Endpoints = eps
		cfg.Timeout = opTimeout
		cfg.DialTimeout = min(time.Second, opTimeout)
		cfg.PreferFirst = preferFirst
		return client.New(cfg)
	}
	for i, n := range nodes {
		var eps []string
		for j := range nodes {
			eps = append(eps, nodes[(i+j)%len(nodes)].HTTP)
		}
		var err error
		if e.pinned[n.ID], err = newClient(eps[:1], false); err != nil {
			return nil, err
		}
		if e.roaming[n.ID], err = newClient(eps, true); err != nil {
			return nil, err
		}
		if i == 0 {
			if e.anyNode, err = newClient(eps, false); err != nil {
				return nil, err
			}
		}
	}
	return e, nil
}

func (e *env) newProcess() int { return int(e.procs.Add(1)) - 1 }

// uniqueValue is a value no other write of the run uses.
func (e *env) uniqueValue() string { return fmt.Sprintf("%d", e.values.Add(1)) }

// Worker is one client: a process number (renewed after an indeterminate operation), a node
// it talks to first, and its own random stream.
type Worker struct {
	env      *env
	Index    int
	Node     Node
	Process  int
	Session  int
	Rng      *rand.Rand
	workload string
	interval time.Duration
	next     time.Time
}

// pace waits for the worker's next slot (its share of the run's rate); false when ctx ended.
// A worker that fell behind does not burst to catch up.
func (w *Worker) pace(ctx context.Context) bool {
	now := time.Now()
	if w.next.IsZero() {
		// Spread the workers' first operations over one interval.
		w.next = now.Add(time.Duration(w.Rng.Int64N(int64(w.interval) + 1)))
	}
	if w.next.Before(now.Add(-w.interval)) {
		w.next = now
	}
	if !waitUntil(ctx, w.next) {
		return false
	}
	w.next = w.next.Add(w.interval)
	return ctx.Err() == nil
}

// skipSlot takes the worker's next slot for an operation it runs at once, without waiting.
func (w *Worker) skipSlot() { w.next = w.next.Add(w.interval) }

// moveOffNode draws w.Node again, at random, until it is another node than id (when there is one).
func (w *Worker) moveOffNode(id string) {
	for len(w.env.nodes) > 1 && w.Node.ID == id {
		w.Node = w.env.nodes[w.Rng.IntN(len(w.env.nodes))]
	}
}

// do runs one operation: records its invocation, calls fn under the operation timeout,
// classifies the outcome and records the completion. fn returns the answer's metadata; a read
// fills op.Value itself. An indeterminate outcome gives the worker a new process number.
func (w *Worker) do(op *Op, fn func(ctx context.Context) (client.Meta, error)) {
	op.Process, op.Workload, op.Node = w.Process, w.workload, w.Node.ID
	if op.Session == 0 {
		op.Session = w.Session
	}
	w.env.rec.Invoke(op)
	// Not derived from the run's context: ending the run must not turn operations in flight
	// into indeterminate ones.
	ctx, cancel := context.WithTimeout(context.Background(), w.env.opTimeout)
	meta, err := fn(ctx)
	cancel()
	classify(op, meta, err)
	w.env.rec.Complete(op)
	if op.Type == TypeInfo {
		w.Process = w.env.newProcess()
	}
}

// classify sets op's outcome from the client's answer. A write is failed only when the server
// or the client guarantees it was not applied; anything else about a write is indeterminate.
func classify(op *Op, meta client.Meta, err error) {
	op.Version, op.ServedBy, op.State, op.Staleness = meta.Version, meta.Node, meta.State, meta.Staleness
	op.Served = meta.Consistency
	op.ReceivedBy = meta.Via
	if op.ReceivedBy == "" {
		op.ReceivedBy = meta.Node
	}
	if err == nil {
		op.Type = TypeOK
		return
	}
	op.Error = shortError(err)
	var ce *client.Error
	if errors.As(err, &ce) {
		op.Code = ce.Code
		if op.ServedBy == "" {
			op.ServedBy = ce.Node
		}
		if op.ReceivedBy == "" {
			op.ReceivedBy = ce.Node
		}
	}
	switch {
	case op.F == FRead && client.IsNotFound(err):
		op.Type, op.Absent, op.Value, op.Error, op.Code = TypeOK, true, "", "", ""
	case op.F == FRead:
		op.Type = TypeFail // a read changes nothing: failing it loses no information
	case definitelyNotApplied(err):
		op.Type = TypeFail
	default:
		op.Type = TypeInfo
	}
}

// definitelyNotApplied reports whether a write's error guarantees it was not applied
// (docs/http-api.md, Errors: no_leader, unavailable, timeout and every 4xx; the client: a
// request it never sent). Such a write is a failed operation, and the checkers flag it if it
// shows up later: an answer that says "nothing changed" is part of the contract, not a hint.
// Anything else the server answers (outcome_unknown, internal, a 5xx from something that is not
// dialkv) leaves the write open-ended.
func definitelyNotApplied(err error) bool {
	if client.IsOutcomeUnknown(err) {
		return false
	}
	var ce *client.Error
	if errors.As(err, &ce) {
		switch ce.Code {
		case client.CodeNoLeader, client.CodeUnavailable, client.CodeTimeout:
			return true
		}
		return ce.Status >= 400 && ce.Status < 500
	}
	// No server answer and not outcome_unknown: the client never sent the request (it says
	// outcome_unknown for every write that may have reached a server).
	return true
}

// shortError is the error's text, kept to one short line.
func shortError(err error) string {
	s := strings.Join(strings.Fields(err.Error()), " ")
	if len(s) > 160 {
		s = s[:160] + "..."
	}
	return s
}

// keyRing hands out the register and mixed workloads' keys: slots, each rotated to a fresh
// key (name/sNN.GEN) after perKey operations.
type keyRing struct {
	name   string
	perKey int
	mu     sync.Mutex
	gen    []int
	count  []int
	used   []string
}

func newKeyRing(name string, slots, perKey int) *keyRing {
	return &keyRing{name: name, perKey: perKey, gen: make([]int, slots), count: make([]int, slots)}
}

// pick returns a random slot's current key.
func (r *keyRing) pick(rng *rand.Rand) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := rng.IntN(len(r.gen))
	if r.count[s] >= r.perKey {
		r.gen[s]++
		r.count[s] = 0
	}
	r.count[s]++
	k := fmt.Sprintf("%s/s%02d.%d", r.name, s, r.gen[s])
	if r.count[s] == 1 {
		r.used = append(r.used, k)
	}
	return k
}

// Keys returns every key handed out.
func (r *keyRing) Keys() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.used)
}

// lastRead is what a worker last read of a key, for its next compare-and-set.
type lastRead struct {
	value, version string
	absent         bool
}

// read, write and cas run the basic operations against a client.
func (w *Worker) read(cl *client.Client, key, level string, bound time.Duration, sess *client.Session) *Op {
	op := &Op{F: FRead, Key: key, Level: level, Bound: bound}
	w.do(op, func(ctx context.Context) (client.Meta, error) {
		v, meta, err := cl.Get(ctx, key, client.GetOptions{Consistency: level, MaxStaleness: bound, Session: sess})
		if err == nil {
			op.Value = string(v)
		}
		return meta, err
	})
	return op
}

// listSession lists prefix at the session level and records what it showed of each of keys as
// a session read of that key (absent when not listed), all invoked before the list and completed
// after it, so that CheckSessions holds a list to what it holds reads to: read-your-writes and
// monotonic reads.
func (w *Worker) listSession(cl *client.Client, prefix string, keys []string, sess *client.Session) {
	ops := make([]*Op, len(keys))
	for i, key := range keys {
		ops[i] = &Op{F: FRead, Key: key, Level: client.ConsistencySession, Process: w.Process, Workload: w.workload, Node: w.Node.ID, Session: w.Session}
		w.env.rec.Invoke(ops[i])
	}
	ctx, cancel := context.WithTimeout(context.Background(), w.env.opTimeout)
	items, meta, err := cl.List(ctx, prefix, client.ListOptions{Consistency: client.ConsistencySession, Session: sess})
	cancel()
	listed := map[string]client.KV{}
	for _, it := range items {
		listed[it.Key] = it
	}
	for _, op := range ops {
		classify(op, meta, err)
		if err == nil {
			it, ok := listed[op.Key]
			op.Value, op.Version, op.State, op.Absent = string(it.Value), it.Version, it.State, !ok
		}
		w.env.rec.Complete(op)
	}
}

func (w *Worker) write(cl *client.Client, key, value, level string, sess *client.Session) *Op {
	op := &Op{F: FWrite, Key: key, Value: value, Level: level}
	w.do(op, func(ctx context.Context) (client.Meta, error) {
		return cl.Put(ctx, key, []byte(value), client.PutOptions{Consistency: level, Session: sess})
	})
	return op
}

// cas is a compare-and-set on the version last read, or a create-if-absent when from.absent.
func (w *Worker) cas(cl *client.Client, key string, from lastRead, value string, sess *client.Session) *Op {
	op := &Op{F: FCAS, Key: key, Value: value, From: from.value, FromAbsent: from.absent, Level: client.ConsistencyStrong}
	opts := client.PutOptions{Consistency: client.ConsistencyStrong, IfVersion: from.version, IfAbsent: from.absent, Session: sess}
	if from.absent {
		opts.IfVersion = ""
	}
	w.do(op, func(ctx context.Context) (client.Meta, error) {
		return cl.Put(ctx, key, []byte(value), opts)
	})
	return op
}
