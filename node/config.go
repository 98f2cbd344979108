package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"time"

	"github.com/dialkv/dialkv/replication/eventual"
	"github.com/dialkv/dialkv/replication/store"
	"github.com/dialkv/dialkv/replication/strong"
)

// Config configures one node.
type Config struct {
	// ID is the node's stable identity (never an address).
	ID string
	// HTTPAddr is where the API listens, and what other nodes and clients dial.
	HTTPAddr string
	// DataDir holds state.db (committed layer), state.tentative.db (tentative layer), raft.db and
	// snapshots.
	DataDir string
	// Join is the HTTP address of a running member to ask for admission, used only when this
	// node has no Raft state and no bootstrap list.
	Join string
	// MaxValueSize is the largest value accepted, in bytes.
	MaxValueSize int64
	// MaxInflightBytes bounds the bytes write requests hold in memory at once (inflight.go): a
	// write that would take the node past it is refused at once with 503 unavailable. 0 sets no
	// bound.
	MaxInflightBytes int64
	// ReadCacheBytes bounds the memory that keeps committed records read before, so that reading
	// them again needs no bbolt transaction; 0 turns the cache off.
	ReadCacheBytes int
	// LeaderWait bounds how long a request waits for a leader (or a quorum) before 503.
	LeaderWait time.Duration
	// DefaultMaxStaleness is the bound of a bounded read that names none.
	DefaultMaxStaleness time.Duration
	// Raft configures the strong engine; its NodeID and Dir are filled from ID and DataDir.
	Raft strong.Config
	// Gossip configures the eventual engine; its NodeID, HTTPAddr and RaftAddr are filled in.
	Gossip eventual.Config
	// CommitInterval is how often the committer hands pending eventual writes to the leader.
	CommitInterval time.Duration
	// DeadCommitDelay is how long a peer must have been dead in gossip before this node also
	// commits that peer's pending writes.
	DeadCommitDelay time.Duration
	// PurgeInterval is how often the leader proposes purging acknowledged tombstones.
	PurgeInterval time.Duration
	// Logger receives every component's logs; nil discards them.
	Logger *slog.Logger
	// TestFaults enables the fault-injection hook (docs/faults.md). Never in production.
	TestFaults bool
	// Pprof serves Go's profiler at /debug/pprof/.
	Pprof bool

	// disableCommitter keeps this node from committing eventual writes (tests of peers
	// committing for a dead node).
	disableCommitter bool
	// leaveHold overrides the package's leaveHold (tests of a removal that never comes).
	leaveHold time.Duration
	// purgeHeldAfter overrides defaultPurgeHeldAfter (tests).
	purgeHeldAfter time.Duration
	// noProposeRoute serves no POST /v1/internal/propose, as nodes older than batched forwarding
	// (tests of the relay fallback in a mixed-version cluster).
	noProposeRoute bool
	// beforePropose, when set, runs on the leader before it proposes a forwarded batch, with
	// the batch's context; the leader calls the function it returns once the proposal is over
	// (tests of what a follower's giving up does to a batch in flight).
	beforePropose func(ctx context.Context) (after func())
	// betweenLayers, when set, runs in newest between its reads of key's two layers (tests of
	// a commit that lands between them).
	betweenLayers func(key string)
	// listPageKeys, listPageBytes and listPageScan override maxListKeys, maxListBytes and
	// maxListScan (tests of lists longer than one answer, without writing 10,000 keys).
	listPageKeys, listPageBytes, listPageScan int
	// forwardBytes overrides the package's forwardBytes (tests of a follower's forwarding
	// calls, without megabytes of writes).
	forwardBytes int
	// commitBytes overrides maxCommitBytes, the byte bound of a committer batch (tests of
	// batches bounded in bytes, without megabytes of writes).
	commitBytes int
	// beforeList, when set, runs in a list between prepareRead and the read of the committed
	// layer (tests of a commit that lands in between).
	beforeList func()
	// beforeAnswer, when set, runs in a read (a key's or a list's) after it read the committed
	// layer and before it builds the answer (tests of a commit that lands in between).
	beforeAnswer func()
	// beforeApplyWait, when set, runs in a bounded read once it has checked its bound and before
	// it waits for the state machine (tests of a node that stalls there).
	beforeApplyWait func()
	// idleTimeout and ioStall override the package's idleTimeout and ioStall (tests of the
	// connections the server closes, without waiting minutes).
	idleTimeout, ioStall time.Duration
	// physicalClock, when set, is the physical clock the node's versions are stamped from,
	// instead of the fault injector's (tests of a wall clock set far off).
	physicalClock func() time.Time
}

