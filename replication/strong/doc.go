// Package strong is dialkv's consensus engine: hashicorp/raft with its log and stable store in
// raft-boltdb, file snapshots, and the committed layer of package store as the state machine.
//
// It orders strong writes (Propose, leader only), answers linearizable read indexes (ReadIndex,
// leader only: hashicorp/raft has none, so it is built from CommitIndex, VerifyLeader and a
// barrier committed in the leader's own term), waits for the state machine to catch up
// (WaitApplied), and changes membership. It never forwards: routing a request to the leader is the
// node's job. It must never import the eventual engine.
//
// The FSM's rules (apply.go) are the contract of DESIGN.md: a strong write gets the version
// max(entry stamp, current committed version successor), the successor under the stamp's node,
// so for one key the log order is the version order (proposers stamp in their strong space,
// consistency.Clock.NowStrong, so that successor is never an eventual write's version); a
// condition is checked against the committed state at apply time; an entry the
// binary does not understand stops the node rather than letting replicas diverge.
package strong
