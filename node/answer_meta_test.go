package node

import (
	"encoding/json"
	"io"
	"strconv"
	"strings"
	"testing"

	"github.com/dialkv/dialkv/client"
	"github.com/dialkv/dialkv/replication/store"
)

// checkAnswerMeta checks what DESIGN.md promises of every key answer, errors included: its
// metadata in the Dialkv-* headers (the node, its leader, its applied index, and the level when
// the request's level parsed: level "" wants none), and, when the request asked for JSON, the
// same metadata in the one JSON object of the body (its meta).
func checkAnswerMeta(t *testing.T, what string, r reply, n *Node, level string, asked bool) {
	t.Helper()
	h := r.header
	if got := h.Get(client.HeaderNode); got != n.cfg.ID {
		t.Errorf("%s: %s %q, want %q", what, client.HeaderNode, got, n.cfg.ID)
	}
	leader, _ := n.raft.Leader()
	if got, ok := h[client.HeaderLeader]; !ok || h.Get(client.HeaderLeader) != leader {
		t.Errorf("%s: %s %q, want the leader %q (empty when none is known)", what, client.HeaderLeader, got, leader)
	}
	applied, err := strconv.ParseUint(h.Get(client.HeaderAppliedIndex), 10, 64)
	if err != nil || applied == 0 {
		t.Errorf("%s: %s %q, want the node's applied index", what, client.HeaderAppliedIndex, h.Get(client.HeaderAppliedIndex))
	}
	if got, ok := h[client.HeaderConsistency]; level == "" && ok || level != "" && h.Get(client.HeaderConsistency) != level {
		t.Errorf("%s: %s %q, want %q", what, client.HeaderConsistency, got, level)
	}
	if r.status >= 400 && h.Get(client.HeaderError) == "" {
		t.Errorf("%s: %d without %s", what, r.status, client.HeaderError)
	}
	if !asked {
		return
	}
	// One JSON object, nothing after it.
	dec := json.NewDecoder(strings.NewReader(r.body))
	var obj map[string]json.RawMessage
	if err := dec.Decode(&obj); err != nil {
		t.Errorf("%s: body %q is not a JSON object: %v", what, r.body, err)
		return
	}
	if _, err := dec.Token(); err != io.EOF {
		t.Errorf("%s: body %q holds more than one JSON value", what, r.body)
	}
	var body struct {
		Error string       `json:"error"`
		Code  string       `json:"code"`
		Meta  *client.Meta `json:"meta"`
	}
	if err := json.Unmarshal([]byte(r.body), &body); err != nil {
		t.Errorf("%s: body %q: %v", what, r.body, err)
		return
	}
	if r.status >= 400 && (body.Error == "" || body.Code != h.Get(client.HeaderError)) {
		t.Errorf("%s: error body %q, want error and code %q", what, r.body, h.Get(client.HeaderError))
	}
	if body.Meta == nil {
		t.Errorf("%s: JSON body %q has no meta", what, r.body)
		return
	}
	m := body.Meta
	for _, f := range []struct{ name, body, header string }{
		{"consistency", m.Consistency, client.HeaderConsistency},
		{"node", m.Node, client.HeaderNode},
		{"via", m.Via, client.HeaderVia},
		{"leader", m.Leader, client.HeaderLeader},
		{"version", m.Version, client.HeaderVersion},
		{"applied_index", strconv.FormatUint(m.AppliedIndex, 10), client.HeaderAppliedIndex},
		{"state", m.State, client.HeaderState},
		{"staleness", m.Staleness, client.HeaderStaleness},
		{"session", m.Session, client.HeaderSession},
	} {
		if f.body != h.Get(f.header) {
			t.Errorf("%s: meta.%s %q in the body, %s %q in the headers", what, f.name, f.body, f.header, h.Get(f.header))
		}
	}
}

// acceptJSON is the request header that asks for a JSON answer, when asked.
func acceptJSON(asked bool) []string {
	if asked {
		return []string{"Accept", "application/json"}
	}
	return nil
}

