package node

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/dialkv/dialkv/client"
	"github.com/dialkv/dialkv/consistency"
	"github.com/dialkv/dialkv/internal/durable"
	"github.com/dialkv/dialkv/replication"
	"github.com/dialkv/dialkv/replication/eventual"
	"github.com/dialkv/dialkv/replication/strong"
)

// ErrRemoved is what Serve returns once this node has been removed from the cluster, and what
// New returns for a data directory whose node was removed: such a node must not take writes or
// re-register itself. Wiping the data directory and joining again brings the id back.
var ErrRemoved = errors.New("removed from the cluster")

// ErrWritesStranded is part of Serve's error when a removed node could not hand all its
// uncommitted eventual writes over before stopping: its data directory still holds them.
var ErrWritesStranded = errors.New("uncommitted eventual writes not handed over")

// handOverWait bounds how long a removed node tries to hand its uncommitted writes over.
const handOverWait = 30 * time.Second

// errNoMember is a removal of an id the cluster does not know (404 not_found).
var errNoMember = errors.New("no such member")

// errLeaving refuses an eventual write on a node that is handing its writes over before its
// removal (503 unavailable: the client tries another node).
var errLeaving = errors.New("leaving")

// errBelowHorizon refuses an eventual write stamped below the purge horizon (503 unavailable:
// it was not taken, and a retry is stamped above the horizon).
var errBelowHorizon = errors.New("stamped below the purge horizon")

// leaveHold is how long a node that handed its writes over keeps refusing eventual writes while
// it waits for its removal; if the removal does not come, it takes writes again. It outlasts
// removalTimeout, so a removal still under way never finds the node taking writes again.
const leaveHold = 2 * time.Minute

// removalTimeout bounds one removal on the leader (hand-over, CmdRemove, the Raft change).
const removalTimeout = time.Minute

// errMemberRemoved answers a question about a removed member (410 removed).
var errMemberRemoved = errors.New("removed from the cluster")

// removedMarker is the file a node leaves in its data directory when its peers told it that it
// was removed: its own committed state never will, since the leader sends it no more log. New
// refuses to start while the file is there.
const removedMarker = "REMOVED"

// askPeersAfter is how long a node goes without knowing a leader before it asks its peers
// whether it was removed while it was down (and again at this interval while it still knows
// none).
const askPeersAfter = 5 * time.Second

// memberCache is the committed members table and the removed ids, re-read together only when
// the store's members generation moves.
type memberCache struct {
	members map[string]replication.Member
	removed map[string]bool
	at      uint64 // store.MembersGeneration they were read at; members is nil until first read
}

func (n *Node) memberState() memberCache {
	gen := n.store.MembersGeneration()
	n.membersMu.Lock()
	defer n.membersMu.Unlock()
	if n.memberCache.members != nil && n.memberCache.at == gen {
		return n.memberCache
	}
	m, err := n.store.Members()
	if err != nil {
		n.logger.Error("read members", "err", err)
		return n.memberCache
	}
	removed, err := n.store.Removed()
	if err != nil {
		n.logger.Error("read removed members", "err", err)
		return n.memberCache
	}
	n.memberCache = memberCache{members: m, removed: removed, at: gen}
	return n.memberCache
}

// memberTable returns the committed members table, re-read only when it changed (it is read on
// every forwarded request; the applied index moves with every write).
func (n *Node) memberTable() map[string]replication.Member { return n.memberState().members }

// removedMembers returns the ids removed from the cluster that have not joined again.
func (n *Node) removedMembers() map[string]bool { return n.memberState().removed }

// Removed is closed once this node learns it has been removed from the cluster; Serve then
// shuts the node down and returns ErrRemoved.
func (n *Node) Removed() <-chan struct{} { return n.removed }

// confirmRemoval is called while this node's committed state says it was removed. That alone
// does not decide: a node joining again under the id replays the log from its start and passes
// its own old removal before the entry that adds it back. The leader's current state does: if
// the leader says 410, Removed is closed and confirmRemoval reports true.
func (n *Node) confirmRemoval(ctx context.Context) bool {
	id, addr := n.leaderHTTP()
	if id == "" || id == n.cfg.ID || addr == "" {
		return false // no leader to ask: askPeersIfRemoved takes over once none is known for a while
	}
	if n.askRemoved(ctx, addr) {
		n.stopRemoved("the log, confirmed by the leader " + id)
		return true
	}
	return false
}

