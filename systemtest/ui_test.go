package systemtest

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dialkv/dialkv/client"
	"github.com/dialkv/dialkv/internal/browsertest"
)

// The dashboard at /ui/ in a real headless Chromium against three real nodes: after a little
// load it shows every node with its role and health, stats from every member (which needs
// Access-Control-Allow-Origin on /v1/stats) and non-zero live numbers; a killed follower turns
// down on the map. A screenshot goes to $DIALKV_TEST_OUTPUT (or the test's temp dir). Skipped
// when chromium is not installed (apt-get install chromium); node/ui's own browser tests cover
// the page against fake nodes.
func TestDashboardInBrowser(t *testing.T) {
	browser := uiChromium(t)
	c := startCluster(t, 3)
	leader := c.waitLeader(10 * time.Second)
	serving := c.procs[0]
	url := "http://" + serving.http + "/ui/"
	uiMustServe(t, url)

	uiLoad(t, c.client())

	var want []string
	for _, p := range c.procs {
		want = append(want, p.id)
	}
	dom := uiPollDOM(t, browser, url, 60*time.Second, func(dom string) string {
		cards := uiCards(dom)
		for _, id := range want {
			card, ok := cards[id]
			switch {
			case !ok:
				return "no card for " + id
			case card["data-role"] != "leader" && card["data-role"] != "follower":
				return fmt.Sprintf("%s has role %q", id, card["data-role"])
			case card["data-health"] != "ok":
				return fmt.Sprintf("%s has health %q", id, card["data-health"])
			case card["data-stats"] != "ok":
				return fmt.Sprintf("no /v1/stats from %s in the browser (CORS header missing, or /v1/stats absent?)", id)
			}
		}
		if uiNumber(dom, "ops-window") <= 0 {
			return "no requests counted in the window"
		}
		return ""
	})

	if got := browsertest.Elements(dom, "data-serving"); len(got) != 1 || got[0]["data-serving"] != "ok" {
		t.Errorf("body data-serving = %v, want ok", got)
	}
	if got := uiByID(dom, "leader")["data-value"]; got != leader.id {
		t.Errorf("header leader %q, want %s", got, leader.id)
	}
	leaders := 0
	for _, card := range uiCards(dom) {
		if card["data-role"] == "leader" {
			leaders++
			if card["data-node"] != leader.id {
				t.Errorf("card %s is marked leader, want %s", card["data-node"], leader.id)
			}
		}
	}
	if leaders != 1 {
		t.Errorf("%d cards marked leader, want 1", leaders)
	}
	t.Logf("dashboard: ops in window %v, p99 %v ms, applied index on %s %s", uiNumber(dom, "ops-window"),
		uiNumber(dom, "p99-now"), serving.id, uiByID(dom, "commit-index")["data-value"])

	dir := uiOutputDir(t)
	shot := filepath.Join(dir, "ui-3-nodes.png")
	browsertest.Load(t, browser, url, 4*time.Second, shot)
	if fi, err := os.Stat(shot); err != nil || fi.Size() < 10_000 {
		t.Fatalf("screenshot %s: %v %v", shot, fi, err)
	}
	t.Logf("screenshot of the dashboard on %s: %s", serving.id, shot)

	// A follower other than the serving node dies: the map says so, the page goes on.
	var victim *proc
	for _, p := range c.procs {
		if p != serving && p != leader {
			victim = p
			break
		}
	}
	c.kill(victim)
	uiPollDOM(t, browser, url, 30*time.Second, func(dom string) string {
		card := uiCards(dom)[victim.id]
		if card["data-health"] != "down" || card["data-stats"] != "down" {
			return fmt.Sprintf("killed %s shows health %q stats %q", victim.id, card["data-health"], card["data-stats"])
		}
		if uiCards(dom)[serving.id]["data-health"] != "ok" {
			return "serving node not ok"
		}
		return ""
	})
	shot = filepath.Join(dir, "ui-node-down.png")
	browsertest.Load(t, browser, url, 4*time.Second, shot)
	t.Logf("screenshot with %s killed: %s", victim.id, shot)
}

// uiMustServe fails early, with the reason, when the node does not serve the dashboard.
func uiMustServe(t *testing.T, url string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s (is node/ui's Handler mounted at /ui/ in node/http.go?)", url, resp.Status)
	}
}

// uiLoad sends 200 requests over about 3 s, across the levels, so every chart has something.
func uiLoad(t *testing.T, cl *client.Client) {
	t.Helper()
	ctx, cancel := ctxTimeout(30 * time.Second)
	defer cancel()
	failed := 0
	var last error
	for i := 0; i < 200; i++ {
		key := fmt.Sprintf("ui/%d", i%20)
		var err error
		switch i % 4 {
		case 0:
			_, err = cl.Put(ctx, key, []byte(strconv.Itoa(i)), client.PutOptions{Consistency: "strong"})
		case 1:
			_, err = cl.Put(ctx, key, []byte(strconv.Itoa(i)), client.PutOptions{Consistency: "eventual"})
		case 2:
			_, _, err = cl.Get(ctx, key, client.GetOptions{Consistency: "strong"})
		case 3:
			_, _, err = cl.Get(ctx, key, client.GetOptions{Consistency: "bounded"})
		}
		if err != nil && !client.IsNotFound(err) {
			failed++
			last = err
		}
		time.Sleep(15 * time.Millisecond)
	}
	if failed > 20 {
		t.Fatalf("%d of 200 load requests failed, last: %v", failed, last)
	}
}

// uiPollDOM loads the page until notReady(dom) returns "" (ready) or the deadline passes.
func uiPollDOM(t *testing.T, browser, url string, timeout time.Duration, notReady func(dom string) string) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		dom := browsertest.Load(t, browser, url, 4*time.Second, "")
		why := notReady(dom)
		if why == "" {
			return dom
		}
		if time.Now().After(deadline) {
			t.Fatalf("dashboard at %s not as expected within %v: %s\nDOM:\n%s", url, timeout, why, uiExcerpt(dom))
		}
		t.Logf("dashboard not there yet: %s", why)
		time.Sleep(500 * time.Millisecond)
	}
}

func uiExcerpt(dom string) string {
	if i := strings.Index(dom, `<main`); i >= 0 {
		dom = dom[i:]
	}
	return dom[:min(len(dom), 4000)]
}

// uiChromium finds Debian's chromium, or skips.
func uiChromium(t *testing.T) string {
	t.Helper()
	needBinaries(t)
	return browsertest.Find(t)
}

func uiByID(dom, id string) map[string]string {
	for _, e := range browsertest.Elements(dom, "id") {
		if e["id"] == id {
			return e
		}
	}
	return nil
}

func uiNumber(dom, id string) float64 {
	v, _ := strconv.ParseFloat(uiByID(dom, id)["data-value"], 64)
	return v
}

// uiCards returns the cluster map's cards by node id.
func uiCards(dom string) map[string]map[string]string {
	out := map[string]map[string]string{}
	for _, e := range browsertest.Elements(dom, "data-node") {
		out[e["data-node"]] = e
	}
	return out
}

func uiOutputDir(t *testing.T) string {
	t.Helper()
	if dir := os.Getenv("DIALKV_TEST_OUTPUT"); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	return t.TempDir()
}
