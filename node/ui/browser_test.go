package ui

import (
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dialkv/dialkv/client"
	"github.com/dialkv/dialkv/internal/browsertest"
)

// These tests run the page in a real headless Chromium against fake nodes (each serves Handler,
// /v1/status and /v1/stats), so the script is checked without a cluster: the cluster map, the
// live numbers, a member that is down, and the banner when the serving node stops answering.
// systemtest/ui_test.go does the same against real kvd processes. Skipped without chromium.

// fakeNode is one fake member: its HTTP server and what it answers.
type fakeNode struct {
	id, role, health, reason string
	srv                      *httptest.Server
	statusAnswers            int64 // answer /v1/status this many times, then 503 (0: always answer)
	served                   atomic.Int64
	// stats, when set, makes its /v1/stats answer (else fakeStats).
	stats func(id string, now time.Time) client.StatsResponse
	// at, when set, is the member whose address the status gives for this one (a recycled address).
	at *fakeNode
	// backlog, when set, is the backlog the status reports for it (else 7 per place in the list).
	backlog func() int
}

type fakeCluster struct {
	nodes []*fakeNode
}

func startFakeCluster(t *testing.T, nodes ...*fakeNode) *fakeCluster {
	t.Helper()
	c := &fakeCluster{nodes: nodes}
	for _, n := range nodes {
		mux := http.NewServeMux()
		mux.Handle("GET /ui/", Handler())
		mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
			if n.statusAnswers > 0 && n.served.Add(1) > n.statusAnswers {
				http.Error(w, `{"error":"gone","code":"internal"}`, http.StatusServiceUnavailable)
				return
			}
			w.Header().Set("Access-Control-Allow-Origin", "*")
			writeJSON(w, c.status(n))
		})
		mux.HandleFunc("GET /v1/stats", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Access-Control-Allow-Origin", "*")
			stats := fakeStats
			if n.stats != nil {
				stats = n.stats
			}
			writeJSON(w, stats(n.id, time.Now()))
		})
		n.srv = httptest.NewUnstartedServer(mux)
	}
	for _, n := range nodes { // every address is known before any handler runs
		n.srv.Start()
		t.Cleanup(n.srv.Close)
	}
	return c
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

func (c *fakeCluster) status(self *fakeNode) client.StatusResponse {
	resp := client.StatusResponse{Node: self.id, Term: 3, CommitIndex: 1234, AppliedIndex: 1234}
	for i, n := range c.nodes {
		at := n
		if n.at != nil {
			at = n.at
		}
		ns := client.NodeStatus{ID: n.id, HTTP: at.srv.Listener.Addr().String(), Role: n.role, Health: n.health,
			Reason: n.reason, Suffrage: "voter", Gossip: "alive"}
		if n.health != "down" {
			ns.Term, ns.AppliedIndex, ns.Backlog = 3, 1234-uint64(i), 7*i
			if n.backlog != nil {
				ns.Backlog = n.backlog()
			}
			if n.role != "leader" {
				ns.LastContact = "12ms"
			}
		} else {
			ns.Gossip = "dead"
		}
		if n.role == "leader" {
			resp.Leader = n.id
		}
		resp.Nodes = append(resp.Nodes, ns)
	}
	return resp
}

// fakeStats makes five minutes of smooth, plausible activity ending at now.
func fakeStats(id string, now time.Time) client.StatsResponse {
	const window = 300
	seed := float64(id[len(id)-1])
	resp := client.StatsResponse{Node: id, Levels: map[string]client.LevelSeries{}}
	levels := map[string]float64{"strong": 40, "bounded": 25, "session": 10, "eventual": 60}
	for sec := now.Unix() - window + 1; sec <= now.Unix(); sec++ {
		x := float64(sec)/20 + seed
		resp.Seconds = append(resp.Seconds, sec)
		resp.Backlog = append(resp.Backlog, int(20+15*math.Sin(x/2+seed)))
		resp.AppliedIndex = append(resp.AppliedIndex, uint64(sec%100000))
		resp.CommitLagP99Ms = append(resp.CommitLagP99Ms, 80+40*math.Sin(x/3))
		for level, base := range levels {
			s := resp.Levels[level]
			ops := int(base * (1.2 + math.Sin(x+base)))
			errs := 0
			if int(sec)%47 == 0 && level == "strong" {
				errs = 3
			}
			s.Ops = append(s.Ops, ops)
			s.Errors = append(s.Errors, errs)
			s.P50Ms = append(s.P50Ms, 0.8+0.4*math.Sin(x))
			s.P99Ms = append(s.P99Ms, 4+2*math.Sin(x*1.3)+base/20)
			resp.Levels[level] = s
		}
	}
	return resp
}

