package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/dialkv/dialkv/client"
	"github.com/dialkv/dialkv/consistency"
	"github.com/dialkv/dialkv/internal/plant"
	"github.com/dialkv/dialkv/replication"
	"github.com/dialkv/dialkv/replication/eventual"
	"github.com/dialkv/dialkv/replication/store"
)

// tentativeStore is the store as the gossip engine sees it: merging also moves this node's
// clock past every version received, so its next writes are newer than what it has seen, and
// indexes any write of this node's own that comes back (anti-entropy after it lost its disk):
// nobody else commits it while this node is alive.
type tentativeStore struct{ n *Node }

func (t tentativeStore) MergeTentative(ws []replication.Write) ([]replication.Write, error) {
	for _, w := range ws {
		t.n.clock.Observe(w.Value.Version)
	}
	stored, err := t.n.store.MergeTentative(ws)
	var own []replication.Write
	for _, w := range stored {
		if w.Origin() == t.n.cfg.ID {
			own = append(own, w)
		}
	}
	t.n.pending.add(own)
	return stored, err
}

func (t tentativeStore) TentativeDigest(from, to string) (map[string]consistency.Version, error) {
	return t.n.store.TentativeDigest(from, to)
}

func (t tentativeStore) GetTentative(keys []string) ([]replication.Write, error) {
	return t.n.store.GetTentative(keys)
}

var _ eventual.Store = tentativeStore{}

// gossipAddr is the address this node's gossip engine listens on.
func (n *Node) gossipAddr() string {
	for _, m := range n.gossip.Members() {
		if m.ID == n.cfg.ID {
			return m.GossipAddr
		}
	}
	return ""
}

// eventualWrite takes a write into the tentative layer, durably, then spreads it by gossip and
// wakes the committer. It is acknowledged once durable on this node, whatever the network does;
// a session's write this node's clock can only stamp below the session's version of the key is
// refused (stampedAfterSession).
func (n *Node) eventualWrite(w http.ResponseWriter, r *http.Request, wr writeRequest, token sessionToken) {
	val := consistency.Value{Tombstone: wr.cmd.Type == replication.CmdDelete, Data: wr.cmd.Value}
	// A refusal reports its metadata too, as a strong write's does.
	refuse := func(err error) {
		n.keyError(w, r, answer{level: consistency.Eventual, staleness: -1, session: token}, err)
	}
	if !n.joined.Load() {
		refuse(fmt.Errorf("%w: %s has not caught up with its own registration in the cluster yet, and takes no eventual writes until then: send it to another node", errJoining, n.cfg.ID))
		return
	}
	var ok bool
	if val.Version, ok = n.stamps.stamp(n.clock); !ok {
		refuse(fmt.Errorf("%w: %s is leaving the cluster and takes no more eventual writes: send it to another node", errLeaving, n.cfg.ID))
		return
	}
	if err := n.checkStamp(n.cfg.ID, val.Version); err != nil {
		n.stamps.done(val.Version)
		refuse(err)
		return
	}
	seen := wr.seen
	if seen.IsZero() && !token.floor.IsZero() && !n.raft.CaughtUp(token.index) {
		// The token may have shed the key's entry (settleSession): that version is committed at
		// or below the token's index, and at most its floor. A node that has applied the index
		// holds it, and its clock observed it; one that has not stamps below it when its clock
		// is over sessionClockLead behind (observeSession cuts the token's versions there).
		seen = token.floor
	}
	if err := stampedAfterSession(n.cfg.ID, wr.cmd.Key, val.Version, seen, "retry on another node, or here once that version has reached "+n.cfg.ID); err != nil {
		n.stamps.done(val.Version)
		refuse(err)
		return
	}
	if plant.EventualAckEarly {
		n.storeLate(wr.cmd.Key, val)
		n.ackEventual(w, r, wr.cmd.Key, val.Version, token)
		return
	}
	stored, err := n.store.MergeTentative([]replication.Write{{Key: wr.cmd.Key, Value: val}})
	n.pending.addAccepted(stored, time.Now())
	n.stamps.done(val.Version)
	if err != nil {
		n.diskErrors.Add(1)
		n.lastDiskError.Store(monoNow())
		n.reqLogger(r).Error("eventual write not durable: refusing it", "key", wr.cmd.Key, "err", err)
		refuse(fmt.Errorf("the eventual write could not be made durable on %s and was not accepted: %w", n.cfg.ID, err))
		return
	}
	if len(stored) == 0 {
		// Not stored: superseded by a newer version of the key (fine: acknowledged as
		// superseded), or below the purge horizon, which the log would refuse too: not taken.
		if h, herr := n.store.PurgeHorizon(); herr == nil && h.Newer(val.Version) {
			n.clock.Observe(h) // a retry is stamped above it
			refuse(fmt.Errorf("%w: %s stamped the write %s, below the purge horizon %s (its clock lags), so it was not taken: retry", errBelowHorizon, n.cfg.ID, val.Version, h))
			return
		}
	}
	// The committer is not woken per write: it runs every CommitInterval and takes what the
	// pending index gathered meanwhile.
	n.gossip.Broadcast(stored)
	n.ackEventual(w, r, wr.cmd.Key, val.Version, token)
}

