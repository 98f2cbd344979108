package eventual

import (
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// memberTable is the engine's own view of membership. It is filled from memberlist's event
// callbacks, which run under memberlist's node lock: the only place a *memberlist.Node may be
// read, since memberlist rewrites those structs in place (reading what Members() returns races,
// memberlist #250, #306). It also outlives memberlist's memory: reaped members stay as dead.
//
// Lock order: never call into memberlist while holding mu (the callbacks take mu while memberlist
// holds its own lock).
type memberTable struct {
	self string
	now  func() time.Time

	mu   sync.Mutex
	byID map[string]*Member
	// nodes holds, per member, its name and address as memberlist sends to them (the eager
	// push). A node is never modified once stored, only replaced, so it may be used unlocked.
	nodes map[string]*memberlist.Node
	// live counts alive and suspect members, self included: the transmit queue's cluster size.
	live atomic.Int64
}

func newMemberTable(self string) *memberTable {
	return &memberTable{self: self, now: time.Now, byID: map[string]*Member{}, nodes: map[string]*memberlist.Node{}}
}

// observe records what a callback reported about n, in state. It copies n's fields. A member
// reported gone is left, not dead, if its metadata announced a graceful leave.
func (t *memberTable) observe(n *memberlist.Node, state MemberState) (changed bool, m Member) {
	gossipAddr := net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port)))
	meta, metaErr := decodeMeta(n.Meta)
	if state == StateDead && metaErr == nil && meta.Leaving {
		state = StateLeft
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	cur, ok := t.byID[n.Name]
	if !ok {
		cur = &Member{ID: n.Name}
		t.byID[n.Name] = cur
	}
	cur.GossipAddr = gossipAddr
	if old := t.nodes[n.Name]; old == nil || !old.Addr.Equal(n.Addr) || old.Port != n.Port {
		t.nodes[n.Name] = &memberlist.Node{Name: n.Name, Addr: slices.Clone(n.Addr), Port: n.Port}
	}
	if metaErr == nil {
		cur.HTTPAddr, cur.RaftAddr = meta.HTTPAddr, meta.RaftAddr
	}
	changed = t.setStateLocked(cur, state)
	return changed, *cur
}

// remember lists a member the node knows of from elsewhere (Config.Known) as dead from now,
// unless memberlist has reported it already.
func (t *memberTable) remember(id, gossipAddr string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if id == t.self || t.byID[id] != nil {
		return
	}
	t.byID[id] = &Member{ID: id, GossipAddr: gossipAddr, State: StateDead, Since: t.now()}
}

// setStateLocked moves m to state, stamping Since on a change.
func (t *memberTable) setStateLocked(m *Member, state MemberState) bool {
	if m.State == state {
		return false
	}
	wasLive, isLive := isLive(m.State), isLive(state)
	m.State, m.Since = state, t.now()
	switch {
	case isLive && !wasLive:
		t.live.Add(1)
	case wasLive && !isLive:
		t.live.Add(-1)
	}
	return true
}

func isLive(s MemberState) bool { return s == StateAlive || s == StateSuspect }

// suspect marks an alive member suspect (this node's probes of it failed). Dead and left members
// stay as they are: the log line that reports the suspicion may trail the death.
func (t *memberTable) suspect(id string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	m, ok := t.byID[id]
	if !ok || m.State != StateAlive || id == t.self {
		return false
	}
	return t.setStateLocked(m, StateSuspect)
}

// answered clears a suspicion: the member answered a probe.
func (t *memberTable) answered(id string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	m, ok := t.byID[id]
	if !ok || m.State != StateSuspect {
		return false
	}
	return t.setStateLocked(m, StateAlive)
}

// setSelfState records this node's own state (left, on shutdown).
func (t *memberTable) setSelfState(state MemberState) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if m, ok := t.byID[t.self]; ok {
		t.setStateLocked(m, state)
	}
}

// forget drops a member that is neither alive nor suspect, nor this node.
func (t *memberTable) forget(id string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	m, ok := t.byID[id]
	if !ok || id == t.self || isLive(m.State) {
		return false
	}
	delete(t.byID, id)
	delete(t.nodes, id)
	return true
}

// list returns a copy of every member, sorted by id.
func (t *memberTable) list() []Member {
	t.mu.Lock()
	out := make([]Member, 0, len(t.byID))
	for _, m := range t.byID {
		out = append(out, *m)
	}
	t.mu.Unlock()
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// idByGossipAddr and idByHTTPAddr map an address to the member listening there ("" if none).
func (t *memberTable) idByGossipAddr(addr string) string {
	return t.idBy(func(m Member) bool { return m.GossipAddr == addr })
}

func (t *memberTable) idByHTTPAddr(addr string) string {
	return t.idBy(func(m Member) bool { return m.HTTPAddr == addr })
}

func (t *memberTable) idBy(match func(Member) bool) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	for id, m := range t.byID {
		if match(*m) {
			return id
		}
	}
	return ""
}

func (t *memberTable) get(id string) (Member, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	m, ok := t.byID[id]
	if !ok {
		return Member{}, false
	}
	return *m, true
}

// liveCount is the number of alive and suspect members, at least 1.
func (t *memberTable) liveCount() int {
	return max(1, int(t.live.Load()))
}

// alivePeers returns the members other than this node that are alive, as memberlist nodes to
// send to, and how many members other than this node are live (alive or suspect).
func (t *memberTable) alivePeers() (peers []*memberlist.Node, live int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	peers = make([]*memberlist.Node, 0, len(t.byID))
	for id, m := range t.byID {
		if id == t.self || !isLive(m.State) {
			continue
		}
		live++
		if n := t.nodes[id]; n != nil && m.State == StateAlive {
			peers = append(peers, n)
		}
	}
	return peers, live
}

// liveAmong reports whether every live (alive or suspect) member other than this node and except
// is among ids.
func (t *memberTable) liveAmong(ids []string, except string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	for id, m := range t.byID {
		if id != t.self && id != except && isLive(m.State) && !slices.Contains(ids, id) {
			return false
		}
	}
	return true
}

// randomPeer picks an alive member other than self that publishes an HTTP address.
func (t *memberTable) randomPeer() (Member, bool) {
	var peers []Member
	for _, m := range t.list() {
		if m.ID != t.self && m.State == StateAlive && m.HTTPAddr != "" {
			peers = append(peers, m)
		}
	}
	if len(peers) == 0 {
		return Member{}, false
	}
	return peers[rand.IntN(len(peers))], true
}
