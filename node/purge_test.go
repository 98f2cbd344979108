package node

import (
	"slices"
	"testing"

	"github.com/dialkv/dialkv/consistency"
)

// reportsSinceRemoval: a removal it has not seen yet makes every member with a report due
// until its report moves past the one it held then; members without a report, and members no
// longer in the table, are not its business (purging waits for the first anyway).
func TestReportsDueSinceARemoval(t *testing.T) {
	v := func(wall int64) consistency.Version { return consistency.Version{Wall: wall, Node: "x"} }
	var r reportsSinceRemoval
	steps := []struct {
		name    string
		removed map[string]bool
		reports map[string]consistency.Version
		want    []string
	}{
		{"a node starting in a cluster without removals", nil, map[string]consistency.Version{"a": v(1), "b": v(1)}, nil},
		{"a removal: every report is due", map[string]bool{"c": true}, map[string]consistency.Version{"a": v(2), "b": v(2), "z": {}}, []string{"a", "b"}},
		{"a moved, b held still (an old write it holds)", map[string]bool{"c": true}, map[string]consistency.Version{"a": v(3), "b": v(2), "z": {}}, []string{"b"}},
		{"b moved too", map[string]bool{"c": true}, map[string]consistency.Version{"a": v(4), "b": v(5), "z": v(5)}, nil},
		{"the same removal again: nothing due", map[string]bool{"c": true}, map[string]consistency.Version{"a": v(4), "b": v(5), "z": v(5)}, nil},
		{"another removal, of b", map[string]bool{"c": true, "b": true}, map[string]consistency.Version{"a": v(6), "z": v(6)}, []string{"a", "z"}},
		{"z removed as well before reporting", map[string]bool{"c": true, "b": true}, map[string]consistency.Version{"a": v(7)}, nil},
	}
	for _, s := range steps {
		got := r.due(s.removed, s.reports)
		slices.Sort(got)
		if !slices.Equal(got, s.want) {
			t.Errorf("%s: due %v, want %v", s.name, got, s.want)
		}
	}
}
