package jepsen

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dialkv/dialkv/client"
)

// registerWorkload: strong reads, writes of unique values and compare-and-sets on a few keys
// at a time, each worker pinned to one node. Checked for linearizability (porcupine, per key)
// and durability.
type registerWorkload struct {
	keys *keyRing
}

func (r *registerWorkload) Name() string { return WorkloadRegister }

func (r *registerWorkload) Worker(ctx context.Context, w *Worker) {
	cl := w.env.pinned[w.Node.ID]
	last := map[string]lastRead{}
	for w.pace(ctx) {
		key := r.keys.pick(w.Rng)
		p := w.Rng.Float64()
		prev, known := last[key]
		switch {
		case p < 0.5:
			op := w.read(cl, key, client.ConsistencyStrong, 0, nil)
			if op.Type == TypeOK {
				last[key] = lastRead{value: op.Value, version: op.Version, absent: op.Absent}
			}
		case p < 0.75 || !known || (!prev.absent && prev.version == ""):
			w.write(cl, key, w.env.uniqueValue(), client.ConsistencyStrong, nil)
		default:
			w.cas(cl, key, prev, w.env.uniqueValue(), nil)
			delete(last, key)
		}
	}
}

func (r *registerWorkload) Check(in CheckInput) []CheckResult {
	return []CheckResult{
		CheckLinearizability(r.Name(), in.Ops, in.Linear),
		CheckDurability(CheckerDurability, r.Name(), in.Ops, in.Final),
	}
}

// mixedWorkload: strong reads and writes with eventual writes on the same keys. Each eventual
// write may take effect any time after it was issued, or never (superseded); the strong
// history must still be linearizable, and no acknowledged write (either level) may be lost.
// How often an eventual write won over a strong write made after it (skewed clocks) is measured.
type mixedWorkload struct {
	keys *keyRing
}

func (m *mixedWorkload) Name() string { return WorkloadMixed }

func (m *mixedWorkload) Worker(ctx context.Context, w *Worker) {
	cl := w.env.pinned[w.Node.ID]
	for w.pace(ctx) {
		key := m.keys.pick(w.Rng)
		switch p := w.Rng.Float64(); {
		case p < 0.45:
			w.read(cl, key, client.ConsistencyStrong, 0, nil)
		case p < 0.7:
			w.write(cl, key, w.env.uniqueValue(), client.ConsistencyStrong, nil)
		default:
			w.write(cl, key, w.env.uniqueValue(), client.ConsistencyEventual, nil)
		}
	}
}

func (m *mixedWorkload) Check(in CheckInput) []CheckResult {
	return []CheckResult{
		CheckLinearizability(m.Name(), in.Ops, in.Linear),
		CheckDurability(CheckerDurability, m.Name(), in.Ops, in.Final),
		CheckClockInversions(m.Name(), in.Ops),
	}
}

// setWorkload: every write creates a new key (set/W-N), alternately strong and eventual, at
// the worker's node. After healing, every acknowledged one must be there, and nothing else.
type setWorkload struct{}

func (s *setWorkload) Name() string { return WorkloadSet }

func (s *setWorkload) Worker(ctx context.Context, w *Worker) {
	cl := w.env.pinned[w.Node.ID]
	for n := 0; w.pace(ctx); n++ {
		level := client.ConsistencyStrong
		if n%2 == 1 {
			level = client.ConsistencyEventual
		}
		key := fmt.Sprintf("%s/%d-%d", s.Name(), w.Index, n)
		w.write(cl, key, key, level, nil)
	}
}

func (s *setWorkload) Check(in CheckInput) []CheckResult {
	return []CheckResult{CheckDurability(CheckerSet, s.Name(), in.Ops, in.Final)}
}

// sessionWorkload: each worker is one session (client.Session) that writes (strong or
// eventual) and reads at the session level on a few shared keys. The even-numbered workers roam:
// each operation starts at a random node and fails over; now and then one deletes or
// creates-if-absent, strongly, a key of its own it has just written eventually (deleteCycle).
// The odd-numbered ones stay at a home node for a while (sticky). Checked for read-your-writes
// (deletes included), monotonic reads and session-ordered writes (each acknowledged write newer
// than what the session wrote or read of the key before) per session, and durability
// (CheckDeletes for the keys that are deleted).
type sessionWorkload struct {
	keys int
}

func (s *sessionWorkload) Name() string { return WorkloadSession }

