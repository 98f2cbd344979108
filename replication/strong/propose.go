package strong

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/dialkv/dialkv/internal/batch"
	"github.com/dialkv/dialkv/replication"
)

// Proposal batching. hashicorp/raft already writes many entries in one log transaction, but it
// still pays per entry: a msgpack encode for the leader's log and for every follower's
// AppendEntries, a decode and another encode on each follower, a bbolt key per entry on every
// node, a future and its channels. Under load the leader therefore packs the proposals that
// arrive while earlier batches are in flight into one CmdBatch entry: a strong write costs a
// share of one entry instead of one. Alone, a proposal goes into the log as it is.
//
// At most ProposalInflight batches are in flight (appended, not yet answered); proposals that
// arrive meanwhile wait in the queue and form the next batch. Raft still pipelines those
// entries; the cap only decides how much waits to be packed.
//
// A batch is one entry unless its proposals add up to more than ProposalBytes: then it is cut
// into entries of about that size, in order (a proposal larger than the cap is an entry of its
// own). Without the cut, 256 writes of 1 MiB values made one entry of 256 MiB, which every node
// writes to its log and followers receive in one AppendEntries: measured on loopback, bursts of
// 96 such writes (entries of ~95 MiB) committed after LeaderWait had passed, or cost the leader
// its lease, and nearly every write ended outcome unknown; cut at 4 MiB, all succeeded in about
// half the time. Small writes never reach the cap, so their packing is unchanged.

// proposal is one Propose call waiting in the proposer's queue.
type proposal struct {
	batch.State
	data []byte
	done chan proposalResult
}

type proposalResult struct {
	res replication.Result
	err error
}

// Propose replicates cmd and returns the state machine's result. Leader only: elsewhere it
// returns a *replication.NotLeaderError without proposing. Once the entry may have been appended
// to the log, every failure is replication.ErrOutcomeUnknown, never "failed".
func (e *Engine) Propose(ctx context.Context, cmd *replication.Command) (replication.Result, error) {
	results, errs := e.ProposeAll(ctx, []*replication.Command{cmd})
	return results[0], errs[0]
}

// ProposeAll proposes cmds together (queued at once, so they usually share a log entry) and
// returns each one's result and error, as Propose would for it alone.
func (e *Engine) ProposeAll(ctx context.Context, cmds []*replication.Command) ([]replication.Result, []error) {
	results, errs := make([]replication.Result, len(cmds)), make([]error, len(cmds))
	if !e.IsLeader() {
		id, addr := e.Leader()
		for i := range errs {
			errs[i] = &replication.NotLeaderError{LeaderID: id, LeaderAddr: addr}
		}
		return results, errs
	}
	queued := make([]*proposal, len(cmds))
	for i, cmd := range cmds {
		if err := ctx.Err(); err != nil {
			// A select below would pick at random between a free queue slot and a done ctx:
			// a caller that has given up must not have its write proposed.
			errs[i] = fmt.Errorf("%w: %v before the write was queued; it was not proposed", replication.ErrTimeout, err)
			continue
		}
		p := &proposal{data: cmd.Encode(), done: make(chan proposalResult, 1)}
		select {
		case e.proposals <- p:
			queued[i] = p
		case <-ctx.Done():
			errs[i] = fmt.Errorf("%w: the proposal queue stayed full: %v", replication.ErrTimeout, ctx.Err())
		case <-e.stop:
			errs[i] = fmt.Errorf("%w: the node is shutting down", replication.ErrNoLeader)
		}
	}
	for i, p := range queued {
		if p != nil {
			results[i], errs[i] = e.awaitProposal(ctx, p)
		}
	}
	return results, errs
}

// awaitProposal waits for p's answer, or for ctx or the engine to end.
func (e *Engine) awaitProposal(ctx context.Context, p *proposal) (replication.Result, error) {
	select {
	case r := <-p.done:
		return r.res, r.err
	case <-ctx.Done():
		if p.Abandon() {
			return replication.Result{}, fmt.Errorf("%w: the write waited in the proposal queue until %v; it was not proposed", replication.ErrTimeout, ctx.Err())
		}
		return replication.Result{}, fmt.Errorf("%w: %v while waiting for the write to commit", replication.ErrOutcomeUnknown, ctx.Err())
	case <-e.stop:
		if p.Abandon() {
			return replication.Result{}, fmt.Errorf("%w: the node is shutting down; the write was not proposed", replication.ErrNoLeader)
		}
		return replication.Result{}, fmt.Errorf("%w: the node shut down while the write was committing", replication.ErrOutcomeUnknown)
	}
}

// proposeLoop is the proposer: it takes the queued proposals, up to ProposalBatch of them, as
// soon as fewer than ProposalInflight batches are in flight, and appends them as one entry, or
// as several in order when they add up to more than ProposalBytes.
func (e *Engine) proposeLoop() {
	defer e.wg.Done()
	for {
		taken, ok := batch.Next(e.stop, e.proposals, e.inflight, e.cfg.ProposalBatch)
		if !ok {
			return
		}
		if len(taken) == 0 {
			continue
		}
		e.append(taken)
	}
}

