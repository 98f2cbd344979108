package node

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dialkv/dialkv/client"
	"github.com/dialkv/dialkv/consistency"
	"github.com/dialkv/dialkv/replication"
	"github.com/dialkv/dialkv/replication/eventual"
	"github.com/dialkv/dialkv/replication/fault"
	"github.com/dialkv/dialkv/replication/store"
	"github.com/dialkv/dialkv/replication/strong"
)

// Node is one running dialkv server.
type Node struct {
	cfg    Config
	logger *slog.Logger
	clock  *consistency.Clock
	store  *store.Store
	raft   *strong.Engine
	gossip *eventual.Engine
	faults *fault.Injector

	// stamps and pending (pending.go) feed the committer: eventual writes between stamping and
	// durability, and this node's own writes not yet known to be committed.
	stamps     stampTracker
	pending    pendingIndex
	commitWake chan struct{}

	metrics       *metrics
	inflight      writeBudget // bytes write requests hold (inflight.go)
	recent        recentStats
	diskErrors    atomic.Uint64
	lastDiskError atomic.Int64 // monoNow of the last failed tentative write (when diskErrors > 0)
	lastCutLog    atomic.Int64 // monoNow of the last 'version cut' warning (observeOutside)
	backlogMu     sync.Mutex
	backlogCache  store.TentativeSummary // the last scan (sampleBacklog)

	// peerClient carries forwarded requests and read-index calls between nodes (keep-alive).
	peerClient *http.Client
	// listenAddr is the address Serve's listener has (a string; unset before Serve): tests ask
	// for it while Serve starts.
	listenAddr atomic.Value
	server     *http.Server

	// readIndexes coalesces this node's read-index calls to the leader (follower strong reads).
	readIndexes readIndexRounds
	// fresh is, on a follower, the newest read index from the leader and when it was asked for:
	// what bounded reads and reported staleness rest on (fresh.go).
	fresh leaderFreshness
	// forwards batches the strong writes this node forwards to the leader (forward_batch.go).
	forwards forwardQueue

	membersMu   sync.Mutex
	memberCache memberCache // members.go
	// membershipMu serializes joins and removals on the leader (members.go).
	membershipMu sync.Mutex
	// sinceRemoval holds purging back after a removal until every member has reported again
	// (purge.go).
	sinceRemoval reportsSinceRemoval

	// joined is set once this node takes eventual writes: from the start for a member restarted
	// on its data, after catchUpWithRegistration for a joining one (joining.go).
	joined atomic.Bool

	removedOnce sync.Once
	removed     chan struct{} // closed once this node learns it was removed (members.go)
	leaves      atomic.Uint64 // leave requests taken (handleLeave): only the latest may reopen

	closeOnce sync.Once
	closed    chan struct{}
	wg        sync.WaitGroup
}