// chromium finds Debian's headless-capable browser, or skips.
func chromium(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("browser test: skipped with -short")
	}
	return browsertest.Find(t)
}

func byID(dom, id string) map[string]string {
	for _, e := range browsertest.Elements(dom, "id") {
		if e["id"] == id {
			return e
		}
	}
	return nil
}

func numberOf(dom, id string) float64 {
	v, _ := strconv.ParseFloat(byID(dom, id)["data-value"], 64)
	return v
}

func cards(dom string) map[string]map[string]string {
	out := map[string]map[string]string{}
	for _, e := range browsertest.Elements(dom, "data-node") {
		out[e["data-node"]] = e
	}
	return out
}

func outputDir(t *testing.T) string {
	if dir := os.Getenv("DIALKV_TEST_OUTPUT"); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	return t.TempDir()
}

func TestBrowserHealthyCluster(t *testing.T) {
	t.Parallel()
	browser := chromium(t)
	c := startFakeCluster(t,
		&fakeNode{id: "n1", role: "follower", health: "ok"},
		&fakeNode{id: "n2", role: "leader", health: "ok"},
		&fakeNode{id: "n3", role: "follower", health: "degraded", reason: "no recent contact with the leader"})
	url := c.nodes[0].srv.URL + "/ui/"
	dom := browsertest.Load(t, browser, url, 3*time.Second, "")
	if _, hidden := byID(dom, "banner")["hidden"]; !hidden {
		t.Errorf("banner shown for a serving node that answers: %v", byID(dom, "banner"))
	}
	body := browsertest.Elements(dom, "data-serving")
	if len(body) != 1 || body[0]["data-serving"] != "ok" {
		t.Fatalf("body data-serving = %v, want ok", body)
	}
	got := cards(dom)
	want := map[string][2]string{"n1": {"follower", "ok"}, "n2": {"leader", "ok"}, "n3": {"follower", "degraded"}}
	for id, w := range want {
		card := got[id]
		if card["data-role"] != w[0] || card["data-health"] != w[1] || card["data-stats"] != "ok" {
			t.Errorf("card %s = %v, want role %s health %s stats ok", id, card, w[0], w[1])
		}
	}
	if !strings.Contains(dom, "no recent contact with the leader") {
		t.Error("the degraded node's reason is not shown")
	}
	if numberOf(dom, "ops-rate") <= 0 || numberOf(dom, "ops-window") <= 0 || numberOf(dom, "p99-now") <= 0 {
		t.Errorf("live numbers not filled: ops-rate %v ops-window %v p99 %v",
			byID(dom, "ops-rate"), byID(dom, "ops-window"), byID(dom, "p99-now"))
	}
	// Its value (the largest node's, not the sum) is checked by TestBrowserBacklogWhileServingNodeDown.
	if numberOf(dom, "backlog-total") <= 0 {
		t.Errorf("backlog-total %v: not filled from the members' stats", byID(dom, "backlog-total"))
	}
	if n := len(browsertest.Elements(dom, "data-level")); n != 4 {
		t.Errorf("%d level rows, want 4", n)
	}
	if paths := strings.Count(dom, `class="series"`); paths < 4*4+3+1 {
		t.Errorf("%d chart lines drawn, want at least %d", paths, 4*4+3+1)
	}

	shot := filepath.Join(outputDir(t), "ui-fake-cluster.png")
	browsertest.Load(t, browser, url, 3*time.Second, shot)
	if fi, err := os.Stat(shot); err != nil || fi.Size() < 10_000 {
		t.Fatalf("screenshot %s: %v %v", shot, fi, err)
	}
	t.Logf("screenshot: %s", shot)
}

