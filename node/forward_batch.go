package node

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dialkv/dialkv/client"
	"github.com/dialkv/dialkv/consistency"
	"github.com/dialkv/dialkv/internal/batch"
	"github.com/dialkv/dialkv/replication"
	"github.com/dialkv/dialkv/replication/store"
)

// Strong writes a follower receives reach the leader in batches: the follower's forwarder sends
// the writes queued while at most forwardInflight batches are out as one POST
// /v1/internal/propose (several, one after another, when they add up to more than forwardBytes),
// and the leader proposes them together (they usually share one log entry, see strong's
// proposal batching). Relaying each write as its own HTTP request cost the leader a request per
// write; now it costs a share of one. The follower answers its client itself, with the leader's
// view: Dialkv-Node is the leader that proposed the write, Dialkv-Via this node.

const (
	forwardInflight = 2
	forwardBatch    = 256
	// forwardBytes caps the encoded writes of one call to the leader (a larger write goes alone).
	forwardBytes = 4 << 20
	// headerSessionSeen, on POST /v1/internal/propose, carries for each write of the batch, in
	// order, the version of its key its session has seen (replication.AppendVersion, the zero
	// version for none; unpadded base64url). The leader stamps the writes, so it is the one that
	// must stamp each after that version or refuse it (strongStampedAfterSession). Sent only
	// when some write has one. A leader older than this header ignores it and stamps as it did,
	// possibly below that version; a follower older than it sends none, and its writes go
	// unchecked as before.
	headerSessionSeen = "Dialkv-Session-Seen"
)

// forwardQueue is a follower's queue of strong writes waiting to go to the leader.
type forwardQueue struct {
	queue chan *forwardedWrite
	calls atomic.Uint64 // calls made to a leader
	// floor is the wall time (Unix ns) of the newest clock floor recorded for the leader's
	// answers (holdAnswered), or read at start; floorMu is held while a new one is recorded.
	floor   atomic.Int64
	floorMu sync.Mutex
}

// answeredFloorLead is how far above the newest version a leader answered forwarded writes with
// holdAnswered records the clock floor, so that it writes one (an fsync) about ten times per
// second of forwarded writes, not with every call. A node restarted within that time stamps up
// to this much ahead of its wall clock at first (as with the tentative layer's floor).
const answeredFloorLead = 100 * time.Millisecond

// holdAnswered makes this node's clock stay past v, the newest version in a leader's answer to
// forwarded writes, across a restart, before the writes' clients are answered with it. The clock
// observes v as the answer arrives (callLeader), but this node answers before it applies the
// entry: restarted before it does, its clock started from its wall clock and what it holds, and
// an eventual write it took right after stamped below the strong write it had acknowledged, and
// lost to it. A clock floor a little above v survives the restart. The state machine observes v
// whole once it applies the entry, so the floor takes it whole too. A failure to record it is
// logged: the answer stands (the writes are committed), with the clock's observation in memory.
func (n *Node) holdAnswered(v consistency.Version) {
	if v.IsZero() || v.Wall < n.forwards.floor.Load() {
		return
	}
	n.forwards.floorMu.Lock()
	defer n.forwards.floorMu.Unlock()
	if v.Wall < n.forwards.floor.Load() {
		return
	}
	floor := consistency.Version{Wall: v.Wall + int64(answeredFloorLead)}
	if err := n.store.SetClockFloor(floor); err != nil {
		n.logger.Error("cannot record the clock floor for a leader's answer: a restart before this node applies the writes may stamp below them", "version", v, "err", err)
		return
	}
	n.forwards.floor.Store(floor.Wall)
}

// forwardedWrite is one write in a forwarder batch.
type forwardedWrite struct {
	batch.State
	cmd  []byte              // encoded command, stamped here; the leader stamps it anew, after this stamp
	seen consistency.Version // the version of its key the write's session has seen (headerSessionSeen)
	done chan forwardResult
	// wait is the caller's context: once every caller in a call has given up, the call to the
	// leader is cancelled, so the leader does not propose what nobody waits for any more.
	wait context.Context
}

// forwardResult is the leader's answer for one write. retry: the write was certainly not
// proposed (no leader, the leader moved, or it was never reached); the caller may try again.
// relay: the leader has no /v1/internal/propose (an older node); nothing was proposed, and the
// caller relays the request the old way.
type forwardResult struct {
	res     replication.Result
	leader  string
	applied uint64
	err     error
	retry   bool
	relay   bool
}

