package consistency

import (
	"errors"
	"math"
	"math/rand"
	"sync"
	"testing"
	"time"
)

func TestParseLevels(t *testing.T) {
	reads := []struct {
		in   string
		want Level
		ok   bool
	}{
		{"", Strong, true}, {"strong", Strong, true}, {"BOUNDED", Bounded, true},
		{"session", Session, true}, {" eventual ", Eventual, true}, {"linearizable", "", false},
	}
	for _, tc := range reads {
		got, err := ParseRead(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseRead(%q) = %q, %v; want %q ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrUnknownLevel) {
			t.Errorf("ParseRead(%q) error %v is not ErrUnknownLevel", tc.in, err)
		}
	}
	for _, bad := range []string{"bounded", "session", "quorum"} {
		if _, err := ParseWrite(bad); !errors.Is(err, ErrUnknownLevel) {
			t.Errorf("ParseWrite(%q) = %v, want ErrUnknownLevel", bad, err)
		}
	}
	if l, err := ParseWrite("eventual"); err != nil || l != Eventual {
		t.Errorf("ParseWrite(eventual) = %q, %v", l, err)
	}
}

func TestVersionOrder(t *testing.T) {
	ordered := []Version{
		{},
		{Wall: 1, Logical: 0, Node: "n2"},
		{Wall: 1, Logical: 1, Node: "n1"},
		{Wall: 1, Logical: 1, Node: "n2"},
		{Wall: 2, Logical: 0, Node: "n1"},
	}
	for i := range ordered {
		for j := range ordered {
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if got := ordered[i].Compare(ordered[j]); got != want {
				t.Errorf("%v.Compare(%v) = %d, want %d", ordered[i], ordered[j], got, want)
			}
		}
	}
}

func TestVersionSuccessor(t *testing.T) {
	v := Version{Wall: 10, Logical: 3, Node: "n9"}
	s := v.Successor("n1")
	if !s.Newer(v) || s.Node != "n1" || s.Wall != 10 || s.Logical != 4 {
		t.Errorf("Successor = %v, want 10.4@n1 newer than %v", s, v)
	}
	sat := Version{Wall: 10, Logical: ^uint32(0), Node: "z"}
	if s := sat.Successor("a"); !s.Newer(sat) {
		t.Errorf("Successor of saturated %v = %v, not newer", sat, s)
	}
}

func TestVersionText(t *testing.T) {
	for _, v := range []Version{{}, {Wall: 1732298000123456789, Logical: 7, Node: "n3"}, {Wall: 5, Node: "node-with.dots"}, {Wall: 6, Logical: 1, Node: "n1/s"}} {
		got, err := ParseVersion(v.String())
		if err != nil || got != v {
			t.Errorf("round trip %v: got %v, %v", v, got, err)
		}
	}
	for _, bad := range []string{"1", "1@n1", "a.b@n1", "1.2@", "-1.0@n1", "1.99999999999@n1"} {
		if _, err := ParseVersion(bad); !errors.Is(err, ErrBadVersion) {
			t.Errorf("ParseVersion(%q) = %v, want ErrBadVersion", bad, err)
		}
	}
}

func TestClockMonotonicUnderStuckAndBackwardTime(t *testing.T) {
	var mu sync.Mutex
	now := time.Unix(100, 0)
	c := NewClock("n1", func() time.Time { mu.Lock(); defer mu.Unlock(); return now })
	prev := c.Now()
	for i := 0; i < 1000; i++ {
		if i == 500 {
			mu.Lock()
			now = now.Add(-time.Hour) // the wall clock jumps back
			mu.Unlock()
		}
		v := c.Now()
		if !v.Newer(prev) {
			t.Fatalf("step %d: %v not newer than %v", i, v, prev)
		}
		if v.Node != "n1" {
			t.Fatalf("node = %q", v.Node)
		}
		prev = v
	}
}

func TestClockObserve(t *testing.T) {
	c := NewClock("n1", func() time.Time { return time.Unix(100, 0) })
	ahead := Version{Wall: time.Unix(105, 0).UnixNano(), Logical: 9, Node: "n2"}
	c.Observe(ahead)
	if v := c.Now(); !v.Newer(ahead) {
		t.Errorf("after Observe(%v), Now = %v is not newer", ahead, v)
	}
	if d := c.Drift(); d != 5*time.Second {
		t.Errorf("Drift = %v, want 5s", d)
	}
	before := c.Now()
	c.Observe(Version{Wall: 1, Node: "n3"}) // older: no effect
	if v := c.Now(); !v.Newer(before) || v.Wall != before.Wall {
		t.Errorf("observing an old version moved the clock: %v after %v", v, before)
	}
}

