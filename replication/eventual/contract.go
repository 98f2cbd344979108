package eventual

import (
	"github.com/dialkv/dialkv/consistency"
	"github.com/dialkv/dialkv/replication"
)

// Store is what the engine needs from the node's tentative layer. The node implements it over
// replication/store; tests use an in-memory twin. Every method must be safe for concurrent use
// and must not block for long (memberlist delegates call into it).
type Store interface {
	// MergeTentative stores each write that is newer than both the tentative and the committed
	// version of its key, durably, and returns the writes it stored (the ones new to this node,
	// which the engine re-broadcasts). Writes it already has, or that the committed layer has
	// superseded, are dropped silently.
	MergeTentative(ws []replication.Write) (stored []replication.Write, err error)
	// TentativeDigest returns the key and version of every tentative entry (the anti-entropy
	// digest: compact, never the values).
	TentativeDigest() (map[string]consistency.Version, error)
	// GetTentative returns the tentative entries of keys; keys without one are skipped.
	GetTentative(keys []string) ([]replication.Write, error)
}

// MemberState is a member's state as gossip's failure detector sees it.
type MemberState string

// Member states.
const (
	StateAlive   MemberState = "alive"
	StateSuspect MemberState = "suspect"
	StateDead    MemberState = "dead"
	StateLeft    MemberState = "left"
)
