package jepsen

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeHook is an httptest stand-in for kvd's fault hook, strict like the real one: unknown
// fields are rejected, durations must be Go duration text.
type fakeHook struct {
	mu       sync.Mutex
	enabled  bool
	current  map[string]any
	lastBody string
	calls    []string
}

func (f *fakeHook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, r.Method+" "+r.URL.Path)
	if r.URL.Path != "/v1/test/faults" {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if !f.enabled {
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, `{"error":"fault injection is disabled on this node: start kvd with --test-faults","code":"forbidden"}`)
		return
	}
	switch r.Method {
	case http.MethodPut:
		b, _ := io.ReadAll(r.Body)
		f.lastBody = string(b)
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.DisallowUnknownFields()
		var body struct {
			DropIn               []string `json:"drop_in"`
			DropOut              []string `json:"drop_out"`
			Delay                string   `json:"delay"`
			Jitter               string   `json:"jitter"`
			Loss                 float64  `json:"loss"`
			ClockOffset          string   `json:"clock_offset"`
			UnsafeStrongReads    bool     `json:"unsafe_strong_reads"`
			UnsafeEventualCommit bool     `json:"unsafe_eventual_commit"`
		}
		if err := dec.Decode(&body); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			json.NewEncoder(w).Encode(map[string]string{"error": err.Error(), "code": "bad_request"})
			return
		}
		for _, d := range []string{body.Delay, body.Jitter, body.ClockOffset} {
			if _, err := time.ParseDuration(d); d != "" && err != nil {
				w.WriteHeader(http.StatusBadRequest)
				io.WriteString(w, `{"error":"bad duration","code":"bad_request"}`)
				return
			}
		}
		f.current = map[string]any{}
		json.Unmarshal(b, &f.current)
	case http.MethodDelete:
		f.current = map[string]any{}
	}
	json.NewEncoder(w).Encode(f.current)
}

func newFakeHook(t *testing.T, enabled bool) (*fakeHook, string) {
	t.Helper()
	f := &fakeHook{enabled: enabled, current: map[string]any{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, strings.TrimPrefix(srv.URL, "http://")
}

func TestFaultClientSetGetHeal(t *testing.T) {
	hook, addr := newFakeHook(t, true)
	c := NewFaultClient(2 * time.Second)
	ctx := context.Background()
	want := Faults{DropIn: []string{"n2", "n3"}, DropOut: []string{"n2"}, Delay: 100 * time.Millisecond,
		Jitter: 20 * time.Millisecond, Loss: 0.1, ClockOffset: -1500 * time.Millisecond, UnsafeStrongReads: true}
	got, err := c.Set(ctx, addr, want)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(want) {
		t.Errorf("Set answered %+v, want %+v", got, want)
	}
	for _, s := range []string{`"delay":"100ms"`, `"jitter":"20ms"`, `"clock_offset":"-1.5s"`, `"drop_in":["n2","n3"]`, `"unsafe_strong_reads":true`} {
		if !strings.Contains(hook.lastBody, s) {
			t.Errorf("PUT body %s lacks %s", hook.lastBody, s)
		}
	}
	if strings.Contains(hook.lastBody, "unsafe_eventual_commit") {
		t.Errorf("PUT body %s carries a zero field", hook.lastBody)
	}
	if got, err := c.Get(ctx, addr); err != nil || !got.Equal(want) {
		t.Errorf("Get = %+v, %v; want %+v", got, err, want)
	}
	if err := c.Heal(ctx, addr); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Get(ctx, addr); err != nil || !got.IsZero() {
		t.Errorf("after Heal, Get = %+v, %v; want no faults", got, err)
	}
	wantCalls := []string{"PUT /v1/test/faults", "GET /v1/test/faults", "DELETE /v1/test/faults", "GET /v1/test/faults"}
	if strings.Join(hook.calls, ",") != strings.Join(wantCalls, ",") {
		t.Errorf("calls %v, want %v", hook.calls, wantCalls)
	}
}

func TestFaultClientZeroFaultsIsEmptyObject(t *testing.T) {
	hook, addr := newFakeHook(t, true)
	if _, err := NewFaultClient(time.Second).Set(context.Background(), addr, Faults{}); err != nil {
		t.Fatal(err)
	}
	if hook.lastBody != "{}" {
		t.Errorf("zero faults sent as %s, want {}", hook.lastBody)
	}
}

func TestFaultClientErrors(t *testing.T) {
	_, disabled := newFakeHook(t, false)
	c := NewFaultClient(time.Second)
	ctx := context.Background()
	if _, err := c.Get(ctx, disabled); !errors.Is(err, ErrFaultsDisabled) {
		t.Errorf("403: got %v, want ErrFaultsDisabled", err)
	}
	old := httptest.NewServer(http.NotFoundHandler())
	defer old.Close()
	if err := c.Heal(ctx, old.URL); !errors.Is(err, ErrNoFaultHook) {
		t.Errorf("404: got %v, want ErrNoFaultHook", err)
	}
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"error":"loss 2 is not a probability","code":"bad_request"}`)
	}))
	defer bad.Close()
	_, err := c.Set(ctx, bad.URL, Faults{Loss: 2})
	if err == nil || !strings.Contains(err.Error(), "loss 2 is not a probability") {
		t.Errorf("400: got %v, want the server's message", err)
	}
	// Nothing listening: a transport error, promptly.
	ln := httptest.NewServer(http.NotFoundHandler())
	addr := ln.URL
	ln.Close()
	if _, err := c.Get(ctx, addr); err == nil {
		t.Error("closed server: no error")
	}
}

func TestFaultsJSONRoundTrip(t *testing.T) {
	in := Faults{DropIn: []string{"n1"}, Delay: 250 * time.Millisecond, ClockOffset: 2 * time.Second, UnsafeEventualCommit: true}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out Faults
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if !out.Equal(in) {
		t.Errorf("round trip: %+v -> %s -> %+v", in, b, out)
	}
	if err := json.Unmarshal([]byte(`{"delay":"soon"}`), &out); err == nil {
		t.Error("a bad duration parsed")
	}
}

func TestFaultsEqualIgnoresOrder(t *testing.T) {
	a := Faults{DropIn: []string{"n2", "n1"}}
	b := Faults{DropIn: []string{"n1", "n2", "n2"}}
	if !a.Equal(b) {
		t.Error("same sets compare unequal")
	}
	if a.Equal(Faults{DropIn: []string{"n1"}}) {
		t.Error("different sets compare equal")
	}
}
