//go:build !plantbugs

package plant

// Built is whether this is a plantbugs build.
const Built = false

// The switches: constants, so the compiler drops what they guard and nothing can set them.
const (
	StrongReadLocal     = false
	StrongAckEarly      = false
	EventualAckEarly    = false
	MergeKeepsOlder     = false
	SessionIgnoresToken = false
	BoundedUnchecked    = false
	PurgeUnacknowledged = false
)

// Active lists the bugs switched on: none, in a normal build.
func Active() []string { return nil }

// Err is why DIALKV_PLANT could not be read: never, in a normal build (it is not read).
func Err() error { return nil }
