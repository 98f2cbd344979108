package node

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/dialkv/dialkv/client"
)

// checkStatusShape checks GET /v1/status on n as DESIGN.md (Interfaces) states it: leader is a
// node id (a member's, or "" when none is known, never an address) and every member of nodes has
// an id, an http address, a role and a health.
func checkStatusShape(t *testing.T, what string, n *Node, members []string, wantLeader bool) {
	t.Helper()
	r := do(t, "GET", n, "/v1/status", "")
	if r.status != 200 {
		t.Fatalf("%s: status %d %s", what, r.status, r.body)
	}
	var st struct {
		Leader *string                      `json:"leader"`
		Nodes  []map[string]json.RawMessage `json:"nodes"`
	}
	if err := json.Unmarshal([]byte(r.body), &st); err != nil {
		t.Fatalf("%s: %v in %s", what, err, r.body)
	}
	switch {
	case st.Leader == nil:
		t.Errorf("%s: no leader field in %s", what, r.body)
	case wantLeader && !slices.Contains(members, *st.Leader):
		t.Errorf("%s: leader %q, want one of the node ids %v", what, *st.Leader, members)
	case !wantLeader && *st.Leader != "":
		t.Errorf("%s: leader %q, want none known", what, *st.Leader)
	}
	var ids []string
	for _, m := range st.Nodes {
		for _, field := range []string{"id", "http", "role", "health"} {
			var v string
			if err := json.Unmarshal(m[field], &v); err != nil || v == "" {
				t.Errorf("%s: a member without %s: %s", what, field, r.body)
			}
		}
		var id string
		json.Unmarshal(m["id"], &id)
		ids = append(ids, id)
	}
	if !slices.Equal(ids, members) {
		t.Errorf("%s: nodes %v, want %v", what, ids, members)
	}
}

// leaveOnly stops every node of the cluster but n, and waits until n knows no leader.
func (tc *testCluster) leaveOnly(n *Node) {
	tc.t.Helper()
	for i, m := range tc.nodes {
		if m != n {
			tc.stopNode(i)
		}
	}
	waitUntil(tc.t, n.cfg.ID+" to forget the leader", 20*time.Second, func() bool {
		id, _ := n.raft.Leader()
		return id == ""
	})
}

// The status shape holds with a leader and without one: the members a node cannot reach are
// listed with their address, role unknown and health down.
func TestStatusShapeWithAndWithoutLeader(t *testing.T) {
	tc := startCluster(t, 3, kvdRaftTimings)
	members := []string{"n1", "n2", "n3"}
	for _, n := range tc.nodes {
		// Until a member's join has registered its HTTP address, status lists it with none
		// ("address not yet registered"): the shape is promised once the cluster has formed.
		waitUntil(t, n.cfg.ID+" to know every member's address", 20*time.Second, func() bool {
			r := do(t, "GET", n, "/v1/status", "")
			var st client.StatusResponse
			if r.status != 200 || json.Unmarshal([]byte(r.body), &st) != nil || len(st.Nodes) != len(members) {
				return false
			}
			for _, m := range st.Nodes {
				if m.HTTP == "" {
					return false
				}
			}
			return true
		})
		checkStatusShape(t, n.cfg.ID+" with a leader", n, members, true)
	}
	_, follower := tc.leaderAndFollower()
	tc.leaveOnly(follower)
	checkStatusShape(t, follower.cfg.ID+" alone", follower, members, false)
}

// metricName matches the metric names the docs and the dashboard use.
var metricName = regexp.MustCompile(`\bdialkv_[a-z0-9_]*[a-z0-9]`)

// notMetric are names of that shape in the docs that are not metrics.
var notMetric = map[string]bool{
	"dialkv_dialkv": true, // the network Compose makes for project dialkv (docs/deploy.md)
}