// append hands a batch taken from the queue to raft, and frees its in-flight slot once every
// proposal of it is answered. It holds e.appending meanwhile: Settle's barrier then goes to raft
// after every proposal sent.
func (e *Engine) append(taken []*proposal) {
	e.appending.Lock()
	defer e.appending.Unlock()
	sent := batch.Committed(taken) // from here on each may be in the log
	if len(sent) == 0 {
		<-e.inflight
		return
	}
	entries := batch.Split(sent, func(p *proposal) int { return len(p.data) }, e.cfg.ProposalBytes)
	var answered sync.WaitGroup
	for _, group := range entries {
		data := group[0].data
		if len(group) > 1 {
			encoded := make([][]byte, len(group))
			for i, p := range group {
				encoded[i] = p.data
			}
			data = replication.EncodeBatch(encoded)
		}
		e.stats.proposals.Add(uint64(len(group)))
		e.stats.proposalEntries.Add(1)
		f := e.raft.Apply(data, proposeEnqueueTimeout)
		answered.Go(func() {
			err := e.await(f)
			answerProposals(e, group, f, err)
		})
	}
	go func() {
		answered.Wait()
		<-e.inflight
	}()
}

// Settle waits until the state machine has applied every proposal this leader has sent to raft,
// those whose callers gave up (outcome unknown) included: such a proposal may still be on its
// way to the log, or appended and not applied, so neither the applied state nor a read index
// shows it yet. With no proposal in flight (every one sent is answered, so applied or failed)
// it returns at once; otherwise it appends a barrier behind them and waits for it to apply.
// Leader only.
func (e *Engine) Settle(ctx context.Context) error {
	if !e.IsLeader() {
		id, addr := e.Leader()
		return &replication.NotLeaderError{LeaderID: id, LeaderAddr: addr}
	}
	e.appending.Lock()
	if len(e.inflight) == 0 {
		e.appending.Unlock()
		return nil
	}
	timeout := proposeEnqueueTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(dl))
	}
	if timeout <= 0 { // raft's Barrier would wait without bound
		e.appending.Unlock()
		return fmt.Errorf("%w: no time left to wait for the proposals in flight", replication.ErrTimeout)
	}
	f := e.raft.Barrier(timeout)
	e.appending.Unlock()
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("barrier behind the proposals in flight: %w", proposeError(e, err))
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: waiting for the proposals in flight to apply: %v", replication.ErrTimeout, ctx.Err())
	case <-e.stop:
		return fmt.Errorf("%w: the node is shutting down", replication.ErrNoLeader)
	}
}

// proposeEnqueueTimeout bounds how long raft may take to accept an entry; callers' own
// deadlines end their wait sooner.
const proposeEnqueueTimeout = 10 * time.Second

// answerProposals hands each proposal of one entry its result.
func answerProposals(e *Engine, sent []*proposal, f raft.ApplyFuture, err error) {
	if err != nil {
		err = proposeError(e, err)
		for _, p := range sent {
			p.done <- proposalResult{err: err}
		}
		return
	}
	var results []replication.Result
	switch r := f.Response().(type) {
	case replication.Result:
		results = []replication.Result{r}
	case []replication.Result:
		results = r
	}
	if len(results) != len(sent) {
		err := fmt.Errorf("%w: entry %d answered %d results for %d writes", replication.ErrOutcomeUnknown, f.Index(), len(results), len(sent))
		for _, p := range sent {
			p.done <- proposalResult{err: err}
		}
		return
	}
	for i, p := range sent {
		res := results[i]
		res.Index = f.Index()
		p.done <- proposalResult{res: res, err: res.Err}
	}
}

// proposeError says what a failed append means for its proposals.
func proposeError(e *Engine, err error) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader):
		id, addr := e.Leader()
		return &replication.NotLeaderError{LeaderID: id, LeaderAddr: addr}
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return fmt.Errorf("%w: raft did not accept the write in time", replication.ErrTimeout)
	case errors.Is(err, raft.ErrAbortedByRestore):
		return fmt.Errorf("write aborted by a snapshot restore: %w", replication.ErrNoLeader)
	case errors.Is(err, raft.ErrLeadershipTransferInProgress):
		// Raft refuses new entries while it hands leadership over, before appending them.
		return fmt.Errorf("%w: this node is handing leadership over; the write was not proposed", replication.ErrNoLeader)
	default:
		// ErrLeadershipLost, ErrRaftShutdown and friends: it may be in the log.
		return fmt.Errorf("%w: %v (the cluster may have lost its quorum)", replication.ErrOutcomeUnknown, err)
	}
}