// proposeAnswer is the body of the leader's answer to POST /v1/internal/propose.
type proposeAnswer struct {
	Leader  string          `json:"leader"`
	Applied uint64          `json:"applied_index"`
	Results []proposeResult `json:"results"`
}

type proposeResult struct {
	Version string `json:"version,omitempty"`
	Existed bool   `json:"existed,omitempty"`
	Index   uint64 `json:"index,omitempty"`
	Code    string `json:"code,omitempty"`  // "" on success, else the error's client code
	Error   string `json:"error,omitempty"` // the error's text
	Current string `json:"current,omitempty"`
}

// forwardWrite sends cmd to the leader through the forwarder and waits for its answer. seen is
// the version of cmd.Key its session has seen (zero: none), which the leader stamps it after.
func (n *Node) forwardWrite(ctx context.Context, cmd *replication.Command, seen consistency.Version) forwardResult {
	fw := &forwardedWrite{cmd: cmd.Encode(), seen: seen, done: make(chan forwardResult, 1), wait: ctx}
	select {
	case n.forwards.queue <- fw:
	case <-ctx.Done():
		return forwardResult{err: fmt.Errorf("%w: the forwarding queue stayed full", replication.ErrTimeout)}
	}
	select {
	case r := <-fw.done:
		return r
	case <-ctx.Done():
		if fw.Abandon() { // queued, or in a batch still waiting for a leader: never sent
			return forwardResult{err: n.unsentError(ctx)}
		}
		return forwardResult{err: fmt.Errorf("%w: %v while the leader was committing the write", replication.ErrOutcomeUnknown, ctx.Err())}
	}
}

// unsentError is a forwarded write's definite failure when its caller's ctx ended before the
// write went out: for want of a leader (which names the likely cause, a lost quorum), or
// waiting its turn.
func (n *Node) unsentError(ctx context.Context) error {
	if id, addr := n.leaderHTTP(); id == "" || addr == "" {
		return n.noLeaderError()
	}
	return fmt.Errorf("%w: the write waited to be forwarded until %v; it was not sent", replication.ErrTimeout, ctx.Err())
}

// forwardLoop is the follower's forwarder (see the top of this file).
func (n *Node) forwardLoop() {
	defer n.wg.Done()
	inflight := make(chan struct{}, forwardInflight)
	for {
		sent, ok := batch.Next(n.closed, n.forwards.queue, inflight, forwardBatch)
		if !ok {
			return
		}
		if len(sent) == 0 {
			continue
		}
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			// One call per forwardBytes of writes, one after another: a batch of 256 writes of
			// 1 MiB was one 256 MiB request, held whole by both ends (twice by the leader,
			// which encodes each write again to propose it). Each call's writes are answered
			// as soon as it returns: their callers must not wait for the calls after it (nor,
			// giving up meanwhile, be told outcome_unknown about a known outcome).
			for _, call := range batch.Split(sent, encodedSize, cmp.Or(n.cfg.forwardBytes, forwardBytes)) {
				for i, r := range n.sendForwarded(call) {
					call[i].done <- r
				}
			}
			<-inflight
		}()
	}
}

// encodedSize is a forwarded write's share of a call to the leader (batch.Split).
func encodedSize(fw *forwardedWrite) int { return len(fw.cmd) }

