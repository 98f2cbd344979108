package node

import (
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/dialkv/dialkv/client"
	"github.com/dialkv/dialkv/consistency"
	"github.com/dialkv/dialkv/replication/eventual"
)

// metrics are the node's Prometheus metrics. Each node has its own registry (with the standard
// Go and process collectors), so several nodes can live in one test process.
type metrics struct {
	reg       *prometheus.Registry
	requests  *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	forwarded *prometheus.CounterVec
	apply     prometheus.Histogram
	staleness *prometheus.HistogramVec
	commitLag prometheus.Histogram
}

// latencyBuckets span 100µs to ~26s.
var latencyBuckets = prometheus.ExponentialBuckets(0.0001, 2, 19)

// lagBuckets span 100µs to ~1.9h: eventual commit lag and read staleness grow with an outage (a
// node cut off from the leader for minutes), and a value past the last finite bucket shows in
// histogram_quantile as that bucket's bound.
var lagBuckets = prometheus.ExponentialBuckets(0.0001, 2, 27)

func newMetrics(n *Node) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dialkv_requests_total", Help: "Key requests answered, by operation, consistency level and outcome.",
		}, []string{"op", "level", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "dialkv_request_duration_seconds", Help: "Time to answer key requests, by operation, consistency level and outcome.",
			Buckets: latencyBuckets,
		}, []string{"op", "level", "outcome"}),
		forwarded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dialkv_forwarded_requests_total", Help: "Requests this node sent on to another node, by kind (write, read_index, commit, join: to the leader; session_read: to the node holding what the session saw, or the leader).",
		}, []string{"kind"}),
		apply: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "dialkv_raft_apply_duration_seconds", Help: "On the leader: time from proposing an entry to its result (committed by a quorum and applied).",
			Buckets: latencyBuckets,
		}),
		staleness: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "dialkv_read_staleness_seconds", Help: "Staleness bound reported with bounded, session and eventual reads (when one is known).",
			Buckets: lagBuckets,
		}, []string{"level"}),
		commitLag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "dialkv_eventual_commit_lag_seconds", Help: "Time from acknowledging an eventual write on this node to its commit by Raft.",
			Buckets: lagBuckets,
		}),
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.requests, m.latency, m.forwarded, m.apply, m.staleness, m.commitLag,
		&stateCollector{n: n},
	)
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// stateCollector reads the engines' state at scrape time: gauges and counters that already
// exist elsewhere are not kept twice.
type stateCollector struct{ n *Node }

