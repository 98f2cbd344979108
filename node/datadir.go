package node

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/dialkv/dialkv/replication/store"
	"github.com/dialkv/dialkv/replication/strong"
)

// Two files of a node's data directory hold acknowledged writes that nothing else on the node can
// bring back: the tentative layer (eventual writes not committed yet, and the clock floor) and
// raft.db (the Raft log and vote). The committed layer (state.db) is not one of them: it is
// rebuilt from the Raft snapshot and log when lost. The libraries create either file anew when it
// is missing, and bbolt takes a zero-length file for a new database, so a node started on a
// directory that lost one would run with the writes gone, silently. New refuses instead.
//
// What tells a lost file from one not created yet:
//   - the store's mark (store.Opened), written at every start after the tentative layer exists,
//     and the joining marker, which a first start writes before either and removes once the node
//     has caught up with its registration. With the mark and without the marker, the node has
//     run as a member: both files must be there and not empty. (While joining it acknowledged
//     no eventual write, and catching up again restores what it held.)
//   - a committed layer that applied log entries: raft.db held them. This also covers a joining
//     node, and a directory from a version that wrote neither mark nor marker.

// ErrDataLost is New's refusal to start on a data directory that lost a file holding
// acknowledged writes.
var ErrDataLost = errors.New("data lost")

// checkDataDir is New's check of the tentative layer and raft.db, before the store opens (which
// would create the tentative layer anew).
func checkDataDir(cfg Config) error {
	opened, err := store.Opened(cfg.statePath())
	if err != nil || !opened {
		return err
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, joiningMarker)); err == nil {
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := needFile(cfg, store.TentativePath(cfg.statePath()), holdsTentative); err != nil {
		return err
	}
	return needFile(cfg, strong.LogPath(cfg.DataDir), holdsRaftLog)
}

// What the two files nothing else can bring back hold, for the refusals.
const (
	holdsTentative = "the eventual writes it acknowledged and had not committed"
	holdsRaftLog   = "its Raft log and vote"
)

// checkDamaged turns an error of opening the store or raft that found the tentative layer or
// raft.db damaged (store.CorruptFileError) into New's refusal, saying what to do; any other
// error is returned as it is (a damaged committed layer's says what to do already).
func checkDamaged(cfg Config, err error) error {
	var cf *store.CorruptFileError
	if !errors.As(err, &cf) {
		return err
	}
	switch cf.Path {
	case store.TentativePath(cfg.statePath()):
		return lostFile(cfg, damaged(cf), holdsTentative)
	case strong.LogPath(cfg.DataDir):
		return lostFile(cfg, damaged(cf), holdsRaftLog)
	}
	return err
}

// checkRaftLog is New's check of raft.db once the store is open: a committed layer that applied
// the log up to applied means raft.db held it.
func checkRaftLog(cfg Config, applied uint64) error {
	if applied == 0 {
		return nil
	}
	return needFile(cfg, strong.LogPath(cfg.DataDir), fmt.Sprintf("%s (the committed layer applied the log up to index %d)", holdsRaftLog, applied))
}

// damaged says what is wrong with the file cf names.
func damaged(cf *store.CorruptFileError) string {
	return fmt.Sprintf("%s is damaged (%v: %s)", cf.Path, store.ErrCorrupt, cf.Cause)
}

// needFile refuses a missing or empty file at path, which held holds.
func needFile(cfg Config, path, holds string) error {
	info, err := os.Stat(path)
	how := "missing"
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return err
	case info.Size() == 0:
		how = "empty"
	default:
		return nil
	}
	return lostFile(cfg, path+" is "+how, holds)
}

// lostFile is New's refusal of a data directory with a file that held holds gone or unreadable,
// as what says.
func lostFile(cfg Config, what, holds string) error {
	return fmt.Errorf("%s: %w: %s, and it held %s: restore it, or remove the member (kvctl member remove %s), wipe the whole data directory (%s) and start the node with --join to add it again (docs/deploy.md, Replacing a node)",
		cfg.ID, ErrDataLost, what, holds, cfg.ID, cfg.DataDir)
}
