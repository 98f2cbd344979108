// Package jepsen is dialkv's partition-test harness: it starts a cluster of real kvd processes
// (backend), drives concurrent clients against it (workloads), injects faults on a schedule
// (nemeses), records every operation (history), and after healing and settling checks the
// history against the guarantees of DESIGN.md ("Guarantees the partition tests check"):
// linearizable strong operations (porcupine, partitioned by key), no lost acknowledged write,
// session guarantees, bounded staleness, and convergence of every node at every read level.
// Each run writes its history, checker results, plots and report.md under a store directory;
// cmd/kvjepsen is its command line.
//
// Backends: netns (Linux, root) puts each kvd in a network namespace of its own, joined by a
// bridge that lives in a hub namespace the harness creates, and cuts links with nftables rules
// in that hub; local runs kvd on 127.0.0.1 and cuts links through kvd's test-only fault hook
// (docs/faults.md). Clock skew and delays always go through the fault hook (packet loss on netns
// is an nftables rule too).
//
// The harness must never report a maybe-applied write as failed, never touch network state it
// did not create, and never leave processes or namespaces behind on exit (it cleans up on
// errors and on cancellation; `kvjepsen --clean` removes what a killed run left). Nothing in
// the module imports this package.
package jepsen