// New opens the node's state and starts Raft. It does not serve HTTP until Run.
func New(cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, err
	}
	if err := checkRemovedMarker(cfg); err != nil {
		return nil, err
	}
	faults := fault.New(cfg.TestFaults)
	n := &Node{
		cfg:        cfg,
		logger:     logger.With("component", "node", "node", cfg.ID),
		faults:     faults,
		clock:      consistency.NewClock(cfg.ID, faults.Now),
		closed:     make(chan struct{}),
		removed:    make(chan struct{}),
		commitWake: make(chan struct{}, 1),
		forwards:   forwardQueue{queue: make(chan *forwardedWrite, 4096)},
		inflight:   writeBudget{limit: cfg.MaxInflightBytes},
		peerClient: &http.Client{Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        256,
			MaxIdleConnsPerHost: 128,
			IdleConnTimeout:     90 * time.Second,
		}},
	}
	if cfg.physicalClock != nil {
		n.clock = consistency.NewClock(cfg.ID, cfg.physicalClock)
	}
	if cfg.TestFaults {
		n.logger.Warn("fault injection is enabled (--test-faults): this node can be told to drop, delay and misbehave; never use it in production")
		n.peerClient.Transport = &fault.RoundTripper{Base: n.peerClient.Transport, Self: cfg.ID, Faults: faults, IDOf: n.memberByHTTP}
	}
	if err := checkDataDir(cfg); err != nil {
		return nil, err
	}
	// The joining marker goes first on a first start, before the store's mark and Raft's files:
	// checkDataDir takes the mark without the marker for a member's directory.
	if err := n.markJoiningIfEmpty(cfg.DataDir); err != nil {
		return nil, fmt.Errorf("joining marker: %w", err)
	}
	opts := store.DefaultOptions()
	opts.NodeID = cfg.ID
	opts.ReadCacheBytes = cfg.ReadCacheBytes
	if cfg.ReadCacheBytes == 0 {
		opts.ReadCacheBytes = -1 // off
	}
	st, err := store.Open(cfg.statePath(), opts)
	if err != nil {
		return nil, checkDamaged(cfg, err)
	}
	n.store = st
	if err := checkRaftLog(cfg, st.AppliedIndex()); err != nil {
		st.Close()
		return nil, err
	}
	if removed, err := st.Removed(); err != nil || removed[cfg.ID] {
		st.Close()
		if err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%s: %w: wipe its data directory (%s) and start it with --join to add it again", cfg.ID, ErrRemoved, cfg.DataDir)
	}
	// The clock restarts from the wall clock, which may be behind what this node stamped or
	// saw before: never stamp below the purge horizon (such writes are refused), below the
	// versions the committed layer holds (its clock observed them as it applied them, and the
	// log is not replayed into them again), below the tentative writes it holds (its clock
	// observed them as they arrived, and it serves them: a write of the key stamped below one
	// would be acknowledged and never show), nor below what its watermark reports promised (the
	// clock floor; purging trusted those).
	// A stored one that does not decode refuses the start (the error says what to do): taken as
	// zero, it would let this node stamp, and take, writes below the purge horizon.
	horizon, err := st.PurgeHorizon()
	if err != nil {
		st.Close()
		return nil, err
	}
	n.clock.Observe(horizon)
	newest, err := st.NewestVersion()
	if err != nil {
		st.Close()
		return nil, err
	}
	n.clock.Observe(newest)
	floor, err := st.ClockFloor()
	if err != nil {
		st.Close()
		return nil, err
	}
	n.clock.Observe(floor)
	n.forwards.floor.Store(floor.Wall)
	backlog, err := st.SummarizeTentative()
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("reading the tentative layer %s: %w", store.TentativePath(st.Path()), err)
	}
	n.clock.Observe(backlog.Newest)
	n.backlogCache = backlog // the backlog gauges' first sample
	if st.Torn {
		logger.Warn("the machine went down while the committed layer was open (it is written without fsync): set it aside and rebuilding it from the raft snapshot and log", "set_aside", st.TornPath)
	}
	raftCfg := cfg.raftConfig()
	raftCfg.Logger = logger.With("component", "raft", "node", cfg.ID)
	raftCfg.Faults = faults
	n.raft, err = strong.Open(raftCfg, st, n.clock)
	if err != nil {
		st.Close()
		return nil, checkDamaged(cfg, err)
	}
	if err := n.initJoining(); err != nil {
		n.raft.Shutdown()
		st.Close()
		return nil, fmt.Errorf("joining marker: %w", err)
	}
	gossipCfg := cfg.gossipConfig()
	gossipCfg.Logger = logger.With("component", "gossip", "node", cfg.ID)
	gossipCfg.Faults = faults
	// Rejoin every gossip address the committed members table remembers, not only the flags:
	// memberlist itself forgets everything on restart. Gossip lists every member and removed id
	// as dead until it hears from it, so that the committer submits the writes this node holds
	// of one that never returns (deadPeers), as it would have before the restart.
	gossipCfg.Known = map[string]string{}
	for id, m := range n.memberTable() {
		if id != cfg.ID && m.GossipAddr != "" {
			gossipCfg.Peers = append(gossipCfg.Peers, m.GossipAddr)
		}
		gossipCfg.Known[id] = m.GossipAddr
	}
	for id := range n.removedMembers() {
		if _, ok := gossipCfg.Known[id]; !ok {
			gossipCfg.Known[id] = ""
		}
	}
	n.gossip, err = eventual.Open(gossipCfg, tentativeStore{n})
	if err != nil {
		n.raft.Shutdown()
		st.Close()
		return nil, fmt.Errorf("gossip: %w", err)
	}
	n.metrics = newMetrics(n)
	return n, nil
}

