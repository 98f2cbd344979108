package strong

import (
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/hashicorp/raft"

	"github.com/dialkv/dialkv/consistency"
	"github.com/dialkv/dialkv/internal/plant"
	"github.com/dialkv/dialkv/replication"
	"github.com/dialkv/dialkv/replication/store"
)

// fsm is the Raft state machine over the committed layer. Apply is deterministic: the same log
// gives the same committed state on every node. Entries at or below the store's applied index are
// skipped, which makes replay after a restart (NoSnapshotRestoreOnStart) exact.
type fsm struct {
	store  *store.Store
	clock  *consistency.Clock
	logger *slog.Logger
	// restores counts snapshot installs, persisted reports each snapshot written (for stats).
	restores  func()
	persisted func(time.Duration)
	// beforeApply is Config.BeforeApply.
	beforeApply func()
}

var _ raft.BatchingFSM = (*fsm)(nil)

// Apply applies one entry; raft uses ApplyBatch, this exists to satisfy raft.FSM.
func (f *fsm) Apply(l *raft.Log) interface{} { return f.ApplyBatch([]*raft.Log{l})[0] }

// ApplyBatch applies a run of committed entries in one bbolt transaction. It returns one
// replication.Result per entry, a []replication.Result for a CmdBatch entry (one per command),
// nil for configuration entries and skipped ones.
//
// A command this binary cannot decode, or a failing disk, stops the node: continuing would make
// this replica's state differ from the others' at the same applied index.
func (f *fsm) ApplyBatch(logs []*raft.Log) []interface{} {
	results := make([]interface{}, len(logs))
	if len(logs) == 0 {
		return results
	}
	if f.beforeApply != nil {
		f.beforeApply()
	}
	applied := f.store.AppliedIndex()
	last := logs[len(logs)-1].Index
	if last <= applied {
		return results
	}
	var observed consistency.Version
	err := f.store.Apply(last, func(tx *store.Tx) error {
		for i, l := range logs {
			if l.Index <= applied || l.Type != raft.LogCommand {
				continue
			}
			cmd, err := replication.DecodeCommand(l.Data)
			if err != nil {
				return fmt.Errorf("log entry %d: %w", l.Index, err)
			}
			if cmd.Type == replication.CmdBatch {
				// Several proposals in one entry: each applies in turn and gets its own result.
				rs := make([]replication.Result, len(cmd.Batch))
				for j := range cmd.Batch {
					sub := &cmd.Batch[j]
					if rs[j], err = applyCommand(tx, sub); err != nil {
						return fmt.Errorf("log entry %d, command %d (%v %q): %w", l.Index, j, sub.Type, sub.Key, err)
					}
					observed = consistency.Max(observed, rs[j].Version)
				}
				results[i] = rs
				continue
			}
			res, err := applyCommand(tx, &cmd)
			if err != nil {
				return fmt.Errorf("log entry %d (%v %q): %w", l.Index, cmd.Type, cmd.Key, err)
			}
			observed = consistency.Max(observed, res.Version)
			results[i] = res
		}
		// The clock observes what the entries applied before they commit, so that no version
		// this node serves once the commit wakes its readers is above what it stamps next. (A
		// failed commit stops the node below.)
		if !observed.IsZero() {
			f.clock.Observe(observed)
		}
		// Kept with the state, so the clock observes it again after a restart or a restore:
		// entries the state holds already are not applied (or observed) again.
		return tx.NoteVersion(observed)
	})
	if err != nil {
		f.logger.Error("cannot apply committed entries: stopping to keep replicas identical", "first", logs[0].Index, "last", last, "err", err)
		panic(fmt.Sprintf("dialkv: fsm apply failed: %v", err))
	}
	return results
}

