package ui

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The Grafana dashboard in deploy/grafana is checked here, next to the other dashboard, because
// it has no Go package of its own: it must be well-formed, every panel must query Prometheus
// through the ${DS_PROMETHEUS} variable, and every metric it names must be one kvd exports.

const dashboardFile = "../../deploy/grafana/dialkv.json"

// exportedMetrics are the series kvd serves on /metrics that the dashboard may use (histograms
// by their _bucket series). Keep in step with node/metrics.go.
var exportedMetrics = []string{
	"dialkv_requests_total", "dialkv_request_duration_seconds_bucket", "dialkv_forwarded_requests_total",
	"dialkv_raft_state", "dialkv_raft_term", "dialkv_raft_commit_index", "dialkv_raft_applied_index",
	"dialkv_raft_leader_changes_total", "dialkv_raft_apply_duration_seconds_bucket", "dialkv_raft_snapshots_total",
	"dialkv_read_index_rounds_total", "dialkv_read_index_failures_total", "dialkv_gossip_members",
	"dialkv_gossip_broadcast_queue_depth", "dialkv_gossip_anti_entropy_rounds_total",
	"dialkv_gossip_entries_repaired_total", "dialkv_tentative_entries", "dialkv_tentative_oldest_age_seconds",
	"dialkv_eventual_commit_lag_seconds_bucket", "dialkv_read_staleness_seconds_bucket", "dialkv_tombstones_pending",
	"dialkv_purge_blocked", "dialkv_purge_blocked_by",
}

type grafanaDashboard struct {
	Title         string         `json:"title"`
	UID           string         `json:"uid"`
	SchemaVersion int            `json:"schemaVersion"`
	Panels        []grafanaPanel `json:"panels"`
	Templating    struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type grafanaPanel struct {
	ID         int                `json:"id"`
	Type       string             `json:"type"`
	Title      string             `json:"title"`
	Datasource *grafanaDatasource `json:"datasource"`
	GridPos    struct{ H, W, X, Y int }
	Targets    []struct {
		Datasource *grafanaDatasource `json:"datasource"`
		RefID      string             `json:"refId"`
		Expr       string             `json:"expr"`
	} `json:"targets"`
}

type grafanaDatasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

func loadDashboard(t *testing.T) grafanaDashboard {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d grafanaDashboard
	dec := json.NewDecoder(strings.NewReader(string(b)))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return d
}

func TestGrafanaDashboardShape(t *testing.T) {
	d := loadDashboard(t)
	if d.Title == "" || d.UID == "" || d.SchemaVersion < 36 {
		t.Errorf("title %q uid %q schemaVersion %d: want a title, a uid and schemaVersion >= 36", d.Title, d.UID, d.SchemaVersion)
	}
	hasDS := false
	for _, v := range d.Templating.List {
		if v.Name == "DS_PROMETHEUS" && v.Type == "datasource" && v.Query == "prometheus" {
			hasDS = true
		}
	}
	if !hasDS {
		t.Error("no datasource variable DS_PROMETHEUS of type prometheus")
	}
	ids := map[int]bool{}
	used := map[string]bool{}
	metricRE := regexp.MustCompile(`\bdialkv_[a-z_]+`)
	for _, p := range d.Panels {
		name := fmt.Sprintf("panel %d %q", p.ID, p.Title)
		if ids[p.ID] || p.ID == 0 {
			t.Errorf("%s: id missing or used twice", name)
		}
		ids[p.ID] = true
		if p.GridPos.W <= 0 || p.GridPos.H <= 0 || p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("%s: gridPos %+v outside the 24-column grid", name, p.GridPos)
		}
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != "${DS_PROMETHEUS}" || p.Datasource.Type != "prometheus" {
			t.Errorf("%s: datasource %+v, want prometheus ${DS_PROMETHEUS}", name, p.Datasource)
		}
		if len(p.Targets) == 0 {
			t.Errorf("%s: no targets", name)
		}
		for _, tg := range p.Targets {
			if tg.Expr == "" || tg.RefID == "" || tg.Datasource == nil || tg.Datasource.UID != "${DS_PROMETHEUS}" {
				t.Errorf("%s: target %q (ref %q) lacks an expression, a refId or the datasource", name, tg.Expr, tg.RefID)
			}
			if strings.Count(tg.Expr, "(") != strings.Count(tg.Expr, ")") || strings.Count(tg.Expr, "{") != strings.Count(tg.Expr, "}") {
				t.Errorf("%s: unbalanced brackets in %q", name, tg.Expr)
			}
			for _, m := range metricRE.FindAllString(tg.Expr, -1) {
				if !slices.Contains(exportedMetrics, m) {
					t.Errorf("%s: %s is not a metric kvd exports", name, m)
				}
				used[m] = true
			}
		}
	}
	for _, m := range exportedMetrics {
		if !used[m] {
			t.Errorf("no panel shows %s", m)
		}
	}
}

// With Prometheus' promtool installed (Debian: prometheus), every expression must parse.
func TestGrafanaDashboardPromQL(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("no promtool in PATH: PromQL syntax not checked (apt-get install prometheus)")
	}
	d := loadDashboard(t)
	vars := strings.NewReplacer("$__rate_interval", "1m", "$__interval", "15s", "$job", ".*", "$instance", ".*")
	var rules strings.Builder
	rules.WriteString("groups:\n- name: dashboard\n  rules:\n")
	n := 0
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			n++
			expr, _ := json.Marshal(vars.Replace(tg.Expr)) // a JSON string is a valid YAML scalar
			fmt.Fprintf(&rules, "  - record: dashboard:panel%d:%s\n    expr: %s\n", p.ID, strings.ToLower(tg.RefID), expr)
		}
	}
	file := filepath.Join(t.TempDir(), "rules.yml")
	if err := os.WriteFile(file, []byte(rules.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(promtool, "check", "rules", file).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules on the dashboard's %d expressions: %v\n%s", n, err, out)
	}
}

// TestGrafanaBacklogIsNotSummed: every node holds its own copy of each eventual write gossip
// brought it, so summing dialkv_tentative_entries over nodes counts an uncommitted write about
// once per node (a 3-node cluster with 100 uncommitted writes showed 300). A panel may show each
// node's backlog, or the largest, never the sum.
func TestGrafanaBacklogIsNotSummed(t *testing.T) {
	summed := regexp.MustCompile(`\b(sum|count)\b[^()]*\(\s*dialkv_tentative_entries\b`)
	found := false
	for _, p := range loadDashboard(t).Panels {
		for _, tg := range p.Targets {
			if !strings.Contains(tg.Expr, "dialkv_tentative_entries") {
				continue
			}
			found = true
			if summed.MatchString(tg.Expr) {
				t.Errorf("panel %q adds the nodes' backlogs, counting each write once per node that holds it: %s", p.Title, tg.Expr)
			}
		}
	}
	if !found {
		t.Fatal("no panel shows dialkv_tentative_entries: the check saw nothing")
	}
}