// Every answer of /v1/kv, whatever its status, reports the metadata of docs/http-api.md: a
// refused request (400, 413, a 405 or an unknown path under /v1/) said only which node refused
// it, and an error asked for as JSON carried no meta, though DESIGN.md promises the metadata
// "in the JSON body when one is asked for" of every response.
func TestEveryKeyAnswerCarriesItsMetadata(t *testing.T) {
	tc := startCluster(t, 1, func(_ int, c *Config) { c.MaxValueSize = 16 })
	n := tc.nodes[0]
	if r := do(t, "PUT", n, "/v1/kv/here", "v"); r.status != 200 {
		t.Fatalf("put: %d %s", r.status, r.body)
	}
	long := strings.Repeat("k", store.MaxKeySize+1)
	cases := []struct {
		method, path, body string
		status             int
		code               string
		level              string
		header             []string
	}{
		{"GET", "/v1/kv/here", "", 200, "", "strong", nil},
		{"GET", "/v1/kv/here?consistency=eventual", "", 200, "", "eventual", nil},
		{"HEAD", "/v1/kv/here", "", 200, "", "strong", nil},
		{"PUT", "/v1/kv/here?consistency=eventual", "w", 200, "", "eventual", nil},
		{"GET", "/v1/kv?prefix=h", "", 200, "", "strong", nil},
		{"GET", "/v1/kv/missing", "", 404, client.CodeNotFound, "strong", nil},
		{"HEAD", "/v1/kv/missing", "", 404, client.CodeNotFound, "strong", nil},
		{"DELETE", "/v1/kv/missing", "", 404, client.CodeNotFound, "strong", nil},
		{"PUT", "/v1/kv/here?if_absent", "x", 409, client.CodeConflict, "strong", nil},
		{"GET", "/v1/kv/here?consistency=sometimes", "", 400, client.CodeBadRequest, "", nil},
		{"HEAD", "/v1/kv/here?consistency=sometimes", "", 400, client.CodeBadRequest, "", nil},
		{"GET", "/v1/kv/here?consistency=bounded&max_staleness=soon", "", 400, client.CodeBadRequest, "bounded", nil},
		{"GET", "/v1/kv/here?consistancy=eventual", "", 400, client.CodeBadRequest, "strong", nil},
		{"GET", "/v1/kv/" + long, "", 400, client.CodeBadRequest, "strong", nil},
		{"GET", "/v1/kv?limit=many", "", 400, client.CodeBadRequest, "strong", nil},
		{"GET", "/v1/kv/here", "", 400, client.CodeBadRequest, "strong", []string{client.HeaderSession, "not-a-token"}},
		{"PUT", "/v1/kv/?consistency=eventual", "x", 400, client.CodeBadRequest, "eventual", nil},
		{"DELETE", "/v1/kv/", "", 400, client.CodeBadRequest, "strong", nil},
		{"PUT", "/v1/kv/here?consistency=eventual&if_absent", "x", 400, client.CodeBadRequest, "eventual", nil},
		{"PUT", "/v1/kv/here?consistency=bounded", "x", 400, client.CodeBadRequest, "", nil},
		{"PUT", "/v1/kv/big", strings.Repeat("x", 17), 413, client.CodeTooLarge, "strong", nil},
		{"POST", "/v1/kv/here", "x", 405, client.CodeMethodNotAllowed, "", nil},
		{"PATCH", "/v1/kv", "", 405, client.CodeMethodNotAllowed, "", nil},
		{"GET", "/v1/nothing", "", 404, client.CodeUnknownPath, "", nil},
		// A session read the node cannot catch up with (nor any other node it could ask).
		{"GET", "/v1/kv/here?consistency=session", "", 503, client.CodeUnavailable, "session", []string{client.HeaderSession, "3.999999999"}},
	}
	for _, c := range cases {
		for _, asked := range []bool{false, true} {
			header := append(acceptJSON(asked), c.header...)
			what := c.method + " " + c.path[:min(len(c.path), 60)]
			if asked {
				what += " (JSON)"
			}
			r := do(t, c.method, n, c.path, c.body, header...)
			if r.status != c.status || r.header.Get(client.HeaderError) != c.code {
				t.Errorf("%s: %d %s %.200s, want %d %s", what, r.status, r.header.Get(client.HeaderError), r.body, c.status, c.code)
				continue
			}
			// A HEAD answer has no body to check.
			checkAnswerMeta(t, what, r, n, c.level, asked && c.method != "HEAD")
		}
	}
}

// The same holds of the answers a 3-node cluster gives when it cannot serve: a strong read
// that times out on a follower cut off from the leader (504), and a strong write with no
// leader (503 no_leader).
func TestUnservedKeyAnswersCarryTheirMetadata(t *testing.T) {
	tc, _, follower := followerCutOffFromLeader(t)
	for _, asked := range []bool{false, true} {
		r := do(t, "GET", follower, "/v1/kv/k", "", acceptJSON(asked)...)
		if r.status != 504 || r.header.Get(client.HeaderError) != client.CodeTimeout {
			t.Fatalf("strong read on the cut-off follower: %d %s, want 504 timeout", r.status, r.body)
		}
		checkAnswerMeta(t, "504 strong read", r, follower, "strong", asked)
	}
	// Only the follower left: no leader, ever.
	tc.leaveOnly(follower)
	for _, asked := range []bool{false, true} {
		r := do(t, "PUT", follower, "/v1/kv/k", "w", acceptJSON(asked)...)
		if r.status != 503 || r.header.Get(client.HeaderError) != client.CodeNoLeader {
			t.Fatalf("strong write without a leader: %d %s, want 503 no_leader", r.status, r.body)
		}
		checkAnswerMeta(t, "503 strong write without a leader", r, follower, "strong", asked)
	}
}