// A member that does not answer is shown as down and left out of the charts; the page goes on.
func TestBrowserMemberDown(t *testing.T) {
	t.Parallel()
	browser := chromium(t)
	c := startFakeCluster(t,
		&fakeNode{id: "n1", role: "leader", health: "ok"},
		&fakeNode{id: "n2", role: "follower", health: "ok"},
		&fakeNode{id: "n3", role: "unknown", health: "down", reason: "unreachable: connection refused"})
	c.nodes[2].srv.Close()
	dom := browsertest.Load(t, browser, c.nodes[0].srv.URL+"/ui/", 3*time.Second, "")
	got := cards(dom)
	if got["n3"]["data-health"] != "down" || got["n3"]["data-stats"] != "down" {
		t.Errorf("card n3 = %v, want health down and stats down", got["n3"])
	}
	// n3 reported no term, applied index or backlog: its backlog of 0 in the status is a
	// placeholder (a node cut off may hold many uncommitted writes), not shown as a count.
	if b3, b2 := cardField(dom, "n3", "backlog"), cardField(dom, "n2", "backlog"); b3 != "—" || b2 != "7" {
		t.Errorf("backlogs on the cards: n3 %q, want — (it did not report one); n2 %q, want 7", b3, b2)
	}
	if got["n1"]["data-role"] != "leader" || got["n2"]["data-stats"] != "ok" {
		t.Errorf("cards n1 %v n2 %v: the live members are not shown as such", got["n1"], got["n2"])
	}
	if numberOf(dom, "ops-window") <= 0 {
		t.Errorf("ops-window %v: charts stopped with one member down", byID(dom, "ops-window"))
	}
	if !strings.Contains(dom, "no stats from n3") {
		t.Error("the window note does not say n3 is left out")
	}
	extraScreenshot(t, browser, c.nodes[0].srv.URL+"/ui/", 3*time.Second, "ui-fake-member-down.png")
}

// extraScreenshot writes a screenshot only when DIALKV_TEST_OUTPUT asks for the tests' output.
func extraScreenshot(t *testing.T, browser, url string, budget time.Duration, name string) {
	t.Helper()
	if os.Getenv("DIALKV_TEST_OUTPUT") == "" {
		return
	}
	shot := filepath.Join(outputDir(t), name)
	browsertest.Load(t, browser, url, budget, shot)
	t.Logf("screenshot: %s", shot)
}

// When the serving node stops answering, a banner says so and the last map stays, marked stale.
func TestBrowserServingNodeStops(t *testing.T) {
	t.Parallel()
	browser := chromium(t)
	c := startFakeCluster(t,
		&fakeNode{id: "n1", role: "leader", health: "ok", statusAnswers: 2},
		&fakeNode{id: "n2", role: "follower", health: "ok"})
	dom := browsertest.Load(t, browser, c.nodes[0].srv.URL+"/ui/", 5*time.Second, "")
	body := browsertest.Elements(dom, "data-serving")
	if len(body) != 1 || body[0]["data-serving"] != "down" {
		t.Fatalf("body data-serving = %v, want down", body)
	}
	banner := regexp.MustCompile(`(?s)<div id="banner"[^>]*>(.*?)</div>`).FindStringSubmatch(dom)
	if _, hidden := byID(dom, "banner")["hidden"]; hidden || banner == nil || !strings.Contains(banner[1], "has not answered") {
		t.Fatalf("banner = %q, want a visible 'has not answered'", banner)
	}
	got := cards(dom)
	if got["n1"]["data-health"] != "down" || got["n2"]["data-stale"] != "true" {
		t.Errorf("cards n1 %v n2 %v: want the serving node down and the map stale", got["n1"], got["n2"])
	}
	if numberOf(dom, "ops-window") <= 0 {
		t.Error("charts stopped although members still answer /v1/stats")
	}
	c.nodes[0].served.Store(0)
	extraScreenshot(t, browser, c.nodes[0].srv.URL+"/ui/", 5*time.Second, "ui-fake-serving-down.png")
}
