package strong

import (
	"io"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/dialkv/dialkv/replication/fault"
)

// acks records, per peer, the send time of the newest AppendEntries (heartbeats included) that
// the peer acknowledged in the sender's own term. A read-index round needs a quorum of acks to
// requests sent after the round began: hashicorp/raft's VerifyLeader also counts answers to
// requests sent earlier (still in flight when it asked), which confirm leadership only as of an
// earlier time.
type acks struct {
	mu     sync.Mutex
	sentAt map[raft.ServerID]time.Time
	moved  chan struct{} // closed and replaced on every record
}

func newAcks() *acks {
	return &acks{sentAt: map[raft.ServerID]time.Time{}, moved: make(chan struct{})}
}

func (a *acks) record(id raft.ServerID, sent time.Time, req *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) {
	if req == nil || resp == nil || resp.Term != req.Term {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if sent.After(a.sentAt[id]) {
		a.sentAt[id] = sent
	}
	close(a.moved)
	a.moved = make(chan struct{})
}

// since counts the peers in ids that acknowledged a request sent after t, and returns a
// channel closed at the next acknowledgement.
func (a *acks) since(t time.Time, ids []raft.ServerID) (int, <-chan struct{}) {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, id := range ids {
		if a.sentAt[id].After(t) {
			n++
		}
	}
	return n, a.moved
}

// observingTransport wraps a raft.Transport to record the acknowledgements the leader's
// AppendEntries get (acks), and to inject the test-only faults (dropped links, delay, loss) at this node's edge: incoming RPCs
// from a dropped peer are answered with an error, outgoing ones to it fail before they leave.
type observingTransport struct {
	raft.Transport
	consumer chan raft.RPC
	acks     *acks
	faults   *fault.Injector
	stop     chan struct{}
	stopOnce sync.Once
	// heartbeats is held (shared) by every heartbeat handler call, and taken by Close: raft
	// runs heartbeats on the transport's own goroutines, and one that passed raft's shutdown
	// check can still be saving a new term when the engine closes the log store under it
	// (raft panics: "failed to save current term: database not open"). Once closed, the
	// handler refuses heartbeats.
	heartbeats sync.RWMutex
	closed     bool
}

func newObservingTransport(inner raft.Transport, acks *acks, faults *fault.Injector) *observingTransport {
	t := &observingTransport{Transport: inner, consumer: make(chan raft.RPC), acks: acks, faults: faults, stop: make(chan struct{})}
	go t.relay()
	return t
}

// droppedIn answers rpc with an error when its sender's link is cut; it reports whether it did.
func (t *observingTransport) droppedIn(rpc raft.RPC) bool {
	h, ok := rpc.Command.(raft.WithRPCHeader)
	if !ok || !t.faults.DropIn(string(h.GetRPCHeader().ID)) {
		return false
	}
	rpc.Respond(nil, fault.ErrPartitioned)
	return true
}

// out applies the outgoing faults for a message to id: an error if the link is cut or the
// message lost, after the injected delay otherwise.
func (t *observingTransport) out(id raft.ServerID) error {
	if t.faults.DropOut(string(id)) {
		return fault.ErrPartitioned
	}
	t.faults.Wait()
	return nil
}

func (t *observingTransport) SetHeartbeatHandler(cb func(raft.RPC)) {
	if cb == nil {
		t.Transport.SetHeartbeatHandler(nil)
		return
	}
	t.Transport.SetHeartbeatHandler(func(rpc raft.RPC) {
		t.heartbeats.RLock()
		defer t.heartbeats.RUnlock()
		if t.closed {
			rpc.Respond(nil, raft.ErrRaftShutdown)
			return
		}
		if !t.droppedIn(rpc) {
			cb(rpc)
		}
	})
}

func (t *observingTransport) AppendEntries(id raft.ServerID, target raft.ServerAddress, args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) error {
	if err := t.out(id); err != nil {
		return err
	}
	sent := time.Now()
	err := t.Transport.AppendEntries(id, target, args, resp)
	if err == nil {
		t.acks.record(id, sent, args, resp)
	}
	return err
}

func (t *observingTransport) AppendEntriesPipeline(id raft.ServerID, target raft.ServerAddress) (raft.AppendPipeline, error) {
	if err := t.out(id); err != nil {
		return nil, err
	}
	p, err := t.Transport.AppendEntriesPipeline(id, target)
	if err != nil {
		return nil, err
	}
	fp := &faultyPipeline{AppendPipeline: p, id: id, t: t, done: make(chan raft.AppendFuture), closed: make(chan struct{})}
	go fp.relay()
	return fp, nil
}

func (t *observingTransport) RequestVote(id raft.ServerID, target raft.ServerAddress, args *raft.RequestVoteRequest, resp *raft.RequestVoteResponse) error {
	if err := t.out(id); err != nil {
		return err
	}
	return t.Transport.RequestVote(id, target, args, resp)
}

func (t *observingTransport) InstallSnapshot(id raft.ServerID, target raft.ServerAddress, args *raft.InstallSnapshotRequest, resp *raft.InstallSnapshotResponse, data io.Reader) error {
	if err := t.out(id); err != nil {
		return err
	}
	return t.Transport.InstallSnapshot(id, target, args, resp, data)
}

func (t *observingTransport) TimeoutNow(id raft.ServerID, target raft.ServerAddress, args *raft.TimeoutNowRequest, resp *raft.TimeoutNowResponse) error {
	if err := t.out(id); err != nil {
		return err
	}
	return t.Transport.TimeoutNow(id, target, args, resp)
}

// faultyPipeline fails an established pipeline once its link is cut (raft then falls back to
// plain AppendEntries, which fails too, until the link heals), and records acknowledgements.
type faultyPipeline struct {
	raft.AppendPipeline
	id   raft.ServerID
	t    *observingTransport
	done chan raft.AppendFuture
	// closed is closed by Close: raft's transports never close their pipeline's channel, and
	// raft stops reading done before it closes the pipeline, so this is what ends relay.
	closed    chan struct{}
	closeOnce sync.Once
}

// relay passes on the pipeline's completed appends, recording each acknowledgement with the
// time its request was sent. It ends when the pipeline is closed, or its own channel closes.
func (p *faultyPipeline) relay() {
	in := p.AppendPipeline.Consumer()
	for {
		var f raft.AppendFuture
		select {
		case <-p.closed:
			return // done stays open: raft may still be selecting on it as it shuts down
		case next, ok := <-in:
			if !ok {
				close(p.done)
				return
			}
			f = next
		}
		if f.Error() == nil {
			p.t.acks.record(p.id, f.Start(), f.Request(), f.Response())
		}
		select {
		case <-p.closed:
			return
		case p.done <- f:
		}
	}
}

// Close closes the pipeline and ends its relay.
func (p *faultyPipeline) Close() error {
	p.closeOnce.Do(func() { close(p.closed) })
	return p.AppendPipeline.Close()
}

func (p *faultyPipeline) Consumer() <-chan raft.AppendFuture { return p.done }

func (p *faultyPipeline) AppendEntries(args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) (raft.AppendFuture, error) {
	if err := p.t.out(p.id); err != nil {
		return nil, err
	}
	return p.AppendPipeline.AppendEntries(args, resp)
}

func (t *observingTransport) Consumer() <-chan raft.RPC { return t.consumer }

func (t *observingTransport) relay() {
	in := t.Transport.Consumer()
	for {
		var rpc raft.RPC
		select {
		case <-t.stop:
			return
		case rpc = <-in:
		}
		if t.droppedIn(rpc) {
			continue
		}
		select {
		case <-t.stop:
			return
		case t.consumer <- rpc:
		}
	}
}

func (t *observingTransport) RequestPreVote(id raft.ServerID, target raft.ServerAddress, args *raft.RequestPreVoteRequest, resp *raft.RequestPreVoteResponse) error {
	if err := t.out(id); err != nil {
		return err
	}
	return t.Transport.(raft.WithPreVote).RequestPreVote(id, target, args, resp)
}

func (t *observingTransport) Close() error {
	t.stopOnce.Do(func() { close(t.stop) })
	t.heartbeats.Lock() // waits for heartbeat handlers still running
	t.closed = true
	t.heartbeats.Unlock()
	if c, ok := t.Transport.(raft.WithClose); ok {
		return c.Close()
	}
	return nil
}