// askRemoved asks the member at addr whether this node was removed; only a clear 410 says yes.
func (n *Node) askRemoved(ctx context.Context, addr string) bool {
	status, applied, ok := n.selfAsSeenBy(ctx, addr)
	// A peer behind this node may not have applied a later re-registration of this id. This
	// node's commit index, not its applied one: a node replaying the log after joining again
	// has applied little, and a peer that missed the re-registration must not convince it.
	return ok && status == http.StatusGone && applied >= max(n.store.AppliedIndex(), n.raft.CommitIndex())
}

// selfAsSeenBy asks the member at addr for this node's member entry: the HTTP status and the
// applied index it answered from; ok is false when no answer came.
func (n *Node) selfAsSeenBy(ctx context.Context, addr string) (status int, applied uint64, ok bool) {
	rctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, "http://"+addr+"/v1/cluster/members/"+url.PathEscape(n.cfg.ID), nil)
	if err != nil {
		return 0, 0, false
	}
	resp, err := n.peerClient.Do(req)
	if err != nil {
		return 0, 0, false
	}
	resp.Body.Close()
	applied, _ = strconv.ParseUint(resp.Header.Get(client.HeaderAppliedIndex), 10, 64)
	return resp.StatusCode, applied, true
}

func (n *Node) stopRemoved(source string) {
	n.removedOnce.Do(func() {
		n.logger.Error("this node was removed from the cluster: stopping; wipe its data directory and start it with --join to add it again", "learned_from", source)
		close(n.removed)
	})
}

// askPeersIfRemoved asks the members this node knows of whether the cluster removed it (a node
// that was down when it was removed learns it no other way). One that says so is believed: it
// answers from committed state. The answer is kept in the data directory (removedMarker).
func (n *Node) askPeersIfRemoved(ctx context.Context) bool {
	for id, m := range n.memberTable() {
		if id != n.cfg.ID && m.HTTPAddr != "" && n.askRemoved(ctx, m.HTTPAddr) {
			n.learnRemoved("member " + id + " said so")
			return true
		}
	}
	return false
}

// learnRemoved stops a node that another member said was removed, and keeps the news in its
// data directory (removedMarker) so that it refuses to start again.
func (n *Node) learnRemoved(source string) {
	path := filepath.Join(n.cfg.DataDir, removedMarker)
	note := fmt.Sprintf("%s; learned at %s", source, time.Now().UTC().Format(time.RFC3339))
	if err := durable.WriteFile(path, []byte(note+"\n")); err != nil {
		n.logger.Warn("cannot record the removal", "path", path, "err", err)
	}
	n.stopRemoved(source)
}

// closeRemoved stops a node that was removed: it stops taking requests, hands the eventual
// writes it holds and that are not known to be committed to the leader, whoever took them
// (after its removal it applies no more log, so it cannot tell which of them are), then shuts
// down.
func (n *Node) closeRemoved() error {
	if n.server != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		n.server.Shutdown(sctx)
		cancel()
	}
	n.stamps.setClosed(true)
	ctx, cancel := context.WithTimeout(context.Background(), handOverWait)
	n.waitStampsIdle(ctx) // on timeout, hand over what is durable anyway
	handed, herr := n.handOver(ctx)
	cancel()
	if err := n.Close(); err != nil {
		n.logger.Warn("closing after removal", "err", err)
	}
	if herr != nil {
		n.logger.Error("removed, but not every uncommitted eventual write was handed over: keep this data directory", "handed_over", handed, "err", herr)
		return fmt.Errorf("%s: %w, but %w (%d handed over): %v", n.cfg.ID, ErrRemoved, ErrWritesStranded, handed, herr)
	}
	n.logger.Info("removed: uncommitted eventual writes handed over", "writes", handed)
	return fmt.Errorf("%s: %w", n.cfg.ID, ErrRemoved)
}

// waitStampsIdle waits until no eventual write stamped here is still on its way to durability
// (stamping is closed first, so none starts), and reports false if ctx ended first.
func (n *Node) waitStampsIdle(ctx context.Context) bool {
	for !n.stamps.idle() {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(5 * time.Millisecond):
		}
	}
	return true
}

