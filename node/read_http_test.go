package node

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dialkv/dialkv/client"
	"github.com/dialkv/dialkv/consistency"
	"github.com/dialkv/dialkv/internal/syncbuf"
)

// Key answers in JSON are compact (programs read them); ?pretty indents them for people. Error
// bodies are compact always.
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
	// Errors too are one line.
	r := do(t, "GET", n, "/v1/kv/absent", "")
	if r.status != 404 || errCode(t, r) != client.CodeNotFound || strings.Count(r.body, "\n") != 1 || !strings.HasSuffix(r.body, "}\n") {
		t.Errorf("GET of an absent key: %d %q, want 404 and one line of JSON", r.status, r.body)
	}
}

// A key that is not valid UTF-8 comes back in key_base64, in every JSON answer, so it can be
// read again; valid UTF-8 keys keep the plain "key" field.
func TestKeysNotUTF8InJSONAnswers(t *testing.T) {
	tc := startCluster(t, 1)
	n := tc.nodes[0]
	const key, encoded = "\xff\xfe", "//4="
	keyOf := func(what, body string) (string, string) {
		t.Helper()
		var kv client.KV
		if err := json.Unmarshal([]byte(body), &kv); err != nil {
			t.Fatalf("%s: %v in %s", what, err, body)
		}
		return kv.Key, kv.KeyBase64
	}
	for _, level := range []string{"strong", "eventual"} {
		r := do(t, "PUT", n, "/v1/kv/%FF%FE?consistency="+level, "v", "Accept", "application/json")
		if k, b := keyOf("PUT "+level, r.body); r.status != 200 || k != "" || b != encoded {
			t.Errorf("PUT %s: %d %s, want key_base64 %q and no key", level, r.status, r.body, encoded)
		}
	}
	r := do(t, "GET", n, "/v1/kv/%FF%FE?consistency=eventual", "", "Accept", "application/json")
	if k, b := keyOf("GET", r.body); r.status != 200 || k != "" || b != encoded {
		t.Errorf("GET: %d %s, want key_base64 %q and no key", r.status, r.body, encoded)
	}
	if r := do(t, "PUT", n, "/v1/kv/ok?consistency=strong", "v"); r.status != 200 {
		t.Fatalf("PUT ok: %d %s", r.status, r.body)
	}
	r = do(t, "GET", n, "/v1/kv?prefix=", "", "Accept", "application/json")
	var list client.ListResponse
	if err := json.Unmarshal([]byte(r.body), &list); err != nil || len(list.Items) != 2 {
		t.Fatalf("list: %d %s", r.status, r.body)
	}
	for _, it := range list.Items {
		got, err := it.RawKey()
		if err != nil || got != key && got != "ok" {
			t.Errorf("list item %+v: RawKey %q, %v", it, got, err)
		}
		if got == "ok" && (it.Key != "ok" || it.KeyBase64 != "") {
			t.Errorf("list item %+v: a UTF-8 key must stay in \"key\" alone", it)
		}
	}
	if !strings.Contains(r.body, `"key":"","key_base64":"`+encoded+`"`) {
		t.Errorf("list: %s lacks key_base64 %q", r.body, encoded)
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

// Key requests skip ServeMux (keyRoutes) yet name the same keys it would: escapes decoded,
// slashes kept, dot segments and HEAD still served by the mux, the bare prefix still a list.
func TestKeyRoutesNameTheKeysServeMuxWould(t *testing.T) {
	tc := startCluster(t, 1)
	n := tc.nodes[0]
	for _, c := range []struct{ path, key string }{
		{"/v1/kv/plain", "plain"},
		{"/v1/kv/dir/sub%2Fkey%20x", "dir/sub/key x"},
		{"/v1/kv/a/.b", "a/.b"}, // through the mux
		{"/v1/kv/%C3%A9t%C3%A9", "été"},
	} {
		if r := do(t, "PUT", n, c.path+"?consistency=strong", c.key); r.status != 200 {
			t.Fatalf("PUT %s: %d %s", c.path, r.status, r.body)
		}
		if r := do(t, "GET", n, c.path, ""); r.status != 200 || r.body != c.key {
			t.Errorf("GET %s: %d %q, want 200 %q", c.path, r.status, r.body, c.key)
		}
		r := do(t, "GET", n, "/v1/kv?prefix="+url.QueryEscape(c.key), "", "Accept", "application/json")
		var list client.ListResponse
		if err := json.Unmarshal([]byte(r.body), &list); err != nil || len(list.Items) != 1 || list.Items[0].Key != c.key {
			t.Errorf("list of prefix %q after PUT %s: %d %s, want the one key %q", c.key, c.path, r.status, r.body, c.key)
		}
		if r := do(t, "HEAD", n, c.path, ""); r.status != 200 {
			t.Errorf("HEAD %s: %d, want 200", c.path, r.status)
		}
	}
	if r := do(t, "GET", n, "/v1/kv/", "", "Accept", "application/json"); r.status != 200 || !strings.Contains(r.body, `"items":[`) {
		t.Errorf("GET /v1/kv/: %d %s, want the list", r.status, r.body)
	}
	if r := do(t, "DELETE", n, "/v1/kv/plain", ""); r.status != 200 {
		t.Errorf("DELETE /v1/kv/plain: %d %s", r.status, r.body)
	}
	if r := do(t, "GET", n, "/v1/kv/plain", ""); r.status != 404 {
		t.Errorf("GET after DELETE: %d %s, want 404", r.status, r.body)
	}
	if r := do(t, "POST", n, "/v1/kv/plain", "x"); r.status != 405 {
		t.Errorf("POST /v1/kv/plain: %d, want 405 from the mux", r.status)
	}
	// A doubled slash, even right after the prefix, is the mux's: it redirects to the clean
	// path (the client follows), so the key is "slashed", not "/slashed".
	if r := do(t, "PUT", n, "/v1/kv//slashed?consistency=strong", "s"); r.status != 200 {
		t.Fatalf("PUT /v1/kv//slashed: %d %s", r.status, r.body)
	}
	r := do(t, "GET", n, "/v1/kv?prefix=%2Fslashed", "", "Accept", "application/json")
	if strings.Contains(r.body, `"key":"/slashed"`) {
		t.Errorf("PUT /v1/kv//slashed stored the key /slashed: %s", r.body)
	}
	if r := do(t, "GET", n, "/v1/kv/slashed", ""); r.status != 200 || r.body != "s" {
		t.Errorf("GET /v1/kv/slashed after PUT /v1/kv//slashed: %d %q", r.status, r.body)
	}
	// The prefix must be there before unescaping, as the mux matches it.
	if r := do(t, "GET", n, "/v1%2Fkv/slashed", ""); r.status != 404 || errCode(t, r) != client.CodeUnknownPath {
		t.Errorf("GET /v1%%2Fkv/slashed: %d %s, want the 404 of an unknown path", r.status, r.body)
	}
}

// What no route takes gets the JSON error body of docs/http-api.md, as every other error does:
// 405 with Allow for a path served with other methods, 404 unknown_path (not not_found, which
// is about keys) for the rest. The bare address leads to the dashboard.
func TestUnroutedRequestsAnswerJSON(t *testing.T) {
	tc := startCluster(t, 1)
	n := tc.nodes[0]
	for _, c := range []struct {
		method, path string
		status       int
		code, allow  string
	}{
		{"POST", "/v1/kv/h", 405, client.CodeMethodNotAllowed, "DELETE, GET, HEAD, PUT"},
		{"PATCH", "/v1/kv/a/b", 405, client.CodeMethodNotAllowed, "DELETE, GET, HEAD, PUT"},
		{"POST", "/v1/status", 405, client.CodeMethodNotAllowed, "GET, HEAD"},
		{"GET", "/v1/cluster/join", 405, client.CodeMethodNotAllowed, "POST"},
		{"DELETE", "/", 405, client.CodeMethodNotAllowed, "GET, HEAD"},
		{"GET", "/nope", 404, client.CodeUnknownPath, ""},
		{"PUT", "/v1/nope/x", 404, client.CodeUnknownPath, ""},
	} {
		r := do(t, c.method, n, c.path, "x")
		if r.status != c.status || r.header.Get("Content-Type") != "application/json" || errCode(t, r) != c.code ||
			r.header.Get(client.HeaderError) != c.code || r.header.Get("Allow") != c.allow {
			t.Errorf("%s %s: %d %v %s; want %d %s, Allow %q", c.method, c.path, r.status, r.header, r.body, c.status, c.code, c.allow)
		}
	}
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get("http://" + n.HTTPAddr() + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/ui/" {
		t.Errorf("GET /: %d Location %q, want 302 to /ui/", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// A read's Dialkv-Applied-Index says which log index the answer reflects: a client compares it
// with the index a write was committed at (its session token's) to tell whether the answer can
// have missed that write. It used to be read when the answer was built, after the value: a write
// committed in between was counted as applied, though the value (or list) read did not show it.
// Here a strong write lands after each read of the committed layer; the answer must not claim
// its index.
func TestReadAnswersClaimNoIndexTheirValueMisses(t *testing.T) {
	var n *Node
	type write struct{ path, value string }
	armed := make(chan write, 1) // the write the hook makes, once
	writes := make(chan reply, 1)
	tc := startCluster(t, 1, func(_ int, c *Config) {
		c.beforeAnswer = func() {
			select {
			case w := <-armed:
				r, _ := tryDo("PUT", n, w.path+"?consistency=strong", w.value)
				writes <- r
			default:
			}
		}
	})
	n = tc.nodes[0]
	if r := do(t, "PUT", n, "/v1/kv/k", "old"); r.status != 200 {
		t.Fatalf("put: %d %s", r.status, r.body)
	}
	cases := []struct {
		name, read, write, shows string // shows: what the answer holds if it saw the write
	}{
		{"strong get", "/v1/kv/k?consistency=strong", "/v1/kv/k", "v1"},
		{"bounded get", "/v1/kv/k?consistency=bounded", "/v1/kv/k", "v2"},
		{"eventual get", "/v1/kv/k?consistency=eventual", "/v1/kv/k", "v3"},
		{"get of an absent key", "/v1/kv/absent?consistency=strong", "/v1/kv/absent", "v4"},
		{"strong list", "/v1/kv?prefix=list/&consistency=strong", "/v1/kv/list/b", `"list/b"`},
		{"session list", "/v1/kv?prefix=list2/&consistency=session", "/v1/kv/list2/b", `"list2/b"`},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			value := fmt.Sprintf("v%d", i+1)
			armed <- write{c.write, value}
			r := do(t, "GET", n, c.read, "")
			if len(armed) != 0 {
				<-armed
				t.Fatal("the read never ran its hook")
			}
			w := <-writes
			if w.status != 200 {
				t.Fatalf("the write made during the read: %d %s", w.status, w.body)
			}
			if strings.Contains(r.body, c.shows) {
				t.Fatalf("the read (%d %s) shows the write made after it read", r.status, r.body)
			}
			wrote, err := parseSession(w.header.Get(client.HeaderSession))
			if err != nil || wrote.index == 0 {
				t.Fatalf("the write's token %q: %v", w.header.Get(client.HeaderSession), err)
			}
			claimed, err := strconv.ParseUint(r.header.Get(client.HeaderAppliedIndex), 10, 64)
			if err != nil {
				t.Fatalf("applied index %q: %v", r.header.Get(client.HeaderAppliedIndex), err)
			}
			if claimed >= wrote.index {
				t.Errorf("the answer (%d %s) claims applied index %d, though it misses the write committed at %d", r.status, strings.TrimSpace(r.body), claimed, wrote.index)
			}
		})
	}
}

// Every answer reports its metadata (DESIGN.md), refusals too: the level asked, the node that
// answered, its applied index. A key's read and a strong write did; a list and an eventual write
// refused after their level was known answered with no Dialkv-Consistency, applied index or
// leader, so a client could not tell which level was refused, or by a node how far behind.
func TestRefusalsReportTheirMetadata(t *testing.T) {
	tc := startCluster(t, 1)
	n := tc.nodes[0]
	ahead := consistency.Version{Wall: time.Now().Add(time.Hour).UnixNano(), Node: "n9"}
	skewed := sessionToken{}.saw("k", ahead).String()
	cases := []struct {
		name, method, path, level string
		header                    []string
	}{
		{"bounded get over its bound", "GET", "/v1/kv/k?consistency=bounded&max_staleness=1ns", "bounded", nil},
		{"bounded list over its bound", "GET", "/v1/kv?consistency=bounded&max_staleness=1ns", "bounded", nil},
		{"eventual write behind the session's clock", "PUT", "/v1/kv/k?consistency=eventual", "eventual", []string{client.HeaderSession, skewed}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := do(t, c.method, n, c.path, "v", c.header...)
			if r.status != http.StatusServiceUnavailable || errCode(t, r) != client.CodeUnavailable {
				t.Fatalf("%d %s, want 503 unavailable", r.status, r.body)
			}
			h := r.header
			if h.Get(client.HeaderConsistency) != c.level || h.Get(client.HeaderNode) != n.cfg.ID ||
				h.Get(client.HeaderLeader) != n.cfg.ID || h.Get(client.HeaderAppliedIndex) == "" {
				t.Errorf("refusal's metadata: consistency %q node %q leader %q applied index %q; want %s, %s, %s and an index",
					h.Get(client.HeaderConsistency), h.Get(client.HeaderNode), h.Get(client.HeaderLeader), h.Get(client.HeaderAppliedIndex), c.level, n.cfg.ID, n.cfg.ID)
			}
		})
	}
}

// A request forwarded to the leader is logged there with its request id (README: "forwarded
// and failed requests are logged with it on every node they touched"), so one strong write can
// be followed from the follower that took it to the leader that proposed it. Strong reads'
// read-index calls carried the id; the calls that forward strong writes in batches carried none,
// and the leader logged them under a fresh id.
func TestForwardedWriteLoggedWithItsRequestID(t *testing.T) {
	logs := make([]*syncbuf.Buffer, 3)
	tc := startCluster(t, 3, func(i int, c *Config) {
		logs[i] = &syncbuf.Buffer{}
		c.Logger = slog.New(slog.NewJSONHandler(logs[i], &slog.HandlerOptions{Level: slog.LevelInfo}))
	})
	leader, f := tc.leaderAndFollower()
	const id = "trace-forwarded-write"
	r := do(t, "PUT", f, "/v1/kv/traced?consistency=strong", "v", client.HeaderRequestID, id)
	if r.status != 200 || r.header.Get(client.HeaderVia) != f.cfg.ID || r.header.Get(client.HeaderRequestID) != id {
		t.Fatalf("put through %s: %d %s (via %q, id %q)", f.cfg.ID, r.status, r.body, r.header.Get(client.HeaderVia), r.header.Get(client.HeaderRequestID))
	}
	leaderLog := logs[slices.Index(tc.nodes, leader)]
	// The leader logs the call once it has answered it: maybe after the follower answered.
	waitUntil(t, "leader "+leader.cfg.ID+"'s log to name request "+id, 5*time.Second, func() bool {
		return strings.Contains(leaderLog.String(), `"request_id":"`+id+`"`)
	})
}

// docs/http-api.md, Keys: max_staleness is checked with every read level but bounds only a
// bounded read (the Go client sends one bound with every level); a path with an empty or dot
// segment is redirected to its cleaned path, another key, while the same key with its '/' and
// '.' escaped is served as it is.
func TestMaxStalenessAndUncleanKeyPaths(t *testing.T) {
	tc := startCluster(t, 1)
	n := tc.nodes[0]
	if r := do(t, "PUT", n, "/v1/kv/a%2F..%2Fb", "escaped"); r.status != 200 {
		t.Fatalf("PUT a/../b escaped: %d %s", r.status, r.body)
	}
	for _, c := range []struct {
		query, level, staleness string
	}{
		{"max_staleness=2s", "strong", "0s"},
		{"consistency=strong&max_staleness=2s", "strong", "0s"},
		{"consistency=session&max_staleness=1ns", "session", ""},
		{"consistency=eventual&max_staleness=1ns", "eventual", ""},
		{"consistency=bounded&max_staleness=2s", "bounded", ""},
	} {
		r := do(t, "GET", n, "/v1/kv/a%2F..%2Fb?"+c.query, "")
		if r.status != 200 || r.body != "escaped" || r.header.Get(client.HeaderConsistency) != c.level ||
			c.staleness != "" && r.header.Get(client.HeaderStaleness) != c.staleness {
			t.Errorf("GET ?%s: %d %q level %q staleness %q, want 200 at %s", c.query, r.status, r.body,
				r.header.Get(client.HeaderConsistency), r.header.Get(client.HeaderStaleness), c.level)
		}
	}
	if r := do(t, "GET", n, "/v1/kv/a%2F..%2Fb?consistency=eventual&max_staleness=soon", ""); r.status != 400 || errCode(t, r) != client.CodeBadRequest {
		t.Errorf("GET with max_staleness=soon at eventual: %d %s, want 400", r.status, r.body)
	}
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, c := range []struct{ method, path, location string }{
		{"PUT", "/v1/kv/a/../b", "/v1/kv/b"},
		{"DELETE", "/v1/kv/a/./b", "/v1/kv/a/b"},
		{"GET", "/v1/kv/a//b?consistency=eventual", "/v1/kv/a/b?consistency=eventual"},
	} {
		req, err := http.NewRequest(c.method, "http://"+n.HTTPAddr()+c.path, strings.NewReader("v"))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := noFollow.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusTemporaryRedirect || resp.Header.Get("Location") != c.location {
			t.Errorf("%s %s: %d to %q, want 307 to %q", c.method, c.path, resp.StatusCode, resp.Header.Get("Location"), c.location)
		}
	}
	if r := do(t, "GET", n, "/v1/kv/a%2F..%2Fb", ""); r.status != 200 || r.body != "escaped" {
		t.Errorf("the escaped key after the redirects: %d %q, want it untouched", r.status, r.body)
	}
	if r := do(t, "HEAD", n, "/v1/kv/a%2F..%2Fb", ""); r.status != 200 || r.body != "" || r.header.Get(client.HeaderVersion) == "" {
		t.Errorf("HEAD: %d %q %v, want 200, no body, the version", r.status, r.body, r.header)
	}
}
