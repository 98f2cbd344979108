// Package consistency holds the vocabulary every other dialkv package shares: the consistency
// levels a caller can ask for, versions (hybrid logical clock timestamps plus the id of the node
// that stamped them), the clock that makes them, and the last-writer-wins merge rule.
//
// It is pure: standard library only, no I/O, no goroutines. It must never import raft, bbolt,
// memberlist or anything in this module, so that every layer can depend on it.
package consistency
