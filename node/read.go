package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/dialkv/dialkv/client"
	"github.com/dialkv/dialkv/consistency"
	"github.com/dialkv/dialkv/internal/plant"
	"github.com/dialkv/dialkv/replication"
	"github.com/dialkv/dialkv/replication/eventual"
)

// sessionWait is how long a node that is behind a session's token waits to catch up before it
// forwards the read (relaySessionRead), or, when that fails too, refuses it (and the client
// tries another node).
const sessionWait = time.Second

// forwardedSessionWait is the same wait for a session read another node forwarded here: this
// node was asked because it should already hold what the session saw, and the forwarding node
// has waited already.
const forwardedSessionWait = 400 * time.Millisecond

// relayBudget bounds how long a node spends forwarding one session read, over every node it asks.
const relayBudget = 2 * time.Second

// relayLimit bounds the answer a node relays for another (a value, or a page of a list).
const relayLimit = 64 << 20

// askForSessionRead sends the session read r, marked forwarded, to member id at addr. ok: it
// answered, with anything but 503 (which says it is behind too) or 400 (a request this node
// accepted can be refused so only by a node of an older version, which cannot read the session
// token's format), and payload is its whole body.
func (n *Node) askForSessionRead(ctx context.Context, r *http.Request, id, addr string) (resp *http.Response, payload []byte, ok bool) {
	req, err := n.forwardedRequest(ctx, r, addr, nil) // a GET: no body
	if err != nil {
		return nil, nil, false
	}
	n.metrics.forwarded.WithLabelValues("session_read").Inc()
	resp, err = n.peerClient.Do(req)
	if err != nil {
		n.reqLogger(r).Debug("session read: forwarding failed", "to", id, "err", err)
		return nil, nil, false
	}
	defer resp.Body.Close()
	payload, err = io.ReadAll(io.LimitReader(resp.Body, relayLimit+1))
	if err != nil || len(payload) > relayLimit || resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == http.StatusBadRequest {
		return nil, nil, false
	}
	return resp, payload, true
}

// relaySessionRead serves a session read this node could not catch up with in time from the
// node most likely to hold what the session saw (DESIGN.md: "waits briefly, else forwards"):
// the node that stamped the session's version of key, which holds that version (tentative or
// committed), or else the leader, which has applied the session's log index or soon will. It
// reports whether it wrote an answer. It does not when the request was itself forwarded (a read
// is forwarded at most once), when no such node is known or reachable, or when that node could
// not serve the read either: the caller then answers with its own error, and the client tries
// another endpoint.
func (n *Node) relaySessionRead(w http.ResponseWriter, r *http.Request, token sessionToken, key string) bool {
	if r.Header.Get(client.HeaderForwarded) != "" {
		return false
	}
	var targets []string
	add := func(id string) {
		if id != "" && id != n.cfg.ID && !slices.Contains(targets, id) {
			targets = append(targets, id)
		}
	}
	live := map[string]bool{}
	for _, m := range n.gossip.Members() {
		live[m.ID] = m.State == eventual.StateAlive || m.State == eventual.StateSuspect
	}
	if want := token.versionOf(key); key != "" && !want.IsZero() {
		if has, err := n.holdsSessionVersion(key, want); err == nil && !has {
			if up, known := live[want.StampedBy()]; up || !known {
				add(want.StampedBy()) // a node gossip has dead would only spend the budget
			}
		}
	}
	if leader, _ := n.raft.Leader(); leader != "" {
		add(leader)
	} else {
		// No leader known here (this node hears nobody's heartbeats): any live member may have
		// applied the index; ask at most two nodes in all.
		for id, up := range live {
			if up && len(targets) < 2 {
				add(id)
			}
		}
	}
	// The client waits for this answer: keep the whole detour short (the node asked may wait up
	// to forwardedSessionWait itself), so that a refusal still leaves it time to try another
	// endpoint.
	ctx, cancel := context.WithTimeout(r.Context(), relayBudget)
	defer cancel()
	for i, id := range targets {
		addr := n.httpAddrOf(id)
		if addr == "" {
			continue
		}
		// Each but the last gets a share, so that one unreachable node cannot spend it all.
		tctx, tcancel := ctx, context.CancelFunc(func() {})
		if i < len(targets)-1 {
			tctx, tcancel = context.WithTimeout(ctx, relayBudget/time.Duration(len(targets)))
		}
		resp, payload, ok := n.askForSessionRead(tctx, r, id, addr)
		tcancel()
		if ok {
			n.relayAnswer(w, resp, payload)
			return true
		}
	}
	return false
}

