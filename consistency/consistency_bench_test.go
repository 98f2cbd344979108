package consistency

import (
	"runtime"
	"strconv"
	"testing"
)

// Versions are compared on every merge, every tentative write and every committed put, and
// rendered and parsed on every request (headers, session tokens, conditional writes).

func BenchmarkVersionCompare(b *testing.B) {
	cases := []struct {
		name string
		v, w Version
	}{
		{"wall-differs", Version{Wall: 1_700_000_000_000_000_001, Node: "n1"}, Version{Wall: 1_700_000_000_000_000_000, Node: "n1"}},
		{"node-decides", Version{Wall: 1_700_000_000_000_000_000, Logical: 3, Node: "node-2"}, Version{Wall: 1_700_000_000_000_000_000, Logical: 3, Node: "node-1"}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			sum := 0
			for b.Loop() {
				sum += c.v.Compare(c.w)
			}
			if sum == 0 {
				b.Fatal("compare found the versions equal")
			}
		})
	}
}

func BenchmarkMerge(b *testing.B) {
	older := Value{Version: Version{Wall: 1_700_000_000_000_000_000, Node: "n1"}, Data: make([]byte, 128)}
	newer := Value{Version: Version{Wall: 1_700_000_000_000_000_000, Logical: 1, Node: "n1"}, Data: make([]byte, 128)}
	b.ReportAllocs()
	for b.Loop() {
		if Merge(older, newer).Version != newer.Version {
			b.Fatal("merge kept the older version")
		}
	}
}

func BenchmarkVersionString(b *testing.B) {
	v := Version{Wall: 1_700_000_000_123_456_789, Logical: 12, Node: "n1"}
	b.ReportAllocs()
	for b.Loop() {
		if v.String() == "" {
			b.Fatal("empty")
		}
	}
}

func BenchmarkParseVersion(b *testing.B) {
	s := Version{Wall: 1_700_000_000_123_456_789, Logical: 12, Node: "n1"}.String()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseVersion(s); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkClockNow stamps versions from 1 and from many goroutines: every write takes the
// clock's lock once.
func BenchmarkClockNow(b *testing.B) {
	for _, par := range []int{1, 64} {
		b.Run("goroutines="+strconv.Itoa(par), func(b *testing.B) {
			c := NewClock("n1", nil)
			b.ReportAllocs()
			if par == 1 {
				for b.Loop() {
					c.Now()
				}
				return
			}
			b.SetParallelism(max(1, par/runtime.GOMAXPROCS(0)))
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					c.Now()
				}
			})
		})
	}
}
