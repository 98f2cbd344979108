package consistency

// Value is one version of a key as the merge rule sees it: a value or a tombstone.
type Value struct {
	Version   Version
	Tombstone bool
	Data      []byte
}

// Merge is the last-writer-wins rule that every replica applies to combine two versions of one
// key: the newer version wins, whole. It is commutative, associative and idempotent (property
// tests check this), so replicas that see the same set of writes in any order and any number of
// times agree. Versions are unique per write (a node never stamps the same version twice), so two
// different values never share a version; if they did, the one with the larger bytes would win,
// which keeps the rule a total order even then.
func Merge(a, b Value) Value {
	switch c := a.Version.Compare(b.Version); {
	case c > 0:
		return a
	case c < 0:
		return b
	}
	if a.Tombstone != b.Tombstone {
		if a.Tombstone {
			return a
		}
		return b
	}
	if string(a.Data) >= string(b.Data) {
		return a
	}
	return b
}
