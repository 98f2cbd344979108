package node

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/dialkv/dialkv/client"
)

// Key answers in JSON are compact (programs read them); ?pretty indents them for people.
func TestKVAnswersCompactUnlessPretty(t *testing.T) {
	tc := startCluster(t, 1)
	n := tc.nodes[0]
	if r := do(t, "PUT", n, "/v1/kv/p", "v"); r.status != 200 {
		t.Fatalf("put: %d %s", r.status, r.body)
	}
	cases := []struct {
		method, path string
		pretty       bool
	}{
		{"GET", "/v1/kv/p", false},
		{"GET", "/v1/kv/p?consistency=eventual", false},
		{"GET", "/v1/kv?prefix=p", false},
		{"GET", "/v1/kv/p?pretty", true},
		{"GET", "/v1/kv/p?pretty=true&consistency=strong", true},
		{"GET", "/v1/kv/p?pretty=false", false},
		{"GET", "/v1/kv?prefix=p&pretty", true},
		{"PUT", "/v1/kv/q?consistency=strong", false},
		{"PUT", "/v1/kv/q?consistency=eventual", false},
		{"PUT", "/v1/kv/q?consistency=eventual&pretty", true},
	}
	for _, c := range cases {
		r := do(t, c.method, n, c.path, "v", "Accept", "application/json")
		if r.status != 200 || !json.Valid([]byte(r.body)) {
			t.Fatalf("%s %s: %d %q, want 200 and JSON", c.method, c.path, r.status, r.body)
		}
		if indented := strings.Contains(r.body, "\n  "); indented != c.pretty {
			t.Errorf("%s %s: indented=%v, want %v:\n%s", c.method, c.path, indented, c.pretty, r.body)
		}
	}
}

// A request without an id gets a fresh one, echoed in the answer; one with an id keeps it.
func TestRequestIDs(t *testing.T) {
	tc := startCluster(t, 1)
	n := tc.nodes[0]
	seen := map[string]bool{}
	for range 3 {
		id := do(t, "GET", n, "/v1/kv/x?consistency=eventual", "").header.Get(client.HeaderRequestID)
		prefix, count, ok := strings.Cut(id, "-")
		if !ok || len(prefix) != 12 || count == "" || seen[id] {
			t.Errorf("request id %q: want a fresh <12 hex digits>-<counter>", id)
		}
		seen[id] = true
	}
	if id := do(t, "GET", n, "/v1/kv/x", "", client.HeaderRequestID, "mine").header.Get(client.HeaderRequestID); id != "mine" {
		t.Errorf("request id %q, want the caller's %q", id, "mine")
	}
}
