package node

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/dialkv/dialkv/client"

	"github.com/dialkv/dialkv/replication"
)

// ErrRemoved is what Serve returns once this node has been removed from the cluster, and what
// New returns for a data directory whose node was removed: such a node must not take writes or
// re-register itself. Wiping the data directory and joining again brings the id back.
var ErrRemoved = errors.New("removed from the cluster")

// errNoMember is a removal of an id the cluster does not know (404 not_found).
var errNoMember = errors.New("no such member")

// memberCache is the committed members table and the removed ids, re-read together only when
// the store's members generation moves.
type memberCache struct {
	members map[string]replication.Member
	removed map[string]bool
	at      uint64 // store.MembersGeneration they were read at
	valid   bool
}

func (n *Node) memberState() memberCache {
	gen := n.store.MembersGeneration()
	n.membersMu.Lock()
	defer n.membersMu.Unlock()
	if n.memberCache.valid && n.memberCache.at == gen {
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
	n.memberCache = memberCache{members: m, removed: removed, at: gen, valid: true}
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

// noticeRemoval closes Removed if the committed state says this node was removed, and reports
// whether it did.
func (n *Node) noticeRemoval() bool {
	if !n.removedMembers()[n.cfg.ID] {
		return false
	}
	n.removedOnce.Do(func() {
		n.logger.Error("this node was removed from the cluster: stopping; wipe its data directory and start it with --join to add it again")
		close(n.removed)
	})
	return true
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
		return fmt.Errorf("%w: %s is not in the cluster (already removed?)", errNoMember, id)
	}
	if inRaft && len(servers) == 1 {
		return fmt.Errorf("%w: %s is the cluster's last member", replication.ErrInvalid, id)
	}
	if id == n.cfg.ID {
		n.logger.Info("asked to remove this node, the leader: handing leadership over first")
		if err := n.raft.TransferLeadership(); err != nil {
			return fmt.Errorf("%w: could not hand leadership over before removing %s: %v", replication.ErrNoLeader, id, err)
		}
		return &replication.NotLeaderError{}
	}
	httpAddr := n.memberTable()[id].HTTPAddr
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
	n.onLeader(w, r, nil, func(ctx context.Context) error {
		if err := n.removeMember(ctx, id); err != nil {
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
	ctx, cancel := context.WithTimeout(r.Context(), n.cfg.LeaderWait)
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
