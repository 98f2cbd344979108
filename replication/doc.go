// Package replication holds what both replication paths share: the commands that travel through
// the Raft log (and their versioned binary encoding), the results of applying them, and the
// errors every layer returns. The engines live in sub-packages: store (the bbolt layers), strong
// (hashicorp/raft) and eventual (memberlist); strong and eventual never import each other.
//
// This package must stay free of I/O and of any engine's types, so that every engine, the node and
// the tests can speak it.
package replication
