package jepsen

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dialkv/dialkv/client"
	"github.com/dialkv/dialkv/consistency"
)

// Hand-made histories. Times are in milliseconds since the run started.

const ms1 = int64(time.Millisecond)

type hist struct {
	ops []*Op
}

func (h *hist) add(o Op) *Op {
	o.ID = len(h.ops) + 1
	if o.Key == "" {
		o.Key = "register/s00.0"
	}
	if o.Level == "" {
		o.Level = client.ConsistencyStrong
	}
	if o.Type == "" {
		o.Type = TypeOK
	}
	o.Invoke *= ms1
	if o.Complete != maxTime {
		o.Complete *= ms1
	}
	if o.Node == "" {
		o.Node = "n1"
	}
	p := &o
	h.ops = append(h.ops, p)
	return p
}

func (h *hist) write(p int, v string, from, to int64, typ string) *Op {
	return h.add(Op{Process: p, F: FWrite, Value: v, Invoke: from, Complete: to, Type: typ})
}

func (h *hist) read(p int, v string, from, to int64) *Op {
	return h.add(Op{Process: p, F: FRead, Value: v, Absent: v == "", Invoke: from, Complete: to})
}

func mustLinear(t *testing.T, h *hist, want bool) CheckResult {
	t.Helper()
	res := CheckLinearizability("register", h.ops, LinearConfig{Timeout: 10 * time.Second, Dir: t.TempDir()})
	if res.Valid != want {
		t.Fatalf("linearizable = %v, want %v: %s %+v", res.Valid, want, res.Summary, res.Anomalies)
	}
	return res
}

func TestLinearizableHistoryPasses(t *testing.T) {
	h := &hist{}
	h.read(0, "", 0, 5)
	h.write(1, "1", 10, 20, TypeOK)
	h.read(0, "1", 15, 25) // concurrent with the write: may see it
	h.write(2, "2", 30, 40, TypeOK)
	h.read(0, "2", 45, 50)
	h.add(Op{Process: 1, F: FCAS, From: "2", Value: "3", Invoke: 55, Complete: 60})
	h.add(Op{Process: 2, F: FCAS, From: "2", Value: "4", Invoke: 65, Complete: 70, Type: TypeFail, Code: client.CodeConflict})
	h.read(0, "3", 75, 80)
	mustLinear(t, h, true)
}

func TestStaleReadIsNotLinearizable(t *testing.T) {
	h := &hist{}
	h.write(1, "1", 0, 10, TypeOK)
	h.write(2, "2", 20, 30, TypeOK)
	stale := h.read(3, "1", 40, 45) // "2" was acknowledged before the read began
	stale.Node, stale.ServedBy = "n3", "n3"
	res := mustLinear(t, h, false)
	var kinds []string
	for _, a := range res.Anomalies {
		kinds = append(kinds, a.Kind)
	}
	if !strings.Contains(strings.Join(kinds, ","), "not-linearizable") || !strings.Contains(strings.Join(kinds, ","), "stale-read") {
		t.Fatalf("anomalies %v, want not-linearizable and stale-read", kinds)
	}
	// The offending read is shown.
	found := false
	for _, a := range res.Anomalies {
		for _, o := range a.Ops {
			if strings.Contains(o, `n3 strong read register/s00.0 -> "1"`) {
				found = true
			}
		}
	}
	if !found {
		t.Errorf("the stale read is not among the shown operations: %+v", res.Anomalies)
	}
	if len(res.Files) != 1 || !strings.HasSuffix(res.Files[0], ".html") {
		t.Errorf("no visualization written: %v", res.Files)
	}
}

func TestAbsentAfterAcknowledgedWriteIsStale(t *testing.T) {
	h := &hist{}
	h.write(1, "1", 0, 10, TypeOK)
	h.read(2, "", 20, 25)
	mustLinear(t, h, false)
}

func TestIndeterminateWriteIsNeverFailed(t *testing.T) {
	// The write's answer never came; a later read sees its value. Treating it as failed
	// would make this history illegal.
	h := &hist{}
	h.write(1, "1", 0, 10, TypeOK)
	h.write(2, "2", 20, 30, TypeInfo)
	h.read(3, "2", 40, 45)
	h.read(3, "2", 50, 55)
	mustLinear(t, h, true)

	// It may also never take effect.
	h = &hist{}
	h.write(1, "1", 0, 10, TypeOK)
	h.write(2, "2", 20, 30, TypeInfo)
	h.read(3, "1", 40, 45)
	mustLinear(t, h, true)

	// But once seen, it cannot be undone.
	h = &hist{}
	h.write(1, "1", 0, 10, TypeOK)
	h.write(2, "2", 20, 30, TypeInfo)
	h.read(3, "2", 40, 45)
	h.read(3, "1", 50, 55)
	mustLinear(t, h, false)
}

func TestFailedWriteDidNotHappen(t *testing.T) {
	h := &hist{}
	h.write(1, "1", 0, 10, TypeOK)
	w := h.write(2, "2", 20, 30, TypeFail)
	w.Code = client.CodeNoLeader
	h.read(3, "2", 40, 45)
	mustLinear(t, h, false)
}

func TestIndeterminateCAS(t *testing.T) {
	h := &hist{}
	h.write(1, "1", 0, 10, TypeOK)
	h.add(Op{Process: 2, F: FCAS, From: "1", Value: "2", Invoke: 20, Complete: 30, Type: TypeInfo})
	h.read(3, "2", 40, 45)
	mustLinear(t, h, true)

	// An indeterminate cas whose condition cannot hold cannot have written.
	h = &hist{}
	h.write(1, "1", 0, 10, TypeOK)
	h.add(Op{Process: 2, F: FCAS, From: "9", Value: "2", Invoke: 20, Complete: 30, Type: TypeInfo})
	h.read(3, "2", 40, 45)
	mustLinear(t, h, false)
}

func TestEventualWritesMayTakeEffectLaterOrNever(t *testing.T) {
	h := &hist{}
	h.write(1, "1", 0, 10, TypeOK)
	ev := h.write(2, "e", 20, 22, TypeOK)
	ev.Level = client.ConsistencyEventual
	h.write(1, "3", 30, 40, TypeOK)
	h.read(3, "3", 45, 50)
	h.read(3, "e", 60, 65) // the eventual write committed after "3": allowed (last writer wins by version)
	mustLinear(t, h, true)

	// Seen before it was issued: impossible.
	h = &hist{}
	h.read(3, "e", 0, 5)
	ev = h.write(2, "e", 20, 22, TypeOK)
	ev.Level = client.ConsistencyEventual
	mustLinear(t, h, false)
}

