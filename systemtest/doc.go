// Package systemtest runs real kvd processes on loopback and checks, from the outside, the
// promises DESIGN.md makes: failover, honest failure without a quorum, and no acknowledged write
// lost to SIGKILL. The binaries are built once per run (TestMain); the tests are skipped with
// -short.
package systemtest
