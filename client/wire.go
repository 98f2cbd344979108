package client

// Wire types and header names shared by the server (node) and every client. They are the
// HTTP contract of docs/http-api.md: change both together.

// Response metadata headers. Every /v1/kv response carries them, errors included: Dialkv-Node,
// Dialkv-Leader and Dialkv-Applied-Index always, the others when they are known (an answer
// refused before its level was read has no Dialkv-Consistency, and only a key's answer has a
// Dialkv-Version).
const (
	// HeaderConsistency is the level that actually served the request (strong, bounded, ...).
	HeaderConsistency = "Dialkv-Consistency"
	// HeaderNode is the id of the node that served the request (after any forwarding).
	HeaderNode = "Dialkv-Node"
	// HeaderVia is the id of the node that received the request and forwarded it, if any.
	HeaderVia = "Dialkv-Via"
	// HeaderLeader is the id of the leader as the serving node knows it ("" when unknown).
	HeaderLeader = "Dialkv-Leader"
	// HeaderVersion is the version of the value read or written (consistency.Version text form).
	HeaderVersion = "Dialkv-Version"
	// HeaderAppliedIndex is the serving node's applied Raft index when it answered.
	HeaderAppliedIndex = "Dialkv-Applied-Index"
	// HeaderState is "committed" or "tentative": which layer the value came from.
	HeaderState = "Dialkv-State"
	// HeaderStaleness is an upper bound on how stale the answer may be, as a Go duration
	// ("0s" for linearizable answers). Absent when no bound is known.
	HeaderStaleness = "Dialkv-Staleness"
	// HeaderSession is the session token (opaque to clients): send it back on later requests.
	HeaderSession = "Dialkv-Session"
	// HeaderForwarded marks a request already forwarded once by a node, so it is never
	// forwarded again (no loops).
	HeaderForwarded = "Dialkv-Forwarded-By"
	// HeaderRequestID carries the request id through forwarding and logs.
	HeaderRequestID = "X-Request-Id"
	// HeaderError repeats an error answer's code (ErrorBody.Code), for proxies and metrics.
	HeaderError = "Dialkv-Error"
)

// States of a value (HeaderState).
const (
	StateCommitted = "committed"
	StateTentative = "tentative"
)

// Error codes of ErrorBody.Code. The HTTP status that goes with each is in docs/http-api.md.
const (
	CodeBadRequest     = "bad_request"     // 400
	CodeNotFound       = "not_found"       // 404
	CodeConflict       = "conflict"        // 409: a compare-and-set or create-if-absent condition failed, or a join under the id or Raft address of another member
	CodeTooLarge       = "too_large"       // 413
	CodeNoLeader       = "no_leader"       // 503: no leader known within the wait; the request was never proposed
	CodeUnavailable    = "unavailable"     // 503: the node cannot serve this level now (a staleness bound, a session it is behind), or holds as many writes as it may (kvd --max-inflight-mb); another node may
	CodeOutcomeUnknown = "outcome_unknown" // 504: the write may or may not have been applied
	CodeTimeout        = "timeout"         // 504: a read, or a write's proposal or forwarding, could not complete in time; nothing was changed
	CodeInternal       = "internal"        // 500
	CodeNotImplemented = "not_implemented" // 501: no server sends it now (early ones did, for levels they did not serve yet); kept so code naming it still builds
	CodeForbidden      = "forbidden"       // 403: e.g. fault injection on a node not started for tests
	CodeRemoved        = "removed"         // 410: the member was removed from the cluster

	CodeUnknownPath      = "unknown_path"       // 404: no endpoint has the path (unlike not_found, it says nothing of a key)
	CodeMethodNotAllowed = "method_not_allowed" // 405: the path's endpoints take other methods (the Allow header lists them)
)

