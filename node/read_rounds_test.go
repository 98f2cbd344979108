package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dialkv/dialkv/replication/fault"
)

// fakeLeader is a read-index call whose answers tell which call they came from: call k (from 1)
// answers k. Each call blocks until released, so tests decide what is in flight.
type fakeLeader struct {
	started chan string   // the request id each call carries, as it starts
	release chan struct{} // one receive lets one call return
	calls   atomic.Uint64
	ctxErrs chan error // the call's context error as it returns
}

func newFakeLeader() *fakeLeader {
	return &fakeLeader{started: make(chan string, 16), release: make(chan struct{}), ctxErrs: make(chan error, 16)}
}

func (f *fakeLeader) call(ctx context.Context, id string) (uint64, error) {
	k := f.calls.Add(1)
	f.started <- id
	<-f.release
	f.ctxErrs <- ctx.Err()
	return k, nil
}

type joined struct {
	index uint64
	err   error
}

func joinAsync(rs *readIndexRounds, ctx context.Context, id string, f *fakeLeader) chan joined {
	out := make(chan joined, 1)
	go func() {
		index, err := rs.join(ctx, id, time.Minute, f.call, nil)
		out <- joined{index, err}
	}()
	return out
}

// waitJoined waits until the round not yet started holds want requests.
func waitJoined(t *testing.T, rs *readIndexRounds, want int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		rs.mu.Lock()
		n := 0
		if rs.next != nil {
			n = len(rs.next.ids)
		}
		rs.mu.Unlock()
		if n == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d requests joined the next round, want %d", n, want)
		}
		time.Sleep(time.Millisecond)
	}
}

func receive[T any](t *testing.T, ch chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		t.Fatalf("no %s within 5s", what)
		panic("unreachable")
	}
}

// A request that arrives while a call is in flight must not get that call's index (it may have
// been taken before the request arrived); it waits for the next call, which all such requests
// share.
func TestReadIndexRoundsNeverShareACallInFlight(t *testing.T) {
	var rs readIndexRounds
	f := newFakeLeader()
	ctx := context.Background()

	a := joinAsync(&rs, ctx, "a", f)
	if id := receive(t, f.started, "first call"); id != "a" {
		t.Errorf("first call carries request id %q, want a", id)
	}
	b := joinAsync(&rs, ctx, "b", f)
	c := joinAsync(&rs, ctx, "c", f)
	waitJoined(t, &rs, 2)

	f.release <- struct{}{}
	if got := receive(t, a, "answer for a"); got.err != nil || got.index != 1 {
		t.Errorf("a = %+v, want the first call's index 1", got)
	}
	id := receive(t, f.started, "second call")
	if id != "b" && id != "c" {
		t.Errorf("second call carries request id %q, want b or c", id)
	}
	select {
	case got := <-b:
		t.Fatalf("b answered %+v while its own call was still in flight", got)
	default:
	}
	f.release <- struct{}{}
	for name, ch := range map[string]chan joined{"b": b, "c": c} {
		if got := receive(t, ch, "answer for "+name); got.err != nil || got.index != 2 {
			t.Errorf("%s = %+v, want the second call's index 2", name, got)
		}
	}
	if n := rs.calls.Load(); n != 2 {
		t.Errorf("%d calls for 3 requests in 2 rounds, want 2", n)
	}

	// Idle again: the next request starts a call of its own at once.
	d := joinAsync(&rs, ctx, "d", f)
	receive(t, f.started, "third call")
	f.release <- struct{}{}
	if got := receive(t, d, "answer for d"); got.index != 3 {
		t.Errorf("d = %+v, want a fresh call's index 3", got)
	}
}

// A request whose context ends leaves at once; the call it started goes on with its own deadline
// and still answers those who stay.
func TestReadIndexRoundsWaiterLeaves(t *testing.T) {
	var rs readIndexRounds
	f := newFakeLeader()
	first, cancel := context.WithCancel(context.Background())
	a := joinAsync(&rs, first, "a", f)
	receive(t, f.started, "first call")
	b := joinAsync(&rs, context.Background(), "b", f)
	waitJoined(t, &rs, 1)
	cancel()
	if got := receive(t, a, "a leaving"); !errors.Is(got.err, context.Canceled) {
		t.Errorf("a after cancel = %+v, want context.Canceled", got)
	}
	f.release <- struct{}{}
	if err := receive(t, f.ctxErrs, "first call's end"); err != nil {
		t.Errorf("cancelling the request that started a call cancelled the call: %v", err)
	}
	receive(t, f.started, "second call")
	f.release <- struct{}{}
	if got := receive(t, b, "answer for b"); got.err != nil || got.index != 2 {
		t.Errorf("b = %+v, want index 2", got)
	}
}