// sendForwarded makes one POST /v1/internal/propose call for writes and returns each write's
// result.
func (n *Node) sendForwarded(writes []*forwardedWrite) []forwardResult {
	out := make([]forwardResult, len(writes))
	all := func(r forwardResult) []forwardResult {
		for i := range out {
			out[i] = r
		}
		return out
	}
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.LeaderWait)
	defer cancel()
	id, addr, err := n.waitLeader(ctx)
	if err != nil {
		return all(forwardResult{err: err})
	}
	if id == n.cfg.ID {
		return all(forwardResult{retry: true}) // elected meanwhile: the callers propose locally
	}
	// The writes go on the wire now (batch.State.Commit), except those whose callers gave up
	// already: they are left out (their callers have answered), and the answers are mapped back
	// by position.
	var encoded [][]byte
	var sent []int
	var waits []context.Context
	var ids []string               // the writes' request ids: the call carries the first
	var seen []consistency.Version // nil unless some write carries a session's version
	for i, fw := range writes {
		if fw.Commit() {
			if !fw.seen.IsZero() && seen == nil {
				seen = make([]consistency.Version, len(encoded), len(writes))
			}
			if seen != nil {
				seen = append(seen, fw.seen)
			}
			encoded = append(encoded, fw.cmd)
			sent = append(sent, i)
			waits = append(waits, fw.wait)
			if info, _ := fw.wait.Value(requestInfoKey).(*requestInfo); info != nil {
				ids = append(ids, info.id)
			}
		}
	}
	if len(sent) == 0 {
		return out // every caller gave up: nobody reads the results
	}
	// The call lasts only while some caller still waits. Cancelling it closes the connection,
	// which ends the leader's request context, and the leader then proposes none of the batch
	// still queued there (strong's ProposeAll): a write whose client was answered
	// outcome_unknown stops short of the log wherever it can, instead of landing seconds later.
	ctx, stop := whileAnyWaits(ctx, waits)
	defer stop()
	if len(ids) > 1 && n.logger.Enabled(ctx, slog.LevelInfo) {
		// The leader logs the call under ids[0]: this line leads there from the others' ids
		// (each forwarded request is logged at info level too, instrument).
		n.logger.Info("forwarding strong writes in one call", "request_id", ids[0], "shared_with", ids[1:], "leader", id)
	}
	for j, r := range n.callLeader(ctx, id, addr, encoded, seen, ids) {
		out[sent[j]] = r
	}
	return out
}

// whileAnyWaits returns a context derived from parent that also ends once every one of waits
// has ended, and the function that releases it.
func whileAnyWaits(parent context.Context, waits []context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancel(parent)
	var left atomic.Int64
	left.Store(int64(len(waits)))
	stops := make([]func() bool, len(waits))
	for i, w := range waits {
		stops[i] = context.AfterFunc(w, func() {
			if left.Add(-1) == 0 {
				cancel()
			}
		})
	}
	return ctx, func() {
		for _, stop := range stops {
			stop()
		}
		cancel()
	}
}