// handOver submits every tentative write this node holds to the leader, in committer batches,
// and returns how many it handed over: its own, and those gossip brought it from other nodes.
// A peer's write may be on no other running node (the peer is down, and this node's committer
// would have submitted it as a dead peer's only after DeadCommitDelay); once this node stops,
// it would be lost if that peer were removed while down. Re-submitting a committed write is
// harmless: the log keeps the newer version of each key.
func (n *Node) handOver(ctx context.Context) (int, error) {
	// One committer batch read at a time: the layer may hold a backlog of large values (a node
	// cut off from the leader for a while), too much to read into memory at once.
	handed := map[writeID]bool{}
	for {
		batch, sum, err := n.store.PendingTentative(func(key []byte, v consistency.Version) bool {
			return !handed[writeID{key: string(key), version: v}]
		}, maxCommitBatch, n.commitBytes())
		if err != nil || len(batch) == 0 {
			return len(handed), err
		}
		cmd := replication.Command{Type: replication.CmdEventualBatch, Reporter: n.cfg.ID, Writes: batch}
		if err := n.submitToAnyLeader(ctx, cmd.Encode()); err != nil {
			return len(handed), err
		}
		for _, w := range batch {
			handed[writeKey(w)] = true
		}
		if sum.Left == 0 {
			return len(handed), nil
		}
	}
}