// Versions travel from peers (gossip, anti-entropy, committed entries) unchecked. One at the end
// of int64 time, observed, made the next timestamp wrap around to 1677: one gossip packet, and
// each node's next write was older than everything and lost to last-writer-wins. Such a
// version is not observed; one a century ahead still is.
func TestClockIgnoresVersionsNoClockStamps(t *testing.T) {
	c := NewClock("n1", func() time.Time { return time.Unix(100, 0) })
	before := c.Now()
	c.Observe(Version{Wall: math.MaxInt64, Logical: math.MaxUint32, Node: "forged"})
	if v := c.Now(); !v.Newer(before) || v.Wall != before.Wall {
		t.Errorf("after observing the end of time, Now = %v, want the clock where it was (after %v)", v, before)
	}
	century := Version{Wall: time.Date(2126, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano(), Node: "n2"}
	c.Observe(century)
	if v := c.Now(); !v.Newer(century) {
		t.Errorf("after Observe(%v), Now = %v is not newer", century, v)
	}
}

func TestClockObserveWithin(t *testing.T) {
	c := NewClock("n1", func() time.Time { return time.Unix(100, 0) })
	near := Version{Wall: time.Unix(103, 0).UnixNano(), Logical: 2, Node: "n2"}
	if cut := c.ObserveWithin(near, 10*time.Second); cut {
		t.Errorf("a version 3s ahead was cut at a 10s bound")
	}
	if v := c.Now(); !v.Newer(near) {
		t.Errorf("after ObserveWithin(%v), Now = %v is not newer", near, v)
	}
	far := Version{Wall: time.Unix(100+3600, 0).UnixNano(), Node: "n2"}
	if cut := c.ObserveWithin(far, 10*time.Second); !cut {
		t.Errorf("a version an hour ahead was not cut at a 10s bound")
	}
	if d := c.Drift(); d != 10*time.Second {
		t.Errorf("Drift after a cut observation = %v, want the 10s bound", d)
	}
}

// A strong stamp is a fresh timestamp like any other, in a node space no clock issues: neither
// it nor a successor derived from it (as applying a strong write that fell behind its key does)
// is ever a version Now issues, whatever the clock observed in between.
func TestClockNowStrong(t *testing.T) {
	c := NewClock("n1", func() time.Time { return time.Unix(100, 0) }) // stuck: logical counters only
	issued := map[Version]bool{}
	prev := c.Now()
	issued[prev] = true
	for i := 0; i < 100; i++ {
		s := c.NowStrong()
		if s.Node != "n1/s" || s.StampedBy() != "n1" || !s.Strong() || !s.Newer(prev) {
			t.Fatalf("NowStrong = %v after %v: want a newer version stamped by n1 in its strong space", s, prev)
		}
		c.Observe(Version{Wall: s.Wall, Logical: s.Logical + 3, Node: "n2"}) // the key moves ahead
		succ := Version{Wall: s.Wall, Logical: s.Logical + 3, Node: "n2"}.Successor(s.Node)
		for j := 0; j < 5; j++ {
			prev = c.Now()
			issued[prev] = true
		}
		if issued[s] || issued[succ] {
			t.Fatalf("Now issued the strong stamp %v or its successor %v", s, succ)
		}
	}
	if v := c.Now(); v.StampedBy() != "n1" || v.Node != "n1" || v.Strong() {
		t.Errorf("Now = %v: StampedBy of a plain version is its node", v)
	}
}

func TestClockConcurrentUnique(t *testing.T) {
	c := NewClock("n1", nil)
	const goroutines, each = 8, 500
	seen := make(chan Version, goroutines*each)
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				seen <- c.Now()
			}
		}()
	}
	wg.Wait()
	close(seen)
	uniq := map[Version]bool{}
	for v := range seen {
		if uniq[v] {
			t.Fatalf("version %v issued twice", v)
		}
		uniq[v] = true
	}
}

func randomValue(r *rand.Rand) Value {
	// A small domain so that equal versions (with different data) happen often.
	return Value{
		Version:   Version{Wall: int64(r.Intn(3)), Logical: uint32(r.Intn(2)), Node: []string{"n1", "n2"}[r.Intn(2)]},
		Tombstone: r.Intn(4) == 0,
		Data:      []byte{byte('a' + r.Intn(3))},
	}
}

func equalValue(a, b Value) bool {
	return a.Version == b.Version && a.Tombstone == b.Tombstone && string(a.Data) == string(b.Data)
}