func TestLinearOpsBoundsObservedUnknownWrites(t *testing.T) {
	h := &hist{}
	w := h.write(1, "1", 0, 10, TypeInfo)
	h.read(2, "1", 20, 30)
	h.read(2, "1", 40, 50)
	h.write(3, "2", 60, 70, TypeInfo) // never observed, no cas on the key: dropped
	pops := linearOps(h.ops)
	if len(pops) != 3 {
		t.Fatalf("%d operations, want 3 (the unobserved unknown write dropped)", len(pops))
	}
	for _, p := range pops {
		if p.Metadata.(*Op) == w && p.Return != 30*ms1 {
			t.Errorf("observed unknown write returns at %d, want the first read's return %d", p.Return, 30*ms1)
		}
	}
	// With a cas on the key, an unobserved unknown write stays, unbounded.
	h.add(Op{Process: 4, F: FCAS, From: "1", Value: "3", Invoke: 80, Complete: 90, Type: TypeFail, Code: client.CodeConflict})
	pops = linearOps(h.ops)
	unbounded := 0
	for _, p := range pops {
		if p.Return == maxTime {
			unbounded++
		}
	}
	if unbounded != 1 {
		t.Errorf("%d unbounded operations, want 1", unbounded)
	}
}

func TestCheckerTimeoutIsFailure(t *testing.T) {
	// Forty concurrent indeterminate writes and a read of a value nobody wrote: an
	// exponential search that cannot finish in a millisecond.
	h := &hist{}
	for i := range 40 {
		h.write(i, string(rune('A'+i)), 0, 10, TypeInfo)
	}
	h.add(Op{Process: 99, F: FCAS, From: "zz", Value: "y", Invoke: 20, Complete: 30, Type: TypeFail, Code: client.CodeConflict})
	h.read(100, "never-written", 40, 50)
	res := CheckLinearizability("register", h.ops, LinearConfig{Timeout: time.Millisecond})
	if res.Valid {
		t.Fatalf("a timed-out check passed: %s", res.Summary)
	}
	if res.Anomalies[0].Kind != "checker-timeout" {
		t.Errorf("anomaly %q, want checker-timeout", res.Anomalies[0].Kind)
	}
}

func TestDurability(t *testing.T) {
	mk := func() *hist {
		h := &hist{}
		a := h.write(1, "a", 0, 10, TypeOK)
		a.Key, a.Version = "set/1-0", "100.0@n1"
		b := h.write(2, "b", 0, 10, TypeOK)
		b.Key, b.Version, b.Level = "set/2-0", "101.0@n2", client.ConsistencyEventual
		c := h.write(3, "c", 0, 10, TypeInfo)
		c.Key = "set/3-0"
		d := h.write(4, "d", 0, 10, TypeFail)
		d.Key = "set/4-0"
		return h
	}
	good := map[string]FinalValue{"set/1-0": {"a", "100.0@n1"}, "set/2-0": {"b", "101.0@n2"}}
	if res := CheckDurability(CheckerSet, "set", mk().ops, good); !res.Valid {
		t.Fatalf("good history failed: %s %+v", res.Summary, res.Anomalies)
	}
	// The unknown write may be there too.
	withUnknown := map[string]FinalValue{"set/1-0": {"a", "100.0@n1"}, "set/2-0": {"b", "101.0@n2"}, "set/3-0": {"c", "102.0@n3"}}
	if res := CheckDurability(CheckerSet, "set", mk().ops, withUnknown); !res.Valid {
		t.Fatalf("visible unknown write flagged: %+v", res.Anomalies)
	}
	cases := []struct {
		name  string
		final map[string]FinalValue
		kind  string
	}{
		{"lost acknowledged write", map[string]FinalValue{"set/1-0": {"a", "100.0@n1"}}, "lost-write"},
		{"superseded by an older version", map[string]FinalValue{"set/1-0": {"a", "100.0@n1"}, "set/2-0": {"x", "99.0@n1"}}, "lost-write"},
		{"invented key", map[string]FinalValue{"set/1-0": {"a", "100.0@n1"}, "set/2-0": {"b", "101.0@n2"}, "set/9-9": {"z", "1.0@n1"}}, "invented"},
		{"rejected write visible", map[string]FinalValue{"set/1-0": {"a", "100.0@n1"}, "set/2-0": {"b", "101.0@n2"}, "set/4-0": {"d", "103.0@n1"}}, "failed-write-visible"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := CheckDurability(CheckerSet, "set", mk().ops, tc.final)
			if res.Valid {
				t.Fatalf("passed: %s", res.Summary)
			}
			if res.Anomalies[0].Kind != tc.kind {
				t.Errorf("anomaly %q, want %q: %+v", res.Anomalies[0].Kind, tc.kind, res.Anomalies)
			}
		})
	}
}

func TestSessionChecker(t *testing.T) {
	sess := func(h *hist, f, v, version string, at int64) *Op {
		o := Op{Process: 1, Session: 1, F: f, Value: v, Version: version, Invoke: at, Complete: at + 5, Key: "session/k0", Level: client.ConsistencySession}
		if f == FWrite {
			o.Level = client.ConsistencyEventual
		}
		return h.add(o)
	}
	h := &hist{}
	sess(h, FWrite, "1", "100.0@n1", 0)
	sess(h, FRead, "1", "100.0@n1", 10)
	sess(h, FRead, "2", "105.0@n2", 20) // someone else's newer write: fine
	sess(h, FRead, "2", "105.0@n2", 30)
	if res := CheckSessions("session", h.ops); !res.Valid {
		t.Fatalf("good session failed: %+v", res.Anomalies)
	}

	h = &hist{}
	sess(h, FWrite, "1", "100.0@n1", 0)
	sess(h, FRead, "0", "90.0@n3", 10) // older than its own write
	res := CheckSessions("session", h.ops)
	if res.Valid || res.Anomalies[0].Kind != "read-your-writes" {
		t.Fatalf("read-your-writes violation not flagged: %+v", res)
	}

	h = &hist{}
	sess(h, FWrite, "1", "100.0@n1", 0)
	absent := sess(h, FRead, "", "", 10)
	absent.Absent = true
	if res := CheckSessions("session", h.ops); res.Valid || res.Anomalies[0].Kind != "read-your-writes" {
		t.Fatalf("own write missing not flagged: %+v", res)
	}

	h = &hist{}
	sess(h, FRead, "2", "105.0@n2", 0)
	sess(h, FRead, "1", "100.0@n1", 10) // back in time
	if res := CheckSessions("session", h.ops); res.Valid || res.Anomalies[0].Kind != "monotonic-reads" {
		t.Fatalf("monotonic-reads violation not flagged: %+v", res)
	}

	// The session's later write stamped older than its earlier write, or than what it read.
	h = &hist{}
	sess(h, FWrite, "1", "100.0@n1", 0)
	sess(h, FWrite, "2", "99.0@n2", 10)
	if res := CheckSessions("session", h.ops); res.Valid || res.Anomalies[0].Kind != "monotonic-writes" {
		t.Fatalf("a later write with an older version not flagged: %+v", res)
	}
	h = &hist{}
	sess(h, FRead, "7", "105.0@n3", 0)
	sess(h, FWrite, "8", "101.0@n2", 10)
	if res := CheckSessions("session", h.ops); res.Valid || res.Anomalies[0].Kind != "writes-follow-reads" {
		t.Fatalf("a write older than a value read before it not flagged: %+v", res)
	}
	h = &hist{}
	sess(h, FWrite, "1", "100.0@n1", 0)
	sess(h, FWrite, "2", "101.0@n2", 10)
	sess(h, FRead, "2", "101.0@n2", 20)
	if res := CheckSessions("session", h.ops); !res.Valid {
		t.Fatalf("ordered session writes flagged: %+v", res.Anomalies)
	}

	// Another session's reads do not constrain this one.
	h = &hist{}
	sess(h, FRead, "2", "105.0@n2", 0)
	other := sess(h, FRead, "1", "100.0@n1", 10)
	other.Session = 2
	if res := CheckSessions("session", h.ops); !res.Valid {
		t.Fatalf("two sessions mixed up: %+v", res.Anomalies)
	}
}

