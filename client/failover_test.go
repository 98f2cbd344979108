package client

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestFailover is the failover rule of the package doc as a table: which first answers send a
// call on to the second endpoint, and which must stop it there.
func TestFailover(t *testing.T) {
	const refused = "refused" // marks an endpoint where nothing listens
	type op int
	const (
		put op = iota
		get
		del
	)
	tests := []struct {
		name  string
		op    op
		first http.HandlerFunc // nil: refused connection
		// wantSecond: the call must reach the second endpoint (and succeed there).
		wantSecond bool
		// check the error when the call must not reach the second endpoint.
		check func(error) bool
	}{
		{name: "write fails over on refused connection", op: put, wantSecond: true},
		{name: "read fails over on refused connection", op: get, wantSecond: true},
		{name: "write fails over on 503 no_leader", op: put, first: serverError("n1", 503, CodeNoLeader, "no leader elected within 5s"), wantSecond: true},
		{name: "write fails over on 503 unavailable", op: put, first: serverError("n1", 503, CodeUnavailable, "cannot serve"), wantSecond: true},
		{name: "read fails over on 503 unavailable", op: get, first: serverError("n1", 503, CodeUnavailable, "staleness over bound"), wantSecond: true},
		{name: "read fails over when the connection drops", op: get, first: hangUp, wantSecond: true},
		{name: "read fails over on timeout", op: get, first: stall, wantSecond: true},
		{name: "read fails over on 504 timeout", op: get, first: serverError("n1", 504, CodeTimeout, "no read index from a leader within 5s"), wantSecond: true},
		{name: "write fails over on 504 timeout", op: put, first: serverError("n1", 504, CodeTimeout, "the write waited to be forwarded; it was not sent"), wantSecond: true},
		{name: "delete fails over on 504 timeout", op: del, first: serverError("n1", 504, CodeTimeout, "the proposal queue stayed full"), wantSecond: true},
		{name: "write stops on a 504 that is not dialkv's", op: put, first: func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "gateway timeout", http.StatusGatewayTimeout)
		}, check: func(err error) bool {
			var e *Error
			return errors.As(err, &e) && e.Status == 504 && e.Code == ""
		}},
		{name: "write stops on 504 outcome_unknown", op: put, first: serverError("n1", 504, CodeOutcomeUnknown, "leadership lost"), check: IsOutcomeUnknown},
		{name: "write stops when the connection drops after sending", op: put, first: hangUp, check: IsOutcomeUnknown},
		{name: "delete stops when the connection drops after sending", op: del, first: hangUp, check: IsOutcomeUnknown},
		{name: "write stops on timeout after sending", op: put, first: stall, check: IsOutcomeUnknown},
		{name: "write stops on 409 conflict", op: put, first: serverError("n1", 409, CodeConflict, "version mismatch"), check: IsConflict},
		{name: "read stops on 404", op: get, first: serverError("n1", 404, CodeNotFound, "no such key"), check: IsNotFound},
		{name: "read fails over on 500 internal", op: get, first: serverError("n1", 500, CodeInternal, "reading the store: input/output error"), wantSecond: true},
		{name: "read fails over on a proxy's 502", op: get, first: func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "bad gateway", http.StatusBadGateway)
		}, wantSecond: true},
		{name: "write stops on 500 internal", op: put, first: serverError("n1", 500, CodeInternal, "disk full"), check: func(err error) bool {
			var e *Error
			return errors.As(err, &e) && e.Status == 500 && e.Code == CodeInternal
		}},
		{name: "write stops on 503 with another code", op: put, first: serverError("n1", 503, "overloaded", "busy"), check: func(err error) bool {
			var e *Error
			return errors.As(err, &e) && e.Status == 503 && !IsUnavailable(err)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var first string
			var firstNode *fakeNode
			if tt.first == nil {
				first = refusedAddr(t)
			} else {
				firstNode = newFakeNode(t, tt.first)
				first = firstNode.addr()
			}
			second := newFakeNode(t, func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodGet {
					okRead("n2", "v2")(w, r)
					return
				}
				okWrite("n2")(w, r)
			})
			cl := mustClient(t, 300*time.Millisecond, first, second.addr())
			ctx := context.Background()

			var meta Meta
			var err error
			switch tt.op {
			case put:
				meta, err = cl.Put(ctx, "k", []byte("v"), PutOptions{})
			case del:
				meta, err = cl.Delete(ctx, "k", DeleteOptions{})
			case get:
				var v []byte
				v, meta, err = cl.Get(ctx, "k", GetOptions{})
				if err == nil && string(v) != "v2" {
					t.Errorf("value = %q, want v2", v)
				}
			}

			if tt.wantSecond {
				if err != nil {
					t.Fatalf("want success on the second endpoint, got %v", err)
				}
				if meta.Node != "n2" {
					t.Errorf("served by %q, want n2", meta.Node)
				}
				if got := second.hits.Load(); got != 1 {
					t.Errorf("second endpoint got %d requests, want 1", got)
				}
				return
			}
			if err == nil {
				t.Fatal("want an error, got success")
			}
			if !tt.check(err) {
				t.Errorf("error %q (%#v) is not the expected kind", err, err)
			}
			if got := second.hits.Load(); got != 0 {
				t.Errorf("second endpoint got %d requests, want 0: the call must not fail over", got)
			}
			if firstNode != nil && firstNode.hits.Load() != 1 {
				t.Errorf("first endpoint got %d requests, want 1", firstNode.hits.Load())
			}
		})
	}
}