// ackEventual answers an eventual write of key, taken with version.
func (n *Node) ackEventual(w http.ResponseWriter, r *http.Request, key string, version consistency.Version, token sessionToken) {
	a := answer{level: consistency.Eventual, version: version, state: client.StateTentative, staleness: -1, session: token.saw(key, version)}
	m := n.setMeta(w, a)
	if wantsJSON(r) {
		writeAnswer(w, r, client.ValueResponse{KV: toKV(key, consistency.Value{Version: version}, client.StateTentative), Meta: m})
		return
	}
	w.WriteHeader(http.StatusOK)
}

// newest returns the newer of key's committed and tentative versions, and which layer it is in.
// It reads the tentative layer first: a commit drops a tentative entry only once the committed
// layer holds a version at least as new, so whatever commit lands between the two reads, the
// answer is at least the version the node held when the call began. (In the other order the
// committed read could miss a commit whose drop the tentative read then saw, and the answer
// fell back to the older committed value, below a version a session read had just checked.)
func (n *Node) newest(key string) (v consistency.Value, state string, ok bool, err error) {
	tv, tok, err := n.store.Tentative(key)
	if err != nil {
		return v, "", false, err
	}
	if n.cfg.betweenLayers != nil {
		n.cfg.betweenLayers(key)
	}
	cv, cok, err := n.store.Get(key)
	if err != nil {
		return v, "", false, err
	}
	switch {
	case tok && (!cok || tv.Version.Newer(cv.Version)):
		return tv, client.StateTentative, true, nil
	case cok:
		return cv, client.StateCommitted, true, nil
	}
	return v, "", false, nil
}

