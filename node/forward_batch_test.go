package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dialkv/dialkv/client"
	"github.com/dialkv/dialkv/consistency"
	"github.com/dialkv/dialkv/replication"
	"github.com/dialkv/dialkv/replication/store"
)

// Concurrent strong writes through a follower reach the leader in shared calls, and each client
// still gets its own answer: success with the leader's metadata, or its own conflict.
func TestFollowerForwardsConcurrentWritesInBatches(t *testing.T) {
	tc := startCluster(t, 3)
	leader, follower := tc.leaderAndFollower()
	calls := follower.forwards.calls.Load()

	const writers, each = 24, 5
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				key := fmt.Sprintf("f%d-%d", w, i)
				put := do(t, "PUT", follower, "/v1/kv/"+key+"?if_absent=true", key)
				if put.status != 200 || put.header.Get(client.HeaderVia) != follower.cfg.ID || put.header.Get(client.HeaderNode) != leader.cfg.ID || put.header.Get(client.HeaderVersion) == "" {
					t.Errorf("%s: %d %q via=%q node=%q version=%q", key, put.status, put.body, put.header.Get(client.HeaderVia), put.header.Get(client.HeaderNode), put.header.Get(client.HeaderVersion))
					return
				}
				again := do(t, "PUT", follower, "/v1/kv/"+key+"?if_absent=true", "again")
				if again.status != http.StatusConflict || again.header.Get(client.HeaderVersion) != put.header.Get(client.HeaderVersion) || !strings.Contains(again.body, key) {
					t.Errorf("%s created twice: %d %q version=%q, want 409 naming the key at %s", key, again.status, again.body, again.header.Get(client.HeaderVersion), put.header.Get(client.HeaderVersion))
					return
				}
			}
		})
	}
	wg.Wait()
	writes := 2 * writers * each
	got := int(follower.forwards.calls.Load() - calls)
	t.Logf("%d forwarded writes in %d calls to the leader", writes, got)
	if got == 0 || got >= writes {
		t.Errorf("%d forwarded writes took %d calls to the leader, want fewer (and some)", writes, got)
	}
	for w := range writers {
		for i := range each {
			key := fmt.Sprintf("f%d-%d", w, i)
			if r := do(t, "GET", leader, "/v1/kv/"+key, ""); r.status != 200 || r.body != key {
				t.Fatalf("%s on the leader: %d %q", key, r.status, r.body)
			}
		}
	}
}

// A follower's client sees the code the leader answered for its write.
func TestForwardedErrorsKeepTheLeadersCode(t *testing.T) {
	for _, code := range []string{client.CodeBadRequest, client.CodeTooLarge, client.CodeNoLeader, client.CodeUnavailable, client.CodeTimeout, client.CodeOutcomeUnknown, client.CodeInternal} {
		pr := proposeResult{Code: code, Error: "boom"}
		r := pr.result("n1", 7)
		if code == client.CodeNoLeader {
			if !r.retry || r.err != nil {
				t.Errorf("%s: retry=%v err=%v, want a retry (never proposed)", code, r.retry, r.err)
			}
			continue
		}
		want := code
		if code == client.CodeInternal {
			want = client.CodeOutcomeUnknown // it may have been applied
		}
		if _, got := httpError(r.err); got != want || !strings.Contains(r.err.Error(), "boom") {
			t.Errorf("%s: became %s (%v), want %s", code, got, r.err, want)
		}
	}
	c := proposeResult{Code: client.CodeConflict, Error: "key exists", Current: "5.0@n1"}.result("n1", 7)
	var ce *replication.ConflictError
	if !errors.As(c.err, &ce) || ce.Current.String() != "5.0@n1" || c.res.Err == nil {
		t.Errorf("conflict became %v (result err %v)", c.err, c.res.Err)
	}
}

