package node

import (
	"slices"
	"testing"

	"github.com/dialkv/dialkv/consistency"
)

// reportsSinceRemoval: a change of the members table in a cluster that has had a removal makes
// every member with a report due until its report moves past the one it held then; members
// without a report, and members no longer in the table, are not its business (purging waits
// for the first anyway).
func TestReportsDueSinceARemoval(t *testing.T) {
	v := func(wall int64) consistency.Version { return consistency.Version{Wall: wall, Node: "x"} }
	var r reportsSinceRemoval
	c := map[string]bool{"c": true}
	steps := []struct {
		name    string
		gen     uint64
		removed map[string]bool
		reports map[string]consistency.Version
		want    []string
	}{
		{"a node starting in a cluster without removals", 0, nil, map[string]consistency.Version{"a": v(1), "b": v(1)}, nil},
		{"a join, no removal yet", 1, nil, map[string]consistency.Version{"a": v(1), "b": v(1), "z": {}}, nil},
		{"a removal: every report is due", 2, c, map[string]consistency.Version{"a": v(2), "b": v(2), "z": {}}, []string{"a", "b"}},
		{"a moved, b held still (an old write it holds)", 2, c, map[string]consistency.Version{"a": v(3), "b": v(2), "z": {}}, []string{"b"}},
		{"b moved too", 2, c, map[string]consistency.Version{"a": v(4), "b": v(5), "z": v(5)}, nil},
		{"the same table again: nothing due", 2, c, map[string]consistency.Version{"a": v(4), "b": v(5), "z": v(5)}, nil},
		{"c joined again and was removed again, unseen between", 4, c, map[string]consistency.Version{"a": v(6), "b": v(6), "z": v(6)}, []string{"a", "b", "z"}},
		{"another removal, of b", 5, map[string]bool{"c": true, "b": true}, map[string]consistency.Version{"a": v(7), "z": v(6)}, []string{"a", "z"}},
		{"z removed as well, before it reported", 6, map[string]bool{"c": true, "b": true, "z": true}, map[string]consistency.Version{"a": v(8)}, []string{"a"}},
		{"a moved", 6, map[string]bool{"c": true, "b": true, "z": true}, map[string]consistency.Version{"a": v(9)}, nil},
	}
	for _, s := range steps {
		got := r.due(s.gen, s.removed, s.reports)
		slices.Sort(got)
		if !slices.Equal(got, s.want) {
			t.Errorf("%s: due %v, want %v", s.name, got, s.want)
		}
	}
}
