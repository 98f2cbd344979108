package client

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestErrorDecoding(t *testing.T) {
	tests := []struct {
		name   string
		status int
		node   string
		header map[string]string
		body   string
		want   Error
		text   string
		kinds  map[string]bool // helper name -> want
	}{
		{
			name: "no leader", status: 503, node: "n2",
			body:  `{"error":"no leader elected within 5s: the cluster has no quorum","code":"no_leader"}`,
			want:  Error{Status: 503, Code: CodeNoLeader, Message: "no leader elected within 5s: the cluster has no quorum", Node: "n2"},
			text:  "no_leader: no leader elected within 5s: the cluster has no quorum (node n2)",
			kinds: map[string]bool{"unavailable": true},
		},
		{
			name: "conflict with version", status: 409, node: "n1",
			body:  `{"error":"version mismatch","code":"conflict","version":"1700000000.3@n1"}`,
			want:  Error{Status: 409, Code: CodeConflict, Message: "version mismatch", Node: "n1", Version: "1700000000.3@n1"},
			text:  "conflict: version mismatch (current version 1700000000.3@n1, node n1)",
			kinds: map[string]bool{"conflict": true},
		},
		{
			name: "conflict whose message names the version", status: 409, node: "n1",
			body:  `{"error":"version is not 1.0@n1 (current version 2.0@n1)","code":"conflict","version":"2.0@n1"}`,
			want:  Error{Status: 409, Code: CodeConflict, Message: "version is not 1.0@n1 (current version 2.0@n1)", Node: "n1", Version: "2.0@n1"},
			text:  "conflict: version is not 1.0@n1 (current version 2.0@n1) (node n1)",
			kinds: map[string]bool{"conflict": true},
		},
		{
			name: "not found", status: 404, node: "n3",
			body:  `{"error":"key \"a\" not found","code":"not_found"}`,
			want:  Error{Status: 404, Code: CodeNotFound, Message: `key "a" not found`, Node: "n3"},
			text:  `not_found: key "a" not found (node n3)`,
			kinds: map[string]bool{"notfound": true},
		},
		{
			name: "unavailable", status: 503, node: "n3",
			body:  `{"error":"last leader contact 3s ago, over the 1s bound","code":"unavailable"}`,
			want:  Error{Status: 503, Code: CodeUnavailable, Message: "last leader contact 3s ago, over the 1s bound", Node: "n3"},
			text:  "unavailable: last leader contact 3s ago, over the 1s bound (node n3)",
			kinds: map[string]bool{"unavailable": true},
		},
		{
			name: "outcome unknown", status: 504, node: "n1",
			body:  `{"error":"leadership lost while committing","code":"outcome_unknown"}`,
			want:  Error{Status: 504, Code: CodeOutcomeUnknown, Message: "leadership lost while committing", Node: "n1"},
			text:  "outcome_unknown: leadership lost while committing (node n1)",
			kinds: map[string]bool{"outcome": true},
		},
		{
			name: "multi-line message stays one line", status: 500, node: "n1",
			body: `{"error":"disk error:\n  write failed","code":"internal"}`,
			want: Error{Status: 500, Code: CodeInternal, Message: "disk error:\n  write failed", Node: "n1"},
			text: "internal: disk error: write failed (node n1)",
		},
		{
			name: "not a dialkv body", status: 502,
			body: "<html>Bad Gateway</html>\n",
			want: Error{Status: 502, Message: "<html>Bad Gateway</html>"},
			text: "HTTP 502: <html>Bad Gateway</html> (endpoint ENDPOINT)",
		},
		{
			name: "plain 404 is not a missing key", status: 404,
			body: "404 page not found",
			want: Error{Status: 404, Message: "404 page not found"},
			text: "HTTP 404: 404 page not found (endpoint ENDPOINT)",
		},
		{
			name: "a cut body leaves the code and version of the headers", status: 409, node: "n1",
			header: map[string]string{HeaderError: CodeConflict, HeaderVersion: "2.0@n1"},
			body:   `{"error":"condition failed on \"kkkk`,
			want:   Error{Status: 409, Code: CodeConflict, Message: `{"error":"condition failed on \"kkkk`, Node: "n1", Version: "2.0@n1"},
			text:   `conflict: {"error":"condition failed on \"kkkk (current version 2.0@n1, node n1)`,
			kinds:  map[string]bool{"conflict": true},
		},
		{
			name: "a cut 503 is still unavailable", status: 503, node: "n2",
			header: map[string]string{HeaderError: CodeUnavailable},
			body:   `{"error":"n2 has not yet received`,
			want:   Error{Status: 503, Code: CodeUnavailable, Message: `{"error":"n2 has not yet received`, Node: "n2"},
			text:   `unavailable: {"error":"n2 has not yet received (node n2)`,
			kinds:  map[string]bool{"unavailable": true},
		},
		{
			name: "empty body", status: 503,
			want: Error{Status: 503, Message: "Service Unavailable"},
			text: "HTTP 503: Service Unavailable (endpoint ENDPOINT)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			node := newFakeNode(t, func(w http.ResponseWriter, r *http.Request) {
				if tt.node != "" {
					w.Header().Set(HeaderNode, tt.node)
				}
				for k, v := range tt.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			})
			// One endpoint: a 503 must come back as is, not as "all endpoints failed".
			cl := mustClient(t, time.Second, node.addr())
			_, _, err := cl.Get(context.Background(), "a", GetOptions{})
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v (%T) is not an *Error", err, err)
			}
			endpoint := "http://" + node.addr()
			want := tt.want
			want.Endpoint = endpoint
			want.RequestID = e.RequestID
			if e.RequestID == "" {
				t.Error("RequestID is empty")
			}
			if !reflect.DeepEqual(*e, want) {
				t.Errorf("got  %#v\nwant %#v", *e, want)
			}
			if text := strings.ReplaceAll(tt.text, "ENDPOINT", endpoint); err.Error() != text {
				t.Errorf("Error() = %q, want %q", err.Error(), text)
			}
			kinds := map[string]bool{
				"notfound":    IsNotFound(err),
				"conflict":    IsConflict(err),
				"outcome":     IsOutcomeUnknown(err),
				"unavailable": IsUnavailable(err),
			}
			for k, got := range kinds {
				if got != tt.kinds[k] {
					t.Errorf("Is %s = %v, want %v", k, got, tt.kinds[k])
				}
			}
		})
	}
}

