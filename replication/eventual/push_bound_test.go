package eventual

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/dialkv/dialkv/consistency"
	"github.com/dialkv/dialkv/replication"
)

// stallingStore holds every MergeTentative until release is closed.
type stallingStore struct {
	*memStore
	entered chan struct{}
	release chan struct{}
}

func (s *stallingStore) MergeTentative(ws []replication.Write) ([]replication.Write, error) {
	s.entered <- struct{}{}
	<-s.release
	return s.memStore.MergeTentative(ws)
}

// With the tentative layer stalled, a node holds at most maxPushesServed anti-entropy pushes
// (and their bodies); one more is refused at once, before its body is read, and the held ones
// are stored once the stall ends.
func TestPushesServedAtOnceAreBounded(t *testing.T) {
	st := &stallingStore{memStore: newMemStore(), entered: make(chan struct{}, maxPushesServed+1), release: make(chan struct{})}
	var e *Engine
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { e.Handler().ServeHTTP(w, r) }))
	cfg := testConfig(t, "n1")
	cfg.Logger = testLogger(t)
	cfg.HTTPAddr = srv.Listener.Addr().String()
	e, err := Open(cfg, st)
	if err != nil {
		t.Fatal(err)
	}
	released := false
	release := func() {
		if !released {
			released = true
			close(st.release)
		}
	}
	t.Cleanup(func() { release(); srv.Close(); e.Shutdown() })

	cl := srv.Client()
	cl.Timeout = 10 * time.Second // a push that is neither refused nor stored fails the test
	push := func(key string) (int, error) {
		body := encodeWritesBody("n2", []replication.Write{{Key: key, Value: consistency.Value{Version: stamp(100, "n2"), Data: []byte("v")}}})
		req, err := http.NewRequest(http.MethodPost, srv.URL+PathWrites, bytes.NewReader(body))
		if err != nil {
			return 0, err
		}
		req.Header.Set(headerLabel, cfg.Label)
		resp, err := cl.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	held := make(chan int, maxPushesServed)
	for i := range maxPushesServed {
		go func() {
			code, err := push(string(rune('a' + i)))
			if err != nil {
				t.Error(err)
			}
			held <- code
		}()
	}
	for range maxPushesServed {
		select {
		case <-st.entered:
		case <-time.After(10 * time.Second):
			t.Fatal("the pushes did not reach the store")
		}
	}
	start := time.Now()
	code, err := push("extra")
	if err != nil || code != http.StatusServiceUnavailable {
		t.Fatalf("a push past the bound: %d %v, want 503 at once", code, err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the refusal took %v", took)
	}
	if _, ok := st.get("extra"); ok {
		t.Error("the refused push was stored")
	}
	release()
	for range maxPushesServed {
		if code := <-held; code != http.StatusNoContent {
			t.Errorf("a held push answered %d once the stall ended, want 204", code)
		}
	}
	if code, err := push("after"); err != nil || code != http.StatusNoContent {
		t.Errorf("a push after the stall: %d %v", code, err)
	}
}
