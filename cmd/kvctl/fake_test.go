package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/dialkv/dialkv/client"
)

// fakeCluster is a single in-memory node speaking the HTTP API of docs/http-api.md closely
// enough to drive kvctl: values, versions, conditional writes, lists, status and session tokens.
type fakeCluster struct {
	*httptest.Server

	mu       sync.Mutex
	values   map[string][]byte
	versions map[string]string
	clock    int
	// pageSize, when set, cuts each list answer at that many keys, as a node cuts at its page
	// size; failAfter, when set, fails a list that goes on after that key (a node lost
	// between two pages).
	pageSize  int
	failAfter string
	// sessionsSeen records the Dialkv-Session header of every request, in order.
	sessionsSeen []string
	// holdKey, when set, makes a request for that key wait, before it is served, until release
	// is closed; arrived is closed when the first such request comes.
	holdKey          string
	arrived, release chan struct{}
}

// hold makes requests for key wait until the returned release is called; arrived is closed when
// the first one comes.
func (f *fakeCluster) hold(key string) (arrived <-chan struct{}, release func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.holdKey, f.arrived, f.release = key, make(chan struct{}), make(chan struct{})
	return f.arrived, sync.OnceFunc(func() { close(f.release) })
}

func newFakeCluster(t *testing.T) *fakeCluster {
	t.Helper()
	f := &fakeCluster{values: map[string][]byte{}, versions: map[string]string{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/kv/{key...}", f.serveKey)
	mux.HandleFunc("GET /v1/kv", f.serveList)
	mux.HandleFunc("GET /v1/status", f.serveStatus)
	mux.HandleFunc("DELETE /v1/cluster/members/{id}", f.serveRemoveMember)
	f.Server = httptest.NewServer(mux)
	t.Cleanup(f.Close)
	return f
}

func (f *fakeCluster) addr() string { return f.Listener.Addr().String() }

func (f *fakeCluster) sessions() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.sessionsSeen)
}

// answer sets the metadata headers every answer carries, and a new session token.
func (f *fakeCluster) answer(w http.ResponseWriter, r *http.Request, version string) {
	f.sessionsSeen = append(f.sessionsSeen, r.Header.Get(client.HeaderSession))
	h := w.Header()
	level := r.URL.Query().Get("consistency")
	if level == "" {
		level = client.ConsistencyStrong
	}
	h.Set(client.HeaderConsistency, level)
	h.Set(client.HeaderNode, "n1")
	h.Set(client.HeaderLeader, "n1")
	h.Set(client.HeaderAppliedIndex, strconv.Itoa(f.clock))
	h.Set(client.HeaderState, client.StateCommitted)
	h.Set(client.HeaderStaleness, "0s")
	h.Set(client.HeaderSession, fmt.Sprintf("tok-%d", len(f.sessionsSeen)))
	if version != "" {
		h.Set(client.HeaderVersion, version)
	}
}

func (f *fakeCluster) fail(w http.ResponseWriter, status int, code, msg, version string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(client.ErrorBody{Error: msg, Code: code, Version: version})
}

func (f *fakeCluster) serveKey(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	f.mu.Lock()
	if f.holdKey != "" && key == f.holdKey {
		arrived, release := f.arrived, f.release
		f.holdKey = ""
		f.mu.Unlock()
		close(arrived)
		<-release
		f.mu.Lock()
	}
	defer f.mu.Unlock()
	q := r.URL.Query()
	current, exists := f.versions[key]
	switch r.Method {
	case http.MethodGet:
		f.answer(w, r, current)
		if !exists {
			f.fail(w, 404, client.CodeNotFound, fmt.Sprintf("key %q not found", key), "")
			return
		}
		kv := encodeKV(key, f.values[key], current)
		kv.State = client.StateCommitted
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(client.ValueResponse{KV: kv, Meta: client.Meta{Node: "n1"}})
	case http.MethodPut, http.MethodDelete:
		if v := q.Get("if_version"); v != "" && v != current {
			f.answer(w, r, current)
			f.fail(w, 409, client.CodeConflict, "version mismatch", current)
			return
		}
		if q.Get("if_absent") == "true" && exists {
			f.answer(w, r, current)
			f.fail(w, 409, client.CodeConflict, "key exists", current)
			return
		}
		if r.Method == http.MethodDelete && !exists {
			f.answer(w, r, "")
			f.fail(w, 404, client.CodeNotFound, "nothing to delete", "")
			return
		}
		f.clock++
		version := fmt.Sprintf("%d.0@n1", f.clock)
		if r.Method == http.MethodDelete {
			delete(f.values, key)
			delete(f.versions, key)
		} else {
			body, _ := io.ReadAll(r.Body)
			f.values[key], f.versions[key] = body, version
		}
		f.answer(w, r, version)
	}
}

func (f *fakeCluster) serveList(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	q := r.URL.Query()
	prefix, after := q.Get("prefix"), q.Get("after")
	if q.Has("after_base64") {
		b, _ := base64.StdEncoding.DecodeString(q.Get("after_base64"))
		after = string(b)
	}
	if f.failAfter != "" && after == f.failAfter {
		f.answer(w, r, "")
		f.fail(w, 503, client.CodeUnavailable, "node going away", "")
		return
	}
	limit, _ := strconv.Atoi(q.Get("limit"))
	if f.pageSize > 0 && (limit == 0 || limit > f.pageSize) {
		limit = f.pageSize
	}
	var keys []string
	for k := range f.values {
		if strings.HasPrefix(k, prefix) && k > after {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	resp := client.ListResponse{Items: []client.KV{}}
	for i, k := range keys {
		if limit > 0 && len(resp.Items) == limit {
			resp.More = true
			next := client.NewKV(keys[i-1], nil)
			resp.Next, resp.NextBase64 = next.Key, next.KeyBase64
			break
		}
		resp.Items = append(resp.Items, encodeKV(k, f.values[k], f.versions[k]))
	}
	f.answer(w, r, "")
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(resp)
}

func (f *fakeCluster) serveStatus(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(client.StatusResponse{
		Node: "n1", Leader: "n1", Term: 2, CommitIndex: 9, AppliedIndex: 9,
		Nodes: []client.NodeStatus{
			{ID: "n1", HTTP: f.addr(), Raft: "127.0.0.1:7101", Role: "leader", Health: "ok", AppliedIndex: 9, Term: 2, Backlog: 42},
			{ID: "n2", HTTP: "127.0.0.1:7002", Raft: "127.0.0.1:7102", Role: "follower", Health: "down", Reason: "no contact for 12s", LastContact: "12s", Gossip: "suspect"},
		},
		Purge: &client.PurgeStatus{PendingTombstones: 3, HeldBackBy: map[string]string{"n2": "2m0s"}},
	})
}

// serveRemoveMember knows n1 and n2 as members.
func (f *fakeCluster) serveRemoveMember(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if id := r.PathValue("id"); id != "n1" && id != "n2" {
		w.Header().Set(client.HeaderError, client.CodeNotFound)
		w.WriteHeader(http.StatusNotFound)
		json.NewEncoder(w).Encode(client.ErrorBody{Error: "no such member: " + id + " is not in the cluster (already removed?)", Code: client.CodeNotFound})
		return
	}
	json.NewEncoder(w).Encode(map[string]string{"status": "ok", "leader": "n1"})
}

// encodeKV is key and value in their wire form, as the server sends them.
func encodeKV(key string, value []byte, version string) client.KV {
	kv := client.NewKV(key, value)
	kv.Version = version
	return kv
}
