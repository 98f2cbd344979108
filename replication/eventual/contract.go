package eventual

import (
	"time"

	"github.com/dialkv/dialkv/consistency"
	"github.com/dialkv/dialkv/replication"
)

// Store is what the engine needs from the node's tentative layer. The node implements it over
// replication/store; tests use an in-memory twin. Every method must be safe for concurrent use.
// The engine never calls it from memberlist's delegates (those only queue work for the engine's
// own goroutines), but a slow store still slows dissemination and anti-entropy.
type Store interface {
	// MergeTentative stores each write that is newer than both the tentative and the committed
	// version of its key, durably, and returns the writes it stored (the ones new to this node,
	// which the engine re-broadcasts). Writes it already has, or that the committed layer has
	// superseded, are dropped silently.
	MergeTentative(ws []replication.Write) (stored []replication.Write, err error)
	// TentativeDigest returns the key and version of every tentative entry whose key is in
	// [from, to), to "" meaning no upper bound (the anti-entropy digest: compact, never the
	// values). A node answers each page of a peer's digest with its own digest of the page's
	// range: it must cost about the entries in the range, not the whole layer.
	TentativeDigest(from, to string) (map[string]consistency.Version, error)
	// GetTentative returns the tentative entries of keys; keys without one are skipped.
	GetTentative(keys []string) ([]replication.Write, error)
}

// MemberState is a member's state as gossip's failure detector sees it. Suspect is reported
// when this node's own probes of the member failed (memberlist tells nothing else about
// suspicion); it clears at the member's next answer to a probe, or when it is declared dead.
type MemberState string

// Member states.
const (
	StateAlive   MemberState = "alive"
	StateSuspect MemberState = "suspect"
	StateDead    MemberState = "dead"
	StateLeft    MemberState = "left"
)

// Member is one member of the gossip cluster as this node sees it. Members that memberlist has
// forgotten (reaped after GossipToTheDeadTime) are still reported, as dead or left, so the node
// can act on a peer that has been gone for a while; only Forget removes them.
type Member struct {
	ID         string // node id (the memberlist node name)
	GossipAddr string // host:port memberlist advertises (UDP and TCP)
	HTTPAddr   string // from the member's metadata
	RaftAddr   string // from the member's metadata
	State      MemberState
	// Since is when the member entered State, as this node observed it.
	Since time.Time
}