// ErrorBody is the JSON body of every error response.
type ErrorBody struct {
	Error string `json:"error"`
	Code  string `json:"code"`
	// Version is the current version of the key, on conflicts when the key exists.
	Version string `json:"version,omitempty"`
	// Meta is the answer's metadata, as its Dialkv-* headers carry it, when the request asked
	// for JSON (Accept: application/json) and the answer has metadata (every /v1/kv answer
	// does; other paths leave it out).
	Meta *Meta `json:"meta,omitempty"`
}

// Meta is the metadata of one answer, as sent in the Dialkv-* headers and in JSON bodies.
type Meta struct {
	Consistency  string `json:"consistency"`
	Node         string `json:"node"`
	Via          string `json:"via,omitempty"`
	Leader       string `json:"leader,omitempty"`
	Version      string `json:"version,omitempty"`
	AppliedIndex uint64 `json:"applied_index"`
	State        string `json:"state,omitempty"`
	// Staleness is the upper bound as a Go duration string; "" when unknown.
	Staleness string `json:"staleness,omitempty"`
	Session   string `json:"session,omitempty"`
}

// KV is one key with its value and version. Key and value travel alike: Key holds the key
// when it is valid UTF-8, otherwise KeyBase64 holds it base64-encoded (standard encoding) and
// Key is empty; the same goes for Value and ValueBase64. (JSON text cannot hold other bytes:
// they would come back as U+FFFD, a different key.) RawKey and Bytes return the real ones;
// NewKV builds the wire form.
type KV struct {
	Key         string `json:"key"`
	KeyBase64   string `json:"key_base64,omitempty"`
	Value       string `json:"value"`
	ValueBase64 string `json:"value_base64,omitempty"`
	Version     string `json:"version"`
	State       string `json:"state,omitempty"`
}

// ValueResponse is the JSON body of GET/PUT/DELETE /v1/kv/{key} when the caller sent
// Accept: application/json.
type ValueResponse struct {
	KV
	Meta Meta `json:"meta"`
}

// ListResponse is the JSON body of GET /v1/kv?prefix=P: one page of the keys.
type ListResponse struct {
	Items []KV `json:"items"`
	// More is true when keys with the prefix are left after the last item: the list was cut at
	// the caller's limit or at the server's page size, or after the records one answer may read,
	// deleted keys included (then Items may be short, even empty, and only deleted keys left).
	More bool `json:"more"`
	// Next, when More, is the key to send back as after to go on: the last item's, or the last
	// deleted key read when the record count cut the answer. NextBase64 holds it instead, for
	// after_base64, when it is not valid UTF-8 (as KV.Key and KV.KeyBase64 do). NextKey decodes
	// it.
	Next       string `json:"next,omitempty"`
	NextBase64 string `json:"next_base64,omitempty"`
	Meta       Meta   `json:"meta"`
}

// NodeStatus is one member of the cluster in StatusResponse.
type NodeStatus struct {
	ID   string `json:"id"`
	HTTP string `json:"http"`
	Raft string `json:"raft"`
	// Role is leader, follower, candidate or unknown.
	Role string `json:"role"`
	// Health is ok, degraded or down.
	Health string `json:"health"`
	Reason string `json:"reason,omitempty"`
	// Suffrage is voter or nonvoter.
	Suffrage     string `json:"suffrage,omitempty"`
	AppliedIndex uint64 `json:"applied_index,omitempty"`
	Term         uint64 `json:"term,omitempty"`
	// LastContact is the time since this node last heard from the leader (Go duration), when known.
	LastContact string `json:"last_contact,omitempty"`
	// Gossip is the member's state in gossip's failure detector (alive, suspect, dead, left), as
	// the answering node sees it.
	Gossip string `json:"gossip,omitempty"`
	// Backlog is the number of tentative (not yet committed) eventual writes the node holds.
	Backlog int `json:"backlog"`
	// Joining is set while the node has not caught up with its own registration in the log (it
	// started from an empty data directory): it takes no eventual writes yet.
	Joining bool `json:"joining,omitempty"`
}

