package node

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dialkv/dialkv/client"
	"github.com/dialkv/dialkv/consistency"
)

// metricValue returns the value of the first sample in text whose name and labels match the
// pattern (a regexp over `name{labels}`), or -1.
func metricValue(t *testing.T, text, pattern string) float64 {
	t.Helper()
	re := regexp.MustCompile(`(?m)^` + pattern + ` ([0-9.e+-]+)$`)
	m := re.FindStringSubmatch(text)
	if m == nil {
		return -1
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestMetricsMoveWithLoad(t *testing.T) {
	tc := startCluster(t, 3)
	leader, f := tc.leaderAndFollower()
	for i := 0; i < 10; i++ {
		do(t, "PUT", f, "/v1/kv/m?consistency=strong", "v")
		do(t, "GET", f, "/v1/kv/m?consistency=strong", "")
		do(t, "PUT", f, "/v1/kv/e?consistency=eventual", "v")
		do(t, "GET", f, "/v1/kv/e?consistency=bounded", "")
		do(t, "GET", f, "/v1/kv/nope?consistency=eventual", "")
	}
	waitUntil(t, "the eventual writes to commit", 10*time.Second, func() bool {
		return do(t, "GET", f, "/v1/kv/e?consistency=strong", "").status == 200
	})
	scrape := do(t, "GET", f, "/metrics", "")
	if scrape.status != 200 {
		t.Fatalf("/metrics: %d", scrape.status)
	}
	text := scrape.body
	checks := []struct {
		pattern string
		min     float64
	}{
		{`dialkv_requests_total\{level="strong",op="put",outcome="ok"\}`, 10},
		{`dialkv_requests_total\{level="eventual",op="put",outcome="ok"\}`, 10},
		{`dialkv_requests_total\{level="eventual",op="get",outcome="not_found"\}`, 10},
		{`dialkv_request_duration_seconds_count\{level="bounded",op="get",outcome="ok"\}`, 5},
		{`dialkv_forwarded_requests_total\{kind="write"\}`, 10},
		{`dialkv_forwarded_requests_total\{kind="read_index"\}`, 10},
		{`dialkv_raft_state\{state="follower"\}`, 1},
		{`dialkv_raft_term`, 1},
		{`dialkv_raft_applied_index`, 10}, // ten strong puts, one after another: ten entries at least
		{`dialkv_read_staleness_seconds_count\{level="bounded"\}`, 10},
		{`dialkv_gossip_members\{state="alive"\}`, 3},
		{`dialkv_eventual_commit_lag_seconds_count`, 1},
		{`dialkv_tentative_entries`, 0},
		{`dialkv_gossip_eager_writes_sent_total`, 10},
		{`dialkv_gossip_eager_packets_total`, 1},
		{`dialkv_gossip_relays_skipped_total`, 0},
		// Ten reads of a key never written: the first from bbolt, the next from the cache.
		{`dialkv_read_cache_reads_total\{result="miss"\}`, 1},
		{`dialkv_read_cache_reads_total\{result="hit"\}`, 1},
		{`dialkv_read_cache_bytes`, 1},
		{`go_goroutines`, 1},
		{`process_resident_memory_bytes`, 1},
	}
	for _, c := range checks {
		if v := metricValue(t, text, c.pattern); v < c.min {
			t.Errorf("%s = %v, want >= %v", c.pattern, v, c.min)
		}
	}
	// The leader proposed the forwarded strong writes (and the committer's batches).
	lt := do(t, "GET", leader, "/metrics", "").body
	proposals, entries := metricValue(t, lt, `dialkv_proposals_total`), metricValue(t, lt, `dialkv_proposal_entries_total`)
	if proposals < 10 || entries < 1 || entries > proposals {
		t.Errorf("leader: dialkv_proposals_total %v, dialkv_proposal_entries_total %v; want >= 10 proposals in 1..proposals entries", proposals, entries)
	}
	if promtool, err := exec.LookPath("promtool"); err == nil {
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = strings.NewReader(text)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool check metrics: %v\n%s", err, out)
		}
	} else {
		t.Log("promtool not installed (Debian package prometheus): naming lint skipped")
	}

	st := do(t, "GET", f, "/v1/stats", "")
	var stats client.StatsResponse
	if err := json.Unmarshal([]byte(st.body), &stats); err != nil {
		t.Fatalf("/v1/stats: %v %s", err, st.body)
	}
	if st.header.Get("Access-Control-Allow-Origin") != "*" || len(stats.Seconds) != statsWindow {
		t.Fatalf("/v1/stats: CORS %q, %d points", st.header.Get("Access-Control-Allow-Origin"), len(stats.Seconds))
	}
	total := 0
	for _, n := range stats.Levels["strong"].Ops {
		total += n
	}
	if total < 20 || len(stats.Levels["strong"].P99Ms) != statsWindow {
		t.Errorf("/v1/stats strong ops = %d over %d points, want >= 20", total, len(stats.Levels["strong"].P99Ms))
	}
}

// The sampler rescans the tentative layer every second while a scan is cheap, and spends at most
// 1/backlogScanShare of its time scanning when it is not.
func TestBacklogScanShare(t *testing.T) {
	for _, c := range []struct {
		since, took time.Duration
		due         bool
	}{
		{time.Second, time.Millisecond, true},
		{time.Second, 20 * time.Millisecond, true},
		{time.Second, 100 * time.Millisecond, false},
		{5 * time.Second, 100 * time.Millisecond, true},
	} {
		if got := scanDue(c.since, c.took); got != c.due {
			t.Errorf("%v after a scan of %v: due=%v, want %v", c.since, c.took, got, c.due)
		}
	}
}

// dialkv_purge_blocked_by names the members purging waits for, and purging waits for nobody
// while no tombstone is pending: members report watermarks only while one is, so on a cluster
// that never deleted anything none has reported, and naming them all (as the metric did) raised
// a false alarm on every idle cluster, in the Grafana "Purge blocked" panel too. Once a
// tombstone waits, the member that does not report is named, as status names it.
func TestPurgeBlockedByOnlyWhileTombstonesWait(t *testing.T) {
	tc := startCluster(t, 3, func(i int, c *Config) { c.disableCommitter = i == 2 })
	n1 := tc.nodes[0]
	text := do(t, "GET", n1, "/metrics", "").body
	if v := metricValue(t, text, `dialkv_tombstones_pending`); v != 0 {
		t.Fatalf("dialkv_tombstones_pending = %v on a cluster that deleted nothing", v)
	}
	if strings.Contains(text, "\ndialkv_purge_blocked_by{") {
		t.Errorf("no tombstone waits, yet /metrics names members purging waits for:\n%s", grepLines(text, "dialkv_purge_"))
	}
	for _, method := range []string{"PUT", "DELETE"} {
		if r := do(t, method, n1, "/v1/kv/gone?consistency=strong", "v"); r.status != 200 {
			t.Fatalf("%s: %d %s", method, r.status, r.body)
		}
	}
	// n3 runs no committer, so it never reports: purging waits for it, and only for it.
	waitUntil(t, "the metrics to name n3 alone", 10*time.Second, func() bool {
		text = do(t, "GET", n1, "/metrics", "").body
		return metricValue(t, text, `dialkv_purge_blocked_by\{member="n3"\}`) == 1 &&
			metricValue(t, text, `dialkv_purge_blocked_by\{member="n1"\}`) == -1 &&
			metricValue(t, text, `dialkv_purge_blocked_by\{member="n2"\}`) == -1
	})
	if v := metricValue(t, text, `dialkv_purge_blocked`); v != 1 {
		t.Errorf("dialkv_purge_blocked = %v while a tombstone waits for n3", v)
	}
}

// A member can hold purging back for two reasons at once: it has not reported since another
// member was removed (blockedBy) and its last watermark is old (heldBy), as a member stopped
// after a removal does. /metrics named it once for each, and the Prometheus handler refused
// the duplicate sample: every scrape answered 500, losing all the metrics (and the Grafana
// dashboard) exactly when a member stays away.
func TestPurgeBlockedByNamesEachMemberOnce(t *testing.T) {
	tc := startCluster(t, 4, func(i int, c *Config) {
		c.PurgeInterval = 100 * time.Millisecond
		c.purgeHeldAfter = time.Second
	})
	leader, _ := tc.leaderAndFollower()
	var others []int
	for i, n := range tc.nodes {
		if n != leader {
			others = append(others, i)
		}
	}
	removed, stopped := tc.nodes[others[0]], tc.nodes[others[1]]
	for _, method := range []string{"PUT", "DELETE"} {
		if r := do(t, method, leader, "/v1/kv/first?consistency=strong", "v"); r.status != 200 {
			t.Fatalf("%s first: %d %s", method, r.status, r.body)
		}
	}
	// Every member reports a watermark while the first tombstone waits.
	waitUntil(t, "the first tombstone to be purged", 20*time.Second, func() bool {
		ps, err := leader.purgeState()
		return err == nil && ps.pending == 0
	})
	if r := do(t, "DELETE", leader, "/v1/cluster/members/"+removed.cfg.ID, ""); r.status != 200 {
		t.Fatalf("remove %s: %d %s", removed.cfg.ID, r.status, r.body)
	}
	tc.awaitRemoved(removed)
	tc.stopNode(others[1])
	for _, method := range []string{"PUT", "DELETE"} {
		if r := do(t, method, leader, "/v1/kv/second?consistency=strong", "v"); r.status != 200 {
			t.Fatalf("%s second: %d %s", method, r.status, r.body)
		}
	}
	gone := stopped.cfg.ID
	waitUntil(t, gone+" to hold purging back for both reasons", 20*time.Second, func() bool {
		ps, err := leader.purgeState()
		_, held := ps.heldBy[gone]
		return err == nil && ps.pending == 1 && held && slices.Contains(ps.blockedBy, gone)
	})
	r := do(t, "GET", leader, "/metrics", "")
	if r.status != 200 {
		t.Fatalf("/metrics: %d %s", r.status, r.body)
	}
	if got := strings.Count(r.body, "\ndialkv_purge_blocked_by{member=\""+gone+"\"} 1\n"); got != 1 {
		t.Errorf("/metrics names %s %d times in dialkv_purge_blocked_by, want once:\n%s", gone, got, grepLines(r.body, "dialkv_purge_"))
	}
}

// grepLines returns the lines of text that start with prefix.
func grepLines(text, prefix string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// The per-second p50 and p99 that /v1/stats serves (the dashboard's latency and commit-lag
// charts) are nearest-rank percentiles: the smallest sample with at least p of the samples at
// or below it. Rounding the rank down made a second with two requests, of 1 ms and 900 ms,
// report a p99 of 1 ms, and a p99 under 100 samples never showed the slowest one.
func TestStatsPercentileIsNearestRank(t *testing.T) {
	ten := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	hundred := make([]float64, 100)
	for i := range hundred {
		hundred[i] = float64(i + 1)
	}
	for _, c := range []struct {
		sorted []float64
		p      float64
		want   float64
	}{
		{nil, 0.99, 0},
		{[]float64{7}, 0.5, 7},
		{[]float64{7}, 0.99, 7},
		{[]float64{1, 900}, 0.99, 900},
		{[]float64{1, 900}, 0.5, 1},
		{ten, 0.99, 10},
		{ten, 0.5, 5},
		{hundred, 0.99, 99},
		{hundred, 0.5, 50},
	} {
		if got := percentile(c.sorted, c.p); got != c.want {
			t.Errorf("percentile(%v, %v) = %v, want %v", c.sorted, c.p, got, c.want)
		}
	}
}

// dialkv_raft_apply_duration_seconds times every proposal the leader makes for a client: the
// strong writes followers forward (handlePropose) as well as its own. Only its own were timed,
// so with clients on the followers the leader's apply latency panel stayed empty, or showed only
// the committer's batches.
func TestApplyDurationCountsForwardedWrites(t *testing.T) {
	tc := startCluster(t, 3)
	leader, f := tc.leaderAndFollower()
	count := func() float64 {
		return metricValue(t, do(t, "GET", leader, "/metrics", "").body, `dialkv_raft_apply_duration_seconds_count`)
	}
	before := count()
	const writes = 10
	for i := 0; i < writes; i++ {
		if r := do(t, "PUT", f, fmt.Sprintf("/v1/kv/fwd%d?consistency=strong", i), "v"); r.status != 200 || r.header.Get(client.HeaderVia) != f.cfg.ID {
			t.Fatalf("put through %s: %d %s (via %q)", f.cfg.ID, r.status, r.body, r.header.Get(client.HeaderVia))
		}
	}
	if got := count() - before; got < writes {
		t.Errorf("the leader timed %v proposals for %d strong writes forwarded to it", got, writes)
	}
}

// A request is counted under the level that serves it: the node takes the level with spaces
// around it and in any case (consistency.ParseRead), so the metrics' label must too, not count a
// served eventual read as level "invalid".
func TestRequestLabelsNameTheLevelServed(t *testing.T) {
	for _, c := range []struct{ method, target, op, level string }{
		{"GET", "/v1/kv/k?consistency=%20Eventual%20", "get", "eventual"},
		{"GET", "/v1/kv/k", "get", "strong"},
		{"GET", "/v1/kv?consistency=SESSION", "list", "session"},
		{"PUT", "/v1/kv/k?consistency=eventual+", "put", "eventual"},
		{"PUT", "/v1/kv/k?if_absent&consistency=strong", "cas", "strong"},
		{"GET", "/v1/kv/k?consistency=linearizable", "get", "invalid"},
	} {
		r := httptest.NewRequest(c.method, c.target, nil)
		op, level, ok := requestLabels(r, queryOf(r))
		if !ok || op != c.op || level != c.level {
			t.Errorf("%s %s: labels %q %q %v, want %q %q", c.method, c.target, op, level, ok, c.op, c.level)
		}
		if c.level != "invalid" {
			if _, err := consistency.ParseRead(queryOf(r).Get("consistency")); err != nil {
				t.Errorf("%s %s: the node refuses the level: %v", c.method, c.target, err)
			}
		}
	}
}

// A second's p99 in /v1/stats describes the whole second. Past samplesPerLevel answers a second,
// request latencies used to be overwritten in turn (only the second's last 512 counted) and
// commit lags dropped (only its first 512): a slow start or end of a busy second, an election's
// stall say, vanished from the dashboard's p99. Kept as a uniform sample, 1,000 slow requests of
// 10,000 show in the p99 wherever in the second they came (the sample holds about 51 of them; it
// takes 6 for the p99, so this fails by chance far less than once in 10^9 runs).
func TestStatsSampleTheWholeSecond(t *testing.T) {
	const slow, fast, total, slowOnes = 100 * time.Millisecond, time.Millisecond, 10_000, 1_000
	now := time.Unix(1_700_000_000, 0)
	var s recentStats
	for i := 0; i < total; i++ {
		lat := fast
		if i < slowOnes { // the second starts slow
			lat = slow
		}
		s.observe(now, "strong", lat, false)
		lag := fast
		if i >= total-slowOnes { // and its commits end slow
			lag = slow
		}
		s.observeCommitLag(now, lag)
	}
	snap := s.snapshot("n1", now)
	last := len(snap.Seconds) - 1
	series := snap.Levels["strong"]
	if series.Ops[last] != total {
		t.Fatalf("ops = %d, want %d", series.Ops[last], total)
	}
	if got := series.P99Ms[last]; got != 100 {
		t.Errorf("latency p99 = %v ms, want 100 (10%% of the second's requests took 100 ms)", got)
	}
	if got := snap.CommitLagP99Ms[last]; got != 100 {
		t.Errorf("commit lag p99 = %v ms, want 100 (10%% of the second's commits lagged 100 ms)", got)
	}
}

// The backlog and applied index in /v1/stats are sampled once a second, and a second can go
// without a sample: two ticks can land in one wall-clock second, and the sampler first scans the
// tentative layer, which takes seconds when a node cut off from the leader holds millions of
// writes. Such a second showed a backlog of 0 and an applied index of 0 (a drop to nothing on
// the dashboard's backlog chart, just when the backlog is large); it shows the last sample.
func TestStatsSecondWithoutSampleKeepsTheLastOne(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	var s recentStats
	s.sample(t0, 5000, 40)
	s.observe(t0.Add(1500*time.Millisecond), "eventual", time.Millisecond, false) // t0+1: no sample
	// t0+2: neither a sample nor a request.
	s.sample(t0.Add(3*time.Second), 5100, 42)
	snap := s.snapshot("n1", t0.Add(3*time.Second))
	n := len(snap.Seconds)
	if snap.Seconds[n-4] != t0.Unix() {
		t.Fatalf("seconds end %v, want ..., %d, +1, +2, +3", snap.Seconds[n-4:], t0.Unix())
	}
	if got, want := snap.Backlog[n-4:], []int{5000, 5000, 5000, 5100}; !slices.Equal(got, want) {
		t.Errorf("backlog %v, want %v", got, want)
	}
	if got, want := snap.AppliedIndex[n-4:], []uint64{40, 40, 40, 42}; !slices.Equal(got, want) {
		t.Errorf("applied index %v, want %v", got, want)
	}
	if first := snap.Backlog[n-5]; first != 0 {
		t.Errorf("backlog before the first sample %d, want 0", first)
	}
}

// The commit lag of eventual writes and the staleness reads report grow with an outage: a node
// cut off from the leader for minutes acknowledges writes that commit minutes later, and reports
// minutes of staleness. Their histograms' buckets stopped at 26 s, so every longer value fell in
// +Inf and histogram_quantile (Grafana's p99 panels) showed 26 s for a ten-minute outage.
func TestLagHistogramsReachLongOutages(t *testing.T) {
	tc := startCluster(t, 1)
	n := tc.nodes[0]
	const outage = 10 * time.Minute
	n.metrics.commitLag.Observe(outage.Seconds())
	n.metrics.staleness.WithLabelValues("eventual").Observe(outage.Seconds())
	text := do(t, "GET", n, "/metrics", "").body
	for _, c := range []struct{ name, labels string }{
		{"dialkv_eventual_commit_lag_seconds", ""},
		{"dialkv_read_staleness_seconds", `level="eventual",`},
	} {
		re := regexp.MustCompile(`(?m)^` + c.name + `_bucket\{` + c.labels + `le="([0-9.e+-]+)"\} ([0-9]+)$`)
		found := false
		for _, m := range re.FindAllStringSubmatch(text, -1) {
			le, _ := strconv.ParseFloat(m[1], 64)
			if count, _ := strconv.Atoi(m[2]); le >= outage.Seconds() && count == 1 {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("%s: no finite bucket holds a %v value:\n%s", c.name, outage, grepLines(text, c.name+"_bucket"))
		}
	}
}

// What gossip leaves to direct fetches and to anti-entropy is exported: a value too big for a
// gossip message is announced and fetched by the others, a key too big even for the notice is
// not announced at all (anti-entropy carries it), and the loss counters are there at zero.
func TestGossipFetchesAndLossesAreExported(t *testing.T) {
	tc := startCluster(t, 3)
	_, f := tc.leaderAndFollower()
	bigValue := strings.Repeat("v", 4<<10)     // over MaxBroadcastValue: goes as a notice
	longKey := "k" + strings.Repeat("x", 2000) // its notice alone is over one packet
	for _, w := range []struct{ key, value string }{{"fetched", bigValue}, {longKey, "v"}} {
		if r := do(t, "PUT", f, "/v1/kv/"+w.key+"?consistency=eventual", w.value); r.status != 200 {
			t.Fatalf("eventual put: %d %s", r.status, r.body)
		}
	}
	for _, n := range tc.nodes {
		waitUntil(t, n.cfg.ID+" to hold both writes", 10*time.Second, func() bool {
			return do(t, "GET", n, "/v1/kv/fetched?consistency=eventual", "").status == 200 &&
				do(t, "GET", n, "/v1/kv/"+longKey+"?consistency=eventual", "").status == 200
		})
	}
	text := do(t, "GET", f, "/metrics", "").body
	if v := metricValue(t, text, `dialkv_gossip_unannounced_writes_total`); v < 1 {
		t.Errorf("%s: dialkv_gossip_unannounced_writes_total = %v, want >= 1 (the long key)", f.cfg.ID, v)
	}
	fetches := 0.0
	for _, n := range tc.nodes {
		if n == f {
			continue
		}
		text := do(t, "GET", n, "/metrics", "").body
		fetches += metricValue(t, text, `dialkv_gossip_fetches_total`)
		for _, name := range []string{"dialkv_gossip_fetch_failures_total", "dialkv_gossip_fetches_dropped_total",
			"dialkv_gossip_broadcasts_ignored_total", "dialkv_gossip_broadcasts_dropped_total", "dialkv_gossip_anti_entropy_failures_total"} {
			if v := metricValue(t, text, name); v != 0 {
				t.Errorf("%s: %s = %v, want 0 on a quiet healthy cluster (-1: missing)", n.cfg.ID, name, v)
			}
		}
	}
	if fetches < 1 {
		t.Errorf("dialkv_gossip_fetches_total on the other nodes adds up to %v, want >= 1 (the 4 KiB value was announced)", fetches)
	}
}

// The commit lag of an eventual write is the time from its acknowledgement to its commit. It
// was measured from the write's version stamp, and a node whose clock gossip had pulled ahead of
// its wall clock (a peer's clock runs fast, as with kvctl cluster skew) stamps ahead too: every
// lag it measured was negative, clamped to 0, and the dashboard's lag chart went blank.
func TestCommitLagIsMeasuredFromTheAcknowledgement(t *testing.T) {
	tc := startCluster(t, 1)
	n := tc.nodes[0]
	n.clock.Observe(consistency.Version{Wall: time.Now().Add(10 * time.Second).UnixNano()})
	if r := do(t, "PUT", n, "/v1/kv/lag?consistency=eventual", "v"); r.status != 200 {
		t.Fatalf("put: %d %s", r.status, r.body)
	}
	metric := func(name string) float64 {
		m := regexp.MustCompile(`(?m)^` + name + ` ([0-9.e+-]+)$`).FindStringSubmatch(do(t, "GET", n, "/metrics", "").body)
		if m == nil {
			return 0
		}
		v, _ := strconv.ParseFloat(m[1], 64)
		return v
	}
	waitUntil(t, "the write's commit lag to be recorded", 10*time.Second, func() bool {
		return metric("dialkv_eventual_commit_lag_seconds_count") >= 1
	})
	if sum := metric("dialkv_eventual_commit_lag_seconds_sum"); sum <= 0 || sum > 10 {
		t.Errorf("commit lag %vs, want the time from acknowledgement to commit (above 0, well under 10s)", sum)
	}
}