// backlogSummary is the tentative layer at a glance, from the last scan (sampleBacklog): a full
// scan of the layer is too much for every status call and scrape.
type backlogSummary struct {
	count     int
	oldestAge time.Duration // of the oldest write held, now
}

func (n *Node) backlog() backlogSummary {
	n.backlogMu.Lock()
	sum := n.backlogCache
	n.backlogMu.Unlock()
	b := backlogSummary{count: sum.Count}
	if !sum.Oldest.IsZero() {
		b.oldestAge = max(0, n.faults.Now().Sub(time.Unix(0, sum.Oldest.Wall)))
	}
	return b
}

func (n *Node) sampleBacklog() {
	sum, err := n.store.SummarizeTentative()
	if err != nil {
		n.logger.Warn("reading the tentative layer", "err", err)
		return
	}
	n.backlogMu.Lock()
	n.backlogCache = sum
	n.backlogMu.Unlock()
}

// backlogScanShare bounds the CPU the sampler spends scanning the tentative layer: it scans
// again only once this many times the last scan's duration has passed. A partitioned node can
// hold a backlog of millions of writes (a scan of 10,000 takes about a millisecond), and the
// gauges then move every few seconds instead of every second.
const backlogScanShare = 50

// scanDue reports whether the sampler scans the tentative layer again, sinceLast after its last
// scan, which took took.
func scanDue(sinceLast, took time.Duration) bool { return sinceLast >= backlogScanShare*took }

// runSampler refreshes the backlog summary and the per-second stats.
func (n *Node) runSampler() {
	defer n.wg.Done()
	ticker := time.NewTicker(time.Second)
	defer ticker.Stop()
	lastScan, took := time.Now(), time.Duration(0)
	for {
		select {
		case <-n.closed:
			return
		case <-ticker.C:
			if scanDue(time.Since(lastScan), took) {
				lastScan = time.Now()
				n.sampleBacklog()
				took = time.Since(lastScan)
			}
			n.recent.sample(time.Now(), n.backlog().count, n.store.AppliedIndex())
			n.forgetRemovedPeers()
		}
	}
}

// Run serves the API until ctx is cancelled, then shuts the node down. It returns once
// everything is closed.
func (n *Node) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", n.cfg.HTTPAddr)
	if err != nil {
		n.Close()
		return fmt.Errorf("listen on %s: %w", n.cfg.HTTPAddr, err)
	}
	return n.Serve(ctx, ln)
}