func TestGetValueDecoding(t *testing.T) {
	binary := []byte{0xff, 0x00, 0xfe, 'x'}
	tests := []struct {
		name        string
		contentType string
		body        string
		want        []byte
		wantErr     bool
	}{
		{name: "utf-8 value", contentType: "application/json",
			body: `{"key":"k","value":"héllo","version":"5.0@n1","meta":{"node":"n1"}}`, want: []byte("héllo")},
		{name: "binary value", contentType: "application/json; charset=utf-8",
			body: `{"key":"k","value":"","value_base64":"` + base64.StdEncoding.EncodeToString(binary) + `","version":"5.0@n1","meta":{}}`,
			want: binary},
		{name: "empty value", contentType: "application/json",
			body: `{"key":"k","value":"","version":"5.0@n1","meta":{}}`, want: []byte{}},
		{name: "bare value when the server ignores Accept", contentType: "application/octet-stream",
			body: "raw\nbytes", want: []byte("raw\nbytes")},
		{name: "bad base64", contentType: "application/json",
			body: `{"key":"k","value":"","value_base64":"!!!","version":"5.0@n1","meta":{}}`, wantErr: true},
		{name: "bad JSON", contentType: "application/json", body: `{"key":`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			node := newFakeNode(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tt.contentType)
				io.WriteString(w, tt.body)
			})
			cl := mustClient(t, time.Second, node.addr())
			got, _, err := cl.Get(context.Background(), "k", GetOptions{})
			if tt.wantErr {
				if !errors.Is(err, ErrBadAnswer) {
					t.Fatalf("got value %q, error %v; want an ErrBadAnswer (an answer came, unreadable)", got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got == nil || string(got) != string(tt.want) {
				t.Errorf("value = %q (nil: %v), want %q", got, got == nil, tt.want)
			}
			if accept := node.lastRequest().Header.Get("Accept"); accept != "application/json" {
				t.Errorf("Accept = %q, want application/json", accept)
			}
		})
	}
}

