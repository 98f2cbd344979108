package client

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeNode is an httptest server standing in for one dialkv node. It counts the requests that
// reached it and records the last one's headers, so tests can assert where a call went.
type fakeNode struct {
	*httptest.Server
	hits atomic.Int32

	mu   sync.Mutex
	last *http.Request
}

func (f *fakeNode) lastRequest() *http.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last
}

// newFakeNode starts a node whose every request is answered by h.
func newFakeNode(t *testing.T, h http.HandlerFunc) *fakeNode {
	t.Helper()
	f := &fakeNode{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.hits.Add(1)
		f.mu.Lock()
		f.last = r.Clone(r.Context())
		f.mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

// addr is the node's host:port, the form users configure.
func (f *fakeNode) addr() string { return f.Listener.Addr().String() }

// refusedAddr returns a host:port where nothing listens, so connecting is refused: a port that
// was just bound and released.
func refusedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// Handlers for the behaviours failover must tell apart.

// okWrite answers a write as node id would.
func okWrite(id string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(HeaderNode, id)
		w.Header().Set(HeaderConsistency, "strong")
		w.Header().Set(HeaderVersion, "100.0@"+id)
		w.WriteHeader(http.StatusOK)
	}
}

// okRead answers a JSON read of value as node id would.
func okRead(id, value string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(HeaderNode, id)
		writeJSON(w, http.StatusOK, ValueResponse{
			KV:   KV{Key: "k", Value: value, Version: "100.0@" + id, State: StateCommitted},
			Meta: Meta{Consistency: "strong", Node: id},
		})
	}
}

// serverError answers with a dialkv error body from node id.
func serverError(id string, status int, code, msg string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(HeaderNode, id)
		writeJSON(w, status, ErrorBody{Error: msg, Code: code})
	}
}

// hangUp reads the request and drops the connection without answering: the request reached
// the server, the answer never came.
func hangUp(w http.ResponseWriter, r *http.Request) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(err)
	}
	conn.Close()
}

// stall never answers; it returns when the client gives up and closes the connection. It reads
// the body first: only then does the server watch the connection and cancel r.Context().
func stall(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	<-r.Context().Done()
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// mustClient builds a client for endpoints with a short per-attempt timeout, so tests that
// exercise timeouts stay fast.
func mustClient(t *testing.T, timeout time.Duration, endpoints ...string) *Client {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Endpoints = endpoints
	cfg.Timeout = timeout
	cl, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return cl
}