// GET /metrics is valid Prometheus text, and every dialkv_ metric the docs, the README and the
// Grafana dashboard name is one the node registers, with the labels the dashboard selects and
// groups by.
func TestMetricsParseAndNameWhatDocsUse(t *testing.T) {
	tc := startCluster(t, 1)
	n := tc.nodes[0]
	for _, level := range []string{"strong", "eventual"} {
		if r := do(t, "PUT", n, "/v1/kv/m?consistency="+level, "v"); r.status != 200 {
			t.Fatalf("put: %d %s", r.status, r.body)
		}
	}
	for _, level := range []string{"strong", "bounded", "session", "eventual"} {
		if r := do(t, "GET", n, "/v1/kv/m?consistency="+level, ""); r.status != 200 {
			t.Fatalf("get: %d %s", r.status, r.body)
		}
	}
	r := do(t, "GET", n, "/metrics", "")
	if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /metrics: %d %q", r.status, r.header.Get("Content-Type"))
	}
	parser := expfmt.NewTextParser(model.LegacyValidation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(r.body))
	if err != nil {
		t.Fatalf("GET /metrics is not valid Prometheus text: %v", err)
	}
	if _, ok := families["dialkv_requests_total"]; !ok {
		t.Fatalf("dialkv_requests_total missing after requests:\n%s", grepLines(r.body, "dialkv_req"))
	}

	// Every registered metric, with its labels: a vector with no child yet is not in the text.
	labels := map[string][]string{}
	descs := make(chan *prometheus.Desc, 256)
	go func() { n.metrics.reg.Describe(descs); close(descs) }()
	desc := regexp.MustCompile(`^Desc\{fqName: "([^"]+)", .*variableLabels: \{([^}]*)\}\}$`)
	for d := range descs {
		m := desc.FindStringSubmatch(d.String())
		if m == nil {
			t.Fatalf("cannot read %s", d)
		}
		labels[m[1]] = strings.FieldsFunc(m[2], func(r rune) bool { return r == ',' })
	}
	for name, f := range families {
		if _, ok := labels[name]; !ok && strings.HasPrefix(name, "dialkv_") {
			t.Errorf("%s (%s) is exported but not described", name, f.GetType())
		}
	}
	registered := func(used string) (string, bool) {
		for _, suffix := range []string{"", "_bucket", "_sum", "_count"} {
			base, ok := strings.CutSuffix(used, suffix)
			if _, known := labels[base]; ok && known {
				return base, true
			}
		}
		return "", false
	}

	var docs []string
	for _, pattern := range []string{"../docs/*.md", "../README.md", "../deploy/grafana/*"} {
		files, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, files...)
	}
	// In the dashboard's queries: name{label=...} selectors and "by (labels)" groupings.
	selector := regexp.MustCompile(`(dialkv_[a-z0-9_]*[a-z0-9])\{([^}]*)\}`)
	selected := regexp.MustCompile(`([a-z_]+)\s*(?:=~|!~|!=|=)`)
	grouping := regexp.MustCompile(`by \(([a-z_, ]+)\) \((?:rate|increase)?\(?(dialkv_[a-z0-9_]*[a-z0-9])`)
	var named int
	for _, file := range docs {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		text := strings.ReplaceAll(string(b), `\"`, `"`)
		for _, at := range metricName.FindAllStringIndex(text, -1) {
			used := text[at[0]:at[1]]
			if notMetric[used] || at[1] < len(text) && text[at[1]] == '-' {
				continue // a Docker name (dialkv_n3-data), not a metric
			}
			named++
			if _, ok := registered(used); !ok {
				t.Errorf("%s names %s, which the node does not export", file, used)
			}
		}
		check := func(used, label string) {
			base, ok := registered(used)
			if !ok || label == "le" && strings.HasSuffix(used, "_bucket") || label == "job" || label == "instance" {
				return // reported above, or a label Prometheus adds
			}
			if !slices.Contains(labels[base], label) {
				t.Errorf("%s uses label %s of %s, which has %v", file, label, used, labels[base])
			}
		}
		for _, m := range selector.FindAllStringSubmatch(text, -1) {
			for _, l := range selected.FindAllStringSubmatch(m[2], -1) {
				check(m[1], l[1])
			}
		}
		for _, m := range grouping.FindAllStringSubmatch(text, -1) {
			for _, l := range strings.Split(m[1], ",") {
				check(m[2], strings.TrimSpace(l))
			}
		}
	}
	if named < 20 {
		t.Fatalf("found only %d metric names in %v: the scan saw nothing", named, docs)
	}
}
