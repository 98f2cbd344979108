// Package store keeps a node's state in one bbolt file: the committed layer (the Raft state
// machine's data: key records, cluster members, the applied index) and, later, the tentative
// layer of eventual writes.
//
// It knows nothing of raft or gossip: callers hand it whole transactions. The committed layer
// changes only through Apply (one bbolt transaction per batch of log entries, with the applied
// index written in the same transaction, so a restart can tell exactly which entries the data
// already holds) and Restore (which replaces it whole, atomically). Byte slices never escape a
// transaction: every value returned is a copy.
package store
