package jepsen

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func newTestRand() *rand.Rand { return rand.New(rand.NewPCG(1, 2)) }

func TestParseNemesis(t *testing.T) {
	got, err := ParseNemesis("partition, kill,partition+clock+partition")
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{{"partition"}, {"kill"}, {"partition", "clock"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	for _, none := range []string{"", "none"} {
		if got, err := ParseNemesis(none); err != nil || got != nil {
			t.Errorf("%q: %v %v", none, got, err)
		}
	}
	if _, err := ParseNemesis("partition,flood"); err == nil || !strings.Contains(err.Error(), "flood") {
		t.Errorf("unknown nemesis: %v", err)
	}
	if got, err := ParseNemesis("member,partition"); err != nil || len(got) != 2 {
		t.Errorf("member as its own alternative: %v %v", got, err)
	}
	if _, err := ParseNemesis("partition+member"); err == nil || !strings.Contains(err.Error(), "cannot be combined") {
		t.Errorf("member combined with a partition: %v, want refused", err)
	}
}

func TestPlan(t *testing.T) {
	nodes := []string{"n1", "n2", "n3", "n4", "n5"}
	kinds, _ := ParseNemesis("partition,kill,pause,clock+slow")
	cfg := PlanConfig{Seed: 42, Nodes: nodes, Kinds: kinds, Total: 60 * time.Second, On: 5 * time.Second, Off: 5 * time.Second}
	plan := Plan(cfg)
	if !reflect.DeepEqual(plan, Plan(cfg)) {
		t.Fatal("same seed, different schedule")
	}
	if len(plan) != 6 {
		t.Fatalf("%d windows in 60s of 5s on/5s off, want 6", len(plan))
	}
	if plan[0].Start != 5*time.Second {
		t.Errorf("first fault at %v: the run must start quiet (baseline)", plan[0].Start)
	}
	for i, w := range plan {
		if w.End-w.Start != 5*time.Second || w.End > cfg.Total {
			t.Errorf("window %d: %v..%v", i, w.Start, w.End)
		}
		if i > 0 && w.Start-plan[i-1].End != 5*time.Second {
			t.Errorf("window %d starts %v after the previous one ended", i, w.Start-plan[i-1].End)
		}
		if len(w.Faults) == 0 {
			t.Errorf("window %d has no fault", i)
		}
		for _, f := range w.Faults {
			checkFault(t, f, nodes)
		}
	}
	// Every alternative shows up over many seeds, and combinations stay together.
	seen := map[string]bool{}
	for seed := range uint64(50) {
		cfg.Seed = seed
		for _, w := range Plan(cfg) {
			var ks []string
			for _, f := range w.Faults {
				ks = append(ks, f.Kind)
			}
			seen[strings.Join(ks, "+")] = true
		}
	}
	for _, want := range []string{"partition", "kill", "pause", "clock+slow"} {
		if !seen[want] {
			t.Errorf("%s never planned (saw %v)", want, seen)
		}
	}
	if Plan(PlanConfig{Nodes: nodes, Total: time.Minute, On: time.Second}) != nil {
		t.Error("no kinds, yet a schedule")
	}
}

func checkFault(t *testing.T, f Fault, nodes []string) {
	t.Helper()
	if !slices.Contains(faultModes[f.Kind], f.Mode) {
		t.Errorf("%s mode %q", f.Kind, f.Mode)
	}
	switch {
	case f.Kind == FaultPartition && (f.Mode == "halves" || f.Mode == "bridge"):
		var all []string
		for _, g := range f.Groups {
			if len(g) == 0 {
				t.Errorf("empty group in %+v", f)
			}
			all = append(all, g...)
		}
		slices.Sort(all)
		if !slices.Equal(all, nodes) {
			t.Errorf("partition groups %v do not cover the nodes once", f.Groups)
		}
	case f.Kind == FaultClock:
		for _, id := range f.Nodes {
			if d := f.Offsets[id]; d == 0 || d > 2*time.Second || d < -2*time.Second {
				t.Errorf("clock offset %v for %s", d, id)
			}
		}
	case f.Kind == FaultSlow && f.Mode == "loss":
		if f.Slowness.Loss <= 0 || f.Slowness.Loss >= 1 {
			t.Errorf("loss %v", f.Slowness.Loss)
		}
	}
}

func TestMinoritySide(t *testing.T) {
	nodes := []string{"n1", "n2", "n3", "n4", "n5"}
	cases := []struct {
		name string
		cuts []Link
		want []string
	}{
		{"healthy", nil, nil},
		{"halves", cutsBetween([]string{"n1", "n2"}, []string{"n3", "n4", "n5"}), []string{"n1", "n2"}},
		{"isolated", cutsBetween([]string{"n3"}, []string{"n1", "n2", "n4", "n5"}), []string{"n3"}},
		{"bridge keeps everyone connected", cutsBetween([]string{"n1", "n2"}, []string{"n4", "n5"}), nil},
		{"one-way counts as cut", []Link{{"n1", "n5"}, {"n2", "n5"}, {"n3", "n5"}, {"n4", "n5"}}, []string{"n5"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := keys(minoritySide(nodes, tc.cuts))
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("minority %v, want %v", got, tc.want)
			}
		})
	}
}

// fakeBackend records what the nemesis asks of it.
type fakeBackend struct {
	mu      sync.Mutex
	calls   []string
	cuts    []Link
	down    map[string]bool
	paused  map[string]bool
	removed map[string]bool
	fail    string   // a call kind that fails
	status  []string // host:port of each node's status (nil: nowhere)
}

func newFakeBackend() *fakeBackend {
	return &fakeBackend{down: map[string]bool{}, paused: map[string]bool{}, removed: map[string]bool{}}
}

func (f *fakeBackend) note(s string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, s)
	if f.fail != "" && strings.HasPrefix(s, f.fail) {
		return fmt.Errorf("%s failed", s)
	}
	return nil
}