// A session's strong delete (or create-if-absent) of a key it has just written eventually must
// come after that write (docs/http-api.md, Sessions): its later reads of the key must not show
// the deleted value again.
func TestSessionCheckerDeletes(t *testing.T) {
	const key = "session/d1-0"
	at := int64(0)
	op := func(h *hist, o Op) *Op {
		o.Process, o.Key, o.Invoke, o.Complete = 1, key, at, at+5
		if o.Session == 0 {
			o.Session = 1
		}
		at += 10
		return h.add(o)
	}
	write := func(h *hist, v, version string) *Op {
		return op(h, Op{F: FWrite, Level: client.ConsistencyEventual, Value: v, Version: version})
	}
	del := func(h *hist, typ, version string) *Op {
		o := Op{F: FDelete, Type: typ, Version: version}
		if typ == TypeFail {
			o.Code = client.CodeNotFound
		}
		return op(h, o)
	}
	read := func(h *hist, v, version string) *Op {
		return op(h, Op{F: FRead, Level: client.ConsistencySession, Value: v, Absent: v == "", Version: version})
	}
	create := func(h *hist, v, typ, version string) *Op {
		o := Op{F: FCAS, FromAbsent: true, Value: v, Type: typ, Version: version}
		if typ == TypeFail {
			o.Code = client.CodeConflict
		}
		return op(h, o)
	}
	kinds := func(res CheckResult) []string {
		var ks []string
		for _, a := range res.Anomalies {
			ks = append(ks, a.Kind)
		}
		return ks
	}
	cases := []struct {
		name  string
		build func(h *hist)
		want  []string // anomaly kinds; none: the history is fine
	}{
		{"read after the delete finds the key absent, then the new value", func(h *hist) {
			write(h, "1", "100.0@n1")
			del(h, TypeOK, "101.0@n2/s")
			read(h, "", "")
			create(h, "2", TypeOK, "102.0@n3/s")
			read(h, "2", "102.0@n3/s")
			write(h, "3", "103.0@n1")
			create(h, "4", TypeFail, "103.0@n1") // conflicts with the session's write: right
			read(h, "3", "103.0@n1")
		}, nil},
		{"read after the acknowledged delete returns the deleted value", func(h *hist) {
			write(h, "1", "100.0@n1")
			del(h, TypeOK, "101.0@n2/s")
			read(h, "1", "100.0@n1")
		}, []string{"read-your-deletes"}},
		{"the delete found nothing, and the write came back", func(h *hist) {
			// The bug: the delete was judged before the session's eventual write was committed.
			write(h, "1", "100.0@n1")
			del(h, TypeFail, "")
			read(h, "1", "100.0@n1")
		}, []string{"delete-missed-write", "read-your-deletes"}},
		{"the delete found nothing at an older tombstone", func(h *hist) {
			del(h, TypeOK, "90.0@n2/s")
			write(h, "1", "100.0@n1")
			del(h, TypeFail, "90.0@n2/s")
			read(h, "", "")
		}, []string{"delete-missed-write"}},
		{"create-if-absent succeeded over the session's own write", func(h *hist) {
			write(h, "1", "100.0@n1")
			create(h, "2", TypeOK, "101.0@n2/s")
			read(h, "2", "101.0@n2/s")
		}, []string{"create-over-value"}},
		{"create-if-absent after the delete conflicts with the deleted value", func(h *hist) {
			write(h, "1", "100.0@n1")
			del(h, TypeOK, "101.0@n2/s")
			create(h, "2", TypeFail, "100.0@n1")
		}, []string{"read-your-deletes"}},
		{"a delete in doubt may have happened, or not", func(h *hist) {
			write(h, "1", "100.0@n1")
			del(h, TypeInfo, "")
			read(h, "1", "100.0@n1")
			read(h, "", "")
			create(h, "2", TypeOK, "102.0@n3/s")
			read(h, "2", "102.0@n3/s")
		}, nil},
		{"a delete in doubt does not excuse a read of an older value", func(h *hist) {
			write(h, "1", "100.0@n1")
			del(h, TypeInfo, "")
			read(h, "0", "99.0@n1")
		}, []string{"read-your-writes"}},
		{"a delete in doubt is settled by the next strong answer", func(h *hist) {
			write(h, "1", "100.0@n1")
			del(h, TypeInfo, "")
			create(h, "2", TypeFail, "100.0@n1") // the delete did not happen (yet: never)
			read(h, "", "")
		}, []string{"monotonic-reads"}},
		{"another session deletes the key", func(h *hist) {
			write(h, "1", "100.0@n1")
			op(h, Op{Session: 2, F: FDelete, Version: "101.0@n2/s"})
			read(h, "", "")
			create(h, "2", TypeOK, "102.0@n3/s")
		}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := &hist{}
			at = 0
			tc.build(h)
			res := CheckSessions("session", h.ops)
			if got := kinds(res); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("anomalies %v, want %v: %s %+v", got, tc.want, res.Summary, res.Anomalies)
			}
			if res.Valid != (len(tc.want) == 0) {
				t.Fatalf("valid = %v with anomalies %v", res.Valid, tc.want)
			}
		})
	}
}