// TestFailoverRemembersEndpoint: once an endpoint answered, calls start there, so a dead first
// endpoint costs one failed connection, not one per call.
func TestFailoverRemembersEndpoint(t *testing.T) {
	unavailable := newFakeNode(t, serverError("n1", 503, CodeNoLeader, "no leader"))
	good := newFakeNode(t, okWrite("n2"))
	cl := mustClient(t, time.Second, unavailable.addr(), good.addr())
	for i := range 3 {
		if _, err := cl.Put(context.Background(), "k", []byte("v"), PutOptions{}); err != nil {
			t.Fatalf("put %d: %v", i, err)
		}
	}
	if got := unavailable.hits.Load(); got != 1 {
		t.Errorf("unavailable endpoint got %d requests, want 1 (only the first call tries it)", got)
	}
	if got := good.hits.Load(); got != 3 {
		t.Errorf("good endpoint got %d requests, want 3", got)
	}
}

// TestPreferFirst: with Config.PreferFirst every call starts at the first endpoint, even after
// an earlier call failed over from it, and still fails over while the first does not answer.
func TestPreferFirst(t *testing.T) {
	var firstUp atomic.Bool
	first := newFakeNode(t, func(w http.ResponseWriter, r *http.Request) {
		if !firstUp.Load() {
			serverError("n1", 503, CodeNoLeader, "no leader")(w, r)
			return
		}
		okWrite("n1")(w, r)
	})
	second := newFakeNode(t, okWrite("n2"))
	cfg := DefaultConfig()
	cfg.Endpoints = []string{first.addr(), second.addr()}
	cfg.Timeout = time.Second
	cfg.PreferFirst = true
	cl, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	put := func(wantNode string) {
		t.Helper()
		meta, err := cl.Put(context.Background(), "k", []byte("v"), PutOptions{})
		if err != nil {
			t.Fatalf("put: %v", err)
		}
		if meta.Node != wantNode {
			t.Fatalf("put served by %q, want %q", meta.Node, wantNode)
		}
	}
	put("n2") // the first endpoint refuses: failover
	put("n2") // tried first again, and failed over again
	if got := first.hits.Load(); got != 2 {
		t.Errorf("first endpoint got %d requests, want 2 (every call starts there)", got)
	}
	firstUp.Store(true)
	put("n1") // back at the first endpoint as soon as it answers
	if got := second.hits.Load(); got != 2 {
		t.Errorf("second endpoint got %d requests, want 2", got)
	}
}

// TestAllEndpointsFail: the error is the most informative one (a server's 503 over a refused
// connection) and names every endpoint tried.
func TestAllEndpointsFail(t *testing.T) {
	noLeader := newFakeNode(t, serverError("n2", 503, CodeNoLeader, "no leader elected within 5s: the cluster has no quorum"))
	tests := []struct {
		name            string
		endpoints       []string
		wantUnavailable bool
		wantIn          []string
	}{
		{
			name:            "503 beats refused",
			endpoints:       []string{refusedAddr(t), noLeader.addr()},
			wantUnavailable: true,
			wantIn: []string{
				"no_leader: no leader elected within 5s: the cluster has no quorum (node n2)",
				"connection refused", "tried ",
			},
		},
		{
			name:      "all refused",
			endpoints: []string{refusedAddr(t), refusedAddr(t)},
			wantIn:    []string{"connection refused", "tried "},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cl := mustClient(t, time.Second, tt.endpoints...)
			_, err := cl.Put(context.Background(), "k", []byte("v"), PutOptions{})
			if err == nil {
				t.Fatal("want an error")
			}
			if got := IsUnavailable(err); got != tt.wantUnavailable {
				t.Errorf("IsUnavailable(%q) = %v, want %v", err, got, tt.wantUnavailable)
			}
			if IsOutcomeUnknown(err) {
				t.Errorf("IsOutcomeUnknown(%q) = true; nothing was sent", err)
			}
			for _, s := range append(tt.wantIn, tt.endpoints...) {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
		})
	}
}