// prepareRead does what the level requires before the committed layer may be read locally, and
// says what the answer will promise, with the applied index the read will reflect at least.
// For a session read of key, the node must also hold a version of key at least as new as the
// session has seen (it may be an eventual write gossip is still spreading).
func (n *Node) prepareRead(r *http.Request, level consistency.Level, bound time.Duration, token sessionToken, key string) (answer, error) {
	a := answer{level: level, state: client.StateCommitted, staleness: -1}
	if level == consistency.Eventual {
		if !n.joined.Load() {
			// Its layers hold what it has caught up with so far, which may be nothing: a wiped
			// member would answer "not found" for every key for as long as that takes.
			return a, fmt.Errorf("%w: %s is joining the cluster and has not caught up yet; it serves no eventual reads until then: send it to another node", errJoining, n.cfg.ID)
		}
		// Nothing to wait for: skip the deadline's context and timer (most reads at this level).
		a.staleness = n.stalenessBound()
		a.read, a.applied = true, n.store.AppliedIndex()
		a.session = token.advance(a.applied)
		return a, nil
	}
	ctx, cancel := context.WithTimeout(r.Context(), n.cfg.LeaderWait)
	defer cancel()
	switch level {
	case consistency.Strong:
		if n.faults.UnsafeStrongReads() || plant.StrongReadLocal {
			// Test-only fault, or planted bug: claim linearizability without a read index (the
			// checkers must catch this).
			a.staleness = 0
			break
		}
		index, err := n.readIndex(ctx, r)
		if err != nil {
			return a, err
		}
		if err := n.raft.WaitApplied(ctx, index); err != nil {
			return a, err
		}
		a.staleness = 0
	case consistency.Bounded:
		if plant.BoundedUnchecked {
			a.staleness = n.stalenessBound()
			break
		}
		staleness, err := n.checkBound(ctx, bound)
		if err != nil {
			return a, err
		}
		a.staleness = staleness
	case consistency.Session:
		if plant.SessionIgnoresToken {
			a.staleness = n.stalenessBound()
			break
		}
		wait := sessionWait
		if r.Header.Get(client.HeaderForwarded) != "" {
			wait = forwardedSessionWait
		}
		wctx, wcancel := context.WithTimeout(ctx, wait)
		err := n.raft.WaitApplied(wctx, token.index)
		wcancel()
		if err != nil {
			return a, fmt.Errorf("%w: %s has applied index %d, behind this session's %d; try another node", replication.ErrStale, n.cfg.ID, n.store.AppliedIndex(), token.index)
		}
		if want := token.versionOf(key); key != "" && !want.IsZero() {
			if err := n.waitForVersion(ctx, key, want, wait); err != nil {
				return a, err
			}
		}
		a.staleness = n.stalenessBound()
	}
	a.read, a.applied = true, n.store.AppliedIndex()
	a.session = token.advance(a.applied)
	return a, nil
}

// waitForVersion polls, for at most wait (sessionWait, less for a forwarded read), until this node holds a version of key at
// least as new as want (gossip usually brings it within milliseconds).
func (n *Node) waitForVersion(ctx context.Context, key string, want consistency.Version, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		has, err := n.holdsSessionVersion(key, want)
		if err != nil {
			return err
		}
		if has {
			return nil
		}
		if time.Now().After(deadline) || pause(ctx, 5*time.Millisecond) != nil {
			return fmt.Errorf("%w: %s has not yet received this session's version %s of %q; try another node", replication.ErrStale, n.cfg.ID, want, key)
		}
	}
}

