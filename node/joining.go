package node

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/dialkv/dialkv/internal/durable"
	"github.com/dialkv/dialkv/replication/strong"
)

// A node takes eventual writes only while the purge protocol covers what it stamps. For a
// member, two facts do that: every purge horizon it has not applied was held back by its own
// watermark reports, and its clock never stamps below what it reported (the clock floor). A node
// that is joining has neither. Purging does not wait for an id until its registration is
// committed, and the node's clock sees the horizons committed before that only as it applies
// them. A write it stamped in the meantime could fall below the horizon; every peer and the
// log would then refuse it, and an acknowledged write would be lost. So a joining node refuses
// eventual writes (errJoining) until it has applied its own registration
// (catchUpWithRegistration).
//
// A member restarted on its own data is not joining, even when it has no leader: its clock
// floor and the horizon it applied keep its stamps safe, and eventual writes stay available in
// a minority partition.

// errJoining refuses an eventual write on a node that has not caught up with its own
// registration yet (503 unavailable: the client tries another node).
var errJoining = errors.New("joining")

// joiningMarker is the file that a node started from an empty data directory keeps there until
// it has caught up with its own registration. A node restarted while the file is there is still
// joining, whatever its committed layer shows: that layer may hold an earlier registration of
// the same id, replayed from the log, from before the id was removed or its data lost.
const joiningMarker = "JOINING"

// markJoiningIfEmpty writes the joining marker, in New and before the store and Raft open, when
// the node has no Raft state yet. It cannot wait for initJoining: Raft may write state as it opens
// (a new cluster's configuration, the term of a leader that still counts this id as a voter), and
// a crash before the marker then left a node that took eventual writes at once on restart. Nor
// can it wait for the store: its mark without the marker says the node ran as a member
// (checkDataDir).
func (n *Node) markJoiningIfEmpty(raftDir string) error {
	empty, err := strong.Empty(raftDir)
	if err != nil || !empty {
		return err
	}
	return durable.WriteFile(filepath.Join(n.cfg.DataDir, joiningMarker), joiningNote)
}

var joiningNote = []byte("# dialkv: this node has not caught up with its own registration yet: it takes no eventual writes\n")

// initJoining decides, in New and after Raft opened, whether this node starts joining. It starts
// joining when it started with no Raft state (markJoiningIfEmpty wrote the marker already unless
// the log file was there, empty), and also when an earlier start stopped before catching up.
func (n *Node) initJoining() error {
	path := filepath.Join(n.cfg.DataDir, joiningMarker)
	_, err := os.Stat(path)
	switch {
	case err == nil:
		return nil // an earlier start did not catch up
	case !errors.Is(err, fs.ErrNotExist):
		return err
	case !n.raft.StartedEmpty():
		n.joined.Store(true)
		return nil
	}
	return durable.WriteFile(path, joiningNote)
}

// catchUpWithRegistration ends joining. It is called after register succeeded, so the
// registration is committed, and a read index taken now is at or after it. Once this node
// has applied up to that index:
//   - its clock has observed every horizon committed before its registration;
//   - purging waits for its watermark reports, which never pass its clock;
//   - an earlier report made under this id still stands (the id was not removed, only its
//     data lost), so this node adopts it as its clock floor.
func (n *Node) catchUpWithRegistration(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.LeaderWait)
	defer cancel()
	var index uint64
	var err error
	if n.raft.IsLeader() {
		index, err = n.raft.ReadIndex(ctx)
	} else {
		index, err = n.leaderReadIndex(ctx, "")
	}
	if err != nil {
		return fmt.Errorf("read index: %w", err)
	}
	if err := n.raft.WaitApplied(ctx, index); err != nil {
		return err
	}
	st := n.memberState()
	if _, ok := st.members[n.cfg.ID]; !ok || st.removed[n.cfg.ID] {
		return fmt.Errorf("applied up to index %d, and still not a member", index)
	}
	horizon, err := n.store.PurgeHorizon()
	if err != nil {
		return err
	}
	n.clock.Observe(horizon) // applying each purge did already; a zero horizon changes nothing
	_, reports, err := n.store.PurgeStatus()
	if err != nil {
		return err
	}
	if reported := reports[n.cfg.ID]; !reported.IsZero() {
		if err := n.store.SetClockFloor(reported); err != nil {
			return err
		}
		n.clock.Observe(reported)
	}
	if err := durable.Remove(filepath.Join(n.cfg.DataDir, joiningMarker)); err != nil {
		return err
	}
	n.joined.Store(true)
	n.logger.Info("caught up with its own registration: taking eventual writes", "applied_index", index)
	return nil
}