// StatusResponse is the JSON body of GET /v1/status: the cluster as one node sees it.
type StatusResponse struct {
	Node         string       `json:"node"`
	Leader       string       `json:"leader"`
	Term         uint64       `json:"term"`
	CommitIndex  uint64       `json:"commit_index"`
	AppliedIndex uint64       `json:"applied_index"`
	Nodes        []NodeStatus `json:"nodes"`
	// Purge says what holds purging of deleted keys back; absent when no tombstone waits.
	Purge *PurgeStatus `json:"purge,omitempty"`
}

// PurgeStatus is what holds purging of deleted keys back. A committed tombstone is purged only
// once every member has reported holding no older uncommitted eventual write.
type PurgeStatus struct {
	PendingTombstones int `json:"pending_tombstones"`
	// BlockedBy are members that never reported (or are not registered yet), or have not
	// reported since a member was removed: nothing is purged until they do.
	BlockedBy []string `json:"blocked_by,omitempty"`
	// HeldBackBy maps members whose watermark is old (away, cut off, or holding old uncommitted
	// writes) to the watermark's age, as of their last report; tombstones newer than it wait. A
	// member that reports every second still has an old watermark while it holds an old write.
	// A member gone for good is removed with kvctl member remove.
	HeldBackBy map[string]string `json:"held_back_by,omitempty"`
}

// JoinRequest is the body of POST /v1/cluster/join.
type JoinRequest struct {
	ID         string `json:"id"`
	RaftAddr   string `json:"raft_addr"`
	HTTPAddr   string `json:"http_addr"`
	GossipAddr string `json:"gossip_addr,omitempty"`
	// Fresh says the node starts from an empty data directory. Only a fresh node may join under
	// the id of a removed member; a removed node restarted from its old data is told 410 removed.
	Fresh bool `json:"fresh,omitempty"`
}

// ReadIndexResponse is the body of GET /v1/internal/readindex (leader only).
type ReadIndexResponse struct {
	Index uint64 `json:"index"`
	Term  uint64 `json:"term"`
}

// Faults is the body of /v1/test/faults (docs/faults.md): the test-only faults in force on one
// node. Durations are Go duration text ("150ms").
type Faults struct {
	DropIn               []string `json:"drop_in,omitempty"`
	DropOut              []string `json:"drop_out,omitempty"`
	Delay                string   `json:"delay,omitempty"`
	Jitter               string   `json:"jitter,omitempty"`
	Loss                 float64  `json:"loss,omitempty"`
	ClockOffset          string   `json:"clock_offset,omitempty"`
	UnsafeStrongReads    bool     `json:"unsafe_strong_reads,omitempty"`
	UnsafeEventualCommit bool     `json:"unsafe_eventual_commit,omitempty"`
}

// StatsResponse is the body of GET /v1/stats: this node's recent activity, one point per
// second, oldest first, for dashboards (the /ui page). Every series has len(Seconds) points.
type StatsResponse struct {
	Node string `json:"node"`
	// Seconds are the Unix times (seconds) of the points.
	Seconds []int64 `json:"seconds"`
	// Levels holds, per consistency level that served requests on this node, its series.
	Levels map[string]LevelSeries `json:"levels"`
	// Backlog is the number of tentative (uncommitted) eventual writes held, sampled each second.
	Backlog []int `json:"backlog"`
	// CommitLagP99Ms is, per second, the 99th percentile time from acknowledging an eventual
	// write on this node to its commit by Raft (0 when none committed that second).
	CommitLagP99Ms []float64 `json:"commit_lag_p99_ms"`
	// AppliedIndex is the node's applied Raft index, sampled each second.
	AppliedIndex []uint64 `json:"applied_index"`
}

// LevelSeries is one consistency level's per-second requests on one node.
type LevelSeries struct {
	Ops    []int     `json:"ops"`    // requests answered (reads and writes), errors included
	Errors []int     `json:"errors"` // answers with status >= 500 (409/404 are answers, not errors)
	P50Ms  []float64 `json:"p50_ms"` // latency percentiles of that second's requests (0: none)
	P99Ms  []float64 `json:"p99_ms"`
}