// holdsSessionVersion reports whether this node can answer a session that has seen version want
// of key: it holds a version at least as new; or it holds nothing of key, has applied a purge
// horizon newer than want, and either stamped want itself (its origin) or want is a strong
// write's. The origin gives a version it took up only for a newer one of the key or once it is
// committed, so there the key's absence means a later delete, purged since: without this, a
// session that wrote or read its own delete would wait, on every node, for a tombstone no node
// keeps any more. A strong write's version is committed when anyone sees it, at or below the
// session's log index, which a session read waits for first: a node that has applied that index
// holds the write or what deleted it since, so the key's absence there means a purged delete,
// whoever stamped the version (the leader of the time may be long gone). Other nodes cannot tell
// a purged delete from a newer eventual write they have not received yet; they forward to the
// origin.
func (n *Node) holdsSessionVersion(key string, want consistency.Version) (bool, error) {
	v, _, ok, err := n.newest(key)
	if err != nil || ok || !n.vouchesForAbsence(want) {
		return ok && v.Version.Compare(want) >= 0, err
	}
	h, err := n.store.PurgeHorizon()
	return err == nil && h.Newer(want), err
}

// vouchesForAbsence reports whether this node may take a key's absence, under a purge horizon
// newer than v, for a purged delete after v (holdsSessionVersion says why): it stamped v, or v
// is a strong write's.
func (n *Node) vouchesForAbsence(v consistency.Version) bool {
	return v.StampedBy() == n.cfg.ID || v.Strong()
}

// stalenessBound is how stale the committed layer may be right now, when that is known without
// waiting or asking anyone; -1 when it is not. On a follower it is the age of the newest read
// index it holds (leaderFreshness), once applied; asking for it keeps that refreshed in the
// background (followerFreshness).
func (n *Node) stalenessBound() time.Duration {
	if n.raft.IsLeader() {
		if qc := n.raft.QuorumContact(); !qc.IsZero() && n.raft.CaughtUp(n.raft.CommitIndex()) {
			return time.Since(qc)
		}
		return -1
	}
	asked, index := n.followerFreshness()
	if asked.IsZero() || !n.raft.CaughtUp(index) {
		return -1
	}
	return time.Since(asked)
}

// checkBound makes sure the committed layer is at most bound behind the leader and returns the
// staleness it can promise.
func (n *Node) checkBound(ctx context.Context, bound time.Duration) (time.Duration, error) {
	if n.raft.IsLeader() {
		qc := n.raft.QuorumContact()
		if qc.IsZero() || time.Since(qc) > bound/2 {
			// Refresh the lease-like proof with one (shared) leadership round.
			if _, err := n.raft.ReadIndex(ctx); err == nil {
				qc = n.raft.QuorumContact()
			}
		}
		if qc.IsZero() || time.Since(qc) > bound {
			return 0, fmt.Errorf("%w: leader %s has not confirmed its leadership with a quorum within max_staleness %v", replication.ErrStale, n.cfg.ID, bound)
		}
		return n.appliedWithin(ctx, qc, bound, n.raft.CommitIndex(), "leader "+n.cfg.ID)
	}
	asked, index := n.followerFreshness()
	if asked.IsZero() || time.Since(asked) > bound {
		// Ask the leader now, for at most the bound: an answer that takes longer is of no use.
		rctx, cancel := context.WithTimeout(ctx, bound)
		_, err := n.readIndexes.join(rctx, n.cfg.ID+"-bounded", min(bound, n.cfg.LeaderWait), n.leaderReadIndex, n.logSharedRound)
		cancel()
		if err != nil && n.raft.IsLeader() { // elected meanwhile (errLeadsNow)
			return n.checkBound(ctx, bound)
		}
		asked, index = n.fresh.get()
	}
	if asked.IsZero() {
		return 0, fmt.Errorf("%w: %s has no read index from a leader within max_staleness %v", replication.ErrStale, n.cfg.ID, bound)
	}
	if age := time.Since(asked); age > bound {
		return 0, fmt.Errorf("%w: %s last had a read index from the leader %v ago, over max_staleness %v", replication.ErrStale, n.cfg.ID, age.Round(time.Millisecond), bound)
	}
	return n.appliedWithin(ctx, asked, bound, index, n.cfg.ID)
}

// appliedWithin waits until this node has applied index, a read index it had, or (on the leader)
// its commit index, as of since, for no longer than the bound allows, and returns the staleness
// of the state then (stillWithin). who names the node in the error.
func (n *Node) appliedWithin(ctx context.Context, since time.Time, bound time.Duration, index uint64, who string) (time.Duration, error) {
	wctx, cancel := context.WithTimeout(ctx, bound-time.Since(since))
	defer cancel()
	if n.cfg.beforeApplyWait != nil {
		n.cfg.beforeApplyWait()
	}
	if err := n.raft.WaitApplied(wctx, index); err != nil {
		return 0, fmt.Errorf("%w: %s is still applying entries up to %d", replication.ErrStale, who, index)
	}
	return n.stillWithin(since, bound)
}