// runCommitter hands this node's pending eventual writes (and those of peers gossip has had
// dead for DeadCommitDelay) to the leader in batches, with a watermark report at least every
// reportInterval while tombstones wait for purging. Until a batch is applied the writes stay
// tentative, so a failed or unknown submission is simply retried; re-submitting is harmless.
func (n *Node) runCommitter() {
	defer n.wg.Done()
	ticker := time.NewTicker(n.cfg.CommitInterval)
	defer ticker.Stop()
	var lastReport time.Time
	floor, _ := n.store.ClockFloor() // New read it already
	// submitted remembers writes this node got committed, until its own state machine has applied
	// them (the leader answers first): without it the next scan would submit them again.
	submitted := map[writeID]time.Time{}
	for {
		select {
		case <-n.closed:
			return
		case <-ticker.C:
		case <-n.commitWake:
		}
		if n.cfg.disableCommitter {
			continue
		}
		report := time.Since(lastReport) >= reportInterval && n.tombstonesPending()
		ws, indexed, watermark, full, err := n.nextBatch(submitted, report)
		if err != nil {
			n.logger.Error("committer: reading pending writes", "err", err)
			continue
		}
		if !watermark.IsZero() && !watermark.Stamped() {
			// The wall clock reads past consistency.MaxWall (or before 1970): so does a
			// watermark taken from it. Reported, it went into the log (a leader proposes its own
			// batches unchecked), where the purge horizon, the minimum of the reports, could
			// follow it, for good: every later write below it, and strong writes of purged keys
			// stamped past MaxWall. The report waits for a sane clock.
			n.logger.Warn("committer: this node's wall clock is outside the years a version can carry: no watermark report until it is fixed", "watermark", watermark)
			watermark = consistency.Version{}
			if len(ws) == 0 {
				continue
			}
		}
		if len(ws) == 0 && !report {
			continue
		}
		if watermark.Newer(floor) {
			// A report promises never to stamp below it: make that survive a restart first.
			next := consistency.Version{Wall: watermark.Wall + int64(clockFloorSlack)}
			if err := n.store.SetClockFloor(next); err != nil {
				n.logger.Error("committer: cannot record the clock floor: sending the batch without its watermark report", "err", err)
				watermark = consistency.Version{}
				if len(ws) == 0 {
					continue
				}
			} else {
				floor = next
			}
		}
		cmd := replication.Command{Type: replication.CmdEventualBatch, Reporter: n.cfg.ID, Watermark: watermark, Writes: ws, Unsafe: n.faults.UnsafeEventualCommit()}
		ctx, cancel := context.WithTimeout(context.Background(), n.cfg.LeaderWait)
		err = n.submitBatch(ctx, cmd)
		cancel()
		if err != nil {
			n.logger.Debug("committer: batch not committed yet; will retry", "writes", len(ws), "err", err)
			continue
		}
		committedAt := time.Now()
		if !watermark.IsZero() {
			lastReport = committedAt
		}
		now := n.faults.Now()
		done := make([]writeID, len(ws))
		for i, w := range ws {
			done[i] = writeKey(w)
			if i >= indexed { // found by a scan, which may find it again until applied here
				submitted[done[i]] = committedAt
			}
			if w.Origin() == n.cfg.ID {
				// From the acknowledgement where this node remembers it; else from the stamp
				// (a write from before a restart), which reads low when the clock ran ahead.
				lag := max(0, now.Sub(time.Unix(0, w.Value.Version.Wall)))
				if at, ok := n.pending.acceptedAt(done[i]); ok {
					lag = committedAt.Sub(at)
				}
				n.metrics.commitLag.Observe(lag.Seconds())
				n.recent.observeCommitLag(committedAt, lag)
			}
		}
		n.pending.forget(done)
		if full {
			select { // more are waiting: go again at once
			case n.commitWake <- struct{}{}:
			default:
			}
		}
	}
}

// A committer batch holds at most maxCommitBatch writes and, unless it is a single write, at
// most maxCommitBytes of keys and values. It is one Raft entry, posted whole to the leader within
// LeaderWait, and every node reads it into memory at once: a backlog of large values (a node cut
// off from the leader for a while, with values of up to --max-value-size) used to go as one batch
// of hundreds of MiB, which never reached the leader in time, or at all past handleCommit's limit,
// so none of those writes was ever committed.
const (
	maxCommitBatch = 512
	maxCommitBytes = 4 << 20
)

// commitSize approximates w's share of a committer batch, in bytes.
func commitSize(w replication.Write) int {
	return len(w.Key) + len(w.Value.Data) + len(w.Value.Version.Node) + 32
}

// commitBytes is the byte bound of a committer batch: maxCommitBytes, unless a test set another.
func (n *Node) commitBytes() int {
	if n.cfg.commitBytes > 0 {
		return n.cfg.commitBytes
	}
	return maxCommitBytes
}

// batchBudget fills one committer batch of at most limit bytes (n.commitBytes()): fits reports
// whether a write of size bytes still goes in, and counts it if so.
type batchBudget struct{ writes, bytes, limit int }

func (b *batchBudget) fits(size int) bool {
	if b.writes >= maxCommitBatch || b.writes > 0 && b.bytes+size > b.limit {
		return false
	}
	b.writes++
	b.bytes += size
	return true
}

// maxCommitBody bounds the body of a committer batch that handleCommit reads: 256 MiB, what
// nodes that did not bound their batches in bytes may still send, or more when --max-value-size
// makes a batch of one write larger.
func (n *Node) maxCommitBody() int64 {
	return max(256<<20, 2*(maxCommitBytes+n.cfg.MaxValueSize+store.MaxKeySize))
}

// clockFloorSlack is how far above a reported watermark the committer records the clock floor,
// so that it writes one (an fsync) about once per reportInterval, not with every batch. A node
// restarted within that time may stamp up to this much ahead of its wall clock at first.
const clockFloorSlack = reportInterval

// reportInterval is how often the committer reports a watermark while tombstones wait for
// purging (purging waits for reports; between them batches carry none). Reporting takes a scan
// of the whole tentative layer.
const reportInterval = time.Second