// Serve is Run on an existing listener (tests pass port-0 listeners).
func (n *Node) Serve(ctx context.Context, ln net.Listener) error {
	n.listenAddr.Store(ln.Addr().String())
	n.server = &http.Server{
		Handler:           n.routes(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       cmp.Or(n.cfg.idleTimeout, idleTimeout),
		ConnState:         clearWriteDeadline,
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- n.server.Serve(ln) }()
	n.logger.Info("serving", "http", ln.Addr().String(), "raft", n.cfg.Raft.RaftAddr)

	n.wg.Add(5)
	go n.forwardLoop()
	go n.keepRegistered()
	go n.runCommitter()
	go n.runPurger()
	go n.runSampler()

	select {
	case <-ctx.Done():
	case <-n.removed:
		return n.closeRemoved()
	case err := <-serveErr:
		n.Close()
		return fmt.Errorf("http server: %w", err)
	}
	return n.Close()
}

// Close stops serving and shuts the engines down. Safe to call more than once.
func (n *Node) Close() error {
	var err error
	n.closeOnce.Do(func() {
		close(n.closed)
		if n.server != nil {
			sctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			n.server.Shutdown(sctx)
			cancel()
		}
		n.readIndexes.close()
		n.wg.Wait()
		if gerr := n.gossip.Shutdown(); gerr != nil {
			n.logger.Warn("gossip shutdown", "err", gerr)
		}
		err = n.raft.Shutdown()
		if cerr := n.store.Close(); err == nil {
			err = cerr
		}
		n.logger.Info("stopped")
	})
	return err
}

// HTTPAddr is the address the API listens on (the configured one, or the listener's).
func (n *Node) HTTPAddr() string {
	if addr, ok := n.listenAddr.Load().(string); ok {
		return addr
	}
	return n.cfg.HTTPAddr
}

func (n *Node) self() replication.Member {
	return replication.Member{ID: n.cfg.ID, RaftAddr: n.cfg.Raft.RaftAddr, HTTPAddr: n.HTTPAddr(), GossipAddr: n.gossipAddr()}
}

func joinRequest(m replication.Member) client.JoinRequest {
	return client.JoinRequest{ID: m.ID, RaftAddr: m.RaftAddr, HTTPAddr: m.HTTPAddr, GossipAddr: m.GossipAddr}
}

// memberByHTTP returns the id of the member whose HTTP address is addr ("" if none).
func (n *Node) memberByHTTP(addr string) string {
	for id, m := range n.memberTable() {
		if m.HTTPAddr == addr {
			return id
		}
	}
	return ""
}

// httpAddrOf returns member id's HTTP address: from the committed members table, else from
// gossip (a node cut off from the log may not have applied a newer member's registration).
func (n *Node) httpAddrOf(id string) string {
	if addr := n.memberTable()[id].HTTPAddr; addr != "" {
		return addr
	}
	for _, m := range n.gossip.Members() {
		if m.ID == id {
			return m.HTTPAddr
		}
	}
	return ""
}

// leaderHTTP returns the leader's id and HTTP address, "" when either is unknown.
func (n *Node) leaderHTTP() (id, addr string) {
	id, _ = n.raft.Leader()
	if id == "" {
		return "", ""
	}
	return id, n.memberTable()[id].HTTPAddr
}

// joiningPatience is how long a joining node tries to catch up with its registration before it
// logs, at warn level and then at this interval, why it cannot.
const joiningPatience = 10 * time.Second

// keepRegistered makes sure the committed members table holds this node's addresses (so the
// others can forward to it), and, for a node started with --join, asks to be added first. A
// joining node then catches up with its registration before it takes eventual writes
// (joining.go). It retries until it succeeds or the node closes; a node whose addresses are
// recorded, and that has joined, does nothing.
func (n *Node) keepRegistered() {
	defer n.wg.Done()
	wait := 50 * time.Millisecond
	var leaderless, asked time.Time // since when no leader is known; when peers were last asked
	started, warned := time.Now(), time.Time{}
	life, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-n.closed:
			cancel()
		case <-life.Done():
		}
	}()
	for {
		marked := n.removedMembers()[n.cfg.ID]
		switch {
		case marked:
			if n.raft.LeaderReady() && n.removedMembers()[n.cfg.ID] {
				// Elected after its removal was committed but before it left the Raft
				// configuration (the leader that removed it failed in between): finish it. Only
				// once its state machine has caught up (LeaderReady): a node joining again
				// under this id replays its old removal first.
				n.logger.Warn("leading while removed: taking this node out of the Raft configuration")
				if err := n.raft.RemoveServer(life, n.cfg.ID); err != nil {
					n.logger.Warn("removing this node from the Raft configuration", "err", err)
				}
			}
			if n.confirmRemoval(life) {
				return // never register again: Serve stops the node
			}
			wait = 200 * time.Millisecond // replaying past an old removal of this id, or no leader yet
		case n.memberTable()[n.cfg.ID] == n.self() && n.joined.Load():
			wait = 2 * time.Second // recorded: just watch for changes (e.g. a restored snapshot)
		default:
			// A joining node registers even when its committed layer shows it recorded: that
			// may be an earlier registration of its id, replayed from the log.
			err := n.register()
			if err == nil && !n.joined.Load() {
				err = n.catchUpWithRegistration(life)
			}
			if errors.Is(err, errMemberRemoved) {
				n.learnRemoved(err.Error())
				return
			}
			if err != nil {
				// A joining node is not ready and refuses eventual writes until this succeeds:
				// say why at the default level once it has taken a while, and then and again.
				if !n.joined.Load() && time.Since(started) > joiningPatience && time.Since(warned) > joiningPatience {
					warned = time.Now()
					n.logger.Warn("still joining: cannot catch up with this node's registration; it stays not ready and takes no eventual writes", "for", time.Since(started).Round(time.Second), "err", err)
				} else {
					n.logger.Debug("registration pending", "err", err)
				}
				wait = min(wait*2, time.Second)
			}
		}
		// With no leader, ask the others whether this node was removed: after askPeersAfter
		// without one, and then at that interval; at once and every second when the log already
		// says so (a removed node gets no more heartbeats: a removed leader hands leadership over
		// first and then hears nothing, so no leader can confirm it).
		if id, _ := n.raft.Leader(); id != "" {
			leaderless = time.Time{}
		} else {
			if leaderless.IsZero() {
				leaderless = time.Now()
			}
			every, due := askPeersAfter, time.Since(leaderless) >= askPeersAfter
			if marked {
				every, due = time.Second, true
			}
			if due && time.Since(asked) >= every {
				asked = time.Now()
				if n.askPeersIfRemoved(life) {
					return
				}
			}
		}
		select {
		case <-n.closed:
			return
		case <-time.After(wait):
		}
	}
}