var (
	descRaftState       = prometheus.NewDesc("dialkv_raft_state", "1 for this node's current Raft state.", []string{"state"}, nil)
	descRaftTerm        = prometheus.NewDesc("dialkv_raft_term", "Current Raft term.", nil, nil)
	descCommitIndex     = prometheus.NewDesc("dialkv_raft_commit_index", "Commit index this node knows of.", nil, nil)
	descAppliedIndex    = prometheus.NewDesc("dialkv_raft_applied_index", "Index of the last entry the state machine applied.", nil, nil)
	descLeaderChanges   = prometheus.NewDesc("dialkv_raft_leader_changes_total", "Times this node gained or lost leadership.", nil, nil)
	descSnapshots       = prometheus.NewDesc("dialkv_raft_snapshots_total", "Snapshots persisted.", nil, nil)
	descSnapshotSeconds = prometheus.NewDesc("dialkv_raft_snapshot_duration_seconds_total", "Time spent persisting snapshots.", nil, nil)
	descRestores        = prometheus.NewDesc("dialkv_raft_snapshot_restores_total", "Snapshots installed into the state machine.", nil, nil)
	descProposals       = prometheus.NewDesc("dialkv_proposals_total", "Strong writes and other commands this node proposed to Raft as leader.", nil, nil)
	descProposalEntries = prometheus.NewDesc("dialkv_proposal_entries_total", "Raft log entries those proposals went into (concurrent proposals share entries).", nil, nil)
	descReadRounds      = prometheus.NewDesc("dialkv_read_index_rounds_total", "Leadership-verification rounds for linearizable reads (each serves many reads).", nil, nil)
	descReadFailures    = prometheus.NewDesc("dialkv_read_index_failures_total", "Read-index rounds that could not confirm leadership.", nil, nil)
	descMembers         = prometheus.NewDesc("dialkv_gossip_members", "Gossip members by failure-detector state, as this node sees them.", []string{"state"}, nil)
	descQueue           = prometheus.NewDesc("dialkv_gossip_broadcast_queue_depth", "Gossip messages waiting in the transmit queue.", nil, nil)
	descAERounds        = prometheus.NewDesc("dialkv_gossip_anti_entropy_rounds_total", "Anti-entropy exchanges started with a peer.", nil, nil)
	descRepaired        = prometheus.NewDesc("dialkv_gossip_entries_repaired_total", "Writes anti-entropy brought to this node (pulled) or sent to peers (pushed).", []string{"direction"}, nil)
	descEagerSent       = prometheus.NewDesc("dialkv_gossip_eager_writes_sent_total", "Local eventual writes pushed directly to peers (once per peer).", nil, nil)
	descEagerPackets    = prometheus.NewDesc("dialkv_gossip_eager_packets_total", "Packets those direct pushes took (many writes per packet).", nil, nil)
	descRelaysSkipped   = prometheus.NewDesc("dialkv_gossip_relays_skipped_total", "Received writes not gossiped on because their origin's direct push reached every member.", nil, nil)
	descBroadcasts      = prometheus.NewDesc("dialkv_gossip_broadcasts_received_total", "Gossip messages accepted.", nil, nil)
	// What gossip lost or left to anti-entropy: a convergence slower than usual shows here first.
	descIgnored        = prometheus.NewDesc("dialkv_gossip_broadcasts_ignored_total", "Gossip messages received and not taken: undecodable, or from a peer the node refuses gossip from.", nil, nil)
	descDropped        = prometheus.NewDesc("dialkv_gossip_broadcasts_dropped_total", "Gossip messages lost to a full inbox or transmit queue (anti-entropy repairs what they carried).", nil, nil)
	descOversize       = prometheus.NewDesc("dialkv_gossip_unannounced_writes_total", "Eventual writes too big to announce by gossip even as a notice (anti-entropy carries them).", nil, nil)
	descFetches        = prometheus.NewDesc("dialkv_gossip_fetches_total", "Direct fetches of announced writes from their origin (values too big for a gossip message).", nil, nil)
	descFetchFailures  = prometheus.NewDesc("dialkv_gossip_fetch_failures_total", "Those fetches that failed (anti-entropy repairs).", nil, nil)
	descFetchesDropped = prometheus.NewDesc("dialkv_gossip_fetches_dropped_total", "Announced writes not fetched because the fetch queue was full (anti-entropy repairs).", nil, nil)
	descAEFailures     = prometheus.NewDesc("dialkv_gossip_anti_entropy_failures_total", "Anti-entropy exchanges that failed part-way.", nil, nil)
	descCacheReads     = prometheus.NewDesc("dialkv_read_cache_reads_total", "Committed-layer reads by whether the read cache answered them (hit) or bbolt did (miss).", []string{"result"}, nil)
	descCacheBytes     = prometheus.NewDesc("dialkv_read_cache_bytes", "Approximate memory the committed-record read cache holds (bounded by the store's ReadCacheBytes).", nil, nil)
	descTentative      = prometheus.NewDesc("dialkv_tentative_entries", "Eventual writes held and not yet committed (the backlog).", nil, nil)
	descTentativeAge   = prometheus.NewDesc("dialkv_tentative_oldest_age_seconds", "Age of the oldest uncommitted eventual write held (by its version's clock).", nil, nil)
	descTombstones     = prometheus.NewDesc("dialkv_tombstones_pending", "Committed tombstones waiting to be purged.", nil, nil)
	descPurgeBlocked   = prometheus.NewDesc("dialkv_purge_blocked", "1 while tombstones wait for members that never reported a watermark (or not since a member was removed) or whose last reported watermark is over 30s old.", nil, nil)
	descPurgeBlockedBy = prometheus.NewDesc("dialkv_purge_blocked_by", "1 for each member purging waits for while tombstones wait (no report, none since a member was removed, or a reported watermark over 30s old); kvctl member remove frees a member gone for good.", []string{"member"}, nil)
	descDiskErrors     = prometheus.NewDesc("dialkv_disk_errors_total", "Writes to the tentative layer that failed (never acknowledged).", nil, nil)
	descWriteBytes     = prometheus.NewDesc("dialkv_write_inflight_bytes", "Memory write requests hold now: their values plus 1 KiB each, from before the value is read until the write is answered (bounded by kvd --max-inflight-mb).", nil, nil)
	descWritesRefused  = prometheus.NewDesc("dialkv_write_inflight_refusals_total", "Writes refused at once (503 unavailable, nothing done) because they would have taken the node past kvd --max-inflight-mb.", nil, nil)
)

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRaftState, descRaftTerm, descCommitIndex, descAppliedIndex, descLeaderChanges,
		descSnapshots, descSnapshotSeconds, descRestores, descReadRounds, descReadFailures, descProposals, descProposalEntries, descMembers, descQueue, descAERounds,
		descRepaired, descEagerSent, descEagerPackets, descRelaysSkipped, descBroadcasts, descIgnored, descDropped, descOversize, descFetches, descFetchFailures, descFetchesDropped, descAEFailures, descCacheReads, descCacheBytes, descTentative, descTentativeAge, descTombstones, descPurgeBlocked, descPurgeBlockedBy, descDiskErrors, descWriteBytes, descWritesRefused} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	n := c.n
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	role := roleName(n.raft.State())
	for _, s := range []string{"leader", "follower", "candidate", "unknown"} {
		gauge(descRaftState, boolFloat(s == role), s)
	}
	gauge(descRaftTerm, float64(n.raft.Term()))
	gauge(descCommitIndex, float64(n.raft.CommitIndex()))
	gauge(descAppliedIndex, float64(n.store.AppliedIndex()))
	rs := n.raft.Stats()
	counter(descLeaderChanges, float64(rs.LeaderChanges))
	counter(descSnapshots, float64(rs.Snapshots))
	counter(descSnapshotSeconds, rs.SnapshotSeconds)
	counter(descRestores, float64(rs.Restores))
	counter(descReadRounds, float64(rs.ReadIndexRounds))
	counter(descReadFailures, float64(rs.ReadIndexFailures))
	counter(descProposals, float64(rs.Proposals))
	counter(descProposalEntries, float64(rs.ProposalEntries))

	states := map[eventual.MemberState]int{eventual.StateAlive: 0, eventual.StateSuspect: 0, eventual.StateDead: 0, eventual.StateLeft: 0}
	for _, m := range n.gossip.Members() {
		states[m.State]++
	}
	for s, count := range states {
		gauge(descMembers, float64(count), string(s))
	}
	gs := n.gossip.Stats()
	gauge(descQueue, float64(gs.QueueDepth))
	counter(descAERounds, float64(gs.AntiEntropyRounds))
	counter(descRepaired, float64(gs.RepairPulled), "pulled")
	counter(descRepaired, float64(gs.RepairPushed), "pushed")
	counter(descBroadcasts, float64(gs.BroadcastsReceived))
	counter(descIgnored, float64(gs.BroadcastsIgnored))
	counter(descDropped, float64(gs.BroadcastsDropped))
	counter(descOversize, float64(gs.Oversize))
	counter(descFetches, float64(gs.Fetches))
	counter(descFetchFailures, float64(gs.FetchFailures))
	counter(descFetchesDropped, float64(gs.FetchesDropped))
	counter(descAEFailures, float64(gs.AntiEntropyFailures))
	counter(descEagerSent, float64(gs.EagerSent))
	counter(descEagerPackets, float64(gs.EagerPackets))
	counter(descRelaysSkipped, float64(gs.RelaysSkipped))

	cs := n.store.CacheStats()
	counter(descCacheReads, float64(cs.Hits), "hit")
	counter(descCacheReads, float64(cs.Misses), "miss")
	gauge(descCacheBytes, float64(cs.Bytes))

	backlog := n.backlog()
	gauge(descTentative, float64(backlog.count))
	gauge(descTentativeAge, backlog.oldestAge.Seconds())
	if ps, err := n.purgeState(); err == nil {
		gauge(descTombstones, float64(ps.pending))
		gauge(descPurgeBlocked, boolFloat(ps.pending > 0 && len(ps.blockedBy)+len(ps.heldBy) > 0))
		// With no tombstone pending purging waits for nobody (status shows no purge either):
		// members report only while one is, so blockedBy then names every member that has not
		// needed to yet.
		if ps.pending > 0 {
			for _, id := range ps.waitedFor() {
				gauge(descPurgeBlockedBy, 1, id)
			}
		}
	}
	counter(descDiskErrors, float64(n.diskErrors.Load()))
	gauge(descWriteBytes, float64(n.inflight.held.Load()))
	counter(descWritesRefused, float64(n.inflight.refused.Load()))
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// requestLabels names a key request for metrics: its operation and level. q is its query.
func requestLabels(r *http.Request, q query) (op, level string, ok bool) {
	if !strings.HasPrefix(r.URL.Path, "/v1/kv") {
		return "", "", false
	}
	switch r.Method {
	case http.MethodGet:
		op = "get"
		if strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, "/v1/kv"), "/") == "" {
			op = "list"
		}
	case http.MethodPut:
		op = "put"
		if q.Has("if_version") || q.Has("if_absent") {
			op = "cas"
		}
	case http.MethodDelete:
		op = "delete"
	default:
		return "", "", false
	}
	// As the handler will read it; a write at a read-only level is refused as invalid there, but
	// labelled with the level it named.
	l, err := consistency.ParseRead(q.Get("consistency"))
	if err != nil {
		return op, "invalid", true
	}
	return op, l.String(), true
}