func (f *fakeBackend) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

func (f *fakeBackend) Name() string { return "fake" }
func (f *fakeBackend) Nodes() []Node {
	if f.status != nil {
		return []Node{{"n1", f.status[0]}, {"n2", f.status[1]}, {"n3", f.status[2]}}
	}
	// Nothing listens on port 1: leader lookups fail fast and fall back to the first node.
	return []Node{{"n1", "127.0.0.1:1"}, {"n2", "127.0.0.1:1"}, {"n3", "127.0.0.1:1"}}
}
func (f *fakeBackend) Start(context.Context) error { return nil }
func (f *fakeBackend) Kill(_ context.Context, id string) error {
	f.mu.Lock()
	f.down[id] = true
	f.mu.Unlock()
	return f.note("kill " + id)
}
func (f *fakeBackend) Restart(_ context.Context, id string) error {
	f.mu.Lock()
	f.down[id] = false
	f.mu.Unlock()
	return f.note("restart " + id)
}
func (f *fakeBackend) Remove(_ context.Context, id string) error {
	if err := f.note("remove " + id); err != nil {
		return err
	}
	f.mu.Lock()
	f.down[id], f.removed[id] = true, true
	f.mu.Unlock()
	return nil
}
func (f *fakeBackend) Rejoin(_ context.Context, id string) error {
	f.mu.Lock()
	f.down[id], f.removed[id] = false, false
	f.mu.Unlock()
	return f.note("rejoin " + id)
}
func (f *fakeBackend) Removed(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.removed[id]
}
func (f *fakeBackend) Pause(_ context.Context, id string) error {
	f.mu.Lock()
	f.paused[id] = true
	f.mu.Unlock()
	return f.note("pause " + id)
}
func (f *fakeBackend) Resume(_ context.Context, id string) error {
	f.mu.Lock()
	f.paused[id] = false
	f.mu.Unlock()
	return f.note("resume " + id)
}
func (f *fakeBackend) Running(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return !f.down[id]
}
func (f *fakeBackend) Paused(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.paused[id]
}
func (f *fakeBackend) Cut(_ context.Context, links []Link) error {
	f.mu.Lock()
	f.cuts = links
	f.mu.Unlock()
	return f.note(fmt.Sprintf("cut %d", len(links)))
}
func (f *fakeBackend) Slow(_ context.Context, id string, s Slowness) error {
	return f.note(fmt.Sprintf("slow %s %v %v", id, s.Delay, s.Loss))
}
func (f *fakeBackend) Clock(_ context.Context, id string, d time.Duration) error {
	return f.note(fmt.Sprintf("clock %s %v", id, d))
}
func (f *fakeBackend) Unsafe(context.Context, bool, bool) error { return f.note("unsafe") }
func (f *fakeBackend) FaultHook() error                         { return nil }
func (f *fakeBackend) Close() error                             { return nil }