// A write whose batch is still waiting for a leader when its caller's deadline ends was never
// sent: the caller gets a definite no_leader naming the lost quorum, not outcome_unknown.
func TestUnsentForwardedWriteFailsDefinitely(t *testing.T) {
	tc := startCluster(t, 3, func(i int, c *Config) { c.LeaderWait = time.Second })
	leader, survivor := tc.leaderAndFollower()
	for i, n := range tc.nodes {
		if n != survivor {
			tc.cancel[i]()
			<-tc.done[i]
			tc.cancel[i], tc.done[i] = func() {}, closedDone()
		}
	}
	waitUntil(t, "the survivor to lose its leader "+leader.cfg.ID, 10*time.Second, func() bool {
		id, _ := survivor.raft.Leader()
		return id == ""
	})
	calls := survivor.forwards.calls.Load()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			r := do(t, "PUT", survivor, fmt.Sprintf("/v1/kv/lost%d?consistency=strong", w), "v", "Accept", "application/json")
			var eb client.ErrorBody
			json.Unmarshal([]byte(r.body), &eb)
			if r.status != http.StatusServiceUnavailable || eb.Code != client.CodeNoLeader || !strings.Contains(eb.Error, "quorum") {
				t.Errorf("write %d without a quorum: %d %q, want 503 no_leader naming the quorum", w, r.status, r.body)
			}
		})
	}
	wg.Wait()
	if got := survivor.forwards.calls.Load() - calls; got != 0 {
		t.Errorf("%d calls went out with no leader known", got)
	}
}

// A leader older than batched forwarding has no POST /v1/internal/propose: the follower relays
// each write to it whole, as before, and its client sees the leader's own answer.
func TestForwardingFallsBackToRelayForAnOlderLeader(t *testing.T) {
	tc := startCluster(t, 3, func(i int, c *Config) { c.noProposeRoute = true })
	leader, follower := tc.leaderAndFollower()
	calls := follower.forwards.calls.Load()
	for i := range 3 {
		key := fmt.Sprintf("old%d", i)
		put := do(t, "PUT", follower, "/v1/kv/"+key+"?if_absent=true", key)
		if put.status != 200 || put.header.Get(client.HeaderNode) != leader.cfg.ID || put.header.Get(client.HeaderVersion) == "" {
			t.Fatalf("%s through the follower: %d %q node=%q", key, put.status, put.body, put.header.Get(client.HeaderNode))
		}
		if again := do(t, "PUT", follower, "/v1/kv/"+key+"?if_absent=true", "again"); again.status != http.StatusConflict {
			t.Errorf("%s created twice through the relay: %d %q", key, again.status, again.body)
		}
		if r := do(t, "GET", leader, "/v1/kv/"+key, ""); r.status != 200 || r.body != key {
			t.Errorf("%s on the leader: %d %q", key, r.status, r.body)
		}
	}
	// Each write first tried the batched route and fell back.
	if got := follower.forwards.calls.Load() - calls; got != 6 {
		t.Errorf("%d calls to the propose route for 6 writes, want one each (then the relay)", got)
	}
}

// strongWriteThroughDeafFollower starts a cluster with a follower whose clock runs behind by
// behind and that hears nothing from the other nodes (no log, no gossip), so it cannot apply what
// it forwards; its own requests to the leader still get answers. It writes key "order" strongly
// through that follower and returns the cluster, its leader, the follower, the third node and
// the version the write was acknowledged with.
func strongWriteThroughDeafFollower(t *testing.T, behind time.Duration) (tc *testCluster, leader, follower, other *Node, sv consistency.Version) {
	t.Helper()
	tc = startCluster(t, 3, func(i int, c *Config) {
		c.TestFaults = true
		// The follower must keep knowing the leader while it hears nothing from it.
		c.Raft.HeartbeatTimeout = time.Second
		c.Raft.ElectionTimeout = time.Second
		c.Raft.LeaderLeaseTimeout = 500 * time.Millisecond
	})
	leader, follower = tc.leaderAndFollower()
	other = tc.otherThan(leader, follower)
	if r := do(t, "PUT", follower, "/v1/test/faults", fmt.Sprintf(`{"clock_offset":"%v","drop_in":["%s","%s"]}`, -behind, leader.cfg.ID, other.cfg.ID)); r.status != 200 {
		t.Fatalf("faults: %d %s", r.status, r.body)
	}
	strong := do(t, "PUT", follower, "/v1/kv/order", "strong")
	if strong.status != 200 || strong.header.Get(client.HeaderVia) != follower.cfg.ID {
		t.Fatalf("strong write through %s: %d %s (via %q)", follower.cfg.ID, strong.status, strong.body, strong.header.Get(client.HeaderVia))
	}
	sv, err := consistency.ParseVersion(strong.header.Get(client.HeaderVersion))
	if err != nil {
		t.Fatal(err)
	}
	return tc, leader, follower, other, sv
}

