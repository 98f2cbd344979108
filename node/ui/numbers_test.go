package ui

import (
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dialkv/dialkv/client"
	"github.com/dialkv/dialkv/internal/browsertest"
)

// These browser tests check that the page's numbers mean what their labels say in the cases
// the smooth fake activity of browser_test.go does not reach.

// steadyStats is a node serving ops strong requests every second of the window ending at now,
// with backlog uncommitted writes throughout.
func steadyStats(ops, backlog int) func(id string, now time.Time) client.StatsResponse {
	return func(id string, now time.Time) client.StatsResponse {
		const window = 300
		resp := client.StatsResponse{Node: id, Levels: map[string]client.LevelSeries{}}
		var s client.LevelSeries
		for sec := now.Unix() - window + 1; sec <= now.Unix(); sec++ {
			resp.Seconds = append(resp.Seconds, sec)
			resp.Backlog = append(resp.Backlog, backlog)
			resp.AppliedIndex = append(resp.AppliedIndex, 1)
			resp.CommitLagP99Ms = append(resp.CommitLagP99Ms, 0)
			s.Ops = append(s.Ops, ops)
			s.Errors = append(s.Errors, 0)
			s.P50Ms = append(s.P50Ms, 1)
			s.P99Ms = append(s.P99Ms, 2)
		}
		resp.Levels["strong"] = s
		return resp
	}
}

// shifted is stats as a node answers them when its answer comes from the next second (the
// fetches of one poll straddle a second's end, or its clock is a little ahead).
func shifted(stats func(string, time.Time) client.StatsResponse, d time.Duration) func(string, time.Time) client.StatsResponse {
	return func(id string, now time.Time) client.StatsResponse { return stats(id, now.Add(d)) }
}

// Two nodes each serving 10 requests a second serve 20 a second, also when one's newest
// complete second is the other's second in progress: the page used the later node's end as the
// window's, where the other node has no complete second yet, so the newest second (and the
// 10-second rate) showed one node's requests only.
func TestBrowserRateAcrossSecondBoundary(t *testing.T) {
	t.Parallel()
	browser := chromium(t)
	c := startFakeCluster(t,
		&fakeNode{id: "n1", role: "leader", health: "ok", stats: steadyStats(10, 0)},
		&fakeNode{id: "n2", role: "follower", health: "ok", stats: shifted(steadyStats(10, 0), time.Second)})
	dom := browsertest.Load(t, browser, c.nodes[0].srv.URL+"/ui/", 3*time.Second, "")
	if got := numberOf(dom, "ops-rate"); got != 20 {
		t.Errorf("ops-rate = %v, want 20 (two nodes at 10 req/s each)", byID(dom, "ops-rate"))
	}
}

// A member whose recorded address another member answers at now (a node restarted at a removed
// or moved member's old address) has no stats of its own: the page counted the other node's
// stats under its id too, so that node's requests were summed twice.
func TestBrowserStatsFromAnotherNode(t *testing.T) {
	t.Parallel()
	browser := chromium(t)
	n2 := &fakeNode{id: "n2", role: "follower", health: "ok", stats: steadyStats(10, 0)}
	c := startFakeCluster(t,
		&fakeNode{id: "n1", role: "leader", health: "ok", stats: steadyStats(10, 0)},
		n2,
		&fakeNode{id: "n3", role: "unknown", health: "down", reason: "n2 answers at its address", at: n2})
	dom := browsertest.Load(t, browser, c.nodes[0].srv.URL+"/ui/", 3*time.Second, "")
	if card := cards(dom)["n3"]; card["data-stats"] != "down" {
		t.Errorf("card n3 = %v, want stats down: the stats at its address are n2's", card)
	}
	if got := numberOf(dom, "ops-rate"); got != 20 {
		t.Errorf("ops-rate = %v, want 20 (n1 and n2 at 10 req/s each)", byID(dom, "ops-rate"))
	}
	if !strings.Contains(dom, "n2 answers at its address") {
		t.Error("n3's card does not say who answers at its address")
	}
}

// The backlog number is live like the other numbers beside it: when the serving node stops
// answering /v1/status, it comes from the members that still answer /v1/stats. It was the
// largest backlog in the last status that arrived, kept on screen unmarked however much the
// members' backlogs grew since. It is the largest node's backlog, not the sum: each node holds
// a copy of the writes gossip brought it.
func TestBrowserBacklogWhileServingNodeDown(t *testing.T) {
	t.Parallel()
	browser := chromium(t)
	var fetches atomic.Int64
	backlog := func() int { // n2's: 7 while n1 answers /v1/status (its first two polls), then 30
		if fetches.Load() > 2 {
			return 30
		}
		return 7
	}
	c := startFakeCluster(t,
		&fakeNode{id: "n1", role: "leader", health: "ok", statusAnswers: 2, stats: steadyStats(10, 3), backlog: func() int { return 3 }},
		&fakeNode{id: "n2", role: "follower", health: "ok", backlog: backlog, stats: func(id string, now time.Time) client.StatsResponse {
			fetches.Add(1)
			return steadyStats(10, backlog())(id, now)
		}})
	dom := browsertest.Load(t, browser, c.nodes[0].srv.URL+"/ui/", 5*time.Second, "")
	if body := browsertest.Elements(dom, "data-serving"); len(body) != 1 || body[0]["data-serving"] != "down" {
		t.Fatalf("body data-serving = %v, want down", body)
	}
	if got := numberOf(dom, "backlog-total"); got != 30 {
		t.Errorf("backlog-total = %v, want 30: n2's backlog now (largest of 3 and 30), not the stale status' 7", byID(dom, "backlog-total"))
	}
}

// cardField is the text of the field named name on node id's card.
func cardField(dom, id, name string) string {
	card := regexp.MustCompile(`(?s)<article [^>]*data-node="` + regexp.QuoteMeta(id) + `".*?</article>`).FindString(dom)
	m := regexp.MustCompile(`<dd data-field="` + regexp.QuoteMeta(name) + `">([^<]*)</dd>`).FindStringSubmatch(card)
	if m == nil {
		return ""
	}
	return m[1]
}
