package node

import (
	"slices"
	"time"

	"github.com/dialkv/dialkv/client"
)

// defaultPurgeHeldAfter: a member whose last watermark report is older than this while tombstones wait
// is shown as holding purging back. Members report every second while tombstones wait, and a
// report's watermark is about the reporter's clock unless it still holds an old uncommitted
// write, so an older one means the member is away, cut off or holding old writes.
const defaultPurgeHeldAfter = 30 * time.Second

// purgeState is what holds purging of deleted keys back, as this node sees it.
type purgeState struct {
	pending int // committed tombstones waiting
	// blockedBy are the members purging cannot go on without: voters not yet in the members
	// table, and members that never reported a watermark.
	blockedBy []string
	// heldBy are the members whose last report is older than defaultPurgeHeldAfter while tombstones
	// wait, with the report's age: the purge horizon cannot pass them. Removing a member that
	// is gone for good frees it (kvctl member remove).
	heldBy map[string]time.Duration
}

func (n *Node) purgeState() (purgeState, error) {
	pending, reports, err := n.store.PurgeStatus()
	if err != nil {
		return purgeState{}, err
	}
	ps := purgeState{pending: pending}
	servers, err := n.raft.Servers()
	if err != nil {
		return purgeState{}, err
	}
	removed := n.removedMembers()
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