func TestStalenessChecker(t *testing.T) {
	h := &hist{}
	for i, at := range []int64{0, 100, 200, 300} {
		w := h.write(0, string(rune('1'+i)), at, at+10, TypeOK)
		w.Key = "staleness/k0"
	}
	fresh := h.read(1, "4", 320, 325)
	fresh.Key, fresh.Level, fresh.Bound, fresh.Staleness = "staleness/k0", client.ConsistencyBounded, 100*time.Millisecond, "20ms"
	ev := h.read(2, "1", 500, 505) // eventual: measured, never a violation
	ev.Key, ev.Level = "staleness/k0", client.ConsistencyEventual
	cfg := StalenessConfig{Tolerance: 50 * time.Millisecond}
	res := CheckStaleness("staleness", h.ops, cfg)
	if !res.Valid {
		t.Fatalf("fresh reads failed: %+v", res.Anomalies)
	}
	st := res.Stats[client.ConsistencyEventual].(map[string]any)
	if st["versions_max"].(float64) != 3 || st["ms_max"].(float64) != 390 {
		t.Errorf("eventual staleness %v, want 3 versions and 390ms", st)
	}

	stale := h.read(1, "2", 400, 405) // "3" acknowledged at 210: 190ms stale, bound 100+50
	stale.Key, stale.Level, stale.Bound, stale.Staleness = "staleness/k0", client.ConsistencyBounded, 100*time.Millisecond, "20ms"
	res = CheckStaleness("staleness", h.ops, cfg)
	if res.Valid || res.Anomalies[0].Kind != "staleness-bound" {
		t.Fatalf("too stale bounded read not flagged: %+v", res)
	}
}

// A write whose outcome was unknown can take effect after later ones; a read of it then shows
// the key's newest version though its number is smaller (a 8-minute kvjepsen soak flagged such
// a read as 2.3 s stale). With versions in the history, newer is by version.
func TestStalenessCheckerOrdersByVersion(t *testing.T) {
	h := &hist{}
	late := h.write(0, "2", 0, maxTime, TypeInfo) // committed at last, after "3"
	late.Key = "staleness/k0"
	for i, w := range []struct{ value, version string }{{"1", "100.0@n1"}, {"3", "300.0@n1"}} {
		op := h.write(0, w.value, int64(i)*100, int64(i)*100+10, TypeOK)
		op.Key, op.Version = "staleness/k0", w.version
	}
	newest := h.read(1, "2", 2000, 2005)
	newest.Key, newest.Level, newest.Bound, newest.Version, newest.Staleness = "staleness/k0", client.ConsistencyBounded, 100*time.Millisecond, "400.0@n1", "20ms"
	cfg := StalenessConfig{Tolerance: 50 * time.Millisecond}
	if res := CheckStaleness("staleness", h.ops, cfg); !res.Valid {
		t.Fatalf("a read of the newest version flagged stale: %+v", res.Anomalies)
	}
	older := h.read(1, "1", 2100, 2105)
	older.Key, older.Level, older.Bound, older.Version, older.Staleness = "staleness/k0", client.ConsistencyBounded, 100*time.Millisecond, "100.0@n1", "20ms"
	if res := CheckStaleness("staleness", h.ops, cfg); res.Valid {
		t.Fatal("a read of an old version, a newer one acknowledged 2 s before, not flagged")
	}
}

func TestDescribeOp(t *testing.T) {
	o := &Op{Process: 3, Node: "n2", Level: "strong", F: FCAS, Key: "k", From: "1", Value: "2", Type: TypeInfo,
		Invoke: 1500 * ms1, Complete: maxTime, ServedBy: "n1", Error: "outcome_unknown: timeout"}
	got := describeOp(o)
	for _, want := range []string{"[1.500s..never]", "p3", "n2 strong cas k \"1\" -> \"2\"", "info", "served by n1", "outcome_unknown"} {
		if !strings.Contains(got, want) {
			t.Errorf("%q lacks %q", got, want)
		}
	}
}

func TestVisualizationFileIsHTML(t *testing.T) {
	h := &hist{}
	h.write(1, "1", 0, 10, TypeOK)
	h.read(2, "", 20, 25)
	dir := t.TempDir()
	res := CheckLinearizability("register", h.ops, LinearConfig{Dir: dir})
	if len(res.Files) == 0 {
		t.Fatal("no file")
	}
	b, err := os.ReadFile(filepath.Join(dir, res.Files[0]))
	if err != nil || !strings.Contains(string(b), "<html") {
		t.Fatalf("visualization: %v, %.80q", err, b)
	}
}

func TestCheckDeletes(t *testing.T) {
	v := func(wall int64) string { return consistency.Version{Wall: wall, Node: "n1"}.String() }
	op := func(f, key, value, ver, typ string) *Op {
		return &Op{F: f, Key: key, Value: value, Version: ver, Type: typ, Level: "eventual"}
	}
	ops := []*Op{
		// kept: written, deleted, written again; ends with the last write.
		op(FWrite, "d/kept", "1", v(10), TypeOK), op(FDelete, "d/kept", "", v(20), TypeOK), op(FWrite, "d/kept", "2", v(30), TypeOK),
		// gone: written then deleted; absent at the end.
		op(FWrite, "d/gone", "3", v(10), TypeOK), op(FDelete, "d/gone", "", v(20), TypeOK),
		// doubt: written, then a delete of unknown outcome; absent is fine.
		op(FWrite, "d/doubt", "4", v(10), TypeOK), op(FDelete, "d/doubt", "", "", TypeInfo),
		// back: deleted after the write, but the old value is there at the end.
		op(FWrite, "d/back", "5", v(10), TypeOK), op(FDelete, "d/back", "", v(20), TypeOK),
		// lost: written after the delete, absent at the end.
		op(FDelete, "d/lost", "", v(10), TypeOK), op(FWrite, "d/lost", "6", v(20), TypeOK),
		// failed: a rejected delete changes nothing.
		op(FWrite, "d/failed", "7", v(10), TypeOK), op(FDelete, "d/failed", "", "", TypeFail),
	}
	final := map[string]FinalValue{
		"d/kept":   {Value: "2", Version: v(30)},
		"d/back":   {Value: "5", Version: v(10)},
		"d/failed": {Value: "7", Version: v(10)},
	}
	cr := CheckDeletes("d", ops, final)
	if cr.Valid || cr.Checker != CheckerDeletes {
		t.Fatalf("want invalid %s, got %+v", CheckerDeletes, cr)
	}
	kinds := map[string]string{}
	for _, a := range cr.Anomalies {
		kinds[a.Key] = a.Kind
	}
	want := map[string]string{"d/back": "resurrected", "d/lost": "lost-write"}
	if !reflect.DeepEqual(kinds, want) {
		t.Errorf("anomalies by key %v, want %v", kinds, want)
	}
	// Without the two bad keys the same history is valid.
	var good []*Op
	for _, o := range ops {
		if o.Key != "d/back" && o.Key != "d/lost" {
			good = append(good, o)
		}
	}
	delete(final, "d/back")
	if cr := CheckDeletes("d", good, final); !cr.Valid || !strings.Contains(cr.Summary, "no deleted key came back") {
		t.Errorf("valid history judged %+v", cr)
	}
}