// A follower answers a forwarded strong write before it applies the entry; its clock observes
// the leader's version at once, so an eventual write it takes right after is newer, even with
// its clock behind and the entry not applied here yet. That holds however far behind: the same
// version reaches the clock whole, unbounded, when the entry applies (the log is trusted), so
// observing the answer only up to sessionClockLead past this node's wall clock (as a client's
// token is) guarded against nothing, and a follower more than that behind stamped the eventual
// write below the strong write it had just acknowledged: acknowledged after it, and lost to it.
func TestFollowerClockObservesTheForwardedAnswer(t *testing.T) {
	for _, behind := range []time.Duration{3 * time.Second, 3 * sessionClockLead} {
		t.Run(fmt.Sprint(behind, " behind"), func(t *testing.T) {
			_, _, follower, _, sv := strongWriteThroughDeafFollower(t, behind)
			if evv := awaitEventualPut(t, follower, "order", "eventual", 10*time.Second); !evv.Newer(sv) {
				t.Errorf("the eventual write %s took after acknowledging the strong write %s is older than it", evv, sv)
			}
		})
	}
}

// The same across a restart: the follower answers before it applies the entry, and restarted
// before it does, its clock started from its wall clock and what it holds, neither of which has
// seen the strong write it acknowledged. Its next eventual write of the key was stamped below
// that write (3 s below here) and lost to it.
func TestFollowerClockKeepsTheForwardedAnswerAcrossARestart(t *testing.T) {
	tc, leader, follower, other, sv := strongWriteThroughDeafFollower(t, 3*time.Second)
	// Nothing reaches the follower once restarted either (its own faults are gone then).
	for _, n := range []*Node{leader, other} {
		if r := do(t, "PUT", n, "/v1/test/faults", fmt.Sprintf(`{"drop_out":["%s"]}`, follower.cfg.ID)); r.status != 200 {
			t.Fatalf("faults on %s: %d %s", n.cfg.ID, r.status, r.body)
		}
	}
	i := slices.Index(tc.nodes, follower)
	follower = tc.startNodeAt(i, tc.stopNode(i))
	if r := do(t, "PUT", follower, "/v1/test/faults", `{"clock_offset":"-3s"}`); r.status != 200 {
		t.Fatalf("faults: %d %s", r.status, r.body)
	}
	evv := awaitEventualPut(t, follower, "order", "eventual", 10*time.Second)
	if held, ok, err := follower.store.Get("order"); err != nil || ok && held.Version == sv {
		t.Fatalf("the restarted %s holds the strong write (%v): the test needs it not to", follower.cfg.ID, err)
	}
	if !evv.Newer(sv) {
		t.Errorf("the eventual write %s the restarted %s took is older than the strong write %s it acknowledged before the restart", evv, follower.cfg.ID, sv)
	}
}

// A forwarded write whose client gives up before the leader proposes it is not proposed at all:
// the follower cancels its call to the leader once no caller in the batch waits any more, and
// the leader drops the batch. The follower used to hold the call open for its own LeaderWait,
// so the write could land seconds after its client had been answered outcome_unknown.
func TestForwardedWriteIsNotProposedAfterItsClientGaveUp(t *testing.T) {
	arrived := make(chan struct{}, 1)
	release := make(chan struct{})
	proposed := make(chan struct{}, 1)
	var cancelled atomic.Bool
	tc := startCluster(t, 3, func(i int, c *Config) {
		c.LeaderWait = 20 * time.Second
		c.beforePropose = func(ctx context.Context) func() {
			select {
			case arrived <- struct{}{}:
			default:
			}
			select {
			case <-ctx.Done():
				cancelled.Store(true)
			case <-release:
			}
			return func() { proposed <- struct{}{} }
		}
	})
	leader, follower := tc.leaderAndFollower()

	impatient := &http.Client{Timeout: 300 * time.Millisecond}
	req, err := http.NewRequest("PUT", "http://"+follower.HTTPAddr()+"/v1/kv/late", strings.NewReader("late"))
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := impatient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("the write through %s was answered %d while the leader held it", follower.cfg.ID, resp.StatusCode)
	}
	select {
	case <-arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("the forwarded batch never reached the leader")
	}
	waitUntil(t, "the leader's batch to be cancelled after its only client gave up", 5*time.Second, cancelled.Load)
	close(release)
	select {
	case <-proposed:
	case <-time.After(10 * time.Second):
		t.Fatal("the leader's proposal never ended")
	}
	if r := do(t, "PUT", leader, "/v1/kv/after", "after"); r.status != 200 {
		t.Fatalf("a later write: %d %s", r.status, r.body)
	}
	if r := do(t, "GET", leader, "/v1/kv/late?consistency=strong", ""); r.status != http.StatusNotFound {
		t.Errorf("the write whose client gave up before it was proposed was applied: %d %q", r.status, r.body)
	}
}

