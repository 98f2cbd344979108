// Package client is the Go client of dialkv: the library kvctl, the partition-test harness and
// users call to read and write keys over the HTTP API of docs/http-api.md, and the home of the
// wire types (wire.go) that the server encodes.
//
// Every operation names its consistency level and returns the metadata the server reported
// (which node served it, the version, the applied index, the staleness bound), so a caller always
// sees the trade-off it got. A Client knows several endpoints and fails over between them, but
// only when that is safe: it tries another node when a connection could not be made or a node
// answered 503 no_leader/unavailable or 504 timeout (the server promises nothing was applied; a
// read also when its answer did not come, or on any other 5xx), and never re-sends a write that may have reached a
// server and got no answer. Such a write comes back as
// an error for which IsOutcomeUnknown is true, because the client cannot know whether it was
// applied; retrying it blindly could apply it twice or reorder it after a later write.
//
// The package must never interpret versions or session tokens (they are opaque server text) and
// must never import the server's packages: it is the contract's client side and nothing more.
package client