// A strong read made after a strong delete was acknowledged must not return a value the delete
// superseded, even if the key ends up right.
func TestCheckDeletesFlagsReadsOfDeletedValues(t *testing.T) {
	v := func(wall int64) string { return consistency.Version{Wall: wall, Node: "n1"}.String() }
	at := func(o Op, invoke, complete int64) *Op {
		o.Type, o.Invoke, o.Complete = TypeOK, invoke, complete
		return &o
	}
	ops := []*Op{
		at(Op{F: FWrite, Key: "d/k", Value: "1", Version: v(10), Level: client.ConsistencyStrong}, 0, 5),
		at(Op{F: FDelete, Key: "d/k", Version: v(20), Level: client.ConsistencyStrong}, 10, 15),
		at(Op{F: FRead, Key: "d/k", Value: "1", Version: v(10), Level: client.ConsistencyStrong}, 12, 14), // concurrent with the delete: fine
		at(Op{F: FRead, Key: "d/k", Value: "1", Version: v(10), Level: client.ConsistencyStrong}, 20, 22), // after it: resurrected
		at(Op{F: FWrite, Key: "d/k", Value: "2", Version: v(30), Level: client.ConsistencyEventual}, 25, 26),
		at(Op{F: FRead, Key: "d/k", Value: "2", Version: v(30), Level: client.ConsistencyStrong}, 40, 41), // newer than the delete: fine
	}
	final := map[string]FinalValue{"d/k": {Value: "2", Version: v(30)}}
	cr := CheckDeletes("d", ops, final)
	if cr.Valid || len(cr.Anomalies) != 1 || cr.Anomalies[0].Kind != "resurrected" || !strings.Contains(cr.Anomalies[0].Description, "strong read") {
		t.Fatalf("want one resurrected read, got %+v", cr)
	}
	if cr := CheckDeletes("d", append(ops[:3:3], ops[4:]...), final); !cr.Valid || cr.Stats["strong_reads"] != 2 {
		t.Errorf("without the stale read: %+v", cr)
	}
}

func TestClockInversionsAreMeasured(t *testing.T) {
	w := func(h *hist, level, key, version string, invoke, complete int64) {
		h.add(Op{F: FWrite, Level: level, Key: key, Value: version, Version: version, Invoke: invoke, Complete: complete})
	}
	h := &hist{}
	w(h, client.ConsistencyEventual, "k", "2000000000.0@n2", 0, 10)    // stamped 1 s ahead
	w(h, client.ConsistencyStrong, "k", "1500000000.0@n1", 20, 30)     // later, older version: loses
	w(h, client.ConsistencyStrong, "k", "2500000000.0@n1", 40, 50)     // later and newer: wins
	w(h, client.ConsistencyStrong, "k", "1000000000.0@n1", 5, 8)       // before the eventual write: not compared
	w(h, client.ConsistencyEventual, "other", "900000000.0@n3", 0, 10) // no strong write after it
	res := CheckClockInversions("mixed", h.ops)
	if !res.Valid {
		t.Fatalf("a measurement failed: %+v", res)
	}
	if res.Stats["eventual_writes_compared"] != 1 || res.Stats["eventual_writes_inverted"] != 1 || res.Stats["strong_writes_lost"] != 1 {
		t.Fatalf("stats %v, want 1 compared, 1 inverted, 1 strong write lost", res.Stats)
	}
	if res.Stats["max_stamp_lead_ms"] != int64(500) {
		t.Errorf("max lead %v ms, want 500", res.Stats["max_stamp_lead_ms"])
	}
	if !strings.Contains(res.Summary, "1 of 1 eventual writes won over 1 strong writes") {
		t.Errorf("summary %q", res.Summary)
	}

	h = &hist{}
	w(h, client.ConsistencyEventual, "k", "1000000000.0@n2", 0, 10)
	w(h, client.ConsistencyStrong, "k", "1000000001.0@n1", 20, 30)
	if res := CheckClockInversions("mixed", h.ops); res.Stats["eventual_writes_inverted"] != 0 || !strings.HasPrefix(res.Summary, "no clock inversion") {
		t.Errorf("no inversion: %+v", res)
	}
}