func (n *Node) register() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	me := n.self()
	if n.raft.IsLeader() {
		_, err := n.addMember(ctx, joinRequest(me))
		return err
	}
	type target struct{ who, addr string }
	var targets []target
	if id, addr := n.leaderHTTP(); addr != "" {
		targets = append(targets, target{"leader " + id, addr})
	} else {
		if n.cfg.Join != "" {
			targets = append(targets, target{n.cfg.Join, n.cfg.Join})
		}
		// A node restarted on its data at a new Raft address hears from no leader: the leader
		// dials the address it has on record. Any member forwards a join to the leader, which
		// records the new address (AddVoter re-addresses the voter).
		for id, m := range n.memberTable() {
			if id != n.cfg.ID && m.HTTPAddr != "" && m.HTTPAddr != n.cfg.Join {
				targets = append(targets, target{"member " + id, m.HTTPAddr})
			}
		}
	}
	if len(targets) == 0 {
		return replication.ErrNoLeader
	}
	req := joinRequest(me)
	req.Fresh = n.raft.StartedEmpty()
	body, _ := json.Marshal(req)
	var errs []error
	for _, t := range targets {
		err := n.postPeer(ctx, t.addr, "/v1/cluster/join", body, false)
		if err == nil {
			return nil
		}
		if errors.Is(err, errMemberRemoved) {
			return fmt.Errorf("%s said so: %w", t.who, err)
		}
		errs = append(errs, fmt.Errorf("join via %s: %w", t.addr, err))
	}
	return errors.Join(errs...)
}

