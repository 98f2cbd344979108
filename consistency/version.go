package consistency

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Version orders the values of one key. It is a hybrid logical clock timestamp (Wall, in Unix
// nanoseconds, and a Logical counter for events within one wall tick) plus the id of the node
// that stamped it. Versions are totally ordered: by Wall, then Logical, then Node. The zero
// Version is older than every stamped one and means "no version".
type Version struct {
	Wall    int64
	Logical uint32
	Node    string
}

// ErrBadVersion is returned by ParseVersion for text that is not a version.
var ErrBadVersion = errors.New("malformed version")

// Compare returns -1, 0 or +1 as v is older than, equal to or newer than w.
func (v Version) Compare(w Version) int {
	switch {
	case v.Wall < w.Wall:
		return -1
	case v.Wall > w.Wall:
		return 1
	case v.Logical < w.Logical:
		return -1
	case v.Logical > w.Logical:
		return 1
	}
	return strings.Compare(v.Node, w.Node)
}

// Newer reports whether v is strictly newer than w.
func (v Version) Newer(w Version) bool { return v.Compare(w) > 0 }

// IsZero reports whether v is the zero Version (no version).
func (v Version) IsZero() bool { return v == Version{} }

// Successor returns the smallest timestamp strictly after v's, stamped by node. It is how a strong
// write that arrives with an older stamp than the committed value still lands after it in
// version order ("current committed version + 1"). The logical counter saturates by carrying into
// the wall clock, so ordering holds even after 2^32 successors within one nanosecond. The wall
// clock itself wraps at the end of int64 time (to 1677): no version the log takes comes near it
// (MaxWall), and the state machine applies this rule as it is, as every binary of a cluster must.
func (v Version) Successor(node string) Version {
	if v.Logical == ^uint32(0) {
		return Version{Wall: v.Wall + 1, Node: node}
	}
	return Version{Wall: v.Wall, Logical: v.Logical + 1, Node: node}
}

// Stamped reports whether a clock can have stamped v: its wall time is after 1970 and not past
// MaxWall. Other versions are forged or corrupt, and the log takes none (Successor wraps at the
// end of int64 time, which would break the state machine's rule for strong writes).
func (v Version) Stamped() bool { return v.Wall > 0 && v.Wall <= MaxWall }

// strongMark ends the node part of every version a leader stamps on a strong write ("n1/s").
// Node ids cannot contain '/' (node.Config.Validate has refused it since the first release), so
// no Clock is named so and Now never issues such a version. The strong writes' space is where
// their successor versions land too: applying a strong write whose stamp fell behind the key
// gives it the key's version's Successor under the stamp's node, and were that node plain "n1",
// n1's clock could issue the very same version to an eventual write of the key (see NowStrong).
const strongMark = "/s"

// StampedBy is the id of the node that stamped v: its Node, without the mark of a strong write.
func (v Version) StampedBy() string { return strings.TrimSuffix(v.Node, strongMark) }

// Strong reports whether v is in a strong-write space: a version the state machine gave a strong
// write, committed in the Raft log from the moment anyone saw it.
func (v Version) Strong() bool { return strings.HasSuffix(v.Node, strongMark) }

// Max returns the newer of v and w.
func Max(v, w Version) Version {
	if w.Newer(v) {
		return w
	}
	return v
}

// String renders v as WALL.LOGICAL@NODE, the form used in headers, CLI output and conditional
// writes. The zero version renders as "".
func (v Version) String() string {
	if v.IsZero() {
		return ""
	}
	var buf [64]byte
	return string(v.Append(buf[:0]))
}

// Append appends v's String form to b (an answer renders a version or two per request; this
// keeps it to the one allocation of the final string).
func (v Version) Append(b []byte) []byte {
	if v.IsZero() {
		return b
	}
	b = strconv.AppendInt(b, v.Wall, 10)
	b = append(b, '.')
	b = strconv.AppendUint(b, uint64(v.Logical), 10)
	b = append(b, '@')
	return append(b, v.Node...)
}

// ParseVersion parses the String form. "" parses to the zero Version.
func ParseVersion(s string) (Version, error) {
	if s == "" {
		return Version{}, nil
	}
	stamp, node, ok := strings.Cut(s, "@")
	if !ok || node == "" {
		return Version{}, fmt.Errorf("%w %q: want WALL.LOGICAL@NODE", ErrBadVersion, s)
	}
	wallText, logicalText, ok := strings.Cut(stamp, ".")
	if !ok {
		return Version{}, fmt.Errorf("%w %q: want WALL.LOGICAL@NODE", ErrBadVersion, s)
	}
	wall, err := strconv.ParseInt(wallText, 10, 64)
	if err != nil || wall < 0 {
		return Version{}, fmt.Errorf("%w %q: bad wall time", ErrBadVersion, s)
	}
	logical, err := strconv.ParseUint(logicalText, 10, 32)
	if err != nil {
		return Version{}, fmt.Errorf("%w %q: bad logical counter", ErrBadVersion, s)
	}
	return Version{Wall: wall, Logical: uint32(logical), Node: node}, nil
}