// TestContextEndsWrite: a write in flight when the caller's context ends may have been applied.
func TestContextEndsWrite(t *testing.T) {
	stalled := newFakeNode(t, stall)
	other := newFakeNode(t, okWrite("n2"))
	cl := mustClient(t, 10*time.Second, stalled.addr(), other.addr())
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := cl.Put(ctx, "k", []byte("v"), PutOptions{})
	if !IsOutcomeUnknown(err) {
		t.Errorf("IsOutcomeUnknown(%v) = false", err)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v does not wrap context.DeadlineExceeded", err)
	}
	if other.hits.Load() != 0 {
		t.Error("the write went to a second endpoint")
	}
}

// TestContextAlreadyDone: nothing is sent once the caller's context has ended.
func TestContextAlreadyDone(t *testing.T) {
	node := newFakeNode(t, okWrite("n1"))
	cl := mustClient(t, time.Second, node.addr())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := cl.Put(ctx, "k", []byte("v"), PutOptions{})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v does not wrap context.Canceled", err)
	}
	if IsOutcomeUnknown(err) {
		t.Errorf("IsOutcomeUnknown(%v) = true; nothing was sent", err)
	}
	if node.hits.Load() != 0 {
		t.Errorf("node got %d requests, want 0", node.hits.Load())
	}
}

// TestRequestID: every request carries a hex X-Request-Id, the same on every endpoint one call
// tries, and a new one per call.
func TestRequestID(t *testing.T) {
	first := newFakeNode(t, serverError("n1", 503, CodeNoLeader, "no leader"))
	second := newFakeNode(t, okWrite("n2"))
	cl := mustClient(t, time.Second, first.addr(), second.addr())
	if _, err := cl.Put(context.Background(), "k", []byte("v"), PutOptions{}); err != nil {
		t.Fatal(err)
	}
	id1 := first.lastRequest().Header.Get(HeaderRequestID)
	id2 := second.lastRequest().Header.Get(HeaderRequestID)
	if len(id1) != 16 || strings.Trim(id1, "0123456789abcdef") != "" {
		t.Errorf("request id %q is not 16 hex digits", id1)
	}
	if id1 != id2 {
		t.Errorf("request ids differ across failover: %q, %q", id1, id2)
	}
	if _, err := cl.Put(context.Background(), "k", []byte("v"), PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if id3 := second.lastRequest().Header.Get(HeaderRequestID); id3 == id2 {
		t.Errorf("two calls share request id %q", id3)
	}
}

// TestNoAnswer: errors.Is(err, ErrNoAnswer) holds exactly when no server answered the call and
// nothing was written, so a caller (kvctl --json) can tell "the cluster did not answer" from a
// server's error, an outcome unknown, or its own mistakes.
func TestNoAnswer(t *testing.T) {
	noLeader := newFakeNode(t, serverError("n2", 503, CodeNoLeader, "no leader"))
	notFound := newFakeNode(t, serverError("n1", 404, CodeNotFound, "no such key"))
	stalled := newFakeNode(t, stall)
	dropped := newFakeNode(t, hangUp)
	done, cancel := context.WithCancel(context.Background())
	cancel()
	put := func(ctx context.Context, cl *Client) error {
		_, err := cl.Put(ctx, "k", []byte("v"), PutOptions{})
		return err
	}
	get := func(ctx context.Context, cl *Client) error {
		_, _, err := cl.Get(ctx, "k", GetOptions{})
		return err
	}
	tests := []struct {
		name      string
		endpoints []string
		ctx       context.Context
		call      func(context.Context, *Client) error
		want      bool
	}{
		{"one endpoint refused", []string{refusedAddr(t)}, context.Background(), put, true},
		{"every endpoint refused", []string{refusedAddr(t), refusedAddr(t)}, context.Background(), put, true},
		{"a read times out everywhere", []string{stalled.addr()}, context.Background(), get, true},
		{"the context ended before sending", []string{noLeader.addr()}, done, put, true},
		{"a server answered 503", []string{refusedAddr(t), noLeader.addr()}, context.Background(), put, false},
		{"a server answered 404", []string{notFound.addr()}, context.Background(), get, false},
		{"a sent write got no answer: outcome unknown", []string{dropped.addr()}, context.Background(), put, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call(tt.ctx, mustClient(t, 200*time.Millisecond, tt.endpoints...))
			if err == nil {
				t.Fatal("want an error")
			}
			if got := errors.Is(err, ErrNoAnswer); got != tt.want {
				t.Errorf("errors.Is(%q, ErrNoAnswer) = %v, want %v", err, got, tt.want)
			}
		})
	}
}
