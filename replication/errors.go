package replication

import (
	"errors"
	"fmt"

	"github.com/dialkv/dialkv/consistency"
)

// Errors returned across the replication layers. node maps each to one HTTP status; every other
// package only wraps them with %w.
var (
	// ErrNotFound: the key has no live value (absent or deleted).
	ErrNotFound = errors.New("key not found")
	// ErrConflict: a compare-and-set or create-if-absent condition failed. Returned as a
	// *ConflictError carrying the current version.
	ErrConflict = errors.New("condition failed")
	// ErrNoLeader: no leader was known within the wait, so the request was never proposed.
	// Retrying elsewhere is safe.
	ErrNoLeader = errors.New("no leader")
	// ErrNotLeader: this node is not the leader; a *NotLeaderError says who is, if known.
	ErrNotLeader = errors.New("not the leader")
	// ErrOutcomeUnknown: a write was proposed but its fate is unknown (leadership lost or the
	// wait ran out). It may or may not be applied; it must never be reported as failed.
	ErrOutcomeUnknown = errors.New("outcome unknown")
	// ErrStale: this node cannot serve the request at its level now, though another node may: a
	// bounded read's staleness bound, a session it has not caught up with, a joining node's
	// eventual write. The wrapping error says which.
	ErrStale = errors.New("unavailable on this node")
	// ErrTimeout: a read (or read-index round) could not complete in time, or a write could not
	// be proposed or forwarded in time (it never was); nothing changed.
	ErrTimeout = errors.New("timed out")
	// ErrInvalid: the request is malformed (empty key, bad version, unsupported combination).
	ErrInvalid = errors.New("invalid request")
	// ErrTooLarge: the value exceeds the configured limit.
	ErrTooLarge = errors.New("value too large")
	// ErrUnknownCommand: a log entry this binary does not understand. Applying it is refused
	// and stops the node rather than letting replicas diverge.
	ErrUnknownCommand = errors.New("unknown command")
)

// ConflictError is ErrConflict with the key's current committed version (zero when absent).
type ConflictError struct {
	Key     string
	Current consistency.Version
	Reason  string
}

func (e *ConflictError) Error() string {
	if e.Current.IsZero() {
		// Only a compare-and-set fails on an absent key (deleted ones included): say so, as
		// the answer names no current version. Committed: an eventual write of the key that
		// is not committed yet, which eventual reads show, is not what conditions see.
		return fmt.Sprintf("condition failed on %q: %s (the key has no committed value)", e.Key, e.Reason)
	}
	return fmt.Sprintf("condition failed on %q: %s (current version %s)", e.Key, e.Reason, e.Current)
}

func (e *ConflictError) Unwrap() error { return ErrConflict }

// NotLeaderError is ErrNotLeader with the leader this node knows of ("" when none).
type NotLeaderError struct {
	LeaderID   string
	LeaderAddr string
}

func (e *NotLeaderError) Error() string {
	if e.LeaderID == "" {
		return "not the leader, and no leader is known"
	}
	return fmt.Sprintf("not the leader; the leader is %s", e.LeaderID)
}

func (e *NotLeaderError) Unwrap() error { return ErrNotLeader }