// addMember (leader only) adds the node as a voter if needed and records its addresses. An id
// that was removed is registered first, which clears its removal mark: a wiped node joining
// again under that id must not find itself marked removed in the log it is sent, and stop.
func (n *Node) addMember(ctx context.Context, j client.JoinRequest) (replication.Result, error) {
	if j.ID == "" || j.RaftAddr == "" || j.HTTPAddr == "" {
		return replication.Result{}, fmt.Errorf("%w: join needs id, raft_addr and http_addr", replication.ErrInvalid)
	}
	// Before the voter is added: an id no node may have would be a voter that never answers,
	// and its registration would be refused.
	if err := checkNodeID(j.ID); err != nil {
		return replication.Result{}, fmt.Errorf("%w: join: %v", replication.ErrInvalid, err)
	}
	n.membershipMu.Lock() // a join must not interleave with a removal of the same id
	defer n.membershipMu.Unlock()
	if err := n.applyCommitted(ctx); err != nil {
		return replication.Result{}, err
	}
	if err := n.checkNotInUse(ctx, j); err != nil {
		return replication.Result{}, err
	}
	m := replication.Member{ID: j.ID, RaftAddr: j.RaftAddr, HTTPAddr: j.HTTPAddr, GossipAddr: j.GossipAddr}
	record := func() (replication.Result, error) {
		if n.memberTable()[j.ID] == m {
			return replication.Result{}, nil
		}
		return n.raft.Propose(ctx, &replication.Command{Type: replication.CmdRegister, Member: m})
	}
	if n.removedMembers()[j.ID] {
		if !j.Fresh {
			return replication.Result{}, fmt.Errorf("%s: %w: only a node started from an empty data directory may join under a removed id", j.ID, errMemberRemoved)
		}
		if _, err := record(); err != nil {
			return replication.Result{}, err
		}
		n.logger.Info("a removed id joins again", "id", j.ID)
	}
	if err := n.raft.AddVoter(ctx, j.ID, j.RaftAddr); err != nil {
		return replication.Result{}, err
	}
	return record()
}

// errInUse refuses a join under the id, or at the Raft address, of a member that has them
// (409 conflict).
var errInUse = errors.New("in use by another member")

// checkNotInUse refuses a join that would give a member's id to a second process: the member
// recorded under it still answers, as that id, at its recorded HTTP address, and the join names
// another one. Two processes under one id would each vote and acknowledge entries as that voter,
// and Raft's quorums would no longer overlap (an entry one copy acknowledged could be lost
// through a vote of the other); each would also re-register its own addresses in turn, for ever.
// A member restarted at new addresses no longer answers at its old one (or another node does, as
// another id), and gets in. It also refuses a Raft address the configuration has under another
// id, which Raft would refuse as the join's outcome.
func (n *Node) checkNotInUse(ctx context.Context, j client.JoinRequest) error {
	servers, err := n.raft.Servers()
	if err != nil {
		return err
	}
	for _, s := range servers {
		if s.ID != j.ID && s.Addr == j.RaftAddr {
			return fmt.Errorf("%w: Raft address %s is %s's: a node replacing it at its address joins once %s is removed (kvctl member remove %s)",
				errInUse, j.RaftAddr, s.ID, s.ID, s.ID)
		}
	}
	old, ok := n.memberTable()[j.ID]
	if !ok || old.HTTPAddr == j.HTTPAddr {
		return nil
	}
	running := client.NodeStatus{ID: n.cfg.ID, HTTP: n.HTTPAddr()}
	if j.ID != n.cfg.ID {
		sctx, cancel := context.WithTimeout(ctx, time.Second)
		running = n.peerStatus(sctx, client.NodeStatus{HTTP: old.HTTPAddr})
		cancel()
	}
	if running.ID == j.ID && running.HTTP != j.HTTPAddr {
		return fmt.Errorf("%w: id %s runs at %s; a node with another data directory needs another id (a member moved to new addresses joins once its old process has stopped)",
			errInUse, j.ID, running.HTTP)
	}
	return nil
}

// waitLeader polls until a leader with a known HTTP address exists, or ctx ends.
func (n *Node) waitLeader(ctx context.Context) (id, addr string, err error) {
	for {
		id, addr = n.leaderHTTP()
		if id == n.cfg.ID || addr != "" {
			return id, addr, nil
		}
		select {
		case <-ctx.Done():
			return "", "", n.noLeaderError()
		case <-n.closed:
			return "", "", fmt.Errorf("%w: node is shutting down", replication.ErrNoLeader)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func (n *Node) noLeaderError() error {
	id, _ := n.raft.Leader()
	if id != "" {
		return fmt.Errorf("%w: leader %s has not published its address yet", replication.ErrNoLeader, id)
	}
	return fmt.Errorf("%w within %v: no quorum of voters is reachable from %s", replication.ErrNoLeader, n.cfg.LeaderWait, n.cfg.ID)
}

var errShuttingDown = errors.New("node is shutting down")