// callLeader proposes the encoded writes through leader id at addr and returns each one's result.
// seen, when not nil, holds for each write the version of its key its session has seen. The call
// carries the first of reqIDs, the writes' request ids, so that the leader logs it under the id
// of one of the client requests it serves (as a read-index round carries its first request's).
func (n *Node) callLeader(ctx context.Context, id, addr string, encoded [][]byte, seen []consistency.Version, reqIDs []string) []forwardResult {
	all := func(r forwardResult) []forwardResult {
		out := make([]forwardResult, len(encoded))
		for i := range out {
			out[i] = r
		}
		return out
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/v1/internal/propose", bytes.NewReader(replication.EncodeBatch(encoded)))
	if err != nil {
		return all(forwardResult{err: err})
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set(client.HeaderForwarded, n.cfg.ID)
	if len(reqIDs) > 0 {
		req.Header.Set(client.HeaderRequestID, reqIDs[0])
	}
	if seen != nil {
		req.Header.Set(headerSessionSeen, encodeSessionSeen(seen))
	}
	n.metrics.forwarded.WithLabelValues("write").Add(float64(len(encoded)))
	n.forwards.calls.Add(1)
	resp, err := n.peerClient.Do(req)
	if err != nil {
		if isDialError(err) {
			return all(forwardResult{retry: true}) // never reached the leader
		}
		return all(forwardResult{err: fmt.Errorf("%w: the write was sent to leader %s but no answer came back: %v", replication.ErrOutcomeUnknown, id, err)})
	}
	defer resp.Body.Close()
	payload, err := io.ReadAll(resp.Body)
	if err != nil {
		return all(forwardResult{err: fmt.Errorf("%w: reading leader %s's answer: %v", replication.ErrOutcomeUnknown, id, err)})
	}
	if resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed {
		return all(forwardResult{relay: true}) // a leader older than batched forwarding
	}
	if resp.StatusCode != http.StatusOK {
		// The leader answers the batch as a whole only when it proposed none of it (a bad batch,
		// no longer leading, or a fault hook cutting the link), so the code says what happened.
		var eb client.ErrorBody
		json.Unmarshal(payload, &eb)
		if eb.Code == client.CodeNoLeader {
			return all(forwardResult{retry: true}) // it stopped leading before proposing
		}
		if eb.Code == "" {
			eb.Code, eb.Error = client.CodeOutcomeUnknown, fmt.Sprintf("answered %d without an error body", resp.StatusCode)
		}
		return all(forwardResult{err: errorFromCode(eb.Code, fmt.Sprintf("leader %s: %s", id, eb.Error))})
	}
	var ans proposeAnswer
	if err := json.Unmarshal(payload, &ans); err != nil || len(ans.Results) != len(encoded) {
		return all(forwardResult{err: fmt.Errorf("%w: leader %s's answer does not list %d results (%v)", replication.ErrOutcomeUnknown, id, len(encoded), err)})
	}
	out := make([]forwardResult, len(encoded))
	var newest consistency.Version
	for i, pr := range ans.Results {
		out[i] = pr.result(ans.Leader, ans.Applied)
		// This node answers its client with that version before it applies the entry: its
		// clock observes it now (DESIGN.md: clocks observe responses), so a write it stamps
		// next is newer than the one it just acknowledged. Whole, not only up to
		// sessionClockLead (observeOutside): it is the version of a committed entry, which
		// the state machine observes whole once it applies it, as it does every entry; cut,
		// a follower whose clock lagged the leader's by more than the lead stamped its next
		// writes below the strong write it had just acknowledged until then.
		n.clock.Observe(out[i].res.Version)
		newest = consistency.Max(newest, out[i].res.Version)
	}
	n.holdAnswered(newest) // and after a restart too
	return out
}

// result turns one write's answer from the leader back into what a local proposal returns.
func (pr proposeResult) result(leader string, applied uint64) forwardResult {
	v, _ := consistency.ParseVersion(pr.Version)
	r := forwardResult{res: replication.Result{Version: v, Existed: pr.Existed, Index: pr.Index}, leader: leader, applied: applied}
	switch pr.Code {
	case "":
	case client.CodeNoLeader:
		r.retry = true // refused before it was proposed
	case client.CodeConflict:
		cur, _ := consistency.ParseVersion(pr.Current)
		r.err = &replication.ConflictError{Current: cur, Reason: pr.Error}
		r.res.Err = r.err
	default:
		r.err = errorFromCode(pr.Code, fmt.Sprintf("leader %s: %s", leader, pr.Error))
	}
	return r
}

// errorFromCode turns an error code a leader answered back into the error it stands for, so the
// follower's client sees the code the leader would have sent. A code that does not say the write
// was left alone is outcome_unknown.
func errorFromCode(code, msg string) error {
	var kind error
	switch code {
	case client.CodeBadRequest:
		kind = replication.ErrInvalid
	case client.CodeTooLarge:
		kind = replication.ErrTooLarge
	case client.CodeNoLeader:
		kind = replication.ErrNoLeader
	case client.CodeUnavailable:
		kind = replication.ErrStale
	case client.CodeTimeout:
		kind = replication.ErrTimeout
	default:
		kind = replication.ErrOutcomeUnknown
	}
	return fmt.Errorf("%w: %s", kind, msg)
}

// encodeSessionSeen is the value of headerSessionSeen for versions, one per write.
func encodeSessionSeen(versions []consistency.Version) string {
	var b []byte
	for _, v := range versions {
		b = replication.AppendVersion(b, v)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeSessionSeen parses headerSessionSeen for a batch of count writes ("" gives nil: the
// follower sent none).
func decodeSessionSeen(s string, count int) ([]consistency.Version, error) {
	if s == "" {
		return nil, nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", headerSessionSeen, err)
	}
	versions := make([]consistency.Version, count)
	for i := range versions {
		if versions[i], raw, err = replication.DecodeVersion(raw); err != nil {
			return nil, fmt.Errorf("%s, version %d: %v", headerSessionSeen, i, err)
		}
	}
	if len(raw) > 0 {
		return nil, fmt.Errorf("%s holds more than the batch's %d versions", headerSessionSeen, count)
	}
	return versions, nil
}

// checkForwarded refuses a forwarded write its follower should have refused as a PUT (keyOf,
// parseWrite): the body may come from anywhere, or from a follower of another release. A
// condition this binary does not know would apply as no condition at all, and a value over
// this node's --max-value-size is over what it takes.
func (n *Node) checkForwarded(c *replication.Command) error {
	if err := store.CheckKey(c.Key); err != nil {
		return err
	}
	if c.Cond != replication.CondNone && c.Cond != replication.CondIfVersion && c.Cond != replication.CondIfAbsent {
		return fmt.Errorf("%w: condition %d is not one this node knows", replication.ErrInvalid, c.Cond)
	}
	if int64(len(c.Value)) > n.cfg.MaxValueSize {
		return fmt.Errorf("%w: the value is over the %d-byte limit (kvd --max-value-size)", replication.ErrTooLarge, n.cfg.MaxValueSize)
	}
	return nil
}

// handlePropose is the leader's side of forwarding: it proposes a follower's batch of strong
// writes together and answers each one's result.
func (n *Node) handlePropose(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, int64(forwardBatch)*(n.cfg.MaxValueSize+64<<10)))
	if err != nil {
		writeError(w, fmt.Errorf("%w: reading the batch: %v", replication.ErrInvalid, err))
		return
	}
	// A follower sends at most forwardBatch writes in one call (and always has).
	packed, err := replication.DecodeBatch(body, forwardBatch)
	var seen []consistency.Version
	if err == nil {
		seen, err = decodeSessionSeen(r.Header.Get(headerSessionSeen), len(packed.Batch))
	}
	cmds := make([]*replication.Command, len(packed.Batch))
	for i := range packed.Batch {
		c := &packed.Batch[i]
		if c.Type != replication.CmdPut && c.Type != replication.CmdDelete {
			err = fmt.Errorf("command %d is a %v: only puts and deletes are forwarded", i, c.Type)
		}
		if !c.Stamp.IsZero() {
			// The follower's stamp: this write comes after everything its clock had seen
			// (its session's writes among them), so the leader's stamp must be newer.
			n.observeOutside(c.Stamp, "forwarded stamp")
		}
		if seen != nil && !seen[i].IsZero() {
			// As the follower's clock observed the session's token (observeSession): the
			// follower's stamp is after it only within the lead of the follower's clock.
			n.observeOutside(seen[i], "session token")
		}
		c.Stamp = n.clock.NowStrong() // as strongWrite stamps it
		cmds[i] = c
	}
	if err != nil && !errors.Is(err, replication.ErrInvalid) {
		err = fmt.Errorf("%w: %v", replication.ErrInvalid, err)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	if !n.raft.IsLeader() {
		writeError(w, n.notLeaderFor(r))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), n.cfg.LeaderWait)
	defer cancel()
	if n.cfg.beforePropose != nil {
		defer n.cfg.beforePropose(ctx)()
	}
	// A key the store cannot hold is refused here, never proposed: a follower of the release
	// before keys were checked forwards one, and every replica of that release stops on the
	// entry (a rolling upgrade runs both). The state machine refuses it too (strong's apply).
	results, errs := make([]replication.Result, len(cmds)), make([]error, len(cmds))
	var valid []*replication.Command
	var at []int
	for i, c := range cmds {
		if errs[i] = n.checkForwarded(c); errs[i] != nil {
			continue
		}
		if errs[i] = n.checkStrongStamp(c); errs[i] != nil {
			continue
		}
		if seen != nil {
			if errs[i] = n.strongStampedAfterSession(c, seen[i]); errs[i] != nil {
				continue
			}
		}
		valid, at = append(valid, c), append(at, i)
	}
	if len(valid) > 0 {
		start := time.Now()
		rs, es := n.raft.ProposeAll(ctx, valid)
		took := time.Since(start).Seconds()
		for j, i := range at {
			results[i], errs[i] = rs[j], es[j]
			if !errors.Is(es[j], replication.ErrNotLeader) {
				n.metrics.apply.Observe(took) // each proposal, as propose times a local one
			}
		}
	}
	ans := proposeAnswer{Leader: n.cfg.ID, Applied: n.store.AppliedIndex(), Results: make([]proposeResult, len(cmds))}
	for i, res := range results {
		pr := proposeResult{Version: res.Version.String(), Existed: res.Existed, Index: res.Index}
		if err := errs[i]; err != nil {
			_, pr.Code = httpError(err)
			pr.Error = err.Error()
			var ce *replication.ConflictError
			if errors.As(err, &ce) {
				pr.Current, pr.Error = ce.Current.String(), ce.Reason
			}
		}
		ans.Results[i] = pr
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(ans)
}
