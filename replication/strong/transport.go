package strong

import (
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// freshness records, on a follower, the last moment it provably held every entry the leader had
// committed: an AppendEntries from the leader that it accepted and whose entries reach the
// leader's commit index. Raft's LastContact is not enough for bounded reads: heartbeats refresh
// it without carrying the commit index, so a follower whose replication stream is stuck would
// look fresh while serving old data.
type freshness struct {
	mu    sync.Mutex
	at    time.Time
	index uint64
}

func (f *freshness) record(at time.Time, index uint64) {
	f.mu.Lock()
	if at.After(f.at) {
		f.at, f.index = at, index
	}
	f.mu.Unlock()
}

func (f *freshness) get() (time.Time, uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.at, f.index
}

// observingTransport wraps a raft.Transport to watch the AppendEntries this node accepts. Only
// the consumer side is changed; pre-vote and close pass through to the wrapped transport.
type observingTransport struct {
	raft.Transport
	consumer chan raft.RPC
	fresh    *freshness
	stop     chan struct{}
	stopOnce sync.Once
}

func newObservingTransport(inner raft.Transport, fresh *freshness) *observingTransport {
	t := &observingTransport{Transport: inner, consumer: make(chan raft.RPC), fresh: fresh, stop: make(chan struct{})}
	go t.relay()
	return t
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
		if req, ok := rpc.Command.(*raft.AppendEntriesRequest); ok && req.LeaderCommitIndex > 0 {
			rpc = t.watch(rpc, req)
		}
		select {
		case <-t.stop:
			return
		case t.consumer <- rpc:
		}
	}
}

// watch swaps the RPC's response channel for one that records freshness when the follower
// accepted the entries, then hands the response on.
func (t *observingTransport) watch(rpc raft.RPC, req *raft.AppendEntriesRequest) raft.RPC {
	received := time.Now()
	lastNew := req.PrevLogEntry
	if n := len(req.Entries); n > 0 {
		lastNew = req.Entries[n-1].Index
	}
	commit := req.LeaderCommitIndex
	orig := rpc.RespChan
	mine := make(chan raft.RPCResponse, 1)
	rpc.RespChan = mine
	go func() {
		resp := <-mine
		if r, ok := resp.Response.(*raft.AppendEntriesResponse); ok && resp.Error == nil && r.Success && lastNew >= commit {
			t.fresh.record(received, commit)
		}
		orig <- resp
	}()
	return rpc
}

func (t *observingTransport) RequestPreVote(id raft.ServerID, target raft.ServerAddress, args *raft.RequestPreVoteRequest, resp *raft.RequestPreVoteResponse) error {
	return t.Transport.(raft.WithPreVote).RequestPreVote(id, target, args, resp)
}

func (t *observingTransport) Close() error {
	t.stopOnce.Do(func() { close(t.stop) })
	if c, ok := t.Transport.(raft.WithClose); ok {
		return c.Close()
	}
	return nil
}
