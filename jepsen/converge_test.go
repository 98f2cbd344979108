package jepsen

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/dialkv/dialkv/client"
)

// emptyNodes is a fakeBackend whose nodes answer every list with nothing and every get with
// 404: a cluster that lost everything, alike on every node.
type emptyNodes struct {
	*fakeBackend
	nodes []Node
}

func (e *emptyNodes) Nodes() []Node { return e.nodes }

func newEmptyNodes(t *testing.T, n int) *emptyNodes {
	t.Helper()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/v1/kv" {
			_ = json.NewEncoder(w).Encode(client.ListResponse{Items: []client.KV{}})
			return
		}
		w.WriteHeader(http.StatusNotFound)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": "not found", "code": client.CodeNotFound})
	})
	e := &emptyNodes{fakeBackend: newFakeBackend()}
	for i := range n {
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		e.nodes = append(e.nodes, Node{ID: "n" + string(rune('1'+i)), HTTP: strings.TrimPrefix(srv.URL, "http://")})
	}
	return e
}

// Nodes that all agree on an empty state agree, but a convergence check that compared no key
// has shown nothing: every write of the run gone must not come out as "every node agrees".
func TestConvergenceOfNothingIsNoPass(t *testing.T) {
	b := newEmptyNodes(t, 3)
	var notes []string
	final, cr := converge(context.Background(), b, "n1", nil, DefaultConfig(), &notes)
	if len(final) != 0 {
		t.Fatalf("final state %v, want empty", final)
	}
	if cr.Valid {
		t.Fatalf("convergence passed having compared no key: %s", cr.Summary)
	}
	if n := len(cr.Anomalies); n == 0 || cr.Anomalies[n-1].Kind != "nothing-checked" {
		t.Errorf("failed, but not for having checked nothing: %s %+v", cr.Summary, cr.Anomalies)
	}
}

// A run asked to inject faults that applied none (too short for its first window) tested the
// cluster without faults: the harness check must not say every fault was applied.
func TestHarnessCheckWithoutFaultWindowFails(t *testing.T) {
	kinds, err := ParseNemesis("partition")
	if err != nil {
		t.Fatal(err)
	}
	if cr := checkHarness(kinds, nil, nil); cr.Valid {
		t.Fatalf("a partition run without a fault window passed: %s", cr.Summary)
	}
	if cr := checkHarness(nil, nil, nil); !cr.Valid {
		t.Errorf("a run without a nemesis failed for having no fault window: %s", cr.Summary)
	}
	w := []AppliedWindow{{Start: 5, End: 10, Kinds: "partition"}}
	if cr := checkHarness(kinds, w, nil); !cr.Valid {
		t.Errorf("a window applied cleanly failed: %s %+v", cr.Summary, cr.Anomalies)
	}
	w[0].Errors = []string{"nft: no such table"}
	if cr := checkHarness(kinds, w, nil); cr.Valid {
		t.Errorf("a fault that could not be applied passed: %s", cr.Summary)
	}
}