// A checker that examined none of what its verdict rests on must not pass: a run whose strong
// reads all failed, whose bounded reads were all refused, or that never acknowledged a write
// or a delete shows nothing about the guarantee, and PASS would say it held.
func TestNothingCheckedIsNoPass(t *testing.T) {
	failedReads := func() []*Op {
		h := &hist{}
		h.write(1, "1", 0, 10, TypeOK)
		h.add(Op{Process: 2, F: FRead, Invoke: 20, Complete: 30, Type: TypeFail, Error: "no_leader"})
		return h.ops
	}
	noAck := func(level string) []*Op {
		h := &hist{}
		h.add(Op{Process: 1, F: FWrite, Value: "1", Level: level, Invoke: 0, Complete: 10, Type: TypeFail})
		h.add(Op{Process: 1, F: FWrite, Value: "2", Level: level, Invoke: 20, Complete: maxTime, Type: TypeInfo})
		return h.ops
	}
	for _, tc := range []struct {
		name string
		run  func() CheckResult
	}{
		{"linearizability without an answered strong read", func() CheckResult {
			return CheckLinearizability("register", failedReads(), LinearConfig{Timeout: 5 * time.Second})
		}},
		{"linearizability of an empty history", func() CheckResult {
			return CheckLinearizability("register", nil, LinearConfig{Timeout: 5 * time.Second})
		}},
		{"durability without an acknowledged write", func() CheckResult {
			return CheckDurability(CheckerDurability, "register", noAck(client.ConsistencyStrong), map[string]FinalValue{})
		}},
		{"set without an acknowledged write", func() CheckResult {
			return CheckDurability(CheckerSet, "set", noAck(client.ConsistencyEventual), map[string]FinalValue{})
		}},
		{"sessions without an answered session read", func() CheckResult {
			h := &hist{}
			h.add(Op{Process: 1, Session: 1, F: FWrite, Value: "1", Level: client.ConsistencyEventual, Invoke: 0, Complete: 10, Version: "100.0@n1"})
			h.add(Op{Process: 1, Session: 1, F: FRead, Level: client.ConsistencySession, Invoke: 20, Complete: 30, Type: TypeFail, Error: "stale"})
			return CheckSessions("session", h.ops)
		}},
		{"staleness without an answered bounded read", func() CheckResult {
			h := &hist{}
			h.add(Op{Process: 1, Key: "staleness/k0", F: FWrite, Value: "1", Invoke: 0, Complete: 10, Version: "100.0@n1/s"})
			h.add(Op{Process: 2, Key: "staleness/k0", F: FRead, Value: "1", Level: client.ConsistencyEventual, Invoke: 20, Complete: 30, Version: "100.0@n1/s"})
			h.add(Op{Process: 3, Key: "staleness/k0", F: FRead, Level: client.ConsistencyBounded, Bound: time.Second, Invoke: 20, Complete: 30, Type: TypeFail, Error: "stale"})
			return CheckStaleness("staleness", h.ops, StalenessConfig{Tolerance: 100 * time.Millisecond})
		}},
		{"deletes without an acknowledged delete", func() CheckResult {
			h := &hist{}
			h.add(Op{Process: 1, Key: "delete/s00.0", F: FWrite, Value: "1", Invoke: 0, Complete: 10, Version: "100.0@n1/s"})
			h.add(Op{Process: 1, Key: "delete/s00.0", F: FDelete, Invoke: 20, Complete: 30, Type: TypeFail, Error: "no_leader"})
			return CheckDeletes("delete", h.ops, map[string]FinalValue{"delete/s00.0": {Value: "1", Version: "100.0@n1/s"}})
		}},
		{"levels without an answer naming its level", func() CheckResult {
			h := &hist{}
			h.add(Op{Process: 1, F: FWrite, Value: "1", Invoke: 0, Complete: 10, Served: client.ConsistencyStrong, Type: TypeFail})
			h.add(Op{Process: 2, F: FRead, Value: "1", Invoke: 20, Complete: 30})
			return CheckLevels(h.ops)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := tc.run()
			if res.Valid {
				t.Fatalf("passed having checked nothing: %s", res.Summary)
			}
			if n := len(res.Anomalies); n == 0 || res.Anomalies[n-1].Kind != "nothing-checked" || !strings.Contains(res.Summary, "nothing checked") {
				t.Errorf("failed, but not for having checked nothing: %s %+v", res.Summary, res.Anomalies)
			}
		})
	}
}

// Strong and bounded reads see the committed layer only. One answered from the tentative layer
// is flagged even when the history still linearizes (an eventual write may take effect at any
// time after it was issued, so reading it before its commit usually does).
func TestTentativeStrongAndBoundedReadsAreFlagged(t *testing.T) {
	h := &hist{}
	h.write(1, "1", 0, 10, TypeOK)
	h.add(Op{Process: 2, F: FWrite, Value: "2", Level: client.ConsistencyEventual, Invoke: 20, Complete: 25, Version: "200.0@n2", State: client.StateTentative})
	h.add(Op{Process: 3, F: FRead, Value: "2", Invoke: 30, Complete: 35, Version: "200.0@n2", State: client.StateTentative})
	res := mustLinear(t, h, false)
	if res.Anomalies[0].Kind != "tentative-read" {
		t.Errorf("anomalies %+v, want tentative-read", res.Anomalies)
	}
	h.ops[2].State = client.StateCommitted
	mustLinear(t, h, true)

	s := &hist{}
	s.add(Op{Process: 1, Key: "staleness/k0", F: FWrite, Value: "1", Invoke: 0, Complete: 10, Version: "100.0@n1/s"})
	s.add(Op{Process: 2, Key: "staleness/k0", F: FRead, Value: "1", Level: client.ConsistencyBounded, Bound: time.Second, Invoke: 20, Complete: 30, Version: "100.0@n1/s", State: client.StateTentative, Staleness: "5ms"})
	cfg := StalenessConfig{Tolerance: 100 * time.Millisecond}
	if res := CheckStaleness("staleness", s.ops, cfg); res.Valid || res.Anomalies[0].Kind != "tentative-read" {
		t.Errorf("a bounded read of tentative data passed: %s %+v", res.Summary, res.Anomalies)
	}
	s.ops[1].State = client.StateCommitted
	if res := CheckStaleness("staleness", s.ops, cfg); !res.Valid {
		t.Errorf("a committed bounded read failed: %s %+v", res.Summary, res.Anomalies)
	}
}

// Every answer names the level it served, and a node refuses a level it cannot give: an answer
// served at another level than asked fails the run, whatever the value (a bounded read served
// as eventual may well show the right value).
func TestLevelServedIsChecked(t *testing.T) {
	h := &hist{}
	h.add(Op{Process: 1, F: FWrite, Value: "1", Invoke: 0, Complete: 10, Served: client.ConsistencyStrong})
	h.add(Op{Process: 2, F: FRead, Value: "1", Level: client.ConsistencyBounded, Invoke: 20, Complete: 30, Served: client.ConsistencyBounded})
	h.add(Op{Process: 3, F: FRead, Level: client.ConsistencySession, Invoke: 20, Complete: 30, Type: TypeFail, Served: client.ConsistencyEventual})
	h.add(Op{Process: 4, F: FRead, Value: "1", Invoke: 40, Complete: 50}) // no level named
	res := CheckLevels(h.ops)
	if !res.Valid || res.Stats["operations"] != 2 {
		t.Fatalf("answers at their level failed or were miscounted: %s %+v", res.Summary, res.Stats)
	}
	h.add(Op{Process: 5, F: FRead, Value: "1", Level: client.ConsistencyBounded, Invoke: 60, Complete: 70, Served: client.ConsistencyEventual, ServedBy: "n3"})
	res = CheckLevels(h.ops)
	if res.Valid || len(res.Anomalies) != 1 || res.Anomalies[0].Kind != "level-served" || res.Anomalies[0].Node != "n3" {
		t.Fatalf("a bounded read served as eventual passed: %s %+v", res.Summary, res.Anomalies)
	}
	if !strings.Contains(res.Anomalies[0].Ops[0], "served as eventual") {
		t.Errorf("the report line does not say what was served: %s", res.Anomalies[0].Ops[0])
	}
}

