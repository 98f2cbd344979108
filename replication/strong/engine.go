package strong

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	bolt "go.etcd.io/bbolt"

	"github.com/dialkv/dialkv/consistency"
	"github.com/dialkv/dialkv/internal/durable"
	"github.com/dialkv/dialkv/replication"
	"github.com/dialkv/dialkv/replication/store"
)

// Engine is one node's Raft participant.
type Engine struct {
	cfg   Config
	raft  *raft.Raft
	fsm   *fsm
	store *store.Store
	// startedEmpty: the node opened with no Raft state (a new or wiped data directory).
	startedEmpty bool
	logs         raft.LogStore
	bolt         *raftboltdb.BoltStore
	trans        raft.Transport
	logger       *slog.Logger

	// readyTerm is the term in which this node, as leader, has committed and applied an entry of
	// its own (a barrier). Until then its commit index may lag entries committed by an earlier
	// leader, so it must not hand out read indexes. 0 = not ready.
	readyTerm atomic.Uint64
	// quorumContact is when a round that started then last confirmed, with a quorum, that this
	// node was still the leader (nil: never). Bounded reads on the leader measure staleness from
	// it with time.Since, so it keeps its monotonic clock reading: a time rebuilt from wall-clock
	// nanoseconds would make a wall clock stepped back pass for a younger contact.
	quorumContact atomic.Pointer[time.Time]

	readReqs  chan chan readIndexResult
	proposals chan *proposal // see propose.go
	// inflight holds a slot per batch sent to raft and not yet answered (ProposalInflight of
	// them); appending is held while a batch is handed to raft (propose.go).
	inflight  chan struct{}
	appending sync.Mutex
	restores  atomic.Uint64
	acks      *acks
	stats     struct {
		leaderChanges, readIndexRounds, readIndexFailures atomic.Uint64
		snapshots, snapshotNanos                          atomic.Uint64
		proposals, proposalEntries                        atomic.Uint64
	}

	stop     chan struct{}
	wg       sync.WaitGroup
	shutdown sync.Once
}

type readIndexResult struct {
	index uint64
	err   error
}

