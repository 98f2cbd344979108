package plant

import (
	"slices"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	cases := []struct {
		value   string
		want    []string
		wantErr string
	}{
		{value: "", want: nil},
		{value: " , ", want: nil},
		{value: NameMergeKeepsOlder, want: []string{NameMergeKeepsOlder}},
		{value: NameStrongReadLocal + ", " + NameBoundedUnchecked, want: []string{NameBoundedUnchecked, NameStrongReadLocal}},
		{value: "strong-reads-local", wantErr: "unknown planted bug"},
	}
	for _, c := range cases {
		t.Run(c.value, func(t *testing.T) {
			set, err := Parse(c.value)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("Parse(%q) error %v, want %q", c.value, err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for name := range set {
				got = append(got, name)
			}
			slices.Sort(got)
			if !slices.Equal(got, c.want) {
				t.Errorf("Parse(%q) = %v, want %v", c.value, got, c.want)
			}
		})
	}
}

func TestNamesUnique(t *testing.T) {
	names := Names()
	if len(names) == 0 {
		t.Fatal("no planted bugs")
	}
	seen := map[string]bool{}
	for i, n := range names {
		if seen[n] || n == "" || Bugs[i].Breaks == "" {
			t.Errorf("bug %d: name %q repeated, empty or without what it breaks", i, n)
		}
		seen[n] = true
	}
}