// The durability checks order writes by version: an acknowledged write whose answer carried
// none could have been lost without them noticing, as long as the key holds anything. Every
// answer reports its version (DESIGN.md), so one without is flagged.
func TestUnversionedAckIsFlagged(t *testing.T) {
	h := &hist{}
	h.add(Op{Process: 1, F: FWrite, Value: "1", Invoke: 0, Complete: 10, Version: "100.0@n1/s"})
	h.add(Op{Process: 2, F: FWrite, Value: "2", Invoke: 20, Complete: 30}) // acknowledged, no version
	final := map[string]FinalValue{"register/s00.0": {Value: "1", Version: "100.0@n1/s"}}
	res := CheckDurability(CheckerDurability, "register", h.ops, final)
	if res.Valid || res.Anomalies[0].Kind != "unversioned-ack" {
		t.Errorf("a write acknowledged without a version, and gone, passed: %s %+v", res.Summary, res.Anomalies)
	}

	d := &hist{}
	d.add(Op{Process: 1, Key: "delete/s00.0", F: FWrite, Value: "1", Invoke: 0, Complete: 10, Version: "100.0@n1/s"})
	d.add(Op{Process: 1, Key: "delete/s00.0", F: FDelete, Invoke: 20, Complete: 30}) // acknowledged, no version
	res = CheckDeletes("delete", d.ops, map[string]FinalValue{"delete/s00.0": {Value: "1", Version: "100.0@n1/s"}})
	if res.Valid || res.Anomalies[0].Kind != "unversioned-ack" {
		t.Errorf("a delete acknowledged without a version, with the value still there, passed: %s %+v", res.Summary, res.Anomalies)
	}
}

// A strong write is committed when acknowledged and a key's committed version never goes back:
// a strong operation begun after it that finds the key absent (a read, a 404 delete, a
// create-if-absent that writes) needs a delete that could be newer, and one that reads a value
// needs one at least as new.
func TestCheckDeletesFlagsObservationsBehindWrites(t *testing.T) {
	const key = "delete/s00.0"
	base := func() *hist {
		h := &hist{}
		h.add(Op{Process: 1, Key: key, F: FWrite, Value: "1", Invoke: 0, Complete: 10, Version: "90.0@n1/s"})
		h.add(Op{Process: 1, Key: key, F: FWrite, Value: "2", Invoke: 20, Complete: 30, Version: "100.0@n1/s"})
		h.add(Op{Process: 3, Key: key, F: FDelete, Invoke: 200, Complete: 210, Version: "300.0@n1/s"}) // keeps the check from being vacuous
		return h
	}
	final := map[string]FinalValue{}
	for _, tc := range []struct {
		name string
		add  func(h *hist)
		want string // anomaly kind, "" for none
	}{
		{"delete found nothing after the write", func(h *hist) {
			h.add(Op{Process: 2, Key: key, F: FDelete, Invoke: 40, Complete: 50, Type: TypeFail, Code: client.CodeNotFound})
		}, "lost-value"},
		{"read found nothing after the write", func(h *hist) {
			h.add(Op{Process: 2, Key: key, F: FRead, Absent: true, Invoke: 40, Complete: 50})
		}, "lost-value"},
		{"create-if-absent wrote over the write", func(h *hist) {
			h.add(Op{Process: 2, Key: key, F: FCAS, FromAbsent: true, Value: "3", Invoke: 40, Complete: 50, Version: "110.0@n1/s"})
		}, "lost-value"},
		{"read returned the older value", func(h *hist) {
			h.add(Op{Process: 2, Key: key, F: FRead, Value: "1", Invoke: 40, Complete: 50, Version: "90.0@n1/s"})
		}, "stale-read"},
		{"an eventual delete at a newer version explains the absence", func(h *hist) {
			h.add(Op{Process: 4, Key: key, F: FDelete, Level: client.ConsistencyEventual, Invoke: 35, Complete: 36, Version: "105.0@n2"})
			h.add(Op{Process: 2, Key: key, F: FDelete, Invoke: 40, Complete: 50, Type: TypeFail, Code: client.CodeNotFound})
		}, ""},
		{"a delete in doubt explains the absence", func(h *hist) {
			h.add(Op{Process: 4, Key: key, F: FDelete, Invoke: 45, Complete: maxTime, Type: TypeInfo})
			h.add(Op{Process: 2, Key: key, F: FRead, Absent: true, Invoke: 40, Complete: 50})
		}, ""},
		{"an older eventual delete does not", func(h *hist) {
			h.add(Op{Process: 4, Key: key, F: FDelete, Level: client.ConsistencyEventual, Invoke: 35, Complete: 36, Version: "95.0@n2"})
			h.add(Op{Process: 2, Key: key, F: FRead, Absent: true, Invoke: 40, Complete: 50})
		}, "lost-value"},
		{"a read concurrent with the write may miss it", func(h *hist) {
			h.add(Op{Process: 2, Key: key, F: FRead, Value: "1", Invoke: 25, Complete: 50, Version: "90.0@n1/s"})
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := base()
			tc.add(h)
			res := CheckDeletes("delete", h.ops, final)
			var kinds []string
			for _, a := range res.Anomalies {
				kinds = append(kinds, a.Kind)
			}
			switch {
			case tc.want == "" && !res.Valid:
				t.Errorf("flagged: %v %+v", kinds, res.Anomalies)
			case tc.want != "" && (res.Valid || kinds[0] != tc.want):
				t.Errorf("anomalies %v, want %s: %s", kinds, tc.want, res.Summary)
			}
		})
	}
}

// Porcupine orders values by real time only: a write acknowledged but never applied (a false
// ack) linearizes as overwritten whenever another write overlapped it. The versions the server
// reported do not: a strong read begun after a strong write was acknowledged must return a
// version at least as new, since a key's committed version never goes back.
func TestLinearizabilityHoldsReadsToAcknowledgedVersions(t *testing.T) {
	h := &hist{}
	h.add(Op{Process: 1, F: FWrite, Value: "1", Invoke: 0, Complete: 10, Version: "100.0@n1/s"})
	h.add(Op{Process: 2, F: FWrite, Value: "2", Invoke: 20, Complete: 1500, Version: "300.0@n2"}) // never applied
	h.add(Op{Process: 3, F: FWrite, Value: "3", Invoke: 30, Complete: 40, Version: "200.0@n3/s"})
	h.add(Op{Process: 3, F: FRead, Value: "3", Invoke: 1600, Complete: 1610, Version: "200.0@n3/s"})
	res := mustLinear(t, h, false)
	if res.Anomalies[0].Kind != "stale-read" || res.Stats["reads_behind_writes"] != 1 {
		t.Errorf("anomalies %+v, want one stale-read", res.Anomalies)
	}

	h.ops[3].Invoke = 1000 * ms1 // begun before the write was acknowledged: it may precede it
	mustLinear(t, h, true)
	h.ops[3].Invoke, h.ops[3].Absent, h.ops[3].Value, h.ops[3].Version = 1600*ms1, true, "", ""
	if res := mustLinear(t, h, false); res.Anomalies[0].Kind != "not-linearizable" {
		t.Errorf("absent after acknowledged writes: %+v", res.Anomalies)
	}
}