// A follower of the release before keys were checked forwards a write of a key the store cannot
// hold. The leader refuses it without proposing it: the replicas of that release still running
// in a rolling upgrade would stop on the entry. The rest of the batch is proposed as usual.
func TestLeaderProposesNoForwardedKeyTheStoreCannotHold(t *testing.T) {
	tc := startCluster(t, 1)
	leader := tc.nodes[0]
	long := replication.Command{Type: replication.CmdPut, Key: strings.Repeat("k", store.MaxKeySize+1), Value: []byte("v")}
	ok := replication.Command{Type: replication.CmdPut, Key: "fine", Value: []byte("v")}
	body := replication.EncodeBatch([][]byte{long.Encode(), ok.Encode()})
	req, err := http.NewRequest("POST", "http://"+leader.HTTPAddr()+"/v1/internal/propose", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(client.HeaderForwarded, "n9")
	resp, err := testHTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ans proposeAnswer
	if err := json.NewDecoder(resp.Body).Decode(&ans); err != nil || resp.StatusCode != 200 || len(ans.Results) != 2 {
		t.Fatalf("propose: %d %+v %v", resp.StatusCode, ans, err)
	}
	if r := ans.Results[0]; r.Code != client.CodeBadRequest || r.Index != 0 {
		t.Errorf("the write of a %d-byte key: code %q at log index %d, want bad_request and never proposed (index 0)", len(long.Key), r.Code, r.Index)
	}
	if r := ans.Results[1]; r.Code != "" || r.Index == 0 {
		t.Errorf("the batch's other write: %+v, want it committed", r)
	}
}

// The leader stamps a follower's strong writes, so it is the one that must stamp a session's
// write after the version of its key the session has seen, or refuse it (503 unavailable, never
// proposed): the follower sends those versions along (headerSessionSeen). A batch without them,
// from a follower older than the header, is proposed as before; a malformed one is refused whole.
func TestLeaderRefusesForwardedWritesItWouldStampBelowTheirSession(t *testing.T) {
	tc := startCluster(t, 1)
	leader := tc.nodes[0]
	propose := func(header string, cmds ...replication.Command) (int, proposeAnswer) {
		t.Helper()
		encoded := make([][]byte, len(cmds))
		for i := range cmds {
			encoded[i] = cmds[i].Encode()
		}
		req, err := http.NewRequest("POST", "http://"+leader.HTTPAddr()+"/v1/internal/propose", strings.NewReader(string(replication.EncodeBatch(encoded))))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set(client.HeaderForwarded, "n9")
		if header != "" {
			req.Header.Set(headerSessionSeen, header)
		}
		resp, err := testHTTP.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var ans proposeAnswer
		if resp.StatusCode == 200 {
			if err := json.NewDecoder(resp.Body).Decode(&ans); err != nil || len(ans.Results) != len(cmds) {
				t.Fatalf("propose: %+v %v", ans, err)
			}
		}
		return resp.StatusCode, ans
	}
	behind := replication.Command{Type: replication.CmdPut, Key: "behind", Value: []byte("v")}
	fresh := replication.Command{Type: replication.CmdPut, Key: "fresh", Value: []byte("v")}

	// A version within the lead a token may move the leader's clock: the leader's clock observes
	// it, as the follower's did (whose own stamp may be behind it, its clock behind the leader's),
	// and stamps the write after it.
	near := consistency.Version{Wall: time.Now().Add(sessionClockLead / 2).UnixNano(), Node: "n9"}
	if status, ans := propose(encodeSessionSeen([]consistency.Version{near}), fresh); status != 200 || ans.Results[0].Code != "" {
		t.Errorf("a write after a session version %v within the lead: %d %+v, want it committed", near, status, ans.Results)
	} else if v := ans.Results[0].result("", 0).res.Version; !v.Newer(near) {
		t.Errorf("a write after a session version %v within the lead got %v, not newer", near, v)
	}

	// An eventual write stamped by a clock an hour ahead, which never reached the leader.
	ahead := consistency.Version{Wall: time.Now().Add(time.Hour).UnixNano(), Node: "n9"}
	seen := encodeSessionSeen([]consistency.Version{ahead, {}})

	status, ans := propose(seen, behind, fresh)
	if status != 200 {
		t.Fatalf("propose with the session's versions: %d", status)
	}
	if r := ans.Results[0]; r.Code != client.CodeUnavailable || r.Index != 0 || !strings.Contains(r.Error, "clock") {
		t.Errorf("a write the leader can only stamp below its session's version %v: %+v, want unavailable naming the clock, never proposed", ahead, r)
	}
	if r := ans.Results[1]; r.Code != "" || r.Index == 0 {
		t.Errorf("the batch's write without a session version: %+v, want it committed", r)
	}
	if r := do(t, "GET", leader, "/v1/kv/behind?consistency=strong", ""); r.status != http.StatusNotFound {
		t.Errorf("the refused write was applied: %d %q", r.status, r.body)
	}

	// A strong version is in the log before the write (the session saw it committed), and the
	// state machine orders the write after it whatever the stamp: nothing to refuse.
	strongAhead := consistency.Version{Wall: ahead.Wall, Node: "n9/s"}
	if status, ans := propose(encodeSessionSeen([]consistency.Version{strongAhead}), fresh); status != 200 || ans.Results[0].Code != "" || ans.Results[0].Index == 0 {
		t.Errorf("a write after a strong session version: %d %+v, want it committed", status, ans.Results)
	}

	// A follower older than the header sends none: proposed, as it was before.
	if status, ans := propose("", behind); status != 200 || ans.Results[0].Code != "" || ans.Results[0].Index == 0 {
		t.Errorf("a batch without session versions: %d %+v, want it committed", status, ans.Results)
	}
	for _, bad := range []string{"!!", encodeSessionSeen([]consistency.Version{ahead}), encodeSessionSeen([]consistency.Version{{}, {}, {}})} {
		if status, _ := propose(bad, behind, fresh); status != http.StatusBadRequest {
			t.Errorf("%s %q (a batch of 2): %d, want 400", headerSessionSeen, bad, status)
		}
	}
}

// Writes queued on a follower while the leader is busy go to it in calls of at most
// forwardBytes (a larger write alone), not as one call holding the whole queue (256 writes of
// 1 MiB were one 256 MiB request, held whole by both ends). Here the cap is 256 KiB.
func TestForwardedCallsStayUnderTheByteCap(t *testing.T) {
	const capBytes = 256 << 10
	release := make(chan struct{})
	var calls atomic.Int64
	tc := startCluster(t, 3, func(i int, c *Config) {
		// The leader must keep its leadership while it commits 1.6 MiB of writes under -race:
		// with the tests' short timings it lost it on a loaded machine.
		kvdRaftTimings(i, c)
		c.forwardBytes = capBytes
		c.LeaderWait = 20 * time.Second
		c.beforePropose = func(ctx context.Context) func() {
			calls.Add(1)
			select {
			case <-ctx.Done():
			case <-release:
			}
			return func() {}
		}
	})
	_, follower := tc.leaderAndFollower()

	// Two writes hold both of the follower's calls at the leader; the rest queue meanwhile.
	value := strings.Repeat("q", 64<<10)
	const queued = 24
	var wg sync.WaitGroup
	for i := range queued + forwardInflight {
		wg.Go(func() {
			if r, err := tryDo("PUT", follower, fmt.Sprintf("/v1/kv/q%02d", i), value); err != nil || r.status != 200 {
				t.Errorf("q%02d: %v %d %.200s", i, err, r.status, r.body)
			}
		})
		if i < forwardInflight {
			waitUntil(t, "the leader to hold the follower's call", 10*time.Second, func() bool { return calls.Load() == int64(i+1) })
		}
	}
	// The forwarder holds the first of them while it waits for a free call.
	waitUntil(t, "the writes to queue on the follower", 10*time.Second, func() bool { return len(follower.forwards.queue) == queued-1 })
	close(release)
	wg.Wait()
	perCall := capBytes / len(value)
	want := int64(forwardInflight + (queued+perCall-1)/perCall)
	if got := calls.Load(); got < want {
		t.Errorf("%d queued writes of %d bytes reached the leader in %d calls (with the 2 held), want at least %d of at most %d bytes", queued, len(value), got, want, capBytes)
	}
}

// A batch the forwarder cuts into several calls answers each write as soon as its own call has
// been answered, not once the last call is: a client whose write the leader committed in the
// first call must not wait for the calls after it (and, giving up meanwhile, be told
// outcome_unknown about a write whose outcome was known).
func TestForwardedWriteIsAnsweredWhenItsOwnCallIs(t *testing.T) {
	const capBytes = 100 << 10
	releaseFirst, releaseLast := make(chan struct{}), make(chan struct{})
	defer close(releaseLast)
	var calls atomic.Int64
	tc := startCluster(t, 3, func(i int, c *Config) {
		c.forwardBytes = capBytes
		c.LeaderWait = 20 * time.Second
		c.beforePropose = func(ctx context.Context) func() {
			wait := releaseFirst // the two calls that fill the follower's slots
			switch calls.Add(1) {
			case 1, 2:
			case 4: // the second call of the batch cut in two
				wait = releaseLast
			default:
				wait = nil
			}
			if wait != nil {
				select {
				case <-ctx.Done():
				case <-wait:
				}
			}
			return func() {}
		}
	})
	_, follower := tc.leaderAndFollower()

	value := strings.Repeat("q", 64<<10) // one write per call under the cap
	answered := make([]chan reply, 4)
	for i := range answered {
		answered[i] = make(chan reply, 1)
		go func() {
			r, err := tryDo("PUT", follower, fmt.Sprintf("/v1/kv/q%d", i), value)
			if err != nil {
				r.status, r.body = -1, err.Error()
			}
			answered[i] <- r
		}()
		if i < forwardInflight {
			waitUntil(t, "the leader to hold the follower's call", 10*time.Second, func() bool { return calls.Load() == int64(i+1) })
		}
	}
	// q2 and q3 wait on the follower, to go as one batch, cut into two calls (whichever queued
	// first in the first).
	waitUntil(t, "the writes to queue on the follower", 10*time.Second, func() bool { return len(follower.forwards.queue) == 1 })
	close(releaseFirst)
	waitUntil(t, "the batch's second call to reach the leader", 10*time.Second, func() bool { return calls.Load() == 4 })
	// q2 and q3 queued in either order: the one in the first call must be answered now.
	var r reply
	select {
	case r = <-answered[2]:
	case r = <-answered[3]:
	case <-time.After(5 * time.Second):
		t.Fatal("neither q2 nor q3 is answered while the leader holds the second call of their batch: the first call's write waits for it")
	}
	if r.status != 200 {
		t.Errorf("the write of the batch's first call: %d %.200s, want 200", r.status, r.body)
	}
}

// A forwarded write whose call fails after the leader proposed it (here the leader drops the
// connection once the write is applied, before answering) may have been applied, and was: the
// follower answers outcome_unknown, never a definite failure, and does not send it again.
func TestForwardedWriteAppliedButUnansweredIsOutcomeUnknown(t *testing.T) {
	var drop atomic.Bool
	var calls atomic.Int32
	tc := startCluster(t, 3, func(i int, c *Config) {
		c.beforePropose = func(context.Context) func() {
			return func() {
				if drop.Load() {
					calls.Add(1)
					panic(http.ErrAbortHandler) // the answer is lost
				}
			}
		}
	})
	leader, follower := tc.leaderAndFollower()
	drop.Store(true)
	r := do(t, "PUT", follower, "/v1/kv/lost-answer", "v")
	drop.Store(false)
	if r.status != http.StatusGatewayTimeout || errCode(t, r) != client.CodeOutcomeUnknown {
		t.Errorf("write whose answer the leader never sent: %d %s, want 504 outcome_unknown", r.status, r.body)
	}
	if got := calls.Load(); got != 1 {
		t.Errorf("the leader was asked to propose the write %d times, want once", got)
	}
	if g := do(t, "GET", leader, "/v1/kv/lost-answer?consistency=strong", ""); g.status != 200 || g.body != "v" {
		t.Errorf("the write after its answer was lost: %d %q, want it applied", g.status, g.body)
	}
}