// outcome names an answer for metrics: ok, or the error code the node sent.
func outcome(status int, errorCode string) string {
	if status < 300 {
		return "ok"
	}
	if errorCode != "" {
		return errorCode
	}
	return strconv.Itoa(status)
}

// recentStats keeps the last few minutes of activity, one slot per second, for /v1/stats.
type recentStats struct {
	mu    sync.Mutex
	slots [statsWindow]statsSlot
}

const (
	statsWindow     = 300
	samplesPerLevel = 512 // latencies (and commit lags) kept per level per second (keepSample)
)

type statsSlot struct {
	second       int64
	levels       map[string]*levelSlot
	backlog      int
	appliedIndex uint64
	sampled      bool      // backlog and appliedIndex were sampled in this second
	commitLags   []float64 // ms, a sample (keepSample) of the second's commits
	commits      int
}

type levelSlot struct {
	ops, errors int
	latencies   []float64 // ms, a sample (keepSample) of the second's requests
}

func (s *recentStats) slot(now time.Time) *statsSlot {
	sec := now.Unix()
	sl := &s.slots[sec%statsWindow]
	if sl.second != sec {
		*sl = statsSlot{second: sec, levels: map[string]*levelSlot{}}
	}
	return sl
}

// observe counts a request of level answered at now, which took d.
func (s *recentStats) observe(now time.Time, level string, d time.Duration, failed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sl := s.slot(now)
	ls := sl.levels[level]
	if ls == nil {
		ls = &levelSlot{}
		sl.levels[level] = ls
	}
	ls.ops++
	if failed {
		ls.errors++
	}
	ls.latencies = keepSample(ls.latencies, ls.ops, float64(d)/float64(time.Millisecond))
}