// A write answered with a code docs/http-api.md calls "not applied" must never take effect: a
// read that returns its value, a compare-and-set that finds it, or a final state that holds it
// fails durability (and, for the keys the delete checker owns, deletes) with an anomaly that
// names it. Writes in doubt (outcome_unknown) may show up, and a value also written by a write
// that was not refused is not held against the refused one.
func TestFailedWritesMustNotShowUp(t *testing.T) {
	v := func(wall int64) string { return consistency.Version{Wall: wall, Node: "n1"}.String() }
	const key = "register/s00.0"
	mk := func() *hist {
		h := &hist{}
		a := h.write(1, "a", 0, 10, TypeOK)
		a.Version = v(10)
		x := h.write(1, "x", 20, 30, TypeFail) // 504 timeout: never proposed
		x.Code = client.CodeTimeout
		y := h.write(2, "y", 20, 30, TypeFail) // never sent
		y.Error = "dial tcp: connection refused"
		u := h.write(3, "u", 20, maxTime, TypeInfo) // in doubt: may show up
		u.Code = client.CodeOutcomeUnknown
		d := h.write(4, "d", 40, 50, TypeFail) // refused once, then written again
		d.Code = client.CodeNoLeader
		d2 := h.write(4, "d", 60, 70, TypeOK)
		d2.Version = v(60)
		r := h.read(5, "u", 80, 90)
		r.Version = v(70)
		r2 := h.read(5, "d", 100, 110)
		r2.Version = v(60)
		del := h.add(Op{Process: 6, F: FDelete, Invoke: 120, Complete: 130, Version: v(120)})
		del.Level = client.ConsistencyEventual
		return h
	}
	clean := map[string]FinalValue{key: {Value: "u", Version: v(200)}}
	if res := CheckDurability(CheckerDurability, "register", mk().ops, clean); !res.Valid {
		t.Fatalf("clean history failed durability: %s %+v", res.Summary, res.Anomalies)
	}
	if res := CheckDeletes("register", mk().ops, clean); !res.Valid {
		t.Fatalf("clean history failed deletes: %s %+v", res.Summary, res.Anomalies)
	}
	cases := []struct {
		name  string
		add   func(h *hist)
		final map[string]FinalValue
		kind  string
	}{
		{"strong read of a timed-out write", func(h *hist) {
			r := h.read(7, "x", 140, 150)
			r.Version = v(140)
		}, clean, "failed-write-read"},
		{"session read of a write never sent", func(h *hist) {
			r := h.read(7, "y", 140, 150)
			r.Level, r.Version = client.ConsistencySession, v(140)
		}, clean, "failed-write-read"},
		{"compare-and-set that found a timed-out write", func(h *hist) {
			c := h.add(Op{Process: 7, F: FCAS, From: "x", Value: "z", Invoke: 140, Complete: 150, Version: v(150)})
			c.Level = client.ConsistencyStrong
		}, map[string]FinalValue{key: {Value: "z", Version: v(150)}}, "failed-write-read"},
		{"timed-out write survives at the end", func(*hist) {}, map[string]FinalValue{key: {Value: "x", Version: v(200)}}, "failed-write-visible"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			check := map[string]func(ops []*Op) CheckResult{
				CheckerDurability: func(ops []*Op) CheckResult { return CheckDurability(CheckerDurability, "register", ops, tc.final) },
				CheckerDeletes:    func(ops []*Op) CheckResult { return CheckDeletes("register", ops, tc.final) },
			}
			for name, fn := range check {
				h := mk()
				tc.add(h)
				res := fn(h.ops)
				if res.Valid {
					t.Fatalf("%s passed: %s", name, res.Summary)
				}
				var kinds []string
				for _, a := range res.Anomalies {
					kinds = append(kinds, a.Kind)
				}
				if !slices.Contains(kinds, tc.kind) {
					t.Errorf("%s anomalies %v, want %s among them: %+v", name, kinds, tc.kind, res.Anomalies)
				}
			}
		})
	}
}

// A bounded read's answer reports the staleness the node promises (Dialkv-Staleness); one over
// the max_staleness it asked for, or none at all, contradicts the answer itself, however fresh
// the value the harness saw (guarantee 5, and "every response says what it got").
func TestBoundedReadsReportStalenessWithinTheirBound(t *testing.T) {
	mk := func(staleness string, bound time.Duration) []*Op {
		h := &hist{}
		w := h.write(0, "1", 0, 10, TypeOK)
		w.Key, w.Version = "staleness/k0", "100.0@n1/s"
		r := h.read(1, "1", 20, 30)
		r.Key, r.Level, r.Bound, r.Version, r.Staleness = "staleness/k0", client.ConsistencyBounded, bound, "100.0@n1/s", staleness
		// An eventual read reports what it knows, bounded by nothing: never held to a bound.
		e := h.read(2, "1", 20, 30)
		e.Key, e.Level, e.Version, e.Staleness = "staleness/k0", client.ConsistencyEventual, "100.0@n1/s", "5s"
		f := h.read(3, "", 20, 30) // refused (503 unavailable): says nothing
		f.Key, f.Level, f.Bound, f.Type, f.Absent, f.Code = "staleness/k0", client.ConsistencyBounded, bound, TypeFail, false, client.CodeUnavailable
		return h.ops
	}
	cfg := StalenessConfig{Tolerance: 100 * time.Millisecond}
	for _, tc := range []struct {
		name, staleness string
		bound           time.Duration
		kind            string // "" valid
	}{
		{"within the bound", "80ms", 100 * time.Millisecond, ""},
		{"exactly the bound", "100ms", 100 * time.Millisecond, ""},
		{"linearizable", "0s", 100 * time.Millisecond, ""},
		{"no bound named: only the report is checked", "900ms", 0, ""},
		{"over the bound, within the tolerance", "150ms", 100 * time.Millisecond, "staleness-over-bound-reported"},
		{"over the bound by a microsecond", "100.001ms", 100 * time.Millisecond, "staleness-over-bound-reported"},
		{"none reported", "", 100 * time.Millisecond, "staleness-unreported"},
		{"none reported, no bound named", "", 0, "staleness-unreported"},
		{"garbled", "soon", 100 * time.Millisecond, "staleness-unreported"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := CheckStaleness("staleness", mk(tc.staleness, tc.bound), cfg)
			if tc.kind == "" {
				if !res.Valid {
					t.Fatalf("clean history failed: %s %+v", res.Summary, res.Anomalies)
				}
				return
			}
			if res.Valid || len(res.Anomalies) != 1 || res.Anomalies[0].Kind != tc.kind {
				t.Fatalf("want one %s anomaly, got valid=%v %+v", tc.kind, res.Valid, res.Anomalies)
			}
		})
	}
}
