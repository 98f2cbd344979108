// Package plant holds the bugs planted on purpose in kvd, so that the partition-test harness
// can be shown to catch them (kvjepsen selftest, jepsen/README.md "Does the harness catch
// bugs?"). Each bug is one switch, read at one site in the production code as `if plant.X`.
//
// In a normal build every switch is the constant false (off.go): the compiler drops the code
// it guards, and nothing at run time can turn it on. Only a build with `-tags plantbugs`
// (on.go) makes them variables, set once at start from the environment variable
// DIALKV_PLANT, a comma-separated list of bug names. Such a kvd must never serve real data.
//
// The package uses the standard library only and knows nothing of the code it breaks.
package plant

import (
	"fmt"
	"slices"
	"strings"
)

// EnvVar names the bugs a plantbugs build of kvd switches on.
const EnvVar = "DIALKV_PLANT"

// The planted bugs, by the name DIALKV_PLANT and kvjepsen use.
const (
	NameStrongReadLocal     = "strong-read-local"
	NameStrongAckEarly      = "strong-ack-early"
	NameEventualAckEarly    = "eventual-ack-early"
	NameMergeKeepsOlder     = "merge-keeps-older"
	NameSessionIgnoresToken = "session-ignores-token"
	NameBoundedUnchecked    = "bounded-unchecked"
	NamePurgeUnacknowledged = "purge-unacknowledged"
)

// Bug is one planted bug: its name and what it breaks (DESIGN.md, "Guarantees the partition
// tests check").
type Bug struct {
	Name, Breaks string
}

// Bugs lists every planted bug.
var Bugs = []Bug{
	{NameStrongReadLocal, "G1: a strong read is served from the node's own committed layer, with no read index and no leadership check"},
	{NameStrongAckEarly, "G1, G3: the leader acknowledges a strong write as soon as it hands it to Raft, before it is committed"},
	{NameEventualAckEarly, "G6: an eventual write is acknowledged before it is durable (stored and gossiped a second later), so a SIGKILL loses it"},
	{NameMergeKeepsOlder, "G2, G3: committing eventual writes keeps the older version (last-writer-wins inverted)"},
	{NameSessionIgnoresToken, "G4: a session read ignores the session token and is served at once from whatever the node holds"},
	{NameBoundedUnchecked, "G5: a bounded read ignores max_staleness and is served without any contact with the leader"},
	{NamePurgeUnacknowledged, "deletes: every committed tombstone is purged at once, without the members' acknowledgements and without raising the purge horizon, so an older eventual write brings a deleted key back"},
}

// Names returns the names of every planted bug, in Bugs order.
func Names() []string {
	names := make([]string, len(Bugs))
	for i, b := range Bugs {
		names[i] = b.Name
	}
	return names
}

// Parse turns a DIALKV_PLANT value (comma-separated names, blanks ignored) into the set of
// bugs it names; an unknown name is an error, so that a typo cannot pass for a planted bug.
func Parse(value string) (map[string]bool, error) {
	set := map[string]bool{}
	for _, name := range strings.Split(value, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		if !slices.Contains(Names(), name) {
			return nil, fmt.Errorf("%s: unknown planted bug %q: want one of %s", EnvVar, name, strings.Join(Names(), ", "))
		}
		set[name] = true
	}
	return set, nil
}