func (s *sessionWorkload) Worker(ctx context.Context, w *Worker) {
	sess := client.NewSession("")
	w.Session = w.Index + 1
	home := w.Node
	defer func() { w.Node = home }()
	if w.Index%2 == 1 {
		s.sticky(ctx, w, sess)
		return
	}
	for w.pace(ctx) {
		w.Node = w.env.nodes[w.Rng.IntN(len(w.env.nodes))]
		cl := w.env.roaming[w.Node.ID]
		if w.Rng.IntN(sessionBurstEvery) == 0 {
			s.burst(ctx, w, sess)
			continue
		}
		if w.Rng.IntN(sessionDeleteEvery) == 0 {
			s.deleteCycle(ctx, w, sess)
			continue
		}
		key := fmt.Sprintf("%s/k%d", s.Name(), w.Rng.IntN(s.keys))
		switch p := w.Rng.Float64(); {
		case p < 0.55:
			w.read(cl, key, client.ConsistencySession, 0, sess)
		case p < 0.8:
			w.write(cl, key, w.env.uniqueValue(), client.ConsistencyEventual, sess)
		default:
			w.write(cl, key, w.env.uniqueValue(), client.ConsistencyStrong, sess)
		}
	}
}

// A sticky session reads at its home node only (no failover) and moves home to the next node
// every sessionStint. A roaming session asks a node a partition cuts off only when its random
// choice lands there, and fails over from it when it refuses; a sticky session keeps asking its
// home and takes its answer, so when the home is cut off (or merely has not received the
// session's latest write yet) the home must wait, forward, or refuse, and a node that answers
// from what it holds instead shows up as a read-your-writes or monotonic-reads violation. Its
// operations:
//   - write elsewhere, read at home: a write (eventual, now and then strong) through another
//     node, then at once a session read of the key at home, which has the write only once
//     gossip or the log brought it;
//   - a session read of a shared key at home;
//   - an eventual write at home, which other nodes lack while home is cut off: the session's
//     reads elsewhere after the next move must wait for it.
const sessionStint = 7 * time.Second // not a multiple of the fault cycle, so homes meet faults at different moments

func (s *sessionWorkload) sticky(ctx context.Context, w *Worker, sess *client.Session) {
	at := slices.IndexFunc(w.env.nodes, func(n Node) bool { return n.ID == w.Node.ID })
	home, moved := w.env.nodes[max(at, 0)], time.Now()
	for n := max(at, 0); w.pace(ctx); {
		if time.Since(moved) >= sessionStint {
			n++
			home, moved = w.env.nodes[n%len(w.env.nodes)], time.Now()
		}
		key := fmt.Sprintf("%s/k%d", s.Name(), w.Rng.IntN(s.keys))
		switch p := w.Rng.Float64(); {
		case p < 0.4 && len(w.env.nodes) > 1:
			w.Node = home
			w.moveOffNode(home.ID)
			level := client.ConsistencyEventual
			if w.Rng.IntN(4) == 0 {
				level = client.ConsistencyStrong
			}
			w.write(w.env.roaming[w.Node.ID], key, w.env.uniqueValue(), level, sess)
			w.skipSlot() // at once: the point is to ask home before it has the write
			w.Node = home
			w.read(w.env.pinned[home.ID], key, client.ConsistencySession, 0, sess)
		case p < 0.8:
			w.Node = home
			w.read(w.env.pinned[home.ID], key, client.ConsistencySession, 0, sess)
		default:
			w.Node = home
			w.write(w.env.pinned[home.ID], key, w.env.uniqueValue(), client.ConsistencyEventual, sess)
		}
	}
}

// A session burst: eventual writes to sessionBurstKeys keys at one node (more than a token
// held before it kept every uncommitted version), then a session read of the first of them
// starting at another node. When a partition keeps the writes from that node, it must refuse
// the read or forward it, never answer from before the write.
const (
	sessionBurstEvery = 40 // about one operation in this many starts a burst
	sessionBurstKeys  = 20
)

func (s *sessionWorkload) burst(ctx context.Context, w *Worker, sess *client.Session) {
	origin := w.Node
	for j := 0; j < sessionBurstKeys; j++ {
		if j > 0 && !w.pace(ctx) {
			return
		}
		w.write(w.env.roaming[origin.ID], fmt.Sprintf("%s/b%d", s.Name(), j), w.env.uniqueValue(), client.ConsistencyEventual, sess)
	}
	if len(w.env.nodes) < 2 || !w.pace(ctx) {
		return
	}
	w.moveOffNode(origin.ID)
	w.read(w.env.roaming[w.Node.ID], s.Name()+"/b0", client.ConsistencySession, 0, sess)
}

// A delete cycle, on one of the session's own keys (session/dS-J: no other session touches
// them): an eventual write at one node, then at once, at another node, one of
//   - a strong delete and a session read (the key is left absent, so that the next cycle's
//     write goes to an absent key: a delete judged without that write then finds nothing);
//   - the same, then a strong create-if-absent and a session read;
//   - a strong create-if-absent, which must conflict with the write, and a session read;
//   - a session list of the session's own keys, which must show the write (lists read the
//     committed layer: the node commits the session's writes in the range first).
//
// The node taking the delete or the create may not have the write yet, and must still order its
// operation after it (docs/http-api.md, Sessions, last paragraph): judged without it, the
// delete finds nothing, writes no tombstone, and the write stands again once committed; the
// create succeeds over it.
const (
	sessionDeleteEvery = 12 // about one operation in this many starts a delete cycle
	sessionOwnKeys     = 2  // keys of its own per session
)

