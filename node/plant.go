package node

import (
	"context"
	"time"

	"github.com/dialkv/dialkv/consistency"
	"github.com/dialkv/dialkv/replication"
)

// The node's halves of bugs planted on purpose (internal/plant). Their call sites are guarded by
// switches that are the constant false in a normal build, so this code never runs there; a
// plantbugs build runs it when DIALKV_PLANT names the bug, to show that the partition tests
// catch it (kvjepsen selftest).

// lateStoreDelay is how long after its acknowledgement an eventual write of the planted bug
// eventual-ack-early is stored and gossiped.
const lateStoreDelay = time.Second

// storeLate is the planted bug eventual-ack-early: the write, acknowledged already, is stored in
// the tentative layer and gossiped only lateStoreDelay later, so a SIGKILL meanwhile loses it.
func (n *Node) storeLate(key string, val consistency.Value) {
	time.AfterFunc(lateStoreDelay, func() {
		defer n.stamps.done(val.Version)
		select {
		case <-n.closed:
			return
		default:
		}
		stored, err := n.store.MergeTentative([]replication.Write{{Key: key, Value: val}})
		n.pending.addAccepted(stored, time.Now())
		if err == nil {
			n.gossip.Broadcast(stored)
		}
	})
}

// ackUncommitted is the planted bug strong-ack-early: the leader hands an unconditional write to
// Raft and answers at once, with the version its stamp would give it, without waiting for the
// commit.
func (n *Node) ackUncommitted(cmd replication.Command) replication.Result {
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), n.cfg.LeaderWait)
		defer cancel()
		_, _ = n.propose(ctx, &cmd)
	}()
	return replication.Result{Version: cmd.Stamp, Existed: true, Index: n.store.AppliedIndex()}
}