// applyCommand is the state machine's rule book. Its only inputs are tx and cmd.
func applyCommand(tx *store.Tx, cmd *replication.Command) (replication.Result, error) {
	switch cmd.Type {
	case replication.CmdRegister:
		// An id the store cannot hold as a key (empty, or too long) is refused like such a key
		// below, as a result: failing the entry would stop every replica. The API refuses
		// such ids; an entry can still carry one from a binary that did not.
		if err := store.CheckKey(cmd.Member.ID); err != nil {
			return replication.Result{Err: err}, nil
		}
		return replication.Result{}, tx.PutMember(cmd.Member)
	case replication.CmdRemove:
		if len(cmd.Member.ID) > store.MaxMemberID { // the same, for its removed mark
			return replication.Result{Err: fmt.Errorf("%w: a member id of %d bytes; ids are at most %d bytes", replication.ErrInvalid, len(cmd.Member.ID), store.MaxMemberID)}, nil
		}
		return replication.Result{}, tx.RemoveMember(cmd.Member.ID)
	case replication.CmdEventualBatch:
		return applyEventualBatch(tx, cmd)
	case replication.CmdPurge:
		// The horizon is reported as the entry's version, so the node's clock observes it
		// (writes stamped below it would be refused).
		rep, err := tx.Purge()
		return replication.Result{Version: rep.Horizon}, err
	case replication.CmdPut, replication.CmdDelete:
	default:
		return replication.Result{}, fmt.Errorf("%w: %v", replication.ErrUnknownCommand, cmd.Type)
	}
	if err := store.CheckKey(cmd.Key); err != nil {
		// The store cannot hold it; every replica refuses it alike, as a result, rather than
		// failing the entry, which would stop them all, on every restart, for good. (The API
		// refuses such keys; an entry can still carry one from a binary that did not.)
		return replication.Result{Err: err}, nil
	}
	cur, exists, err := tx.Get(cmd.Key)
	if err != nil {
		return replication.Result{}, err
	}
	live := exists && !cur.Tombstone
	switch cmd.Cond {
	case replication.CondIfVersion:
		// A tombstone's version still names the key's state, but "absent" (zero) matches only a
		// key with no live value.
		match := cur.Version == cmd.IfVersion && live || cmd.IfVersion.IsZero() && !live
		if !match {
			return replication.Result{Version: cur.Version, Existed: live, Err: &replication.ConflictError{
				Key: cmd.Key, Current: liveVersion(cur, live), Reason: "version is not " + versionOrAbsent(cmd.IfVersion),
			}}, nil
		}
	case replication.CondIfAbsent:
		if live {
			return replication.Result{Version: cur.Version, Existed: true, Err: &replication.ConflictError{
				Key: cmd.Key, Current: cur.Version, Reason: "key exists",
			}}, nil
		}
	case replication.CondNone:
	default:
		// A condition this binary does not know (from a newer one) must not apply as none: a
		// compare-and-set would overwrite unchecked. Refusing it as a result would not do
		// either: a binary that knows it may apply the write, and replicas would differ. Like
		// an unknown command type, it stops the node until it runs a binary that knows it.
		return replication.Result{}, fmt.Errorf("%w: condition %d", replication.ErrUnknownCommand, cmd.Cond)
	}
	if cmd.Type == replication.CmdDelete && !live {
		// Deleting what is not there changes nothing (and writes no tombstone).
		return replication.Result{Version: cur.Version}, nil
	}
	// The successor is under the stamp's node, which leaders take from their strong space
	// (consistency.Clock.NowStrong) so that it is never a version their clock gives an eventual
	// write. Keep this rule as it is: every binary in a cluster applies the same log with it.
	next := consistency.Max(cmd.Stamp, cur.Version.Successor(cmd.Stamp.Node))
	if !exists {
		// A purged tombstone was below the purge horizon: stay above it, so the new value is
		// newer than the delete it may follow even if the proposer's clock lags.
		next = cmd.Stamp
		h, err := tx.PurgeHorizon()
		if err != nil {
			return replication.Result{}, err
		}
		if !h.IsZero() {
			next = consistency.Max(next, h.Successor(cmd.Stamp.Node))
		}
	}
	rec := consistency.Value{Version: next, Tombstone: cmd.Type == replication.CmdDelete}
	if !rec.Tombstone {
		rec.Data = cmd.Value
	}
	if err := tx.Put(cmd.Key, rec); err != nil {
		return replication.Result{}, err
	}
	return replication.Result{Version: next, Existed: live}, nil
}