// tombstonesPending says whether watermark reports matter now: only while a committed tombstone
// waits for purging. Reporting regardless cost an idle cluster one Raft entry per member per
// second, fsynced on every node, for nothing. Skipping is safe (a report only ever lets purging
// go ahead) and delays purging by at most one interval: once a tombstone is committed, every
// member reports at its next tick. On a read error it says yes: a report never hurts.
func (n *Node) tombstonesPending() bool {
	pending, err := n.store.TombstonesPending()
	return err != nil || pending
}

// resubmitAfter is how long a committed write may still look tentative here (this node applies
// the entry after the leader answered) before the committer submits it again.
const resubmitAfter = 2 * time.Second

// writeID identifies a write: its key and version fix its value.
type writeID struct {
	key     string
	version consistency.Version
}

func writeKey(w replication.Write) writeID { return writeID{key: w.Key, version: w.Value.Version} }

// nextBatch collects one batch of writes to commit (maxCommitBatch, maxCommitBytes; full reports
// that more wait): this node's own, from the pending
// index and read back from the tentative layer (the first indexed of ws), or, while the index
// is not complete, from a scan of the layer, which then seeds it; and those of peers gossip has
// had dead (a scan). Writes in submitted, recently committed, are left out of scans (and
// forgotten once old); the committer forgets indexed ones from the index instead.
//
// Whenever it scans, and always with report, it also returns a watermark: no tentative write this
// node holds (of any origin) is older than it, and neither is any write it will still
// acknowledge. Otherwise the watermark is zero: no report.
func (n *Node) nextBatch(submitted map[writeID]time.Time, report bool) (ws []replication.Write, indexed int, watermark consistency.Version, full bool, err error) {
	for w, at := range submitted {
		if time.Since(at) > resubmitAfter {
			delete(submitted, w)
		}
	}
	budget := batchBudget{limit: n.commitBytes()}
	sample, complete, gen := n.pending.sample(maxCommitBatch)
	if complete && len(sample) > 0 {
		if ws, full, err = n.ownPending(sample, &budget); err != nil {
			return nil, 0, consistency.Version{}, false, err
		}
	}
	indexed = len(ws)
	dead := n.deadPeers()
	if complete && len(dead) == 0 && !report {
		return ws, indexed, consistency.Version{}, full, nil
	}
	// The floor first, then the scan: a write stamped before the floor was read is either still
	// in flight (and the floor is not newer than it) or already durable, so the scan sees it.
	floor := n.stamps.floor(n.clock)
	room := maxCommitBatch - len(ws)
	if full {
		room = 0 // the scan only finds the watermark: the batch is full already
	}
	// Writes submitted a moment ago are left out before they are read: they would take the
	// batch's room and bytes from the writes still waiting.
	include := func(key []byte, v consistency.Version) bool {
		if room == 0 || !dead[v.Node] && (complete || v.Node != n.cfg.ID) {
			return false
		}
		_, done := submitted[writeID{key: string(key), version: v}]
		return !done
	}
	scanned, sum, err := n.store.PendingTentative(include, room, max(1, budget.limit-budget.bytes))
	if err != nil {
		return nil, 0, consistency.Version{}, false, err
	}
	var own []replication.Write
	for _, w := range scanned {
		if w.Origin() == n.cfg.ID {
			own = append(own, w)
		}
		if full || !budget.fits(commitSize(w)) {
			full = true
			continue
		}
		ws = append(ws, w)
	}
	full = full || sum.Left > 0 || len(ws) == maxCommitBatch
	if !complete && room > 0 && sum.Left == 0 {
		// The scan returned every pending write of this node (and of the dead): seed the index.
		n.pending.seed(own, gen)
	}
	watermark = floor
	if !sum.Oldest.IsZero() && watermark.Newer(sum.Oldest) {
		watermark = sum.Oldest
	}
	return ws, indexed, watermark, full, nil
}

// ownPendingRead is how many indexed writes ownPending reads from the tentative layer at once:
// it stops reading once the batch is full, so a backlog of large values is not read whole.
const ownPendingRead = 32

