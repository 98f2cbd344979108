package jepsen

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dialkv/dialkv/client"
)

func TestRecorderWritesPairedJSONLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history.jsonl")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	rec := NewRecorder(time.Now(), f)
	w := &Op{Process: 0, Workload: "register", Node: "n1", Level: "strong", F: FWrite, Key: "k", Value: "1"}
	rec.Invoke(w)
	r := &Op{Process: 1, Workload: "register", Node: "n2", Level: "strong", F: FRead, Key: "k"}
	rec.Invoke(r)
	rec.Nemesis("start partition", "partition halves n1 | n2")
	w.Type, w.Version, w.ServedBy, w.Served = TypeOK, "5.0@n1", "n1", "strong"
	rec.Complete(w)
	r.Type, r.Value, r.ServedBy = TypeOK, "1", "n2"
	rec.Complete(r)
	lost := &Op{Process: 2, Workload: "set", Node: "n3", Level: "eventual", F: FWrite, Key: "set/0-0", Value: "set/0-0"}
	rec.Invoke(lost) // never completes: the harness "died"
	if rec.Pending() != 1 {
		t.Errorf("pending %d, want 1", rec.Pending())
	}
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}

	events, err := ReadHistory(path)
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, e := range events {
		types = append(types, e.Type)
		if e.Wall == "" {
			t.Errorf("event %d has no wall time", e.ID)
		}
	}
	if got := strings.Join(types, ","); got != "invoke,invoke,info,ok,ok,invoke" {
		t.Errorf("event types %s", got)
	}
	// A read's invocation carries no value; its completion does.
	if events[1].Value != "" || events[4].Value != "1" {
		t.Errorf("read value in invoke %q / completion %q", events[1].Value, events[4].Value)
	}
	raw, _ := os.ReadFile(path)
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		for _, k := range []string{"type", "process", "f", "time"} {
			if _, ok := m[k]; !ok {
				t.Errorf("line %q lacks %q", line, k)
			}
		}
	}

	ops := PairEvents(events)
	if len(ops) != 3 {
		t.Fatalf("%d ops, want 3", len(ops))
	}
	if ops[0].F != FWrite || ops[0].Version != "5.0@n1" || ops[0].Value != "1" || ops[0].Type != TypeOK || ops[0].Served != "strong" {
		t.Errorf("write round trip: %+v", ops[0])
	}
	if ops[1].F != FRead || ops[1].Value != "1" || ops[1].Complete < ops[1].Invoke {
		t.Errorf("read round trip: %+v", ops[1])
	}
	if ops[2].Type != TypeInfo || ops[2].Complete != maxTime {
		t.Errorf("an invocation without completion must be indeterminate forever: %+v", ops[2])
	}
}

func TestClassify(t *testing.T) {
	cases := []struct {
		name string
		f    string
		err  error
		want string
	}{
		{"ok", FWrite, nil, TypeOK},
		{"read not found is an ok absent read", FRead, &client.Error{Status: 404, Code: client.CodeNotFound}, TypeOK},
		{"read timeout fails", FRead, &client.Error{Status: 504, Code: client.CodeTimeout}, TypeFail},
		{"no leader: not applied", FWrite, &client.Error{Status: 503, Code: client.CodeNoLeader}, TypeFail},
		{"conflict: not applied", FCAS, &client.Error{Status: 409, Code: client.CodeConflict}, TypeFail},
		{"timeout: never proposed, not applied", FWrite, &client.Error{Status: 504, Code: client.CodeTimeout}, TypeFail},
		{"cas timeout: not applied", FCAS, &client.Error{Status: 504, Code: client.CodeTimeout}, TypeFail},
		{"delete timeout: not applied", FDelete, &client.Error{Status: 504, Code: client.CodeTimeout}, TypeFail},
		{"unavailable: not applied", FWrite, &client.Error{Status: 503, Code: client.CodeUnavailable}, TypeFail},
		{"too large: not applied", FWrite, &client.Error{Status: 413, Code: client.CodeTooLarge}, TypeFail},
		{"bad request: not applied", FCAS, &client.Error{Status: 400, Code: client.CodeBadRequest}, TypeFail},
		{"removed: not applied", FWrite, &client.Error{Status: 410, Code: client.CodeRemoved}, TypeFail},
		{"other 503: unknown", FWrite, &client.Error{Status: 503, Message: "proxy busy"}, TypeInfo},
		{"504 without a dialkv code: unknown", FWrite, &client.Error{Status: 504, Message: "gateway timeout"}, TypeInfo},
		{"server says unknown", FWrite, &client.Error{Status: 504, Code: client.CodeOutcomeUnknown}, TypeInfo},
		{"client says unknown", FWrite, &client.Error{Code: client.CodeOutcomeUnknown, Err: syscall.ECONNRESET}, TypeInfo},
		{"internal error: unknown", FWrite, &client.Error{Status: 500, Code: client.CodeInternal}, TypeInfo},
		{"never sent (dial refused)", FWrite, errors.New("PUT 10.0.0.1:7000: dial tcp: connection refused"), TypeFail},
		{"never sent (context ended first)", FWrite, context.DeadlineExceeded, TypeFail},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			op := &Op{F: tc.f}
			classify(op, client.Meta{Node: "n1"}, tc.err)
			if op.Type != tc.want {
				t.Errorf("%v -> %s, want %s", tc.err, op.Type, tc.want)
			}
		})
	}
}

func TestKeyRingRotates(t *testing.T) {
	r := newKeyRing("register", 2, 3)
	rng := newTestRand()
	counts := map[string]int{}
	for range 60 {
		counts[r.pick(rng)]++
	}
	for k, n := range counts {
		if n > 3 {
			t.Errorf("key %s got %d operations, cap 3", k, n)
		}
	}
	if len(r.Keys()) != len(counts) || len(counts) < 20 {
		t.Errorf("%d keys handed out, %d recorded", len(counts), len(r.Keys()))
	}
}
