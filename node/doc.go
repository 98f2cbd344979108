// Package node is the composition root of a dialkv server: it opens the store, starts the
// replication engines, serves the HTTP API, and routes every request by its consistency level
// (strong writes to the leader, strong reads through a read index, bounded reads against the
// leader-contact bound, and so on).
//
// It is the only package that knows every engine, and the only one that maps errors to HTTP status
// codes (errors.go). It forwards a request at most once (Dialkv-Forwarded-By) so a stale view of
// the leader can never make requests loop.
package node