// stillWithin is the staleness of a committed layer that misses no write acknowledged before
// since, once checkBound has waited for the state machine: that wait (or a stall of the node
// around it) may have taken the read past its bound, and WaitApplied does not fail when the
// state machine catches up just as its deadline passes. The read is then refused rather than
// answered with a staleness over the max_staleness it asked for.
func (n *Node) stillWithin(since time.Time, bound time.Duration) (time.Duration, error) {
	age := time.Since(since)
	if age > bound {
		return 0, fmt.Errorf("%w: %s caught up with the leader only %v after its last confirmation, over max_staleness %v", replication.ErrStale, n.cfg.ID, age.Round(time.Millisecond), bound)
	}
	return age, nil
}

// readIndex returns a linearizable read index: from the local engine when this node leads,
// else from the leader over HTTP (the read itself stays local). A follower's concurrent requests
// share calls to the leader (readIndexRounds); each still gets an index taken after it asked.
func (n *Node) readIndex(ctx context.Context, r *http.Request) (uint64, error) {
	for {
		if n.raft.IsLeader() {
			index, err := n.raft.ReadIndex(ctx)
			if !errors.Is(err, replication.ErrNotLeader) {
				return index, err
			}
		} else {
			id, _, err := n.waitLeader(ctx)
			if err != nil {
				return 0, err
			}
			if id != n.cfg.ID {
				index, err := n.readIndexes.join(ctx, requestID(r), n.cfg.LeaderWait, n.leaderReadIndex, n.logSharedRound)
				if err == nil {
					return index, nil
				}
				if errors.Is(err, errRoundsClosed) {
					return 0, fmt.Errorf("%w: %v", replication.ErrNoLeader, err)
				}
				if ctx.Err() == nil {
					n.reqLogger(r).Debug("read index from leader failed; retrying", "leader", id, "err", err)
				}
			}
		}
		if err := pause(ctx, 20*time.Millisecond); err != nil {
			return 0, fmt.Errorf("%w: no read index from a leader within %v", replication.ErrTimeout, n.cfg.LeaderWait)
		}
	}
}

// errLeadsNow fails a read-index round that finds this node elected meanwhile: its requests
// ask the local engine instead.
var errLeadsNow = errors.New("this node leads now")

// leaderReadIndex is one read-index round's call: it asks the current leader, carrying the
// request id reqID.
func (n *Node) leaderReadIndex(ctx context.Context, reqID string) (uint64, error) {
	id, addr, err := n.waitLeader(ctx)
	if err != nil {
		return 0, err
	}
	if id == n.cfg.ID {
		return 0, errLeadsNow
	}
	asked := time.Now()
	index, err := n.remoteReadIndex(ctx, reqID, addr)
	if err == nil {
		n.fresh.record(asked, index)
	}
	return index, err
}

// logSharedRound logs, at debug level, which requests shared one read-index call.
func (n *Node) logSharedRound(r *readIndexRound, took time.Duration) {
	if !n.logger.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	n.logger.Debug("read index round", "request_id", r.ids[0], "shared_with", r.ids[1:], "index", r.index, "err", r.err, "took", took.Round(time.Microsecond))
}

func (n *Node) remoteReadIndex(ctx context.Context, reqID, addr string) (uint64, error) {
	n.metrics.forwarded.WithLabelValues("read_index").Inc()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/v1/internal/readindex", nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set(client.HeaderRequestID, reqID)
	resp, err := n.peerClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var eb client.ErrorBody
		json.NewDecoder(resp.Body).Decode(&eb)
		return 0, fmt.Errorf("leader answered %d %s: %s", resp.StatusCode, eb.Code, eb.Error)
	}
	var ri client.ReadIndexResponse
	if err := json.NewDecoder(resp.Body).Decode(&ri); err != nil {
		return 0, err
	}
	return ri.Index, nil
}

// pause waits d, or returns ctx's error if it ends first.
func pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
