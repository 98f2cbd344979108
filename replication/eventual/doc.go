// Package eventual is dialkv's gossip engine: hashicorp/memberlist membership and failure
// detection, dissemination of eventual writes (broadcasts, and direct transfer for values too big
// for a gossip packet), and anti-entropy (periodic digest exchange with a random peer, so a node
// that missed every broadcast still converges).
//
// It moves tentative writes between nodes and nothing else: it never orders them (Raft does,
// through the node's committer) and it must never import the strong engine.
//
// # How a write spreads
//
// The node stores an eventual write durably, then calls Broadcast, which hands it to the engine's
// pusher goroutine and returns. Each round the pusher takes everything handed over since the
// previous one. It sends the writes stamped on this node straight to a few alive peers, packed
// into as few UDP packets as the packet budget allows (one per peer for a typical group commit),
// so a write reaches them without waiting for a gossip tick; a lone write leaves at once. Then it
// queues every write as one memberlist NamedBroadcast named by its key (a newer write of the key
// replaces a queued older one): that copy delivers what the direct packet lost. memberlist
// transmits a message only RetransmitMult × ceil(log10(N+1)) times, so every node that receives
// a write it did not have queues it again: the epidemic stops by itself once everyone has it,
// because MergeTentative returns only what was new. Except when gossiping on is provably
// useless: a direct push that went to every alive member (the cluster is no bigger than
// EagerFanout + 1 and nobody is suspect) names its recipients, and a receiver that knows of no
// other live member stores its writes without queuing them (Stats.RelaysSkipped); the origin's
// queued copy and anti-entropy still stand behind it. A receiver merges what arrived together (a packed packet, and whatever else waited) in one
// MergeTentative call. A write whose value exceeds MaxBroadcastValue, or whose message would not
// fit the packet budget (memberlist silently never sends a larger one), travels as a notice
// {key, version, origin}; receivers fetch the write from the origin's GET PathWrites (bounded
// workers) and announce it again with themselves as origin.
//
// Anti-entropy repairs whatever gossip lost: every AntiEntropyInterval the engine POSTs its
// tentative digest (keys and versions, in pages of key ranges) to a random alive peer's
// PathDigest; the peer answers with its writes that are newer or missing here (within a byte
// budget; a truncated answer is asked again) and the keys where this node is newer, which this
// node then POSTs to PathWrites. Writes new to either side are gossiped on.
//
// # Rules kept
//
//   - memberlist's delegates never block and never call the store: received messages are copied
//     into a bounded inbox and merged in batches by the engine's own goroutine. What a full queue
//     drops, anti-entropy repairs.
//   - LocalState is empty: memberlist sends it whole on every push/pull. Data goes over HTTP.
//   - *memberlist.Node is read only inside event callbacks (memberlist rewrites those structs in
//     place); the engine keeps its own member table, which also remembers members memberlist
//     has forgotten (reported dead or left until Forget), and lists the members the node knows
//     of from elsewhere (Config.Known) as dead from its start until memberlist reports them.
//   - Membership is not persisted, so the engine re-joins, forever, every configured or once-known
//     peer that is not alive, and syncs with one random live peer each RejoinInterval.
//   - Member states: alive, dead and left come from memberlist's callbacks (left is told apart
//     from dead by a "leaving" flag the member sets in its metadata before leaving). Suspect is
//     this node's own failed probe, read from memberlist's log (it has no callback for it) and
//     cleared by the member's next direct answer.
//
// The wire formats are in wire.go; the HTTP endpoints in http.go.
package eventual