// Open starts the engine over st, which must stay open until Shutdown returns.
func Open(cfg Config, st *store.Store, clock *consistency.Clock) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("raft config: %w", err)
	}
	defaults := DefaultConfig()
	if cfg.ProposalBatch <= 0 {
		cfg.ProposalBatch = defaults.ProposalBatch
	}
	if cfg.ProposalInflight <= 0 {
		cfg.ProposalInflight = defaults.ProposalInflight
	}
	if cfg.ProposalBytes <= 0 {
		cfg.ProposalBytes = defaults.ProposalBytes
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, err
	}
	hlog := newHCLogger(logger)
	e := &Engine{cfg: cfg, store: st, logger: logger, readReqs: make(chan chan readIndexResult, 4096), proposals: make(chan *proposal, 4096), inflight: make(chan struct{}, cfg.ProposalInflight), stop: make(chan struct{})}
	e.fsm = &fsm{store: st, clock: clock, logger: logger, restores: func() { e.restores.Add(1) }, persisted: func(d time.Duration) {
		e.stats.snapshots.Add(1)
		e.stats.snapshotNanos.Add(uint64(d))
	}, beforeApply: cfg.BeforeApply}

	// bbolt panics on a damaged page, where nothing can recover it: find one first.
	if err := store.CheckFile(LogPath(cfg.Dir), 5*time.Second); err != nil {
		return nil, fmt.Errorf("open raft log: %w", err)
	}
	var err error
	e.bolt, err = raftboltdb.New(raftboltdb.Options{
		Path: LogPath(cfg.Dir),
		BoltOptions: &bolt.Options{
			Timeout:        5 * time.Second,
			NoFreelistSync: true,
			FreelistType:   bolt.FreelistMapType,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("open raft log: %w", err)
	}
	cleanup := []func(){func() { e.bolt.Close() }}
	fail := func(err error) (*Engine, error) {
		for i := len(cleanup) - 1; i >= 0; i-- {
			cleanup[i]()
		}
		return nil, err
	}
	e.logs, err = newLogCache(512, defaultLogCacheBytes, e.bolt)
	if err != nil {
		return fail(err)
	}
	// raft.db is open, and locked: no other process uses this directory now.
	if err := removePartialSnapshots(filepath.Join(cfg.Dir, "snapshots"), logger); err != nil {
		return fail(err)
	}
	files, err := raft.NewFileSnapshotStoreWithLogger(cfg.Dir, 2, hlog.Named("snapshot"))
	if err != nil {
		return fail(fmt.Errorf("snapshot store: %w", err))
	}
	// Both may have just been created: their directory entries must be durable before raft
	// acknowledges anything it wrote in them.
	if err := durable.SyncDir(cfg.Dir); err != nil {
		return fail(fmt.Errorf("sync %s: %w", cfg.Dir, err))
	}
	snaps := indexedSnapshots{files}
	if err := e.catchUpFromSnapshot(snaps); err != nil {
		return fail(err)
	}

	e.trans = cfg.Transport
	if e.trans == nil {
		addr, err := net.ResolveTCPAddr("tcp", cfg.RaftAddr)
		if err != nil {
			return fail(fmt.Errorf("raft address %q: %w", cfg.RaftAddr, err))
		}
		tcp, err := raft.NewTCPTransportWithLogger(cfg.RaftAddr, addr, 3, 10*time.Second, hlog.Named("transport"))
		if err != nil {
			return fail(fmt.Errorf("raft transport on %s: %w", cfg.RaftAddr, err))
		}
		e.trans = tcp
		cleanup = append(cleanup, func() { tcp.Close() })
	}
	if _, ok := e.trans.(raft.WithPreVote); !ok {
		return fail(fmt.Errorf("raft transport %T does not support pre-vote", e.trans))
	}
	e.acks = newAcks()
	observed := newObservingTransport(e.trans, e.acks, cfg.Faults)
	e.trans = observed
	cleanup = append(cleanup, func() { observed.Close() })

	hasState, err := raft.HasExistingState(e.logs, e.bolt, snaps)
	if err != nil {
		return fail(err)
	}
	e.startedEmpty = !hasState
	rc := cfg.raftConfig()
	rc.Logger = hlog
	// The bootstrap is written to the stores before raft starts, not through the running raft:
	// a voter started after its peers already elected a leader finds that leader's messages
	// waiting, and a running raft may serve them first, take the leader's term and then refuse
	// to bootstrap ("only works on new clusters"), failing the start.
	if !hasState && len(cfg.Bootstrap) > 0 {
		var servers []raft.Server
		for _, p := range cfg.Bootstrap {
			servers = append(servers, raft.Server{ID: raft.ServerID(p.ID), Address: raft.ServerAddress(p.Addr), Suffrage: raft.Voter})
		}
		if err := raft.BootstrapCluster(rc, e.logs, e.bolt, snaps, e.trans, raft.Configuration{Servers: servers}); err != nil {
			return fail(fmt.Errorf("bootstrap: %w", err))
		}
		logger.Info("bootstrapped a new cluster", "voters", len(servers))
	} else if hasState {
		logger.Info("starting from existing raft state", "applied_index", st.AppliedIndex())
	} else {
		logger.Info("no raft state and no bootstrap list: waiting to be added to a cluster")
	}
	e.raft, err = raft.NewRaft(rc, e.fsm, e.logs, e.bolt, snaps, e.trans)
	if err != nil {
		return fail(fmt.Errorf("start raft: %w", err))
	}
	e.wg.Add(3)
	go e.watchLeadership()
	go e.readIndexLoop()
	go e.proposeLoop()
	return e, nil
}

// catchUpFromSnapshot restores the newest snapshot when the committed layer is older than it
// (e.g. the state file was lost): with NoSnapshotRestoreOnStart raft would otherwise replay only
// the log after the snapshot onto an empty state.
//
// A snapshot that does not restore (its file cut short or damaged: raft's CRC check, or the
// store's, refuses it, and the state stays as it was) is passed over for the next older one,
// and the entries between that one and the newest are applied from the log: raft takes the
// newest snapshot's index as applied whatever the state machine holds. Without an older
// snapshot and a log that covers the gap, Open fails, naming the snapshot.
func (e *Engine) catchUpFromSnapshot(snaps raft.SnapshotStore) error {
	list, err := snaps.List()
	if err != nil || len(list) == 0 {
		return err
	}
	newest := list[0]
	from := e.store.AppliedIndex()
	if newest.Index <= from {
		return nil
	}
	e.logger.Warn("committed layer is behind the newest snapshot: restoring it", "applied_index", from, "snapshot_index", newest.Index)
	var refused []string
	for _, meta := range list {
		if meta.Index <= from {
			break // the state holds this one already
		}
		err := e.restoreSnapshot(snaps, meta.ID)
		if err == nil {
			from = meta.Index
			break
		}
		dir := filepath.Join(e.cfg.Dir, "snapshots", meta.ID)
		refused = append(refused, fmt.Sprintf("snapshot %s does not restore (%v)", dir, err))
		e.logger.Error("a snapshot does not restore: trying an older one", "snapshot", dir, "err", err)
	}
	if from == newest.Index {
		return nil
	}
	if err := e.applyFromLog(from+1, newest.Index); err != nil {
		return fmt.Errorf("the committed layer (applied up to index %d) cannot catch up with the newest snapshot (index %d): %s; and %w: restore the snapshot from a backup, or replace the node (kvctl member remove %s, wipe %s, start it with --join: docs/deploy.md, Replacing a node)",
			e.store.AppliedIndex(), newest.Index, strings.Join(refused, "; "), err, e.cfg.NodeID, e.cfg.Dir)
	}
	e.logger.Warn("caught up with the newest snapshot from an older one and the log", "snapshot_index", newest.Index, "refused", refused)
	return nil
}

// restoreSnapshot restores the snapshot id into the state machine.
func (e *Engine) restoreSnapshot(snaps raft.SnapshotStore, id string) error {
	_, rc, err := snaps.Open(id)
	if err != nil {
		return err
	}
	return e.fsm.Restore(rc)
}

// applyFromLog applies the log entries first..last to the state machine, from the log store, in
// batches: they are committed (a snapshot covers them), so they are what every replica applied.
func (e *Engine) applyFromLog(first, last uint64) error {
	have, err := e.logs.FirstIndex()
	if err != nil {
		return fmt.Errorf("reading the log: %w", err)
	}
	if have == 0 || have > first {
		return fmt.Errorf("the log does not hold entries %d to %d (it starts at %d)", first, last, have)
	}
	const batch = 256
	for i := first; i <= last; {
		logs := make([]*raft.Log, 0, min(batch, last-i+1))
		for ; i <= last && len(logs) < batch; i++ {
			l := new(raft.Log)
			if err := e.logs.GetLog(i, l); err != nil {
				return fmt.Errorf("the log does not hold entry %d: %w", i, err)
			}
			logs = append(logs, l)
		}
		e.fsm.ApplyBatch(logs)
	}
	return nil
}

// removePartialSnapshots removes the snapshots a killed process left half written in dir (raft's
// file snapshot store writes each under a ".tmp" name and renames it once complete). Raft
// never lists, uses or removes them, and each is as large as the state: every crash in the
// middle of writing or installing a snapshot kept that much disk for good.
func removePartialSnapshots(dir string, logger *slog.Logger) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !e.IsDir() || !strings.HasSuffix(e.Name(), ".tmp") {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return fmt.Errorf("removing the half-written snapshot %s: %w", e.Name(), err)
		}
		logger.Warn("removed a snapshot left half written by an earlier run", "snapshot", e.Name())
	}
	return nil
}

