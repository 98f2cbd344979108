package node

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dialkv/dialkv/client"
)

// budgetValue is the size of the values the write-budget tests put: the budget holds
// budgetSlots of them.
const (
	budgetValue = 100 << 10
	budgetSlots = 3
)

// startBudgetNode starts a one-node cluster whose write budget holds budgetSlots puts of
// budgetValue, whose state machine stall can stop, and whose writes wait for a leader long
// enough (20 s) that an answer within a second cannot be a timeout.
func startBudgetNode(t *testing.T) (*Node, *stallableApplies) {
	t.Helper()
	stall := newStallableApplies(t)
	tc := startCluster(t, 1, stall.tweak, func(_ int, c *Config) {
		c.MaxValueSize = 256 << 10
		c.MaxInflightBytes = budgetSlots * (budgetValue + writeOverhead)
		c.LeaderWait = 20 * time.Second
	})
	t.Cleanup(stall.release) // before the cluster stops: a stalled node cannot shut Raft down
	return tc.nodes[0], stall
}

// budgetReply is a write's answer and how long it took.
type budgetReply struct {
	reply
	took time.Duration
	err  error
}

// sendWrite sends a write whose body comes from body (nil: none) with the announced length
// (-1: unannounced, sent chunked).
func sendWrite(n *Node, method, path string, body io.Reader, length int64) budgetReply {
	req, err := http.NewRequest(method, "http://"+n.HTTPAddr()+path, body)
	if err != nil {
		return budgetReply{err: err}
	}
	req.ContentLength = length
	start := time.Now()
	resp, err := testHTTP.Do(req)
	if err != nil {
		return budgetReply{err: err, took: time.Since(start)}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return budgetReply{reply: reply{status: resp.StatusCode, header: resp.Header, body: string(b)}, took: time.Since(start)}
}

// wantRefusedAtOnce checks that r is the budget's refusal, answered well before any wait of the
// node's (LeaderWait is 20 s) could have ended.
func wantRefusedAtOnce(t *testing.T, what string, r budgetReply) {
	t.Helper()
	if r.err != nil {
		t.Errorf("%s: %v; want 503 at once", what, r.err)
		return
	}
	if r.status != http.StatusServiceUnavailable || errCode(t, r.reply) != client.CodeUnavailable || r.header.Get("Retry-After") == "" {
		t.Errorf("%s: %d %s (Retry-After %q); want 503 unavailable with Retry-After", what, r.status, r.body, r.header.Get("Retry-After"))
	}
	if r.took > 2*time.Second {
		t.Errorf("%s: refused after %v; want at once", what, r.took)
	}
}

// budgetMetrics returns the node's write-budget gauge and refusal counter from /metrics.
func budgetMetrics(t *testing.T, n *Node) (held, refused float64) {
	t.Helper()
	text := do(t, http.MethodGet, n, "/metrics", "").body
	return metricValue(t, text, "dialkv_write_inflight_bytes"), metricValue(t, text, "dialkv_write_inflight_refusals_total")
}

// A node whose state machine stalls holds every strong write until it applies again. A burst of
// large puts must not pile up in memory meanwhile: those the write budget has room for wait,
// the others are refused at once with 503 unavailable (nothing done, so the client may go to
// another node), before their bodies are read, and the budget is given back as the writes end.
// Before the budget every put of the burst was read and held, and the probes with bodies never
// sent hung until their clients gave up.
func TestWriteBudgetRefusesWritesPastItAtOnce(t *testing.T) {
	n, stall := startBudgetNode(t)
	do(t, http.MethodPut, n, "/v1/kv/warm?consistency=strong", "x") // the write path is up
	stall.stalled[0].Store(true)

	const burst = 8
	value := strings.Repeat("v", budgetValue)
	results := make(chan budgetReply, burst)
	for i := range burst {
		go func() {
			results <- sendWrite(n, http.MethodPut, fmt.Sprintf("/v1/kv/big%d?consistency=strong", i), strings.NewReader(value), budgetValue)
		}()
	}
	// The puts past the budget are answered while the others wait for the state machine.
	for i := range burst - budgetSlots {
		select {
		case r := <-results:
			wantRefusedAtOnce(t, fmt.Sprintf("put %d of the burst", i), r)
		case <-time.After(10 * time.Second):
			t.Fatalf("%d of %d puts past the budget answered within 10s", i, burst-budgetSlots)
		}
	}
	full := float64(budgetSlots * (budgetValue + writeOverhead))
	waitUntil(t, "the waiting puts to hold the whole budget", 10*time.Second, func() bool { return float64(n.inflight.held.Load()) == full })

	// With the budget full, writes of every kind are refused without their bodies being read:
	// here none of a body is ever sent, and the answer comes all the same.
	probes := []struct {
		what, method, path string
		length             int64 // -1: unannounced (chunked); 0: no body
	}{
		{"strong put", http.MethodPut, "/v1/kv/p1?consistency=strong", budgetValue},
		{"eventual put", http.MethodPut, "/v1/kv/p2?consistency=eventual", budgetValue},
		{"chunked put", http.MethodPut, "/v1/kv/p3?consistency=eventual", -1},
		{"strong delete", http.MethodDelete, "/v1/kv/big0?consistency=strong", 0},
		{"eventual delete", http.MethodDelete, "/v1/kv/big0?consistency=eventual", 0},
	}
	for _, p := range probes {
		var body io.Reader
		var unsent *io.PipeWriter
		if p.length != 0 {
			body, unsent = io.Pipe()
			// A node that waits for the body gets none, and the request fails (the client's
			// transport would otherwise wait for the body's end for good).
			stop := time.AfterFunc(5*time.Second, func() { unsent.CloseWithError(io.ErrClosedPipe) })
			defer stop.Stop()
		}
		r := sendWrite(n, p.method, p.path, body, p.length)
		if unsent != nil {
			unsent.CloseWithError(io.ErrClosedPipe)
		}
		wantRefusedAtOnce(t, p.what, r)
	}
	held, refused := budgetMetrics(t, n)
	if want := float64(burst - budgetSlots + len(probes)); held != full || refused != want {
		t.Errorf("metrics while stalled: %v bytes in flight, %v refusals; want %v and %v", held, refused, full, want)
	}

	stall.release()
	for i := range budgetSlots {
		select {
		case r := <-results:
			if r.err != nil || r.status != http.StatusOK {
				t.Errorf("waiting put %d once the state machine applies again: %d %s %v; want 200", i, r.status, r.body, r.err)
			}
		case <-time.After(15 * time.Second):
			t.Fatalf("only %d of %d waiting puts answered within 15s of the stall's end", i, budgetSlots)
		}
	}
	waitUntil(t, "the budget to be given back", 10*time.Second, func() bool { held, _ := budgetMetrics(t, n); return held == 0 })
	stored := 0
	for i := range burst {
		if r := do(t, http.MethodGet, n, fmt.Sprintf("/v1/kv/big%d?consistency=strong", i), ""); r.status == http.StatusOK {
			if r.body != value {
				t.Errorf("big%d: %d bytes, want the value put", i, len(r.body))
			}
			stored++
		}
	}
	if stored != budgetSlots {
		t.Errorf("%d of the burst's puts stored, want the %d that waited", stored, budgetSlots)
	}
}

// A body of unannounced length (chunked) cannot be charged before it is read: it is charged as
// it is read, and refused once the budget has no room for the next part, without reading the
// rest; one that fits is taken. Either way the budget is given back.
func TestWriteBudgetChargesUnannouncedBodiesAsRead(t *testing.T) {
	n, stall := startBudgetNode(t)
	do(t, http.MethodPut, n, "/v1/kv/warm?consistency=strong", "x")
	stall.stalled[0].Store(true)
	value := strings.Repeat("v", budgetValue)
	results := make(chan budgetReply, budgetSlots-1)
	for i := range budgetSlots - 1 {
		go func() {
			results <- sendWrite(n, http.MethodPut, fmt.Sprintf("/v1/kv/big%d?consistency=strong", i), strings.NewReader(value), budgetValue)
		}()
	}
	holding := float64((budgetSlots - 1) * (budgetValue + writeOverhead))
	waitUntil(t, "the waiting puts to hold their share", 10*time.Second, func() bool { return float64(n.inflight.held.Load()) == holding })

	// Room for one value is left: twice that, sent chunked, is cut off part-way.
	r := sendWrite(n, http.MethodPut, "/v1/kv/long?consistency=eventual", struct{ io.Reader }{strings.NewReader(value + value)}, -1)
	wantRefusedAtOnce(t, "a chunked body past the budget", r)
	waitUntil(t, "the refused body's charge to be given back", 10*time.Second, func() bool { return float64(n.inflight.held.Load()) == holding })
	// Half of it fits (an eventual write: the tentative layer does not wait for the state machine).
	r = sendWrite(n, http.MethodPut, "/v1/kv/short?consistency=eventual", struct{ io.Reader }{bytes.NewReader([]byte(value[:budgetValue/2]))}, -1)
	if r.err != nil || r.status != http.StatusOK {
		t.Errorf("a chunked body within the budget: %d %s %v; want 200", r.status, r.body, r.err)
	}
	if _, refused := budgetMetrics(t, n); refused != 1 {
		t.Errorf("%v refusals, want 1", refused)
	}

	stall.release()
	for range budgetSlots - 1 {
		if r := <-results; r.err != nil || r.status != http.StatusOK {
			t.Errorf("waiting put once the state machine applies again: %d %s %v; want 200", r.status, r.body, r.err)
		}
	}
	waitUntil(t, "the budget to be given back", 10*time.Second, func() bool { return n.inflight.held.Load() == 0 })
}