func TestNemesisAppliesAndRevertsInOrder(t *testing.T) {
	b := newFakeBackend()
	rec := NewRecorder(time.Now(), nil)
	plan := []Window{
		{Start: 0, End: 30 * time.Millisecond, Faults: []Fault{{Kind: FaultPartition, Mode: "halves", Groups: [][]string{{"n1"}, {"n2", "n3"}}}}},
		{Start: 40 * time.Millisecond, End: 70 * time.Millisecond, Faults: []Fault{
			{Kind: FaultKill, Mode: "random", Nodes: []string{"n2"}},
			{Kind: FaultClock, Mode: "skew", Nodes: []string{"n3"}, Offsets: map[string]time.Duration{"n3": time.Second}},
		}},
		{Start: 80 * time.Millisecond, End: 100 * time.Millisecond, Faults: []Fault{{Kind: FaultPause, Mode: "random", Nodes: []string{"n3"}}}},
		{Start: 110 * time.Millisecond, End: 130 * time.Millisecond, Faults: []Fault{{Kind: FaultMember, Mode: "random", Nodes: []string{"n1"}}}},
	}
	nm := NewNemesis(b, rec, plan, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nm.Run(ctx)
	want := []string{"cut 4", "cut 0", "kill n2", "clock n3 1s", "clock n3 0s", "restart n2", "pause n3", "resume n3", "remove n1", "rejoin n1"}
	if got := b.Calls(); !reflect.DeepEqual(got, want) {
		t.Errorf("calls %v, want %v", got, want)
	}
	applied := nm.Applied()
	if len(applied) != 4 {
		t.Fatalf("%d windows applied, want 4", len(applied))
	}
	if !reflect.DeepEqual(applied[0].Minority, []string{"n1"}) || applied[0].End < applied[0].Start {
		t.Errorf("partition window %+v", applied[0])
	}
	if applied[1].Kinds != "kill+clock" || !reflect.DeepEqual(applied[1].Affected, []string{"n2", "n3"}) {
		t.Errorf("combined window %+v", applied[1])
	}
	if applied[3].Kinds != "member" || !reflect.DeepEqual(applied[3].Affected, []string{"n1"}) {
		t.Errorf("member window %+v", applied[3])
	}
	if n := len(rec.NemesisEvents()); n != 8 {
		t.Errorf("%d nemesis events recorded, want a start and a stop per window", n)
	}
}

func TestNemesisRevertsWhenCancelled(t *testing.T) {
	b := newFakeBackend()
	rec := NewRecorder(time.Now(), nil)
	plan := []Window{{Start: 0, End: time.Hour, Faults: []Fault{{Kind: FaultPause, Mode: "random", Nodes: []string{"n1"}}}}}
	nm := NewNemesis(b, rec, plan, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { nm.Run(ctx); close(done) }()
	deadline := time.Now().Add(5 * time.Second)
	for !b.Paused("n1") {
		if time.Now().After(deadline) {
			t.Fatal("never paused")
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if b.Paused("n1") {
		t.Error("the paused node was left paused")
	}
}

// A failed removal is not undone by wiping the node; HealAll rejoins a node left removed.
func TestMemberNemesisFailuresAndHeal(t *testing.T) {
	b := newFakeBackend()
	b.fail = "remove"
	nm := NewNemesis(b, NewRecorder(time.Now(), nil), []Window{{Start: 0, End: time.Millisecond,
		Faults: []Fault{{Kind: FaultMember, Mode: "random", Nodes: []string{"n2"}}}}}, nil)
	nm.Run(context.Background())
	if got := b.Calls(); !reflect.DeepEqual(got, []string{"remove n2"}) {
		t.Errorf("calls after a failed removal %v, want no rejoin", got)
	}
	b.fail = ""
	b.Remove(context.Background(), "n3")
	if err := HealAll(context.Background(), b, false); err != nil {
		t.Fatal(err)
	}
	if calls := b.Calls(); !slices.Contains(calls, "rejoin n3") || slices.Contains(calls, "restart n3") {
		t.Errorf("HealAll with n3 removed: calls %v, want it rejoined, not restarted", calls)
	}
}

func TestNemesisRecordsErrors(t *testing.T) {
	b := newFakeBackend()
	b.fail = "cut"
	nm := NewNemesis(b, NewRecorder(time.Now(), nil), []Window{{Start: 0, End: time.Millisecond,
		Faults: []Fault{{Kind: FaultPartition, Mode: "one-way", Nodes: []string{"n3"}}}}}, nil)
	nm.Run(context.Background())
	a := nm.Applied()
	if len(a) != 1 || len(a[0].Errors) != 2 {
		t.Fatalf("want the failed cut and the failed heal recorded: %+v", a)
	}
	if !strings.Contains(a[0].Description, "n3 receives nothing") {
		t.Errorf("description %q", a[0].Description)
	}
}

func TestHealAll(t *testing.T) {
	b := newFakeBackend()
	ctx := context.Background()
	_ = b.Kill(ctx, "n2")
	_ = b.Pause(ctx, "n3")
	_ = b.Cut(ctx, []Link{{"n1", "n2"}})
	b.calls = nil
	if err := HealAll(ctx, b, true); err != nil {
		t.Fatal(err)
	}
	calls := strings.Join(b.Calls(), ",")
	for _, want := range []string{"cut 0", "resume n3", "restart n2", "clock n1 0s", "slow n1 0s 0"} {
		if !strings.Contains(calls, want) {
			t.Errorf("HealAll did not %q (calls %s)", want, calls)
		}
	}
	if b.Paused("n3") || !b.Running("n2") || len(b.cuts) != 0 {
		t.Error("not healed")
	}
}

// A node killed in a window that also cuts the network restarts after the cut is healed: a
// restarted kvd has none of its fault-hook faults until the harness pushes them once it
// answers, and meanwhile joins gossip over TCP, which the other side cannot drop (local and
// docker backends).
func TestNemesisRestartsAfterTheNetworkHeals(t *testing.T) {
	b := newFakeBackend()
	nm := NewNemesis(b, NewRecorder(time.Now(), nil), []Window{{Start: 0, End: time.Millisecond, Faults: []Fault{
		{Kind: FaultPartition, Mode: "halves", Groups: [][]string{{"n1"}, {"n2", "n3"}}},
		{Kind: FaultKill, Mode: "random", Nodes: []string{"n2"}},
		{Kind: FaultClock, Mode: "skew", Nodes: []string{"n2"}, Offsets: map[string]time.Duration{"n2": time.Second}},
	}}}, nil)
	nm.Run(context.Background())
	want := []string{"cut 4", "kill n2", "clock n2 1s", "clock n2 0s", "cut 0", "restart n2"}
	if got := b.Calls(); !reflect.DeepEqual(got, want) {
		t.Errorf("calls %v, want %v", got, want)
	}
}

// A leader killed earlier in the window is still named by the others until they elect a new
// one: a later "leader" fault of the window must not take the dead node (pausing it fails the
// run) nor claim a leader it did not find.
func TestNemesisLeaderFaultsSkipADeadLeader(t *testing.T) {
	b := newFakeBackend()
	for range 3 {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"node":"nX","leader":"n1"}`)
		}))
		defer srv.Close()
		b.status = append(b.status, strings.TrimPrefix(srv.URL, "http://"))
	}
	nm := NewNemesis(b, NewRecorder(time.Now(), nil), []Window{{Start: 0, End: time.Millisecond, Faults: []Fault{
		{Kind: FaultKill, Mode: "leader"},
		{Kind: FaultPause, Mode: "leader"},
		{Kind: FaultPartition, Mode: "isolate-leader"},
	}}}, nil)
	nm.Run(context.Background())
	calls := b.Calls()
	if len(calls) < 2 || calls[0] != "kill n1" || calls[1] != "pause n2" {
		t.Errorf("calls %v, want the leader n1 killed and then, no leader running, n2 paused", calls)
	}
	a := nm.Applied()
	if len(a) != 1 {
		t.Fatalf("%d windows", len(a))
	}
	for _, want := range []string{"kill -9 n1 (leader)", "pause n2 (no leader found)", "partition isolate n2 (no leader found)"} {
		if !strings.Contains(a[0].Description, want) {
			t.Errorf("description %q lacks %q", a[0].Description, want)
		}
	}

	// Nor does a random fault planned on the node a leader fault killed (the plan cannot know).
	b.calls = nil
	b.down = map[string]bool{}
	nm = NewNemesis(b, NewRecorder(time.Now(), nil), []Window{{Start: 0, End: time.Millisecond, Faults: []Fault{
		{Kind: FaultKill, Mode: "leader"},
		{Kind: FaultPause, Mode: "random", Nodes: []string{"n1"}},
	}}}, nil)
	nm.Run(context.Background())
	if calls := b.Calls(); len(calls) < 2 || calls[1] != "pause n2" {
		t.Errorf("calls %v, want n2 paused: the planned n1 was killed by the leader fault", calls)
	}
	if d := nm.Applied()[0].Description; !strings.Contains(d, "pause n2 (random: n1 was down, took n2)") {
		t.Errorf("description %q", d)
	}
}

// Two faults of one window that each stop a random node stop two different ones: a window that
// killed n2 and then paused n2 failed the run (pausing a dead node is an error).
func TestPlanStopsDifferentNodesInOneWindow(t *testing.T) {
	nodes := []string{"n1", "n2", "n3"}
	kinds, _ := ParseNemesis("kill+pause")
	for seed := range uint64(200) {
		for _, w := range Plan(PlanConfig{Seed: seed, Nodes: nodes, Kinds: kinds, Total: time.Minute, On: 5 * time.Second, Off: 5 * time.Second}) {
			kill, pause := w.Faults[0], w.Faults[1]
			if kill.Mode == "random" && pause.Mode == "random" && kill.Nodes[0] == pause.Nodes[0] {
				t.Fatalf("seed %d: window at %v kills and pauses %s", seed, w.Start, kill.Nodes[0])
			}
		}
	}
}