// Shutdown stops raft and closes the log store (raft never closes it itself). The state store
// is the caller's to close afterwards.
func (e *Engine) Shutdown() error {
	var err error
	e.shutdown.Do(func() {
		close(e.stop)
		err = e.raft.Shutdown().Error()
		e.wg.Wait()
		e.trans.(raft.WithClose).Close()
		if cerr := e.bolt.Close(); err == nil {
			err = cerr
		}
	})
	return err
}

// await waits for f, or for the engine to stop: raft does not answer every pending future when
// it shuts down (a barrier queued behind the shutdown never is), so a bare f.Error() in the
// engine's own goroutines could block Shutdown forever.
func (e *Engine) await(f raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return err
	case <-e.stop:
		return raft.ErrRaftShutdown
	}
}

// watchLeadership makes a new leader commit a barrier in its own term before it serves
// linearizable reads (until then its commit index may not cover entries of earlier terms).
func (e *Engine) watchLeadership() {
	defer e.wg.Done()
	for {
		select {
		case <-e.stop:
			return
		case isLeader := <-e.raft.LeaderCh():
			e.stats.leaderChanges.Add(1)
			e.readyTerm.Store(0)
			if isLeader {
				e.becomeReady()
			}
		}
	}
}

func (e *Engine) becomeReady() {
	for {
		term := e.raft.CurrentTerm()
		start := time.Now()
		err := e.await(e.raft.Barrier(e.cfg.ElectionTimeout * 5))
		if err == nil && e.raft.State() == raft.Leader && e.raft.CurrentTerm() == term {
			e.quorumContact.Store(&start)
			e.readyTerm.Store(term)
			e.logger.Info("leader ready for linearizable reads", "term", term)
			return
		}
		if e.raft.State() != raft.Leader {
			return
		}
		select {
		case <-e.stop:
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// IsLeader reports whether this node believes it is the leader.
func (e *Engine) IsLeader() bool { return e.raft.State() == raft.Leader }

// Leader returns the leader's id and Raft address as this node knows them ("" when unknown).
func (e *Engine) Leader() (id, addr string) {
	a, i := e.raft.LeaderWithID()
	return string(i), string(a)
}

// NodeID is this node's id.
func (e *Engine) NodeID() string { return e.cfg.NodeID }

// ReadIndex returns an index such that a read of the committed layer once it has applied that
// index is linearizable. Leader only. Concurrent callers share verification rounds.
func (e *Engine) ReadIndex(ctx context.Context) (uint64, error) {
	reply := make(chan readIndexResult, 1)
	select {
	case e.readReqs <- reply:
	case <-ctx.Done():
		return 0, fmt.Errorf("%w: read index: %v", replication.ErrTimeout, ctx.Err())
	}
	select {
	case r := <-reply:
		return r.index, r.err
	case <-ctx.Done():
		return 0, fmt.Errorf("%w: read index: %v", replication.ErrTimeout, ctx.Err())
	}
}

// readIndexLoop serves read-index requests in rounds: every request waiting when a round starts
// shares it, and requests arriving during a round wait for the next one (their index must be
// taken after they arrived).
func (e *Engine) readIndexLoop() {
	defer e.wg.Done()
	for {
		var batch []chan readIndexResult
		select {
		case <-e.stop:
			return
		case r := <-e.readReqs:
			batch = append(batch, r)
		}
	drain:
		for {
			select {
			case r := <-e.readReqs:
				batch = append(batch, r)
			default:
				break drain
			}
		}
		index, err := e.readIndexRound()
		e.stats.readIndexRounds.Add(1)
		if err != nil {
			e.stats.readIndexFailures.Add(1)
		}
		for _, r := range batch {
			r <- readIndexResult{index: index, err: err}
		}
	}
}

func (e *Engine) readIndexRound() (uint64, error) {
	term := e.readyTerm.Load()
	if term == 0 || e.raft.State() != raft.Leader {
		// A leader that has not yet committed its barrier waits for it briefly.
		deadline := time.Now().Add(e.cfg.ElectionTimeout)
		for term == 0 && e.raft.State() == raft.Leader && time.Now().Before(deadline) {
			select {
			case <-e.stop:
				return 0, raft.ErrRaftShutdown
			case <-time.After(5 * time.Millisecond):
			}
			term = e.readyTerm.Load()
		}
		if term == 0 || e.raft.State() != raft.Leader {
			id, addr := e.Leader()
			return 0, &replication.NotLeaderError{LeaderID: id, LeaderAddr: addr}
		}
	}
	if e.raft.CurrentTerm() != term {
		return 0, &replication.NotLeaderError{}
	}
	start := time.Now()
	index := e.raft.CommitIndex()
	if err := e.await(e.raft.VerifyLeader()); err != nil {
		id, addr := e.Leader()
		return 0, fmt.Errorf("verify leadership: %v: %w", err, &replication.NotLeaderError{LeaderID: id, LeaderAddr: addr})
	}
	// VerifyLeader sent fresh heartbeats, but may have been satisfied by answers to older
	// requests: wait for a quorum of answers to requests sent after start.
	if err := e.awaitFreshQuorum(start); err != nil {
		return 0, err
	}
	if e.raft.CurrentTerm() != term {
		return 0, &replication.NotLeaderError{}
	}
	e.quorumContact.Store(&start)
	return index, nil
}

// awaitFreshQuorum waits until enough followers acknowledged, in this term, a request sent after
// start to make a quorum with this node, or fails after an election timeout (a leader that cannot
// reach a quorum for that long is about to step down anyway).
func (e *Engine) awaitFreshQuorum(start time.Time) error {
	servers, err := e.Servers()
	if err != nil {
		return err
	}
	var peers []raft.ServerID
	voters := 0
	for _, s := range servers {
		if s.Suffrage != "voter" {
			continue
		}
		voters++
		if s.ID != e.cfg.NodeID {
			peers = append(peers, raft.ServerID(s.ID))
		}
	}
	need := voters/2 + 1 - 1 // this node counts for itself
	deadline := time.NewTimer(e.cfg.ElectionTimeout)
	defer deadline.Stop()
	for {
		n, moved := e.acks.since(start, peers)
		if n >= need {
			return nil
		}
		select {
		case <-moved:
		case <-deadline.C:
			id, addr := e.Leader()
			return fmt.Errorf("only %d of %d followers acknowledged this leader since the read began: %w", n, need, &replication.NotLeaderError{LeaderID: id, LeaderAddr: addr})
		case <-e.stop:
			return raft.ErrRaftShutdown
		}
	}
}

// QuorumContact is, on the leader, the start time of the last round that confirmed leadership
// with a quorum; zero elsewhere. It carries its monotonic clock reading, so time.Since on it
// ignores wall-clock steps.
func (e *Engine) QuorumContact() time.Time {
	if !e.IsLeader() {
		return time.Time{}
	}
	if qc := e.quorumContact.Load(); qc != nil {
		return *qc
	}
	return time.Time{}
}

// LastContact is, on a follower, when it last heard from the leader (heartbeats included).
func (e *Engine) LastContact() time.Time { return e.raft.LastContact() }

// CommitIndex is the commit index this node knows of.
func (e *Engine) CommitIndex() uint64 { return e.raft.CommitIndex() }

// Term is the current term.
func (e *Engine) Term() uint64 { return e.raft.CurrentTerm() }

// State is leader, follower, candidate or shutdown.
func (e *Engine) State() string { return e.raft.State().String() }

// AppliedIndex is the state machine's applied index.
func (e *Engine) AppliedIndex() uint64 { return e.store.AppliedIndex() }

// Stats are the engine's counters since Open.
type Stats struct {
	// LeaderChanges counts this node gaining or losing leadership.
	LeaderChanges uint64
	// ReadIndexRounds counts leadership-verification rounds (each serves many reads);
	// ReadIndexFailures those that could not confirm leadership.
	ReadIndexRounds   uint64
	ReadIndexFailures uint64
	// Snapshots counts snapshots persisted, SnapshotSeconds the time spent writing them.
	Snapshots       uint64
	SnapshotSeconds float64
	// Restores counts snapshot installs into the state machine.
	Restores uint64
	// Proposals counts writes this node proposed as leader, ProposalEntries the log entries
	// they went into (proposal batching packs many into one under load).
	Proposals       uint64
	ProposalEntries uint64
}

// Stats returns the engine's counters.
func (e *Engine) Stats() Stats {
	return Stats{
		LeaderChanges:     e.stats.leaderChanges.Load(),
		ReadIndexRounds:   e.stats.readIndexRounds.Load(),
		ReadIndexFailures: e.stats.readIndexFailures.Load(),
		Snapshots:         e.stats.snapshots.Load(),
		SnapshotSeconds:   time.Duration(e.stats.snapshotNanos.Load()).Seconds(),
		Restores:          e.restores.Load(),
		Proposals:         e.stats.proposals.Load(),
		ProposalEntries:   e.stats.proposalEntries.Load(),
	}
}

// SnapshotRestores counts snapshot installs into the state machine since Open.
func (e *Engine) SnapshotRestores() uint64 { return e.restores.Load() }

// Snapshot asks raft to take a snapshot now (and compact the log behind it).
func (e *Engine) Snapshot() error { return e.await(e.raft.Snapshot()) }

// CaughtUp reports whether the state machine reflects every entry up to index. Entries the FSM
// never sees (no-ops, barriers) are skipped over by looking at the log once raft has dispatched
// them: raft's own AppliedIndex moves when entries are handed to the FSM, not when it is done.
// An entry the log no longer holds, at or below raft's applied index, is in a snapshot the state
// machine holds already: raft removes committed entries only once a snapshot covers them (taken
// from the state machine, or installed into it before raft's applied index moves past it). A
// follower that installed a snapshot ending in no-ops or barriers has no log below it, and its
// store's applied index, which only commands move, stays below the snapshot's until the next
// write.
func (e *Engine) CaughtUp(index uint64) bool {
	applied := e.store.AppliedIndex()
	if applied >= index {
		return true
	}
	if e.raft.AppliedIndex() < index {
		return false
	}
	for i := applied + 1; i <= index; i++ {
		var l raft.Log
		err := e.logs.GetLog(i, &l)
		if errors.Is(err, raft.ErrLogNotFound) {
			continue
		}
		if err != nil {
			return false
		}
		if l.Type == raft.LogCommand || l.Type == raft.LogConfiguration {
			return false
		}
	}
	return true
}

// WaitApplied blocks until the state machine reflects every entry up to index, or ctx ends
// (replication.ErrTimeout).
func (e *Engine) WaitApplied(ctx context.Context, index uint64) error {
	for {
		changed := e.store.AppliedChanged()
		if e.CaughtUp(index) {
			return nil
		}
		select {
		case <-changed:
		case <-time.After(2 * time.Millisecond): // no-op entries move raft's index, not ours
		case <-ctx.Done():
			return fmt.Errorf("%w: waiting to apply index %d (applied %d)", replication.ErrTimeout, index, e.store.AppliedIndex())
		}
	}
}

// Server is one member of the Raft configuration.
type Server struct {
	ID       string
	Addr     string
	Suffrage string
}

// Servers returns the latest Raft configuration.
func (e *Engine) Servers() ([]Server, error) {
	f := e.raft.GetConfiguration()
	if err := e.await(f); err != nil {
		return nil, err
	}
	var out []Server
	for _, s := range f.Configuration().Servers {
		suffrage := "voter"
		if s.Suffrage != raft.Voter {
			suffrage = "nonvoter"
		}
		out = append(out, Server{ID: string(s.ID), Addr: string(s.Address), Suffrage: suffrage})
	}
	return out, nil
}

// AddVoter adds (or re-addresses) a voter. Leader only. Adding a server already present at the
// same address changes nothing.
func (e *Engine) AddVoter(ctx context.Context, id, addr string) error {
	if !e.IsLeader() {
		lid, laddr := e.Leader()
		return &replication.NotLeaderError{LeaderID: lid, LeaderAddr: laddr}
	}
	servers, err := e.Servers()
	if err != nil {
		return err
	}
	for _, s := range servers {
		if s.ID == id && s.Addr == addr && s.Suffrage == "voter" {
			return nil
		}
	}
	timeout := 10 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	if err := e.await(e.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(addr), 0, timeout)); err != nil {
		return fmt.Errorf("add voter %s at %s: %w", id, addr, proposeError(e, err))
	}
	e.logger.Info("added voter", "id", id, "addr", addr)
	return nil
}

// RemoveServer removes a member from the configuration. Leader only.
func (e *Engine) RemoveServer(ctx context.Context, id string) error {
	if !e.IsLeader() {
		lid, laddr := e.Leader()
		return &replication.NotLeaderError{LeaderID: lid, LeaderAddr: laddr}
	}
	if err := e.await(e.raft.RemoveServer(raft.ServerID(id), 0, 10*time.Second)); err != nil {
		return fmt.Errorf("remove %s: %w", id, proposeError(e, err))
	}
	return nil
}

// LeaderReady reports whether this node leads and has applied an entry of its own term, so
// its state machine holds everything committed before it took over.
func (e *Engine) LeaderReady() bool {
	term := e.readyTerm.Load()
	return term != 0 && e.IsLeader() && term == e.raft.CurrentTerm()
}

// raftLogFile is the Raft log and stable store (raft-boltdb) in Config.Dir; raft's file
// snapshot store keeps its snapshots in Config.Dir/snapshots.
const raftLogFile = "raft.db"

// LogPath is the Raft log and stable store's file in dir.
func LogPath(dir string) string { return filepath.Join(dir, raftLogFile) }

// Empty reports, without opening anything, whether dir holds no Raft log file and no
// snapshot: a node that Open starts on it starts with no Raft state. (Open may create state at
// once: a new cluster's configuration, or the term of a leader that already counts this id as
// a voter.)
func Empty(dir string) (bool, error) {
	for _, name := range []string{raftLogFile, "snapshots"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			return false, nil
		} else if !errors.Is(err, fs.ErrNotExist) {
			return false, err
		}
	}
	return true, nil
}

// StartedEmpty reports whether the node opened with no Raft state (a new or wiped data
// directory), whatever it has received since.
func (e *Engine) StartedEmpty() bool { return e.startedEmpty }

// TransferLeadership hands leadership to another voter and returns once it has (or failed).
// Leader only.
func (e *Engine) TransferLeadership() error {
	if !e.IsLeader() {
		lid, laddr := e.Leader()
		return &replication.NotLeaderError{LeaderID: lid, LeaderAddr: laddr}
	}
	if err := e.await(e.raft.LeadershipTransfer()); err != nil {
		return fmt.Errorf("leadership transfer: %w", err)
	}
	return nil
}
