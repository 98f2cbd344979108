package node

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// readIndexRounds coalesces a follower's read-index requests into rounds, one call to the leader
// in flight at a time, the way the leader's engine runs its own rounds. A request joins the
// round that has not started yet; it never shares a call already in flight, since that call's
// index may have been taken before the request arrived (a read after an acknowledged write
// could then miss it). When the call in flight ends, the round everyone joined meanwhile starts,
// and all of them share its answer.
//
// Failure: a call that hangs (leader unreachable) holds the requests queued behind it until the
// call's own deadline, as each request's own call did before; a request whose context ends
// leaves at once, and those left retry with a new round.
//
// Shutdown: close ends the call in flight (its context is cancelled) and waits for the round
// goroutine; joins after that fail with errRoundsClosed.
//
// The zero value is ready to use.
type readIndexRounds struct {
	mu      sync.Mutex
	running bool            // a round's call is in flight
	closed  bool            // close was called: no more rounds
	next    *readIndexRound // the round requests join now; it starts when the running one ends
	calls   atomic.Uint64   // rounds run (calls made), for tests and benchmarks
	// life is the parent of every call's context, cancelled by close; wg counts round goroutines.
	life   context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// errRoundsClosed fails a join after close: the node is shutting down.
var errRoundsClosed = errors.New("the node is shutting down")

// close cancels the call in flight, waits for the round goroutine to end and refuses new joins.
// Requests still waiting get the cancelled call's error.
func (rs *readIndexRounds) close() {
	rs.mu.Lock()
	rs.closed = true
	cancel := rs.cancel
	rs.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	rs.wg.Wait()
}

// readIndexRound is one call to the leader and the requests that share its answer.
type readIndexRound struct {
	ids []string // request ids of those who joined, in order; the call carries ids[0]
	// timeout bounds the round's call: the longest any joiner asked for (each leaves on its own
	// context sooner), so that a bounded read's short bound cannot cut short the call a strong
	// read shares.
	timeout time.Duration
	done    chan struct{} // closed once index and err are set
	index   uint64
	err     error
}

// readIndexCall makes one round's call; id is the request id it carries. ctx is the round's own
// (a deadline of timeout from the round's start, not any request's context).
type readIndexCall func(ctx context.Context, id string) (uint64, error)

// join waits for the next round to start and end, and returns its answer, or ctx's error when
// ctx ends first (the round goes on for the others). timeout bounds the round's call (the
// longest of its joiners' wins); report,
// if not nil, is told of each round as it ends.
func (rs *readIndexRounds) join(ctx context.Context, id string, timeout time.Duration, call readIndexCall, report func(r *readIndexRound, took time.Duration)) (uint64, error) {
	rs.mu.Lock()
	if rs.closed {
		rs.mu.Unlock()
		return 0, errRoundsClosed
	}
	r := rs.next
	if r == nil {
		r = &readIndexRound{done: make(chan struct{})}
		rs.next = r
	}
	r.ids = append(r.ids, id)
	r.timeout = max(r.timeout, timeout)
	if !rs.running {
		if rs.life == nil {
			rs.life, rs.cancel = context.WithCancel(context.Background())
		}
		rs.running, rs.next = true, nil
		rs.wg.Add(1) // under mu, before close can Wait: closed is false here
		go rs.run(r, call, report)
	}
	rs.mu.Unlock()
	select {
	case <-r.done:
		return r.index, r.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// run makes r's call, then the call of every round joined meanwhile, until none is waiting.
// A round's call starts only after everyone in it joined, so each gets an index taken after it
// asked.
func (rs *readIndexRounds) run(r *readIndexRound, call readIndexCall, report func(r *readIndexRound, took time.Duration)) {
	defer rs.wg.Done()
	for r != nil {
		start := time.Now()
		rs.mu.Lock()
		timeout := r.timeout // joins are over: the round left next before it got here
		rs.mu.Unlock()
		ctx, cancel := context.WithTimeout(rs.life, timeout)
		r.index, r.err = call(ctx, r.ids[0])
		cancel()
		rs.calls.Add(1)
		if report != nil {
			report(r, time.Since(start))
		}
		close(r.done)
		rs.mu.Lock()
		r, rs.next = rs.next, nil
		if r == nil {
			rs.running = false
		}
		rs.mu.Unlock()
	}
}
