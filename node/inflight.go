package node

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"

	"github.com/dialkv/dialkv/replication"
)

// A write holds its value in memory from the moment its body is read until it is answered: for
// an eventual write until the tentative layer has made it durable (an fsync), for a strong one
// until Raft has committed and applied it (on a follower, until the leader has answered the
// call that carried it). A stalled disk or a leader outage holds every write that arrives
// meanwhile, and nothing else bounded how many: a burst of large concurrent puts could take the
// process's memory, and an OOM kill loses the answer of every eventual write in flight and takes
// the node down. The write budget bounds the bytes write requests hold at once (kvd
// --max-inflight-mb): a write that would take the node past it is refused at once, before its
// body is read, with 503 unavailable and Retry-After. Nothing was done, so the client may send it
// to another node (the Go client and kvctl do).
//
// The bound is taken at the client-facing edge only. What the node receives from other nodes is
// bounded by the senders' structure, and its writes were counted on the node that took them: a
// follower has at most forwardInflight calls of at most forwardBytes (or one larger write) out to
// the leader at once (POST /v1/internal/propose), and a committer one batch of maxCommitBytes
// (POST /v1/internal/commit). Refusing those on the leader would count each write twice and let
// one node's clients starve another's.

// errOverloaded refuses a write that would take the node past its write budget (503
// unavailable, with Retry-After: nothing was done, another node may take it).
var errOverloaded = errors.New("too many write bytes in flight")

// writeOverhead is what a write is charged besides its value: the request, its key, the encoded
// command and the answer. It is an estimate, and a floor that makes writes without a value
// (deletes) count too, so the budget also bounds how many writes wait at once.
const writeOverhead = 1 << 10

// retryAfter is the Retry-After (seconds) of a write refused over the budget: long enough for
// some of the writes in flight to end, short enough that a client's retry finds the room.
const retryAfter = "1"

// DefaultMaxInflightBytes is the default write budget (Config.MaxInflightBytes): 256 values of
// the default --max-value-size, well inside the memory limit deploy/ gives a node.
const DefaultMaxInflightBytes = 256 << 20

// writeBudget counts the bytes write requests hold (held) against limit (0: no limit, counted
// all the same for the metric).
type writeBudget struct {
	limit   int64
	held    atomic.Int64
	refused atomic.Uint64 // writes refused over the limit
}

// take charges size bytes, unless that would take held past the limit.
func (b *writeBudget) take(size int64) bool {
	for {
		held := b.held.Load()
		if b.limit > 0 && held+size > b.limit {
			return false
		}
		if b.held.CompareAndSwap(held, held+size) {
			return true
		}
	}
}

// charge is what one write has taken from the budget: size, plus what its metered body (if it
// has one) took as it was read. release gives it back; the handler calls it once.
type charge struct {
	budget *writeBudget
	size   int64
	body   *meteredBody
}

func (c charge) release() {
	size := c.size
	if c.body != nil {
		size += c.body.taken
	}
	c.budget.held.Add(-size)
}

// admitWrite charges a write request before its body is read: writeOverhead, plus for a put
// the value's announced length (Content-Length). A put without one (a chunked body) is charged
// as it is read instead: r.Body is replaced by a reader that takes each part from the budget
// before parseWrite keeps it, and fails with errOverloaded once the budget has no room for it.
// The caller releases the charge once the write is answered. An error is the refusal to answer.
func (n *Node) admitWrite(r *http.Request, typ replication.CommandType) (charge, error) {
	c := charge{budget: &n.inflight, size: writeOverhead}
	if typ == replication.CmdPut && r.ContentLength > 0 {
		// A length over the limit is refused as too large without reading (parseWrite); it
		// holds nothing meanwhile.
		c.size += min(r.ContentLength, n.cfg.MaxValueSize)
	}
	if !c.budget.take(c.size) {
		return charge{}, n.overloaded()
	}
	if typ == replication.CmdPut && r.ContentLength < 0 && r.Body != nil && r.Body != http.NoBody {
		c.body = &meteredBody{ReadCloser: r.Body, budget: c.budget, refuse: n.overloaded}
		r.Body = c.body
	}
	return c, nil
}

// overloaded counts a refusal and returns its error.
func (n *Node) overloaded() error {
	n.inflight.refused.Add(1)
	return fmt.Errorf("%w: %s holds as many write bytes as --max-inflight-mb allows (%d MiB) and has not read this write: send it to another node, or again shortly", errOverloaded, n.cfg.ID, n.cfg.MaxInflightBytes>>20)
}

// meteredBody is a request body of unannounced length whose bytes are charged as they are read.
// Only the handler reads it (the server drains the original body, not this one).
type meteredBody struct {
	io.ReadCloser
	budget *writeBudget
	taken  int64 // charged so far
	refuse func() error
	err    error // the refusal, once made
}

func (m *meteredBody) Read(p []byte) (int, error) {
	if m.err != nil {
		return 0, m.err
	}
	k, err := m.ReadCloser.Read(p)
	if k > 0 {
		if !m.budget.take(int64(k)) {
			m.err = m.refuse()
			return 0, m.err
		}
		m.taken += int64(k)
	}
	return k, err
}