// submitToAnyLeader posts a committer batch to whichever member leads, trying the leader this
// node knows first, then every member, until one takes it or ctx ends.
func (n *Node) submitToAnyLeader(ctx context.Context, body []byte) error {
	var last error
	for {
		var addrs []string
		if _, addr := n.leaderHTTP(); addr != "" {
			addrs = append(addrs, addr)
		}
		for id, m := range n.memberTable() {
			if id != n.cfg.ID && m.HTTPAddr != "" {
				addrs = append(addrs, m.HTTPAddr)
			}
		}
		for _, addr := range addrs {
			if last = n.postPeer(ctx, addr, "/v1/internal/commit", body, true); last == nil {
				return nil
			}
		}
		if last == nil {
			last = errors.New("no member to hand the writes to")
		}
		select {
		case <-ctx.Done():
			return last
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// checkRemovedMarker is New's refusal to start a node its peers said was removed.
func checkRemovedMarker(cfg Config) error {
	if note, err := os.ReadFile(filepath.Join(cfg.DataDir, removedMarker)); err == nil {
		return fmt.Errorf("%s: %w (%s): wipe its data directory (%s) and start it with --join to add it again",
			cfg.ID, ErrRemoved, strings.TrimSpace(string(note)), cfg.DataDir)
	}
	return nil
}

// handleMember is GET /v1/cluster/members/{id}: the member as this node's committed state has
// it: 200 with its addresses, 410 removed, 404 unknown.
func (n *Node) handleMember(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	// The applied index lets the asker tell a peer that is behind it (and may not have seen a
	// later re-registration of the id) from one that knows more.
	w.Header().Set(client.HeaderAppliedIndex, strconv.FormatUint(n.store.AppliedIndex(), 10))
	st := n.memberState()
	if m, ok := st.members[id]; ok {
		writeJSON(w, http.StatusOK, joinRequest(m))
		return
	}
	if st.removed[id] {
		writeError(w, fmt.Errorf("%s: %w", id, errMemberRemoved))
		return
	}
	writeError(w, fmt.Errorf("%w: %s is not in the cluster", errNoMember, id))
}

// removeMember (leader only) takes id out of the cluster: first out of the committed members
// table (its watermark goes, so purging stops waiting for it, and it is marked removed so a live
// copy stops), then out of the Raft configuration. Both steps are idempotent, so a removal that
// failed half-way is finished by asking again. The leader does not remove itself: it hands
// leadership over and answers ErrNotLeader, and the request goes on to the new leader.
func (n *Node) removeMember(ctx context.Context, id string) error {
	if id == "" {
		return fmt.Errorf("%w: which member? give its id", replication.ErrInvalid)
	}
	n.membershipMu.Lock()
	defer n.membershipMu.Unlock()
	if err := n.applyCommitted(ctx); err != nil {
		return err
	}
	servers, err := n.raft.Servers()
	if err != nil {
		return err
	}
	inRaft := false
	for _, s := range servers {
		inRaft = inRaft || s.ID == id
	}
	_, recorded := n.memberTable()[id]
	if !inRaft && !recorded {
		if n.removedMembers()[id] {
			return nil // removed already: asking again (after a lost answer, say) is not an error
		}
		return fmt.Errorf("%w: %s is not in the cluster", errNoMember, id)
	}
	if inRaft && len(servers) == 1 {
		return fmt.Errorf("%w: %s is the cluster's last member", replication.ErrInvalid, id)
	}
	if inRaft {
		if err := n.checkQuorumWithout(ctx, servers, id); err != nil {
			return err
		}
	}
	if id == n.cfg.ID {
		n.logger.Info("asked to remove this node, the leader: handing leadership over first")
		if err := n.raft.TransferLeadership(); err != nil {
			return fmt.Errorf("%w: could not hand leadership over before removing %s: %v", replication.ErrNoLeader, id, err)
		}
		return &replication.NotLeaderError{}
	}
	httpAddr := n.memberTable()[id].HTTPAddr
	if err := n.askToLeave(ctx, id, httpAddr); err != nil {
		return err
	}
	res, err := n.propose(ctx, &replication.Command{Type: replication.CmdRemove, Member: replication.Member{ID: id}})
	if err != nil {
		return err
	}
	n.awaitPeerApplied(ctx, id, httpAddr, res.Index)
	if inRaft {
		if err := n.raft.RemoveServer(ctx, id); err != nil {
			return err
		}
	}
	return nil
}

// applyCommitted waits, on the leader, until its state machine holds everything committed before
// the call. Joins and removals decide from the members table and the removed marks, and a leader
// may lag its log: one that just took over applies what its predecessors committed only after
// its election, and a proposal of its own whose deadline ran out may still be applied. Deciding
// from that state would let a removed id join again from old data (its removal not applied yet),
// or remove a member whose registration it has not applied without asking it to hand its writes
// over.
func (n *Node) applyCommitted(ctx context.Context) error {
	index, err := n.raft.ReadIndex(ctx)
	if err != nil {
		return err
	}
	return n.raft.WaitApplied(ctx, index)
}

// errUnsafeRemoval refuses a removal that would leave the cluster without a reachable quorum
// (503 unavailable).
var errUnsafeRemoval = errors.New("removal refused")

// checkQuorumWithout refuses to remove id when the voters left would not have a quorum that
// answers now (as etcd's strict reconfiguration check does): the removal could commit, and the
// cluster then stop taking strong writes until the missing voters come back.
func (n *Node) checkQuorumWithout(ctx context.Context, servers []strong.Server, id string) error {
	var left, up int
	var down []string
	for _, s := range servers {
		if s.ID == id || s.Suffrage != "voter" {
			continue
		}
		left++
		if s.ID == n.cfg.ID {
			up++
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, time.Second)
		ns := n.peerStatus(sctx, client.NodeStatus{ID: s.ID, HTTP: n.memberTable()[s.ID].HTTPAddr})
		cancel()
		if ns.AppliedIndex > 0 { // it answered with its own status
			up++
		} else {
			down = append(down, s.ID)
		}
	}
	if need := left/2 + 1; up < need {
		return fmt.Errorf("%w: without %s, %d of the %d voters left answer (%s not), fewer than the %d a quorum needs: bring them back first",
			errUnsafeRemoval, id, up, left, strings.Join(down, ", "), need)
	}
	return nil
}

// askToLeave has a running member hand its uncommitted eventual writes over before the removal
// is proposed: once its watermark is gone, purging may pass writes it still holds, and the log
// then refuses them as older than the purge horizon. A member that cannot be reached is down,
// and the writes only it held go with its disk; one that answers but cannot hand them over
// stops the removal.
func (n *Node) askToLeave(ctx context.Context, id, httpAddr string) error {
	if httpAddr == "" {
		return nil
	}
	if n.goneInGossip(id) {
		return nil // down: what only it held goes with it (docs/deploy.md)
	}
	lctx, cancel := context.WithTimeout(ctx, handOverWait)
	defer cancel()
	// The id goes along: the address may be another node's now (a recycled IP), which must not
	// stop taking writes for this removal, nor pass for this member having handed its over.
	err := n.postPeer(lctx, httpAddr, "/v1/internal/leave?id="+url.QueryEscape(id), nil, true)
	if err == nil {
		return nil
	}
	return fmt.Errorf("%w: %s could not hand its uncommitted eventual writes over (%v): try again", errUnsafeRemoval, id, err)
}

// goneInGossip reports whether gossip has had id dead or left for DeadCommitDelay: a member the
// leader cannot reach but gossip still sees alive may be cut off from the leader only, and still
// taking eventual writes.
func (n *Node) goneInGossip(id string) bool {
	for _, m := range n.gossip.Members() {
		if m.ID == id {
			return n.goneFor(m)
		}
	}
	return true // gossip never saw it, or has forgotten it
}

// goneFor reports whether gossip has had m dead or left for at least DeadCommitDelay.
func (n *Node) goneFor(m eventual.Member) bool {
	return (m.State == eventual.StateDead || m.State == eventual.StateLeft) && time.Since(m.Since) >= n.cfg.DeadCommitDelay
}

// handleLeave is POST /v1/internal/leave: the leader is about to remove this node. It stops
// taking eventual writes, waits for those under way, and hands every uncommitted one it holds
// to the leader (handOver). If no removal follows within leaveHold, it takes writes again.
func (n *Node) handleLeave(w http.ResponseWriter, r *http.Request) {
	if id := r.URL.Query().Get("id"); id != "" && id != n.cfg.ID { // older leaders send no id
		writeError(w, fmt.Errorf("%w: this is %s, asked to leave as %s", errNoMember, n.cfg.ID, id))
		return
	}
	n.stamps.setClosed(true)
	gen := n.leaves.Add(1)
	// Only the latest leave may reopen, and only after its hold, counted from the hand-over.
	defer func() { go n.reopenAfterLeave(gen) }()
	ctx, cancel := context.WithTimeout(r.Context(), handOverWait)
	defer cancel()
	if !n.waitStampsIdle(ctx) {
		writeError(w, fmt.Errorf("%w: eventual writes still under way", replication.ErrTimeout))
		return
	}
	handed, err := n.handOver(ctx)
	if err != nil {
		writeError(w, fmt.Errorf("handing over (%d done): %w", handed, err))
		return
	}
	n.logger.Info("leaving: uncommitted eventual writes handed over", "writes", handed)
	writeJSON(w, http.StatusOK, map[string]int{"writes": handed})
}

// finishRemovals (leader) takes out of the Raft configuration every server whose removal was
// committed: a removal cut short between CmdRemove and the Raft change (its deadline ran out,
// leadership moved) would otherwise leave a voter that never answers and blocks purging.
func (n *Node) finishRemovals(ctx context.Context) {
	if !n.raft.LeaderReady() || !n.membershipMu.TryLock() {
		return // not leading yet, or a join or removal is under way: next tick
	}
	defer n.membershipMu.Unlock()
	// The configuration first, then the marks: a fresh node joining under a removed id is
	// registered (its mark cleared) before it is added as a voter.
	servers, err := n.raft.Servers()
	if err != nil {
		return
	}
	removed := n.removedMembers()
	for _, s := range servers {
		if removed[s.ID] && s.ID != n.cfg.ID {
			if err := n.raft.RemoveServer(ctx, s.ID); err != nil {
				n.logger.Warn("finishing a removal", "id", s.ID, "err", err)
			} else {
				n.logger.Info("finished a removal cut short: out of the Raft configuration", "id", s.ID)
			}
		}
	}
}

// forgetRemovedPeers drops from gossip the removed members it has had dead or gone for
// DeadCommitDelay, once this node holds no uncommitted write they stamped (until then the
// committer submits those writes, as a dead peer's). Otherwise gossip would go on trying to
// rejoin their addresses for ever.
func (n *Node) forgetRemovedPeers() {
	removed := n.removedMembers()
	if len(removed) == 0 {
		return
	}
	var gone []string
	for _, m := range n.gossip.Members() {
		if removed[m.ID] && m.ID != n.cfg.ID && n.goneFor(m) {
			gone = append(gone, m.ID)
		}
	}
	if len(gone) == 0 {
		return
	}
	// One scan for them all (gossip lists every id ever removed as dead after a restart), reading
	// versions only: include records the origins held and decodes nothing.
	held := map[string]bool{}
	if _, _, err := n.store.PendingTentative(func(_ []byte, v consistency.Version) bool {
		held[v.Node] = true
		return false
	}, 0, 0); err != nil {
		return
	}
	for _, id := range gone {
		if !held[id] && n.gossip.Forget(id) {
			n.logger.Info("removed member forgotten by gossip", "id", id)
		}
	}
}

// reopenAfterLeave takes eventual writes again once leaveHold has passed after the hand-over of
// leave gen, no later leave came, and the leader confirms this node is still a member: a node
// removed but cut off before it learned so must not take writes its watermark no longer covers.
// It keeps asking until then, or until the node is removed or closed.
func (n *Node) reopenAfterLeave(gen uint64) {
	wait := leaveHold
	if n.cfg.leaveHold > 0 {
		wait = n.cfg.leaveHold
	}
	for {
		select {
		case <-n.removed:
			return
		case <-n.closed:
			return
		case <-time.After(wait):
		}
		if n.leaves.Load() != gen || n.removedMembers()[n.cfg.ID] {
			return
		}
		if n.leaderSaysMember() {
			n.logger.Warn("handed writes over for a removal that did not come: taking eventual writes again")
			n.stamps.setClosed(false)
			return
		}
		wait = 10 * time.Second
	}
}

// leaderSaysMember reports whether the leader answers 200 for this node's member entry.
func (n *Node) leaderSaysMember() bool {
	id, addr := n.leaderHTTP()
	if id == n.cfg.ID {
		return !n.removedMembers()[n.cfg.ID]
	}
	if addr == "" {
		return false
	}
	status, _, ok := n.selfAsSeenBy(context.Background(), addr)
	return ok && status == http.StatusOK
}

// removalNoticeWait bounds how long a removal waits for a live member to apply its own removal.
const removalNoticeWait = 3 * time.Second

// awaitPeerApplied gives a running member the time to apply the log up to index before it is
// taken out of the Raft configuration: after that the leader sends it nothing more, so it would
// never learn that the entry removing it was committed, and would sit outside the cluster
// instead of stopping. A member that does not answer is not waited for (it learns at restart
// that it cannot start, or stays outside; see docs/deploy.md).
func (n *Node) awaitPeerApplied(ctx context.Context, id, httpAddr string, index uint64) {
	if httpAddr == "" {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, removalNoticeWait)
	defer cancel()
	for {
		ns := n.peerStatus(ctx, client.NodeStatus{ID: id, HTTP: httpAddr})
		if ns.Health == "down" || ns.AppliedIndex >= index {
			return
		}
		select {
		case <-ctx.Done():
			n.logger.Warn("removing a member that has not applied its removal", "id", id, "index", index)
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// handleRemoveMember is DELETE /v1/cluster/members/{id}, served by the leader (forwarded there).
func (n *Node) handleRemoveMember(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	n.onLeaderWithin(w, r, nil, removalTimeout+10*time.Second, func(context.Context) error {
		// Its own deadline, detached from the request: the hand-over may take a while, and a
		// removal cut short between its steps leaves work for finishRemovals.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), removalTimeout)
		defer cancel()
		if err := n.removeMember(ctx, id); err != nil {
			if !errors.Is(err, replication.ErrNotLeader) {
				n.reqLogger(r).Warn("member removal failed", "id", id, "err", err)
			}
			return err
		}
		n.reqLogger(r).Info("member removed", "id", id)
		return nil
	})
}

// onLeader runs fn on the leader: here when this node leads, else by forwarding the request
// (with body) to it, until one of them answers or the leader wait runs out. A success is
// answered {"status":"ok","leader":ID}.
func (n *Node) onLeader(w http.ResponseWriter, r *http.Request, body []byte, fn func(context.Context) error) {
	n.onLeaderWithin(w, r, body, n.cfg.LeaderWait, fn)
}

// onLeaderWithin is onLeader with its own bound on the whole exchange, forwarding included.
func (n *Node) onLeaderWithin(w http.ResponseWriter, r *http.Request, body []byte, wait time.Duration, fn func(context.Context) error) {
	ctx, cancel := context.WithTimeout(r.Context(), wait)
	defer cancel()
	for {
		if n.raft.IsLeader() {
			err := fn(ctx)
			if err == nil {
				writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "leader": n.cfg.ID})
				return
			}
			if !errors.Is(err, replication.ErrNotLeader) {
				writeError(w, err)
				return
			}
		}
		done, err := n.forwardToLeader(ctx, w, r, body)
		if done {
			return
		}
		if err != nil {
			writeError(w, err)
			return
		}
	}
}