func (s *sessionWorkload) deleteCycle(ctx context.Context, w *Worker, sess *client.Session) {
	key := fmt.Sprintf("%s/d%d-%d", s.Name(), w.Session, w.Rng.IntN(sessionOwnKeys))
	origin := w.Node
	w.write(w.env.roaming[origin.ID], key, w.env.uniqueValue(), client.ConsistencyEventual, sess)
	// At once, not at the next slot: nodes hand their eventual writes for commit every 50 ms,
	// about a slot, and the delete or create must meet the write uncommitted to test anything.
	// The slot is still taken, so the rate stays the same.
	w.skipSlot()
	w.moveOffNode(origin.ID)
	variant := w.Rng.IntN(4)
	if variant == 3 {
		own := make([]string, sessionOwnKeys)
		for j := range own {
			own[j] = fmt.Sprintf("%s/d%d-%d", s.Name(), w.Session, j)
		}
		w.listSession(w.env.roaming[w.Node.ID], fmt.Sprintf("%s/d%d-", s.Name(), w.Session), own, sess)
		return
	}
	if variant < 2 {
		w.del(w.env.roaming[w.Node.ID], key, client.ConsistencyStrong, sess)
		if !s.roam(ctx, w) {
			return
		}
		w.read(w.env.roaming[w.Node.ID], key, client.ConsistencySession, 0, sess)
		if variant == 0 || !s.roam(ctx, w) {
			return
		}
	}
	w.cas(w.env.roaming[w.Node.ID], key, lastRead{absent: true}, w.env.uniqueValue(), sess)
	if !s.roam(ctx, w) {
		return
	}
	w.read(w.env.roaming[w.Node.ID], key, client.ConsistencySession, 0, sess)
}

// roam waits for the worker's next slot and moves it to a random node; false when ctx ended.
func (s *sessionWorkload) roam(ctx context.Context, w *Worker) bool {
	if !w.pace(ctx) {
		return false
	}
	w.Node = w.env.nodes[w.Rng.IntN(len(w.env.nodes))]
	return true
}

// isOwnKey reports whether key is one of a session's own keys (deleteCycle).
func (s *sessionWorkload) isOwnKey(key string) bool {
	return strings.HasPrefix(key, s.Name()+"/d")
}

// Check: the keys that are deleted are checked for durability by CheckDeletes (an acknowledged
// write is lost only when no newer delete was acknowledged), the others by CheckDurability.
func (s *sessionWorkload) Check(in CheckInput) []CheckResult {
	var own, shared []*Op
	for _, op := range in.Ops {
		if s.isOwnKey(op.Key) {
			own = append(own, op)
		} else {
			shared = append(shared, op)
		}
	}
	var sharedFinal map[string]FinalValue
	if in.Final != nil {
		sharedFinal = map[string]FinalValue{}
		for k, v := range in.Final {
			if !s.isOwnKey(k) {
				sharedFinal[k] = v
			}
		}
	}
	return []CheckResult{
		CheckSessions(s.Name(), in.Ops),
		CheckDurability(CheckerDurability, s.Name(), shared, sharedFinal),
		CheckDeletes(s.Name(), own, in.Final),
	}
}

// stalenessWorkload: worker 0 writes increasing numbers to a few keys at the strong level
// (failing over, so it writes whenever a majority exists); the others read them at the bounded
// and eventual levels from their own node. Checked: how stale each level was, in versions and
// milliseconds, and bounded reads within their bound plus a tolerance.
type stalenessWorkload struct {
	keys  int
	bound time.Duration
	mu    sync.Mutex
	seq   int
}

func (s *stalenessWorkload) Name() string { return WorkloadStaleness }

func (s *stalenessWorkload) Worker(ctx context.Context, w *Worker) {
	if w.Index == 0 {
		cl := w.env.anyNode
		for n := 0; w.pace(ctx); n++ {
			s.mu.Lock()
			s.seq++
			seq := s.seq
			s.mu.Unlock()
			w.write(cl, fmt.Sprintf("%s/k%d", s.Name(), n%s.keys), strconv.Itoa(seq), client.ConsistencyStrong, nil)
		}
		return
	}
	cl := w.env.pinned[w.Node.ID]
	for w.pace(ctx) {
		key := fmt.Sprintf("%s/k%d", s.Name(), w.Rng.IntN(s.keys))
		if w.Rng.IntN(2) == 0 {
			w.read(cl, key, client.ConsistencyBounded, s.bound, nil)
		} else {
			w.read(cl, key, client.ConsistencyEventual, 0, nil)
		}
	}
}

func (s *stalenessWorkload) Check(in CheckInput) []CheckResult {
	return []CheckResult{
		CheckStaleness(s.Name(), in.Ops, in.Stale),
		CheckDurability(CheckerDurability, s.Name(), in.Ops, in.Final),
	}
}