// ownPending reads the indexed writes back from the tentative layer, the truth: it returns those
// the layer still holds as this node's (a newer version of the key than indexed included), as
// many as budget lets in (full reports that some were left for the next batch), and forgets the
// others it read, committed or superseded by a newer write of another node.
func (n *Node) ownPending(ids []writeID, budget *batchBudget) (ws []replication.Write, full bool, err error) {
	var gone []writeID
	defer func() { n.pending.forget(gone) }()
	for start := 0; start < len(ids) && !full; start += ownPendingRead {
		chunk := ids[start:min(start+ownPendingRead, len(ids))]
		keys := make([]string, len(chunk))
		for i, id := range chunk {
			keys[i] = id.key
		}
		held, err := n.store.GetTentative(keys)
		if err != nil {
			return nil, false, err
		}
		byKey := make(map[string]replication.Write, len(held))
		for _, w := range held {
			byKey[w.Key] = w
		}
		for _, id := range chunk {
			w, ok := byKey[id.key]
			switch {
			case !ok || w.Origin() != n.cfg.ID || id.version.Newer(w.Value.Version):
				gone = append(gone, id)
			case full || !budget.fits(commitSize(w)):
				full = true
			default:
				ws = append(ws, w)
			}
		}
	}
	return ws, full, nil
}

// deadPeers are the members gossip has had dead (or gone) for at least DeadCommitDelay, and
// those removed from the cluster that gossip still knows: a removed node restarted from old data
// may gossip writes that only the others can bring to the leader.
func (n *Node) deadPeers() map[string]bool {
	dead := map[string]bool{}
	removed := n.removedMembers()
	for _, m := range n.gossip.Members() {
		if n.goneFor(m) || removed[m.ID] && m.ID != n.cfg.ID {
			dead[m.ID] = true
		}
	}
	return dead
}

// submitBatch proposes the batch on the leader, locally or through /v1/internal/commit.
func (n *Node) submitBatch(ctx context.Context, cmd replication.Command) error {
	for {
		if n.raft.IsLeader() {
			_, err := n.propose(ctx, &cmd)
			if !errors.Is(err, replication.ErrNotLeader) {
				return err
			}
		}
		id, addr, err := n.waitLeader(ctx)
		if err != nil {
			return err
		}
		if id != n.cfg.ID {
			n.metrics.forwarded.WithLabelValues("commit").Inc()
			return n.postPeer(ctx, addr, "/v1/internal/commit", cmd.Encode(), true)
		}
	}
}

// postPeer POSTs body to another node and turns a non-200 answer into an error. forwarded
// marks the request as already relayed once (the receiver must not relay it again).
func (n *Node) postPeer(ctx context.Context, addr, path string, body []byte, forwarded bool) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	if forwarded {
		req.Header.Set(client.HeaderForwarded, n.cfg.ID)
	}
	resp, err := n.peerClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var eb client.ErrorBody
		json.NewDecoder(resp.Body).Decode(&eb)
		if resp.StatusCode == http.StatusGone {
			return fmt.Errorf("%s answered: %w (%s)", addr, errMemberRemoved, eb.Error)
		}
		return fmt.Errorf("%s answered %d %s: %s", addr, resp.StatusCode, eb.Code, eb.Error)
	}
	return nil
}

// checkCommitBatch refuses a committer batch no node sends: its body may come from anywhere,
// and the leader proposes it as one entry every node applies. A node's batches hold at most
// maxCommitBatch writes (and always have), each from its tentative layer, which holds only keys
// the store can hold and stamped versions; its reporter is its id. The unsafe mode is a test
// fault (docs/faults.md): a leader started without --test-faults commits no batch in it.
// Neither a value's size nor a version's distance ahead is checked (short of a version no clock
// stamps, past consistency.MaxWall): a node with another --max-value-size, or a clock running
// ahead, acknowledged those writes, and a refused batch is sent again and again.
func (n *Node) checkCommitBatch(cmd *replication.Command) error {
	if len(cmd.Reporter) > store.MaxKeySize {
		// No node has such an id (the state machine drops the report; an older one stops).
		return fmt.Errorf("a reporter id of %d bytes", len(cmd.Reporter))
	}
	if len(cmd.Writes) > maxCommitBatch {
		return fmt.Errorf("%d writes, over the %d a node sends at once", len(cmd.Writes), maxCommitBatch)
	}
	if cmd.Unsafe && !n.faults.Enabled() {
		return errors.New("the unsafe commit fault, on a node started without --test-faults")
	}
	// A version no clock stamps stays out of the log: the state machine's rule for a strong
	// write, max(stamp, current + 1), wraps at the end of int64 time, so after a version there a
	// key's next strong write took its own stamp, older than the version it replaced, and the
	// same eventual write sent again took the key back from it (a purge horizon there did the
	// same to a purged key's next write).
	for i, w := range cmd.Writes {
		if store.CheckKey(w.Key) != nil {
			return fmt.Errorf("write %d: a key of %d bytes", i, len(w.Key))
		}
		if !w.Value.Version.Stamped() {
			return fmt.Errorf("write %d of %q: version %q is not a stamp", i, w.Key, w.Value.Version)
		}
	}
	if !cmd.Watermark.IsZero() && !cmd.Watermark.Stamped() {
		return fmt.Errorf("watermark %q is not a stamp", cmd.Watermark)
	}
	return nil
}

