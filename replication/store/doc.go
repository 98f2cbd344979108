// Package store keeps a node's state in two bbolt files: the committed layer (the Raft state
// machine's data: key records, cluster members, watermarks, the applied index) and the tentative
// layer of eventual writes not yet committed.
//
// The two are written differently. The tentative layer is fsynced before an eventual write is
// acknowledged (group commit). The committed layer is written without fsync: everything in it
// can be rebuilt from the Raft snapshot and log, which are durable before a strong write is
// acknowledged, so flushing it too would only add two fsyncs to every write's path. A mark file
// tells a process crash (the page cache keeps every write: nothing to do) from a machine crash
// (the file may be torn: it is set aside and rebuilt); see durability.go.
//
// It knows nothing of raft or gossip: callers hand it whole transactions. The committed layer
// changes only through Apply (one bbolt transaction per batch of log entries, with the applied
// index written in the same transaction, so a restart can tell exactly which entries the data
// already holds) and Restore (which replaces it whole, atomically). Byte slices never escape a
// transaction: every value returned is a copy.
package store