// observeCommitLag records the commit lag d of an eventual write committed at now.
func (s *recentStats) observeCommitLag(now time.Time, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sl := s.slot(now)
	sl.commits++
	sl.commitLags = keepSample(sl.commitLags, sl.commits, float64(d)/float64(time.Millisecond))
}

// keepSample adds v, the seen-th value of a second, to samples, a uniform sample of that
// second's values so far (reservoir sampling): every value has the same chance to be kept, so
// percentiles of samples describe the whole second in bounded memory, not only its first or
// last samplesPerLevel values.
func keepSample(samples []float64, seen int, v float64) []float64 {
	if len(samples) < samplesPerLevel {
		return append(samples, v)
	}
	if i := rand.IntN(seen); i < samplesPerLevel {
		samples[i] = v
	}
	return samples
}

// sample records the backlog and applied index at now.
func (s *recentStats) sample(now time.Time, backlog int, applied uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sl := s.slot(now)
	sl.backlog, sl.appliedIndex, sl.sampled = backlog, applied, true
}

// percentile is the nearest-rank p-th percentile of sorted: the smallest sample with at least
// p of them at or below it. (The rank rounded down instead showed the faster of two requests as
// their p99.)
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// snapshot renders the window ending now.
func (s *recentStats) snapshot(node string, now time.Time) client.StatsResponse {
	s.mu.Lock()
	defer s.mu.Unlock()
	resp := client.StatsResponse{Node: node, Levels: map[string]client.LevelSeries{}}
	end := now.Unix()
	// A second the sampler missed (two ticks in one second, or a long scan of the tentative
	// layer) shows the last sample, not a backlog and applied index of 0.
	var backlog int
	var applied uint64
	for sec := end - statsWindow + 1; sec <= end; sec++ {
		sl := s.slots[((sec%statsWindow)+statsWindow)%statsWindow]
		if sl.second != sec {
			sl = statsSlot{}
		}
		if sl.sampled {
			backlog, applied = sl.backlog, sl.appliedIndex
		}
		i := len(resp.Seconds)
		resp.Seconds = append(resp.Seconds, sec)
		resp.Backlog = append(resp.Backlog, backlog)
		resp.AppliedIndex = append(resp.AppliedIndex, applied)
		lags := slices.Clone(sl.commitLags)
		slices.Sort(lags)
		resp.CommitLagP99Ms = append(resp.CommitLagP99Ms, percentile(lags, 0.99))
		for level, ls := range sl.levels {
			series, ok := resp.Levels[level]
			if !ok {
				series = client.LevelSeries{Ops: make([]int, i), Errors: make([]int, i), P50Ms: make([]float64, i), P99Ms: make([]float64, i)}
			}
			lat := slices.Clone(ls.latencies)
			slices.Sort(lat)
			series.Ops = append(series.Ops, ls.ops)
			series.Errors = append(series.Errors, ls.errors)
			series.P50Ms = append(series.P50Ms, percentile(lat, 0.5))
			series.P99Ms = append(series.P99Ms, percentile(lat, 0.99))
			resp.Levels[level] = series
		}
		for level, series := range resp.Levels { // levels idle this second get zeros
			if len(series.Ops) == i {
				series.Ops = append(series.Ops, 0)
				series.Errors = append(series.Errors, 0)
				series.P50Ms = append(series.P50Ms, 0)
				series.P99Ms = append(series.P99Ms, 0)
				resp.Levels[level] = series
			}
		}
	}
	return resp
}