// handleCommit proposes a peer's committer batch. Leader only.
func (n *Node) handleCommit(w http.ResponseWriter, r *http.Request) {
	limit := n.maxCommitBody()
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		writeError(w, fmt.Errorf("%w: %v", replication.ErrInvalid, err))
		return
	}
	if int64(len(body)) > limit {
		writeError(w, fmt.Errorf("%w: a committer batch over the %d-byte limit", replication.ErrTooLarge, limit))
		return
	}
	cmd, err := replication.DecodeCommand(body)
	if err == nil && cmd.Type != replication.CmdEventualBatch {
		err = fmt.Errorf("a %v command", cmd.Type)
	}
	if err == nil {
		err = n.checkCommitBatch(&cmd)
	}
	if err != nil {
		writeError(w, fmt.Errorf("%w: not a committer batch: %v", replication.ErrInvalid, err))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), n.cfg.LeaderWait)
	defer cancel()
	if _, err := n.propose(ctx, &cmd); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]int{"writes": len(cmd.Writes)})
}

// runPurger has the leader propose, now and then, the purge of tombstones every member has
// acknowledged. The decision is made when the entry is applied, from committed state only.
func (n *Node) runPurger() {
	defer n.wg.Done()
	ticker := time.NewTicker(n.cfg.PurgeInterval)
	defer ticker.Stop()
	for {
		select {
		case <-n.closed:
			return
		case <-ticker.C:
		}
		if !n.raft.IsLeader() {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), n.cfg.LeaderWait)
		n.finishRemovals(ctx)
		n.proposePurge(ctx)
		cancel()
	}
}

// proposePurge proposes a purge if the purge state allows one. It waits for leadership to be
// ready (the entries of earlier terms applied: a removal among them must be seen first), and
// holds membershipMu from its look at the state until the purge is applied, so that no removal
// of this leader's lands between the two: the purge would then go ahead without the fresh
// reports that removal calls for (reportsSinceRemoval). A join or removal under way skips the
// round. A removal whose caller gave up (outcome unknown, membershipMu released) may still be
// on its way to the log or appended and not applied, which neither the applied state nor a read
// index shows: the purge would land right after it. So before proposing, the leader waits for
// everything it has proposed to apply (raft.Settle: at once when nothing is in flight) and looks
// again.
func (n *Node) proposePurge(ctx context.Context) {
	if !n.membershipMu.TryLock() {
		return
	}
	defer n.membershipMu.Unlock()
	if !n.purgeAllowed() {
		return
	}
	if err := n.raft.Settle(ctx); err != nil {
		n.logger.Debug("purge skipped: proposals in flight not applied", "err", err)
		return
	}
	if !n.purgeAllowed() {
		return
	}
	if _, err := n.raft.Propose(ctx, &replication.Command{Type: replication.CmdPurge, Stamp: n.clock.Now()}); err != nil {
		n.logger.Debug("purge not committed", "err", err)
	}
}

// purgeAllowed reports whether this node leads, ready, and tombstones wait that nothing blocks
// the purge of, as its applied state shows it. (Leadership lost and won again since an earlier
// look: ready means the entries of the terms before, another leader's removal among them, are
// applied.)
func (n *Node) purgeAllowed() bool {
	if !n.raft.LeaderReady() {
		return false
	}
	ps, err := n.purgeState()
	return err == nil && ps.pending > 0 && len(ps.blockedBy) == 0
}
