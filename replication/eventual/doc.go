// Package eventual is dialkv's gossip engine: hashicorp/memberlist membership and failure
// detection, dissemination of eventual writes (broadcasts, and direct transfer for values too big
// for a gossip packet), and anti-entropy (periodic digest exchange with a random peer, so a node
// that missed every broadcast still converges).
//
// It moves tentative writes between nodes and nothing else: it never orders them (Raft does,
// through the node's committer) and it must never import the strong engine.
package eventual
