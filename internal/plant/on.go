//go:build plantbugs

package plant

import "os"

// Built is whether this is a plantbugs build.
const Built = true

// active is read once, before main: the switches never change while kvd runs.
var active, parseErr = Parse(os.Getenv(EnvVar))

// The switches, from DIALKV_PLANT.
var (
	StrongReadLocal     = active[NameStrongReadLocal]
	StrongAckEarly      = active[NameStrongAckEarly]
	EventualAckEarly    = active[NameEventualAckEarly]
	MergeKeepsOlder     = active[NameMergeKeepsOlder]
	SessionIgnoresToken = active[NameSessionIgnoresToken]
	BoundedUnchecked    = active[NameBoundedUnchecked]
	PurgeUnacknowledged = active[NamePurgeUnacknowledged]
)

// Active lists the bugs switched on, in Bugs order.
func Active() []string {
	var on []string
	for _, name := range Names() {
		if active[name] {
			on = append(on, name)
		}
	}
	return on
}

// Err is why DIALKV_PLANT could not be read (an unknown name); kvd refuses to start then.
func Err() error { return parseErr }
