package strong

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hashicorp/raft"

	"github.com/dialkv/dialkv/replication/fault"
)

// Peer is one voter of the initial cluster.
type Peer struct {
	ID   string
	Addr string
}

// Config configures one node's Raft engine.
type Config struct {
	// NodeID is stable forever and is not an address.
	NodeID string
	// RaftAddr is where the Raft transport listens and what peers dial.
	RaftAddr string
	// Dir holds raft.db (log and stable store) and snapshots/.
	Dir string
	// Bootstrap is the initial voter set, used only when the node has no Raft state yet. Every
	// node of a new cluster must be given the same list; a node with state ignores it.
	Bootstrap []Peer

	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	CommitTimeout      time.Duration
	// SnapshotThreshold and TrailingLogs: a snapshot is taken after this many new entries, and
	// this many entries are kept behind it for slow followers.
	SnapshotThreshold uint64
	SnapshotInterval  time.Duration
	TrailingLogs      uint64
	// MaxAppendEntries caps entries per AppendEntries RPC and per FSM batch.
	MaxAppendEntries int
	// ProposalBatch caps the proposals the leader packs into one log entry, ProposalInflight
	// the entries it has appended and not yet answered before it packs the next (propose.go).
	// ProposalBatch 1 turns packing off (one entry per write, as before CmdBatch existed).
	ProposalBatch    int
	ProposalInflight int
	// ProposalBytes caps the encoded commands packed into one log entry (a command larger than
	// it is an entry of its own): a batch over it becomes several entries. 0 takes the default.
	ProposalBytes int

	// Transport, when set, replaces the TCP transport (tests use raft's in-memory one).
	Transport raft.Transport
	// Faults is the test-only fault hook (nil: none).
	Faults *fault.Injector
	// BeforeApply, when set, runs in the state machine before it applies each run of committed
	// entries (tests of a node whose state machine lags its log, e.g. a new leader).
	BeforeApply func()
	Logger      *slog.Logger
}

// DefaultProposalBytes is the default ProposalBytes: big enough that small writes never reach
// it (256 writes of up to ~16 KiB fit), small enough that a log entry stays a few MiB however
// large the values (AppendEntries carries up to MaxAppendEntries of them).
const DefaultProposalBytes = 4 << 20

// DefaultConfig returns production settings: hashicorp/raft's timings, bigger batches.
func DefaultConfig() Config {
	return Config{
		HeartbeatTimeout:   1000 * time.Millisecond,
		ElectionTimeout:    1000 * time.Millisecond,
		LeaderLeaseTimeout: 500 * time.Millisecond,
		CommitTimeout:      50 * time.Millisecond,
		SnapshotThreshold:  8192,
		SnapshotInterval:   120 * time.Second,
		TrailingLogs:       10240,
		MaxAppendEntries:   64,
		ProposalBatch:      256,
		ProposalInflight:   2,
		ProposalBytes:      DefaultProposalBytes,
	}
}

// Validate checks fields alone and against each other.
func (c *Config) Validate() error {
	var errs []error
	if c.NodeID == "" {
		errs = append(errs, errors.New("node id is empty"))
	}
	if c.Dir == "" {
		errs = append(errs, errors.New("data dir is empty"))
	}
	if c.RaftAddr == "" && c.Transport == nil {
		errs = append(errs, errors.New("raft address is empty"))
	}
	seen := map[string]bool{}
	for _, p := range c.Bootstrap {
		if p.ID == "" || p.Addr == "" {
			errs = append(errs, fmt.Errorf("bootstrap peer %q=%q: id and address are both required", p.ID, p.Addr))
		}
		if seen[p.ID] {
			errs = append(errs, fmt.Errorf("bootstrap peer %q listed twice", p.ID))
		}
		seen[p.ID] = true
	}
	if len(c.Bootstrap) > 0 && !seen[c.NodeID] {
		errs = append(errs, fmt.Errorf("bootstrap list does not include this node (%s)", c.NodeID))
	}
	if c.LeaderLeaseTimeout > c.HeartbeatTimeout {
		errs = append(errs, fmt.Errorf("leader lease timeout %v exceeds heartbeat timeout %v", c.LeaderLeaseTimeout, c.HeartbeatTimeout))
	}
	return errors.Join(errs...)
}

func (c *Config) raftConfig() *raft.Config {
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(c.NodeID)
	rc.HeartbeatTimeout = c.HeartbeatTimeout
	rc.ElectionTimeout = c.ElectionTimeout
	rc.LeaderLeaseTimeout = c.LeaderLeaseTimeout
	rc.CommitTimeout = c.CommitTimeout
	rc.SnapshotThreshold = c.SnapshotThreshold
	rc.SnapshotInterval = c.SnapshotInterval
	rc.TrailingLogs = c.TrailingLogs
	if c.MaxAppendEntries > 0 {
		rc.MaxAppendEntries = c.MaxAppendEntries
	}
	// Apply batching: concurrent proposals share one log append and one FSM transaction.
	rc.BatchApplyCh = true
	// The committed layer is durable and records its applied index: replay the log tail into it
	// instead of restoring the snapshot and replaying everything.
	rc.NoSnapshotRestoreOnStart = true
	rc.LogLevel = "INFO"
	return rc
}
