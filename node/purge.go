package node

import (
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/dialkv/dialkv/client"
	"github.com/dialkv/dialkv/consistency"
)

// defaultPurgeHeldAfter: a member whose last reported watermark is older than this while tombstones wait
// is shown as holding purging back. Members report every second while tombstones wait, and a
// report's watermark is about the reporter's clock unless it still holds an old uncommitted
// write, so an older one means the member is away, cut off or holding old writes.
const defaultPurgeHeldAfter = 30 * time.Second

// purgeState is what holds purging of deleted keys back, as this node sees it.
type purgeState struct {
	pending int // committed tombstones waiting
	// blockedBy are the members purging cannot go on without: voters not yet in the members
	// table, members that never reported a watermark, and members that have not reported
	// since a member was removed (reportsSinceRemoval).
	blockedBy []string
	// heldBy are the members whose reported watermark is older than defaultPurgeHeldAfter while
	// tombstones wait, with the watermark's age: the purge horizon cannot pass them. Removing a
	// member that is gone for good frees it (kvctl member remove).
	heldBy map[string]time.Duration
}

func (n *Node) purgeState() (purgeState, error) {
	// The members before the reports: a removal applied in between moves the generation, which
	// the next look sees, while reports read before it could pass for fresh ones.
	members := n.memberState()
	removed := members.removed
	pending, reports, err := n.store.PurgeStatus()
	if err != nil {
		return purgeState{}, err
	}
	ps := purgeState{pending: pending}
	servers, err := n.raft.Servers()
	if err != nil {
		return purgeState{}, err
	}
	if due := n.sinceRemoval.due(members.at, removed, reports); pending > 0 {
		// Members report only while tombstones wait: until then, none is late.
		ps.blockedBy = due
	}
	for _, s := range servers {
		// A removed voter is on its way out of the configuration (finishRemovals): its
		// removal already dropped it from what purging waits for.
		if _, ok := reports[s.ID]; !ok && s.Suffrage == "voter" && !removed[s.ID] {
			ps.blockedBy = append(ps.blockedBy, s.ID)
		}
	}
	heldAfter := n.cfg.purgeHeldAfter
	if heldAfter == 0 {
		heldAfter = defaultPurgeHeldAfter
	}
	now := n.faults.Now()
	for id, v := range reports {
		switch age := now.Sub(time.Unix(0, v.Wall)); {
		case v.IsZero():
			ps.blockedBy = append(ps.blockedBy, id)
		case pending > 0 && age > heldAfter:
			if ps.heldBy == nil {
				ps.heldBy = map[string]time.Duration{}
			}
			ps.heldBy[id] = age
		}
	}
	slices.Sort(ps.blockedBy)
	return ps, nil
}

// reportsSinceRemoval holds purging back, once this node sees a member removed, until every
// member has reported a watermark newer than the one it held then. It goes by the members
// table's generation, which moves with every change of it, so that a removal is not missed
// when the same id joined again and was removed again between two looks; any change in a
// cluster that has had a removal (a join, say) costs one round of reports. The removed member's watermark
// no longer counts, and it covered the writes it took; those gossip brought to others are then
// covered only by the others' reports, but a report can predate the write: reports only move
// forward (a later one, lower because of a write received since, is ignored), and a member cut
// off from the leader sends none. A purge past such a write would make the log refuse it when
// its holder submits it: an acknowledged write lost. A report that moves forward after the
// removal covers every write its member holds. The baseline is this node's own (a node that
// starts or takes leadership counts every removal it finds as new): it only decides when the
// leader proposes a purge (proposePurge), which the state machine still judges from committed
// state alone.
type reportsSinceRemoval struct {
	mu      sync.Mutex
	seen    bool                           // whether gen is set
	gen     uint64                         // the members generation of the last call
	waiting map[string]consistency.Version // members to report past these watermarks
}

// due returns the members that have not reported past their watermark of the last removal
// seen, given the members table's generation, the removed ids and the members' watermarks
// (zero: none reported yet).
func (r *reportsSinceRemoval) due(gen uint64, removed map[string]bool, reports map[string]consistency.Version) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(removed) > 0 && (!r.seen || gen != r.gen) {
		r.waiting = maps.Clone(reports)
	}
	r.seen, r.gen = true, gen
	var due []string
	for id, then := range r.waiting {
		now, member := reports[id]
		// A member without a report blocks purging anyway, and its first report is fresh.
		if !member || then.IsZero() || now.IsZero() || now.Newer(then) {
			delete(r.waiting, id)
			continue
		}
		due = append(due, id)
	}
	return due
}

// waitedFor returns each member purging waits for once, sorted: one can be in blockedBy and
// heldBy both (no report since a removal, and an old watermark), and a metric sample named twice
// makes the Prometheus handler refuse the whole scrape.
func (ps purgeState) waitedFor() []string {
	ids := slices.Clone(ps.blockedBy)
	for id := range ps.heldBy {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

// status is the purge state as GET /v1/status shows it (nil when nothing waits).
func (ps purgeState) status() *client.PurgeStatus {
	if ps.pending == 0 {
		return nil
	}
	st := &client.PurgeStatus{PendingTombstones: ps.pending, BlockedBy: ps.blockedBy}
	for id, age := range ps.heldBy {
		if st.HeldBackBy == nil {
			st.HeldBackBy = map[string]string{}
		}
		st.HeldBackBy[id] = age.Round(time.Second).String()
	}
	return st
}