// applyEventualBatch commits eventual writes by last-writer-wins: per key the newer version
// stays; an older write is superseded, never resurrected. A write below the purge horizon is
// refused (its key may have been deleted and the tombstone purged). Applying the same write twice
// changes nothing, so re-submission is harmless.
func applyEventualBatch(tx *store.Tx, cmd *replication.Command) (replication.Result, error) {
	horizon, err := tx.PurgeHorizon()
	if err != nil {
		return replication.Result{}, err
	}
	var newest consistency.Version
	for _, w := range cmd.Writes {
		newest = consistency.Max(newest, w.Value.Version)
		if len(w.Key) > store.MaxKeySize {
			continue // no layer can hold it (see applyCommand)
		}
		if w.Key == "" || horizon.Newer(w.Value.Version) {
			if err := tx.DropTentative(w.Key, w.Value.Version); err != nil {
				return replication.Result{}, err
			}
			continue
		}
		cur, exists, err := tx.Get(w.Key)
		if err != nil {
			return replication.Result{}, err
		}
		superseded := exists && !w.Value.Version.Newer(cur.Version)
		if plant.MergeKeepsOlder {
			superseded = exists && w.Value.Version.Newer(cur.Version)
		}
		if superseded && !cmd.Unsafe {
			if err := tx.DropTentative(w.Key, w.Value.Version); err != nil {
				return replication.Result{}, err
			}
			continue
		}
		if err := tx.Put(w.Key, w.Value); err != nil {
			return replication.Result{}, err
		}
	}
	// A removed member's report is not kept: purging no longer waits for it, and a stale copy of
	// it (restarted from old data) must not leave a watermark behind. Nor is the report of a
	// reporter no member can be named (longer than the store can hold as a key: no node has
	// such an id): storing it would fail the entry, and stop every replica (see applyCommand).
	if cmd.Reporter != "" && len(cmd.Reporter) <= store.MaxKeySize && !cmd.Watermark.IsZero() && !tx.IsRemoved(cmd.Reporter) {
		if err := tx.SetWatermark(cmd.Reporter, cmd.Watermark); err != nil {
			return replication.Result{}, err
		}
		newest = consistency.Max(newest, cmd.Watermark)
	}
	return replication.Result{Version: newest}, nil
}

func liveVersion(v consistency.Value, live bool) consistency.Version {
	if !live {
		return consistency.Version{}
	}
	return v.Version
}

func versionOrAbsent(v consistency.Version) string {
	if v.IsZero() {
		return "absent"
	}
	return v.String()
}

// Snapshot captures a read transaction; the copying happens in Persist, concurrently with Apply.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	snap, err := f.store.Snapshot()
	if err != nil {
		return nil, err
	}
	return &fsmSnapshot{snap: snap, persisted: f.persisted}, nil
}

// Restore replaces the committed layer with the snapshot, whole (never merged).
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	if err := f.store.Restore(rc); err != nil {
		return err
	}
	if h, err := f.store.PurgeHorizon(); err == nil && !h.IsZero() {
		f.clock.Observe(h) // as applying the purge would have
	}
	if v, err := f.store.NewestVersion(); err == nil && !v.IsZero() {
		f.clock.Observe(v) // as applying the entries would have
	}
	if f.restores != nil {
		f.restores()
	}
	f.logger.Info("restored committed layer from snapshot", "applied_index", f.store.AppliedIndex())
	return nil
}

type fsmSnapshot struct {
	snap      *store.Snapshot
	persisted func(time.Duration)
}

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	start := time.Now()
	if is, ok := sink.(*indexedSink); ok {
		// Raft took the snapshot once every entry up to this index was through the state
		// machine, barriers included, which leave the applied index behind.
		s.snap.CoverLogIndex(is.index)
	}
	if _, err := s.snap.WriteTo(sink); err != nil {
		sink.Cancel()
		return fmt.Errorf("persist snapshot: %w", err)
	}
	err := sink.Close()
	if err == nil && s.persisted != nil {
		s.persisted(time.Since(start))
	}
	return err
}

func (s *fsmSnapshot) Release() { s.snap.Release() }

// indexedSnapshots is the snapshot store with sinks that tell Persist the log index raft labels
// the snapshot with. The state machine never sees some entries (no-ops, barriers), so the
// committed layer's applied index can be below that label; a follower that installs the
// snapshot has none of those entries in its log, and without the label in the snapshot it
// would wait for them (CaughtUp) until the next write.
type indexedSnapshots struct{ raft.SnapshotStore }

type indexedSink struct {
	raft.SnapshotSink
	index uint64
}

func (s indexedSnapshots) Create(version raft.SnapshotVersion, index, term uint64, configuration raft.Configuration, configurationIndex uint64, trans raft.Transport) (raft.SnapshotSink, error) {
	sink, err := s.SnapshotStore.Create(version, index, term, configuration, configurationIndex, trans)
	if err != nil {
		return nil, err
	}
	return &indexedSink{SnapshotSink: sink, index: index}, nil
}