// Concurrent strong reads on a follower share read-index calls to the leader: far fewer calls
// than reads, and every read still answers the value written before it.
//
// Reads share a call only when they overlap it. On loopback a call takes well under a
// millisecond, and on a loaded machine the 32 clients came back too staggered to overlap: 77
// calls for 256 reads. The follower's messages are delayed by 50 ms, as a real link would, so
// that every call is long enough for the clients to catch it (the other follower keeps the
// leader's lease).
func TestFollowerStrongReadsShareReadIndexCalls(t *testing.T) {
	tc := startCluster(t, 3, func(_ int, c *Config) { c.TestFaults = true })
	leader, follower := tc.leaderAndFollower()
	if r := do(t, "PUT", leader, "/v1/kv/shared?consistency=strong", "v"); r.status != 200 {
		t.Fatalf("put: %d %s", r.status, r.body)
	}
	if err := follower.faults.Set(fault.Faults{Delay: fault.Duration(50 * time.Millisecond)}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { follower.faults.Heal() }) // before the cluster stops: delayed, stopping took 3.5 s
	const clients, each = 32, 8
	before := follower.readIndexes.calls.Load()
	var wg sync.WaitGroup
	errs := make(chan error, clients*each)
	for range clients {
		wg.Go(func() {
			for range each {
				status, body, err := strongGet(follower, "shared")
				if err != nil || status != 200 || body != "v" {
					errs <- fmt.Errorf("strong read on the follower: %d %q %v", status, body, err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	calls := follower.readIndexes.calls.Load() - before
	t.Logf("%d strong reads on the follower made %d read-index calls", clients*each, calls)
	if calls == 0 || calls > clients*each/4 {
		t.Errorf("%d concurrent strong reads on the follower made %d read-index calls to the leader, want at most %d", clients*each, calls, clients*each/4)
	}
}

// A strong read on a follower that starts after a strong write was acknowledged sees that write,
// also while other strong reads keep read-index calls in flight all the time.
func TestFollowerStrongReadAfterAcknowledgedWrite(t *testing.T) {
	// kvd's default timings: with the tests' short ones, this load under -race on a small
	// machine costs the leader its leadership now and then.
	tc := startCluster(t, 3, kvdRaftTimings)
	leader, follower := tc.leaderAndFollower()
	if r := do(t, "PUT", leader, "/v1/kv/lin?consistency=strong", "0"); r.status != 200 {
		t.Fatalf("put: %d %s", r.status, r.body)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				strongGet(follower, "lin")
			}
		})
	}
	defer func() { close(stop); wg.Wait() }()
	for i := 1; i <= 25; i++ {
		want := strconv.Itoa(i)
		if r := do(t, "PUT", leader, "/v1/kv/lin?consistency=strong", want); r.status != 200 {
			t.Fatalf("put %s: %d %s", want, r.status, r.body)
		}
		if r := do(t, "GET", follower, "/v1/kv/lin?consistency=strong", ""); r.status != 200 || r.body != want {
			t.Fatalf("strong read on the follower after write %s was acknowledged: %d %q, want %q", want, r.status, r.body, want)
		}
	}
}

// strongGet is a strong GET for goroutines other than the test's (do fails the test itself).
func strongGet(n *Node, key string) (status int, body string, err error) {
	resp, err := testHTTP.Get("http://" + n.HTTPAddr() + "/v1/kv/" + key + "?consistency=strong")
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// close ends the call in flight and waits for the round goroutine, so a node's Close leaves
// none behind; requests waiting get an error and later joins are refused at once.
func TestReadIndexRoundsClose(t *testing.T) {
	var rs readIndexRounds
	started := make(chan struct{}, 1)
	blocking := func(ctx context.Context, id string) (uint64, error) {
		started <- struct{}{}
		<-ctx.Done() // a leader that never answers
		return 0, ctx.Err()
	}
	waiter := make(chan joined, 1)
	go func() {
		index, err := rs.join(context.Background(), "a", time.Hour, blocking, nil)
		waiter <- joined{index, err}
	}()
	receive(t, started, "the call")
	closed := make(chan struct{})
	go func() {
		rs.close()
		close(closed)
	}()
	receive(t, closed, "close returning while the call was in flight")
	if got := receive(t, waiter, "the waiter's answer"); !errors.Is(got.err, context.Canceled) {
		t.Errorf("waiter = %+v, want the cancelled call's error", got)
	}
	if _, err := rs.join(context.Background(), "b", time.Hour, blocking, nil); !errors.Is(err, errRoundsClosed) {
		t.Errorf("join after close = %v, want errRoundsClosed", err)
	}
	select {
	case <-started:
		t.Error("a join after close started a call")
	default:
	}
}

// A round's call gets the longest timeout any of its joiners asked for. It used to get the
// timeout of the request that started the round goroutine, for every round chained after it:
// a bounded read's 10 ms bound cut short the calls strong reads shared (5 s), and under steady
// bounded reads with a small bound every strong read on the follower timed out.
func TestReadIndexRoundCallGetsItsJoinersLongestTimeout(t *testing.T) {
	var rs readIndexRounds
	defer rs.close()
	deadlines := make(chan time.Duration, 4)
	release := make(chan struct{})
	call := func(ctx context.Context, id string) (uint64, error) {
		d, _ := ctx.Deadline()
		deadlines <- time.Until(d)
		<-release
		return 1, nil
	}
	short := make(chan error, 1)
	go func() {
		_, err := rs.join(context.Background(), "bounded-1", 10*time.Millisecond, call, nil)
		short <- err
	}()
	if d := receive(t, deadlines, "the first round's call"); d > 10*time.Millisecond {
		t.Fatalf("the first round's call has %v, want at most 10ms", d)
	}
	// While it runs, a short and a long request join the next round.
	long := make(chan error, 2)
	go func() {
		_, err := rs.join(context.Background(), "bounded-2", 10*time.Millisecond, call, nil)
		long <- err
	}()
	go func() {
		_, err := rs.join(context.Background(), "strong-1", 5*time.Second, call, nil)
		long <- err
	}()
	waitJoined(t, &rs, 2)
	release <- struct{}{}
	receive(t, short, "the first round's answer")
	if d := receive(t, deadlines, "the second round's call"); d < time.Second {
		t.Errorf("the second round's call has %v, want the strong read's 5s", d)
	}
	release <- struct{}{}
	for range 2 {
		if err := receive(t, long, "the second round's answers"); err != nil {
			t.Errorf("second round: %v", err)
		}
	}
}