func TestMergeAlgebra(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	for i := 0; i < 20000; i++ {
		a, b, c := randomValue(r), randomValue(r), randomValue(r)
		if !equalValue(Merge(a, b), Merge(b, a)) {
			t.Fatalf("not commutative: %+v %+v", a, b)
		}
		if !equalValue(Merge(Merge(a, b), c), Merge(a, Merge(b, c))) {
			t.Fatalf("not associative: %+v %+v %+v", a, b, c)
		}
		if !equalValue(Merge(a, a), a) {
			t.Fatalf("not idempotent: %+v", a)
		}
		if m := Merge(a, b); m.Version.Compare(a.Version) < 0 || m.Version.Compare(b.Version) < 0 {
			t.Fatalf("merge %+v of %+v and %+v is older than an input", m, a, b)
		}
	}
}

// Versions order by wall, then logical, then node id compared as a string, whatever form they
// travel in. Node ids that are prefixes of each other, and a node's strong-write space ("n1/s"),
// sort between them by that string order; the text form (headers, JSON, if_version) parses back
// to the same version, so it orders the same.
func TestVersionOrderIsTheSameInTextForm(t *testing.T) {
	const w = 1732298000123456789
	ordered := []Version{
		{Wall: 0, Logical: 1, Node: "n1"},
		{Wall: w, Logical: 0, Node: "n9"},
		{Wall: w, Logical: 1, Node: "n1"},
		{Wall: w, Logical: 1, Node: "n1/s"},
		{Wall: w, Logical: 1, Node: "n10"},
		{Wall: w, Logical: 1, Node: "n10/s"},
		{Wall: w, Logical: 1, Node: "n2"},
		{Wall: w, Logical: math.MaxUint32, Node: "a"},
		{Wall: w + 1, Logical: 0, Node: "a"},
		{Wall: MaxWall, Logical: 0, Node: "n1"},
	}
	for i, a := range ordered {
		for j, b := range ordered {
			want := 0
			switch {
			case i < j:
				want = -1
			case i > j:
				want = 1
			}
			if got := a.Compare(b); got != want {
				t.Errorf("%v.Compare(%v) = %d, want %d", a, b, got, want)
			}
			pa, errA := ParseVersion(a.String())
			pb, errB := ParseVersion(b.String())
			if errA != nil || errB != nil || pa != a || pb != b || pa.Compare(pb) != want {
				t.Errorf("text forms %q and %q parse to %v (%v) and %v (%v), comparing %d, want %d", a, b, pa, errA, pb, errB, pa.Compare(pb), want)
			}
		}
	}
}

// A clock whose wall time stands still gives each timestamp the next logical counter; at the
// counter's limit it carries into the wall time rather than wrapping to 0, which would issue a
// timestamp older than the ones before it. The same after observing a version at the limit.
func TestClockLogicalCounterCarriesAtItsLimit(t *testing.T) {
	const wall = 100 * int64(time.Second)
	c := NewClock("n1", func() time.Time { return time.Unix(0, wall) })
	limit := Version{Wall: wall, Logical: math.MaxUint32, Node: "n2"}
	c.Observe(limit)
	v := c.Now()
	if !v.Newer(limit) || v.Wall != wall+1 || v.Logical != 0 {
		t.Errorf("after observing %v with the wall clock at %d, Now = %v, want %d.0@n1", limit, wall, v, wall+1)
	}
	if next := c.Now(); !next.Newer(v) {
		t.Errorf("Now = %v after %v", next, v)
	}
	if s := limit.Successor("n1/s"); !s.Newer(limit) || s != (Version{Wall: wall + 1, Node: "n1/s"}) {
		t.Errorf("Successor of %v = %v", limit, s)
	}
}

// A wall clock that jumps past MaxWall for a while (a bad RTC or time server) makes the clock
// issue versions no caller takes; once the wall clock reads sane again, the clock stamps sane,
// still monotonic versions at once, rather than staying past MaxWall until the process ends.
func TestClockRecoversFromAWallClockPastMaxWall(t *testing.T) {
	var mu sync.Mutex
	now := time.Unix(100, 0)
	set := func(at time.Time) { mu.Lock(); now = at; mu.Unlock() }
	c := NewClock("n1", func() time.Time { mu.Lock(); defer mu.Unlock(); return now })
	before := c.Now()
	set(time.Unix(0, MaxWall).Add(time.Hour))
	for i := 0; i < 3; i++ {
		if v := c.Now(); v.Stamped() {
			t.Fatalf("with the wall clock past MaxWall, Now = %v, a version callers take", v)
		}
	}
	set(time.Unix(100, 0)) // the clock is fixed
	v := c.Now()
	if !v.Stamped() || !v.Newer(before) || v.Wall != before.Wall {
		t.Errorf("with the wall clock back, Now = %v, want a stamped version just after %v", v, before)
	}
	if d := c.Drift(); d != 0 {
		t.Errorf("Drift = %v after the wall clock came back", d)
	}
}