// DefaultConfig returns the settings kvd starts with.
func DefaultConfig() Config {
	return Config{
		HTTPAddr:            "127.0.0.1:7001",
		MaxValueSize:        1 << 20,
		MaxInflightBytes:    DefaultMaxInflightBytes,
		ReadCacheBytes:      store.DefaultReadCacheBytes,
		LeaderWait:          5 * time.Second,
		DefaultMaxStaleness: time.Second,
		Raft:                strong.DefaultConfig(),
		Gossip:              eventual.DefaultConfig(),
		CommitInterval:      50 * time.Millisecond,
		DeadCommitDelay:     10 * time.Second,
		PurgeInterval:       5 * time.Second,
	}
}

// Validate checks fields alone and against each other.
func (c *Config) Validate() error {
	var errs []error
	if c.ID == "" {
		errs = append(errs, errors.New("node id is required (--id)"))
	} else if err := checkNodeID(c.ID); err != nil {
		errs = append(errs, err)
	}
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		errs = append(errs, fmt.Errorf("http address %q: %w", c.HTTPAddr, err))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("data dir is required (--data-dir)"))
	}
	if c.MaxValueSize <= 0 {
		errs = append(errs, fmt.Errorf("max value size %d must be positive", c.MaxValueSize))
	}
	if c.MaxInflightBytes < 0 {
		errs = append(errs, fmt.Errorf("write budget %d must not be negative (0 sets no bound)", c.MaxInflightBytes))
	} else if c.MaxValueSize > 0 && c.MaxInflightBytes > 0 && c.MaxInflightBytes < c.MaxValueSize+writeOverhead {
		// Else a value of the largest size allowed would be refused as 503 forever, and its
		// client would retry it forever.
		errs = append(errs, fmt.Errorf("write budget of %d bytes must hold at least one value of the largest size (max value size %d, plus %d)", c.MaxInflightBytes, c.MaxValueSize, writeOverhead))
	}
	if c.ReadCacheBytes < 0 {
		errs = append(errs, fmt.Errorf("read cache size %d must not be negative (0 turns it off)", c.ReadCacheBytes))
	}
	if c.LeaderWait <= 0 {
		errs = append(errs, fmt.Errorf("leader wait %v must be positive", c.LeaderWait))
	}
	if c.DefaultMaxStaleness <= 0 {
		errs = append(errs, fmt.Errorf("default max staleness %v must be positive", c.DefaultMaxStaleness))
	}
	if c.Join != "" && len(c.Raft.Bootstrap) > 0 {
		errs = append(errs, errors.New("--join and --bootstrap exclude each other: bootstrap forms a new cluster, join enters a running one"))
	}
	if c.CommitInterval <= 0 || c.DeadCommitDelay <= 0 || c.PurgeInterval <= 0 {
		errs = append(errs, fmt.Errorf("commit interval %v, dead commit delay %v and purge interval %v must be positive", c.CommitInterval, c.DeadCommitDelay, c.PurgeInterval))
	}
	if len(errs) > 0 {
		// The raft and gossip configs take the id and the addresses from this one: checked now,
		// one mistake would be reported twice, in two wordings.
		return errors.Join(errs...)
	}
	raftCfg := c.raftConfig()
	if err := raftCfg.Validate(); err != nil {
		errs = append(errs, err)
	}
	gossipCfg := c.gossipConfig()
	if err := gossipCfg.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("gossip: %w", err))
	}
	return errors.Join(errs...)
}

// checkNodeID refuses a non-empty id no node may have: one with a character that separates ids
// or versions in our text forms ('/' marks a strong write's version, see consistency.Version),
// or one the committed layer cannot hold (its registration would be refused on every replica).
// A node checks its own id with it, and the leader the id of every node that asks to join.
func checkNodeID(id string) error {
	if len(id) > store.MaxMemberID {
		return fmt.Errorf("node id of %d bytes is too long: at most %d", len(id), store.MaxMemberID)
	}
	if strings.ContainsAny(id, " ,=/@") {
		return fmt.Errorf("node id %q must not contain spaces or any of ,=/@", id)
	}
	return nil
}

func (c *Config) gossipConfig() eventual.Config {
	gc := c.Gossip
	gc.NodeID = c.ID
	gc.HTTPAddr = c.HTTPAddr
	gc.RaftAddr = c.Raft.RaftAddr
	return gc
}

func (c *Config) raftConfig() strong.Config {
	rc := c.Raft
	rc.NodeID = c.ID
	rc.Dir = c.DataDir
	return rc
}

func (c *Config) statePath() string { return filepath.Join(c.DataDir, "state.db") }

// ParsePeers parses an initial cluster list "n1=127.0.0.1:7101,n2=127.0.0.1:7102".
func ParsePeers(s string) ([]strong.Peer, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var peers []strong.Peer
	for _, part := range strings.Split(s, ",") {
		id, addr, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || id == "" || addr == "" {
			return nil, fmt.Errorf("peer %q: want ID=HOST:PORT", part)
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, fmt.Errorf("peer %q: %w", part, err)
		}
		peers = append(peers, strong.Peer{ID: id, Addr: addr})
	}
	return peers, nil
}