// A key that is not valid UTF-8 travels as key_base64 (JSON text would turn it into U+FFFD):
// RawKey gives it back exactly, and NewKV is the server's side of the same rule.
func TestListKeyDecoding(t *testing.T) {
	binaryKey := "\xff\xfe"
	node := newFakeNode(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"items":[{"key":"plain","value":"a","version":"1.0@n1"},`+
			`{"key":"","key_base64":"//4=","value":"b","version":"2.0@n1"},`+
			`{"key":"","key_base64":"!!!","value":"c","version":"3.0@n1"}],"more":false,"meta":{}}`)
	})
	cl := mustClient(t, time.Second, node.addr())
	items, _, err := cl.List(context.Background(), "", ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 3 {
		t.Fatalf("items = %+v", items)
	}
	for i, want := range []string{"plain", binaryKey} {
		if got, err := items[i].RawKey(); err != nil || got != want {
			t.Errorf("item %d: RawKey = %q, %v; want %q", i, got, err, want)
		}
	}
	if _, err := items[2].RawKey(); err == nil {
		t.Error("RawKey of a bad key_base64: no error")
	}

	for _, c := range []struct {
		key, value string
		want       KV
	}{
		{"plain", "v", KV{Key: "plain", Value: "v"}},
		{"été", "", KV{Key: "été"}},
		{binaryKey, "\xff", KV{KeyBase64: "//4=", ValueBase64: "/w=="}},
	} {
		kv := NewKV(c.key, []byte(c.value))
		if kv != c.want {
			t.Errorf("NewKV(%q, %q) = %+v, want %+v", c.key, c.value, kv, c.want)
		}
		key, err := kv.RawKey()
		value, verr := kv.Bytes()
		if err != nil || verr != nil || key != c.key || string(value) != c.value {
			t.Errorf("NewKV(%q, %q) decodes to %q, %q (%v, %v)", c.key, c.value, key, value, err, verr)
		}
	}
}

func TestMetaParsing(t *testing.T) {
	full := http.Header{}
	full.Set(HeaderConsistency, "bounded")
	full.Set(HeaderNode, "n3")
	full.Set(HeaderVia, "n2")
	full.Set(HeaderLeader, "n1")
	full.Set(HeaderVersion, "1700000000000000000.2@n1")
	full.Set(HeaderAppliedIndex, "42")
	full.Set(HeaderState, StateCommitted)
	full.Set(HeaderStaleness, "350ms")
	full.Set(HeaderSession, "tok")
	wantFull := Meta{Consistency: "bounded", Node: "n3", Via: "n2", Leader: "n1",
		Version: "1700000000000000000.2@n1", AppliedIndex: 42, State: StateCommitted,
		Staleness: "350ms", Session: "tok"}

	tests := []struct {
		name   string
		header http.Header
		body   string // JSON body; "" for none
		want   Meta
	}{
		{name: "all headers", header: full, want: wantFull},
		{name: "bad applied index is ignored", header: http.Header{HeaderNode: {"n1"}, HeaderAppliedIndex: {"x"}},
			want: Meta{Node: "n1"}},
		{name: "JSON meta fills and overrides", header: http.Header{HeaderNode: {"n1"}, HeaderAppliedIndex: {"7"}},
			body: `{"key":"k","value":"v","version":"9.0@n1","state":"tentative","meta":{"consistency":"eventual","node":"n1","applied_index":8}}`,
			want: Meta{Consistency: "eventual", Node: "n1", AppliedIndex: 8, Version: "9.0@n1", State: StateTentative}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			node := newFakeNode(t, func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tt.header {
					w.Header()[k] = v
				}
				if tt.body != "" {
					w.Header().Set("Content-Type", "application/json")
					io.WriteString(w, tt.body)
				}
			})
			cl := mustClient(t, time.Second, node.addr())
			_, got, err := cl.Get(context.Background(), "k", GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("Get meta\n got  %+v\n want %+v", got, tt.want)
			}
			got, err = cl.Put(context.Background(), "k", []byte("v"), PutOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("Put meta\n got  %+v\n want %+v", got, tt.want)
			}
		})
	}
}

// TestMetaOnError: a server error still reports which node answered, at which index.
func TestMetaOnError(t *testing.T) {
	node := newFakeNode(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(HeaderNode, "n2")
		w.Header().Set(HeaderAppliedIndex, "11")
		writeJSON(w, 404, ErrorBody{Error: "not found", Code: CodeNotFound})
	})
	cl := mustClient(t, time.Second, node.addr())
	_, meta, err := cl.Get(context.Background(), "k", GetOptions{})
	if !IsNotFound(err) {
		t.Fatalf("IsNotFound(%v) = false", err)
	}
	if meta.Node != "n2" || meta.AppliedIndex != 11 {
		t.Errorf("meta = %+v, want node n2 at applied index 11", meta)
	}
}

// TestSessionRoundTrip: the token goes out when set and comes back from every answer that
// carries one, errors included; answers without one leave it alone.
func TestSessionRoundTrip(t *testing.T) {
	type step struct {
		reply    string // token the server answers with; "" for none
		status   int
		wantSent string // token the request must carry
		wantNow  string // session token after the answer
	}
	steps := []step{
		{reply: "t1", status: 200, wantSent: "", wantNow: "t1"},
		{reply: "t2", status: 200, wantSent: "t1", wantNow: "t2"},
		{reply: "", status: 200, wantSent: "t2", wantNow: "t2"},
		{reply: "t3", status: 404, wantSent: "t2", wantNow: "t3"},
		{reply: "t4", status: 200, wantSent: "t3", wantNow: "t4"},
	}
	var current atomic.Int32 // the step the test is at; the handler runs on another goroutine
	node := newFakeNode(t, func(w http.ResponseWriter, r *http.Request) {
		i := current.Load()
		s := steps[i]
		if got := r.Header.Get(HeaderSession); got != s.wantSent {
			t.Errorf("step %d: request carried session %q, want %q", i, got, s.wantSent)
		}
		if s.reply != "" {
			w.Header().Set(HeaderSession, s.reply)
		}
		if s.status != 200 {
			writeJSON(w, s.status, ErrorBody{Error: "not found", Code: CodeNotFound})
		}
	})
	cl := mustClient(t, time.Second, node.addr())
	sess := NewSession("")
	for i := range steps {
		current.Store(int32(i))
		var err error
		switch i % 3 { // the session works the same for reads, writes and deletes
		case 0:
			_, _, err = cl.Get(context.Background(), "k", GetOptions{Consistency: ConsistencySession, Session: sess})
		case 1:
			_, err = cl.Put(context.Background(), "k", []byte("v"), PutOptions{Session: sess})
		case 2:
			_, err = cl.Delete(context.Background(), "k", DeleteOptions{Session: sess})
		}
		if (err != nil) != (steps[i].status != 200) {
			t.Fatalf("step %d: err = %v", i, err)
		}
		if got := sess.Token(); got != steps[i].wantNow {
			t.Errorf("step %d: session token = %q, want %q", i, got, steps[i].wantNow)
		}
	}
}

// TestRequestShape: paths, query parameters and bodies as docs/http-api.md spells them.
func TestRequestShape(t *testing.T) {
	type seen struct {
		method, path, rawQuery, body string
	}
	var got seen
	mux := http.NewServeMux()
	record := func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = seen{r.Method, r.URL.EscapedPath(), r.URL.RawQuery, string(b)}
		if r.URL.Path == "/v1/kv" {
			writeJSON(w, 200, ListResponse{Items: []KV{{Key: "a/1", Value: "x", Version: "1.0@n1"}}, More: true})
		}
	}
	mux.HandleFunc("/v1/kv/{key...}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("key") != "a/../b c" && r.PathValue("key") != "." {
			t.Errorf("server saw key %q", r.PathValue("key"))
		}
		record(w, r)
	})
	mux.HandleFunc("/v1/kv", record)
	node := newFakeNode(t, mux.ServeHTTP)
	cl := mustClient(t, time.Second, node.addr())
	ctx := context.Background()
	const key = "a/../b c"
	const path = "/v1/kv/a%2F..%2Fb%20c"

	tests := []struct {
		name string
		do   func() error
		want seen
	}{
		{"plain put", func() error { _, err := cl.Put(ctx, key, []byte("v1"), PutOptions{}); return err },
			seen{"PUT", path, "", "v1"}},
		{"empty put sends an empty body", func() error {
			_, err := cl.Put(ctx, key, nil, PutOptions{Consistency: ConsistencyEventual})
			return err
		},
			seen{"PUT", path, "consistency=eventual", ""}},
		{"compare-and-set", func() error {
			_, err := cl.Put(ctx, key, []byte("v2"), PutOptions{Consistency: ConsistencyStrong, IfVersion: "5.1@n2"})
			return err
		}, seen{"PUT", path, "consistency=strong&if_version=5.1%40n2", "v2"}},
		{"create if absent", func() error { _, err := cl.Put(ctx, key, []byte("v3"), PutOptions{IfAbsent: true}); return err },
			seen{"PUT", path, "if_absent=true", "v3"}},
		{"bounded get", func() error {
			_, _, err := cl.Get(ctx, key, GetOptions{Consistency: ConsistencyBounded, MaxStaleness: 1500 * time.Millisecond})
			return err
		}, seen{"GET", path, "consistency=bounded&max_staleness=1.5s", ""}},
		{"dot key", func() error { _, _, err := cl.Get(ctx, ".", GetOptions{}); return err },
			seen{"GET", "/v1/kv/%2E", "", ""}},
		{"conditional delete", func() error { _, err := cl.Delete(ctx, key, DeleteOptions{IfVersion: "7.0@n1"}); return err },
			seen{"DELETE", path, "if_version=7.0%40n1", ""}},
		{"list", func() error {
			page, err := cl.ListPage(ctx, "a/", ListOptions{Limit: 10, Consistency: ConsistencyEventual})
			if err == nil && (len(page.Items) != 1 || page.Items[0].Key != "a/1") {
				t.Errorf("items = %+v", page.Items)
			}
			return err
		}, seen{"GET", "/v1/kv", "consistency=eventual&limit=10&prefix=a%2F", ""}},
		{"list after a key", func() error {
			_, err := cl.ListPage(ctx, "a/", ListOptions{After: "a/\xff+"})
			return err
		}, seen{"GET", "/v1/kv", "after=a%2F%FF%2B&prefix=a%2F", ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got = seen{}
			if err := tt.do(); err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("request\n got  %+v\n want %+v", got, tt.want)
			}
		})
	}

	page, err := cl.ListPage(ctx, "a/", ListOptions{})
	if err != nil || !page.More {
		t.Errorf("ListPage: more = %v, err = %v; want more", page.More, err)
	}
}

func TestBadOptions(t *testing.T) {
	node := newFakeNode(t, okWrite("n1"))
	cl := mustClient(t, time.Second, node.addr())
	ctx := context.Background()
	checks := map[string]error{
		"both conditions": func() error {
			_, err := cl.Put(ctx, "k", []byte("v"), PutOptions{IfVersion: "1.0@n1", IfAbsent: true})
			return err
		}(),
		"eventual compare-and-set": func() error {
			_, err := cl.Put(ctx, "k", []byte("v"), PutOptions{Consistency: ConsistencyEventual, IfVersion: "1.0@n1"})
			return err
		}(),
		"eventual create-if-absent": func() error {
			_, err := cl.Put(ctx, "k", []byte("v"), PutOptions{Consistency: ConsistencyEventual, IfAbsent: true})
			return err
		}(),
		"eventual compare-and-set, as servers spell levels": func() error {
			_, err := cl.Put(ctx, "k", []byte("v"), PutOptions{Consistency: " EVENTUAL", IfVersion: "1.0@n1"})
			return err
		}(),
		"eventual conditional delete": func() error {
			_, err := cl.Delete(ctx, "k", DeleteOptions{Consistency: ConsistencyEventual, IfVersion: "1.0@n1"})
			return err
		}(),
		"empty key":      func() error { _, _, err := cl.Get(ctx, "", GetOptions{}); return err }(),
		"negative limit": func() error { _, _, err := cl.List(ctx, "", ListOptions{Limit: -1}); return err }(),
	}
	for name, err := range checks {
		if !errors.Is(err, ErrBadOptions) {
			t.Errorf("%s: error %v is not ErrBadOptions", name, err)
		}
	}
	if node.hits.Load() != 0 {
		t.Errorf("bad options reached the server %d times", node.hits.Load())
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name      string
		endpoints []string
		timeout   time.Duration
		wantErr   string
	}{
		{name: "default"},
		{name: "schemes and slashes", endpoints: []string{"http://127.0.0.1:7001/", "https://h:7002", "h3:7003"}},
		{name: "no endpoints", endpoints: []string{}, wantErr: "no endpoints"},
		{name: "no port", endpoints: []string{"127.0.0.1"}, wantErr: "want host:port"},
		{name: "path", endpoints: []string{"http://h:1/v1"}, wantErr: "without path"},
		{name: "scheme", endpoints: []string{"ftp://h:1"}, wantErr: "scheme"},
		{name: "duplicate", endpoints: []string{"h:1", "http://h:1"}, wantErr: "twice"},
		{name: "negative timeout", timeout: -time.Second, wantErr: "negative timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			if tt.endpoints != nil {
				cfg.Endpoints = tt.endpoints
			}
			if tt.timeout != 0 {
				cfg.Timeout = tt.timeout
			}
			err := cfg.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				if _, err := New(cfg); err != nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Validate = %v, want an error containing %q", err, tt.wantErr)
			}
			if _, err := New(cfg); err == nil {
				t.Error("New accepted a config Validate rejects")
			}
		})
	}
}

func TestStatus(t *testing.T) {
	st := StatusResponse{Node: "n2", Leader: "n1", Term: 3, Nodes: []NodeStatus{
		{ID: "n1", HTTP: "127.0.0.1:7001", Role: "leader", Health: "ok"},
		{ID: "n2", HTTP: "127.0.0.1:7002", Role: "follower", Health: "ok"},
	}}
	node := newFakeNode(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/status" {
			t.Errorf("path = %s", r.URL.Path)
		}
		writeJSON(w, 200, st)
	})
	refused := refusedAddr(t)
	cl := mustClient(t, time.Second, refused, node.addr())
	got, err := cl.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(*got, st) {
		t.Errorf("Status = %+v, want %+v", *got, st)
	}
	if _, err := cl.StatusOf(context.Background(), refused); err == nil {
		t.Error("StatusOf a refused endpoint succeeded: it must not fail over")
	}
	if got, err := cl.StatusOf(context.Background(), "http://"+node.addr()); err != nil || got.Node != "n2" {
		t.Errorf("StatusOf = %+v, %v", got, err)
	}
}
