package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/dialkv/dialkv/client"
	"github.com/dialkv/dialkv/replication/eventual"
)

// localStatus is this node's own line of the status table.
func (n *Node) localStatus() client.NodeStatus {
	leader, _ := n.raft.Leader()
	s := client.NodeStatus{
		ID:           n.cfg.ID,
		HTTP:         n.HTTPAddr(),
		Raft:         n.cfg.Raft.RaftAddr,
		Role:         roleName(n.raft.State()),
		AppliedIndex: n.store.AppliedIndex(),
		Term:         n.raft.Term(),
		Health:       "ok",
		Gossip:       string(eventual.StateAlive),
		Joining:      !n.joined.Load(),
	}
	backlog := n.backlog()
	s.Backlog = backlog.count
	if lc := n.raft.LastContact(); !n.raft.IsLeader() && !lc.IsZero() {
		s.LastContact = time.Since(lc).Round(time.Millisecond).String()
	}
	switch {
	case leader == "":
		s.Health, s.Reason = "degraded", "no leader known"
	case s.Joining:
		s.Health, s.Reason = "degraded", "joining: not yet caught up with its own registration, so refusing eventual writes"
	case !n.raft.IsLeader() && time.Since(n.raft.LastContact()) > 2*n.cfg.Raft.HeartbeatTimeout:
		s.Health, s.Reason = "degraded", "no recent contact with the leader"
	case n.raft.CommitIndex() > s.AppliedIndex+1000:
		s.Health, s.Reason = "degraded", fmt.Sprintf("applying: %d entries behind the commit index", n.raft.CommitIndex()-s.AppliedIndex)
	case n.diskErrors.Load() > 0 && time.Duration(monoNow()-n.lastDiskError.Load()) < time.Minute:
		s.Health, s.Reason = "degraded", fmt.Sprintf("disk errors: %d writes to the tentative layer failed, the last %v ago", n.diskErrors.Load(), time.Duration(monoNow()-n.lastDiskError.Load()).Round(time.Second))
	case backlog.oldestAge > backlogAlarm:
		s.Health, s.Reason = "degraded", fmt.Sprintf("backlog: %d eventual writes not committed, the oldest for %v", backlog.count, backlog.oldestAge.Round(time.Second))
	}
	return s
}

func roleName(state string) string {
	switch state {
	case "Leader":
		return "leader"
	case "Follower":
		return "follower"
	case "Candidate":
		return "candidate"
	}
	return "unknown"
}

// backlogAlarm is how old the oldest uncommitted eventual write may get before the node reports
// itself degraded (the committer should commit within a fraction of a second while a leader is
// reachable).
const backlogAlarm = 10 * time.Second

// handleStatus answers the cluster as this node sees it: its own state, plus each member's own
// report (asked in parallel, briefly) so that down members show as down. ?local=true skips the
// fan-out.
func (n *Node) handleStatus(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Access-Control-Allow-Origin", "*")
	leader, _ := n.raft.Leader()
	resp := client.StatusResponse{
		Node:         n.cfg.ID,
		Leader:       leader,
		Term:         n.raft.Term(),
		CommitIndex:  n.raft.CommitIndex(),
		AppliedIndex: n.store.AppliedIndex(),
	}
	self := n.localStatus()
	if r.URL.Query().Get("local") == "true" {
		resp.Nodes = []client.NodeStatus{self}
		writeJSON(w, http.StatusOK, resp)
		return
	}
	servers, err := n.raft.Servers()
	if err != nil {
		writeError(w, err)
		return
	}
	members := n.memberTable()
	gossipState := map[string]eventual.Member{}
	for _, m := range n.gossip.Members() {
		gossipState[m.ID] = m
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	ctx, cancel := context.WithTimeout(r.Context(), 500*time.Millisecond)
	defer cancel()
	for _, srv := range servers {
		if srv.ID == n.cfg.ID {
			self.Suffrage = srv.Suffrage
			mu.Lock() // peers' answers, from earlier in the list, may be arriving
			resp.Nodes = append(resp.Nodes, self)
			mu.Unlock()
			continue
		}
		ns := client.NodeStatus{ID: srv.ID, Raft: srv.Addr, HTTP: members[srv.ID].HTTPAddr, Suffrage: srv.Suffrage, Role: "unknown"}
		if srv.ID == leader {
			ns.Role = "leader"
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ns = n.peerStatus(ctx, ns)
			if g, ok := gossipState[ns.ID]; ok {
				ns.Gossip = string(g.State)
				if g.State == eventual.StateSuspect && ns.Health == "ok" {
					ns.Health, ns.Reason = "degraded", "suspect in gossip"
				}
			} else {
				ns.Gossip = "unknown"
			}
			mu.Lock()
			resp.Nodes = append(resp.Nodes, ns)
			mu.Unlock()
		}()
	}
	wg.Wait()
	sort.Slice(resp.Nodes, func(i, j int) bool { return resp.Nodes[i].ID < resp.Nodes[j].ID })
	if ps, err := n.purgeState(); err == nil {
		resp.Purge = ps.status()
	}
	writeJSON(w, http.StatusOK, resp)
}

// peerStatus fills ns from the member's own local status, or marks it down (also when another
// id answers at its address). With no ns.ID, whoever answers there is taken.
func (n *Node) peerStatus(ctx context.Context, ns client.NodeStatus) client.NodeStatus {
	if ns.HTTP == "" {
		ns.Health, ns.Reason = "down", "address not yet registered"
		return ns
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+ns.HTTP+"/v1/status?local=true", nil)
	if err != nil {
		ns.Health, ns.Reason = "down", err.Error()
		return ns
	}
	resp, err := n.peerClient.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || os.IsTimeout(err) {
			// Reachable but silent: paused, overloaded or partitioned, not (yet) known dead.
			ns.Health, ns.Reason = "degraded", "not answering within 500ms (paused, overloaded or cut off?)"
		} else {
			ns.Health, ns.Reason = "down", "unreachable: "+rootCause(err).Error()
		}
		return ns
	}
	defer resp.Body.Close()
	var sr client.StatusResponse
	if err := json.NewDecoder(resp.Body).Decode(&sr); err != nil || len(sr.Nodes) != 1 {
		ns.Health, ns.Reason = "down", fmt.Sprintf("bad status answer (%d)", resp.StatusCode)
		return ns
	}
	peer := sr.Nodes[0]
	if ns.ID != "" && peer.ID != ns.ID {
		// Its address is another node's now (a recycled IP): that node's status is not its own.
		ns.Health, ns.Reason = "down", fmt.Sprintf("%s answers at its address %s", peer.ID, ns.HTTP)
		return ns
	}
	peer.Suffrage = ns.Suffrage
	return peer
}

// rootCause strips the URL and operation wrappers of a transport error ("connect: connection
// refused" rather than the whole request line), for status reasons meant for people.
func rootCause(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return fmt.Errorf("%s: %w", op.Op, op.Err)
	}
	return err
}

// handleReady answers 200 when this node knows a leader, is applying in step with it, and (once
// joined) takes eventual writes.
func (n *Node) handleReady(w http.ResponseWriter, r *http.Request) {
	s := n.localStatus()
	if s.Health != "ok" {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": s.Health, "reason": s.Reason, "node": n.cfg.ID})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "node": n.cfg.ID})
}
