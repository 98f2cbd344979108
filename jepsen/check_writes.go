package jepsen

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/dialkv/dialkv/client"
	"github.com/dialkv/dialkv/consistency"
)

// FinalValue is a key's value as a final read saw it.
type FinalValue struct {
	Value   string `json:"value"`
	Version string `json:"version"`
}

// CheckDurability checks that no acknowledged write was lost (DESIGN.md, guarantee 3): after
// the cluster settled, each key's committed value (final, from a strong read; a key missing
// from it is absent) must be at least as new as every acknowledged write of that key, so each
// one is either the value there or superseded by a newer version. It also flags values nobody
// wrote (invented) and values whose only writes were certainly rejected.
//
// name is the checker's name in the report (durability, or set for the set workload, where
// every key is written once and "lost" means simply "missing").
func CheckDurability(name, workload string, ops []*Op, final map[string]FinalValue) CheckResult {
	type levelStats struct{ Acked, Lost, Failed, Unknown, UnknownPresent int }
	stats := map[string]*levelStats{}
	level := func(l string) *levelStats {
		if stats[l] == nil {
			stats[l] = &levelStats{}
		}
		return stats[l]
	}
	writers := map[string][]*Op{} // value -> writes of it
	byKey := map[string][]*Op{}
	for _, op := range ops {
		if !op.IsWrite() {
			continue
		}
		writers[op.Key+"\x00"+op.Value] = append(writers[op.Key+"\x00"+op.Value], op)
		byKey[op.Key] = append(byKey[op.Key], op)
	}
	var an anomalies
	keys := make([]string, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fv, present := final[k]
		for _, w := range byKey[k] {
			ls := level(w.Level)
			switch w.Type {
			case TypeFail:
				ls.Failed++
				continue
			case TypeInfo:
				ls.Unknown++
				if present && fv.Value == w.Value {
					ls.UnknownPresent++
				}
				continue
			}
			ls.Acked++
			switch {
			case !present:
				ls.Lost++
				an.add(Anomaly{Kind: "lost-write", Level: w.Level, Key: k,
					Description: fmt.Sprintf("acknowledged %s write of %s is gone: the key is absent after the cluster settled", w.Level, k),
					Ops:         []string{describeOp(w)}})
			case w.Version != "" && fv.Version != "" && compareVersions(w.Version, fv.Version) > 0:
				ls.Lost++
				an.add(Anomaly{Kind: "lost-write", Level: w.Level, Key: k,
					Description: fmt.Sprintf("acknowledged %s write (version %s) lost: %s ended with %q at the older version %s", w.Level, w.Version, k, fv.Value, fv.Version),
					Ops:         []string{describeOp(w)}})
			case w.Version != "" && w.Version == fv.Version && w.Value != fv.Value:
				an.add(Anomaly{Kind: "wrong-value", Level: w.Level, Key: k,
					Description: fmt.Sprintf("%s holds %q at version %s, which was acknowledged for %q", k, fv.Value, fv.Version, w.Value),
					Ops:         []string{describeOp(w)}})
			}
		}
		if !present {
			continue
		}
		ws := writers[k+"\x00"+fv.Value]
		switch {
		case len(ws) == 0:
			an.add(Anomaly{Kind: "invented", Key: k, Description: fmt.Sprintf("%s holds %q, which no client wrote", k, fv.Value)})
		case allFailed(ws):
			var lines []string
			for _, w := range ws {
				lines = append(lines, describeOp(w))
			}
			an.add(Anomaly{Kind: "failed-write-visible", Level: ws[0].Level, Key: k,
				Description: fmt.Sprintf("%s holds %q, whose only write was rejected (a failure must mean not applied)", k, fv.Value), Ops: lines})
		}
	}
	// Keys in the workload's namespace that no operation touched.
	prefix := workload + "/"
	for k, fv := range final {
		if strings.HasPrefix(k, prefix) && byKey[k] == nil {
			an.add(Anomaly{Kind: "invented", Key: k, Description: fmt.Sprintf("%s exists with %q, but no client wrote that key", k, fv.Value)})
		}
	}
	cr := CheckResult{Checker: name, Workload: workload, Valid: an.count == 0, Anomalies: an.list}
	st := map[string]any{}
	var parts []string
	levels := make([]string, 0, len(stats))
	for l := range stats {
		levels = append(levels, l)
	}
	sort.Strings(levels)
	totalAcked, totalLost := 0, 0
	for _, l := range levels {
		s := stats[l]
		st[l] = map[string]int{"acked": s.Acked, "lost": s.Lost, "failed": s.Failed, "unknown": s.Unknown, "unknown_present": s.UnknownPresent}
		totalAcked += s.Acked
		totalLost += s.Lost
		parts = append(parts, fmt.Sprintf("%s: %d acknowledged, %d lost, %d unknown (%d visible)", l, s.Acked, s.Lost, s.Unknown, s.UnknownPresent))
	}
	cr.Stats = an.stats(st)
	cr.Stats["keys"] = len(keys)
	verdict := "no acknowledged write lost"
	if !cr.Valid {
		verdict = fmt.Sprintf("%d anomalies (%d of %d acknowledged writes lost)", an.count, totalLost, totalAcked)
	}
	cr.Summary = verdict + "; " + strings.Join(parts, "; ")
	return cr
}

func allFailed(ws []*Op) bool {
	for _, w := range ws {
		if w.Type != TypeFail {
			return false
		}
	}
	return true
}

// CheckSessions checks read-your-writes and monotonic reads (DESIGN.md, guarantee 4): within
// one session and key, a session read must return a version at least as new as the newest
// the session has written (acknowledged) or read before it. It also checks that the session's
// own writes are ordered as it made them: an acknowledged write must carry a newer version than
// the session's earlier writes and reads of the key, or last-writer-wins would keep the older
// value and the session would later read its own earlier write back (monotonic writes,
// writes-follow-reads; clocks that disagree are what breaks it).
func CheckSessions(workload string, ops []*Op) CheckResult {
	type floor struct {
		version string
		op      *Op
		own     bool // from the session's own write
	}
	sorted := append([]*Op(nil), ops...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Invoke < sorted[j].Invoke })
	floors := map[string]floor{} // session/key
	var an anomalies
	reads, writes := 0, 0
	for _, op := range sorted {
		if op.Type != TypeOK || op.Session == 0 {
			continue
		}
		k := fmt.Sprintf("%d\x00%s", op.Session, op.Key)
		f := floors[k]
		if op.IsWrite() {
			writes++
			if op.Version == "" {
				continue
			}
			if f.op != nil && compareVersions(op.Version, f.version) < 0 {
				kind, what := "writes-follow-reads", "a version it had already read"
				if f.own {
					kind, what = "monotonic-writes", "its own earlier acknowledged write"
				}
				an.add(Anomaly{Kind: kind, Level: op.Level, Key: op.Key, Node: op.ServedBy,
					Description: fmt.Sprintf("session %d wrote %s with version %s, older than %s (%s): last-writer-wins keeps the earlier value", op.Session, op.Key, op.Version, what, f.version),
					Ops:         []string{"earlier: " + describeOp(f.op), "write: " + describeOp(op)}})
				continue
			}
			floors[k] = floor{op.Version, op, true}
			continue
		}
		if op.Level != client.ConsistencySession {
			continue
		}
		reads++
		if f.op != nil && (op.Absent || compareVersions(op.Version, f.version) < 0) {
			kind, what := "monotonic-reads", "an older version than it had already read"
			if f.own {
				kind, what = "read-your-writes", "a version older than its own acknowledged write"
			}
			got := op.Version
			if op.Absent {
				got = "nothing (absent)"
			}
			an.add(Anomaly{Kind: kind, Level: client.ConsistencySession, Key: op.Key, Node: op.ServedBy,
				Description: fmt.Sprintf("session %d read %s of %s: %s, after %s", op.Session, got, op.Key, what, f.version),
				Ops:         []string{"earlier: " + describeOp(f.op), "read: " + describeOp(op)}})
			continue
		}
		if op.Version != "" {
			floors[k] = floor{op.Version, op, false}
		}
	}
	cr := CheckResult{Checker: CheckerSession, Workload: workload, Valid: an.count == 0, Anomalies: an.list,
		Stats: an.stats(map[string]any{"session_reads": reads, "session_writes": writes})}
	if cr.Valid {
		cr.Summary = fmt.Sprintf("read-your-writes, monotonic reads and session-ordered writes held: %d session reads after %d acknowledged writes", reads, writes)
	} else {
		cr.Summary = fmt.Sprintf("%d session violations in %d session reads", an.count, reads)
	}
	return cr
}

// StalenessConfig is what bounded reads promise.
type StalenessConfig struct {
	// Tolerance is added to a bounded read's own bound before a read counts as too stale
	// (scheduling on the harness and on a busy node).
	Tolerance time.Duration
}

// CheckStaleness measures how stale bounded and eventual reads were (DESIGN.md, guarantee 5).
// The writer's values are increasing numbers per key. A read invoked at t is stale if a newer
// write had been acknowledged before t; its staleness is t minus the earliest such
// acknowledgement (ms), and the number of such writes (versions). Newer is by version when the
// read and the write both carry one, and by number otherwise: a write whose outcome was unknown
// may take effect after later ones (a forwarded write committed once a partition heals), and
// then its smaller number is the key's newest value, not a stale one. A bounded read may be at
// most its bound (plus Tolerance) stale.
func CheckStaleness(workload string, ops []*Op, cfg StalenessConfig) CheckResult {
	type ack struct {
		seq     int
		version consistency.Version // zero when the history has none
		at      int64
	}
	acks := map[string][]ack{} // key -> acknowledged writes by completion time
	for _, op := range ops {
		if op.F == FWrite && op.Type == TypeOK {
			var n int
			if _, err := fmt.Sscan(op.Value, &n); err == nil {
				v, _ := consistency.ParseVersion(op.Version)
				acks[op.Key] = append(acks[op.Key], ack{n, v, op.Complete})
			}
		}
	}
	for k := range acks {
		sort.Slice(acks[k], func(i, j int) bool { return acks[k][i].at < acks[k][j].at })
	}
	type dist struct{ ms, versions []float64 }
	perLevel := map[string]*dist{}
	var an anomalies
	for _, op := range ops {
		if op.F != FRead || op.Type != TypeOK {
			continue
		}
		seq := -1
		if !op.Absent {
			if _, err := fmt.Sscan(op.Value, &seq); err != nil {
				continue
			}
		}
		read, _ := consistency.ParseVersion(op.Version)
		newer := func(a ack) bool {
			if !a.version.IsZero() && (!read.IsZero() || op.Absent) {
				return a.version.Newer(read)
			}
			return a.seq > seq
		}
		var staleMS float64
		versions := 0
		first := int64(-1)
		for _, a := range acks[op.Key] {
			if a.at >= op.Invoke {
				break
			}
			if newer(a) {
				versions++
				if first < 0 || a.at < first {
					first = a.at
				}
			}
		}
		if first >= 0 {
			staleMS = durationMS(time.Duration(op.Invoke - first))
		}
		d := perLevel[op.Level]
		if d == nil {
			d = &dist{}
			perLevel[op.Level] = d
		}
		d.ms = append(d.ms, staleMS)
		d.versions = append(d.versions, float64(versions))
		if op.Level == client.ConsistencyBounded && op.Bound > 0 && staleMS > durationMS(op.Bound+cfg.Tolerance) {
			an.add(Anomaly{Kind: "staleness-bound", Level: client.ConsistencyBounded, Key: op.Key, Node: op.ServedBy,
				Description: fmt.Sprintf("bounded read (max_staleness %v) was %.0fms and %d versions stale, over the bound plus %v tolerance", op.Bound, staleMS, versions, cfg.Tolerance),
				Ops:         []string{describeOp(op)}})
		}
	}
	st := map[string]any{"tolerance_ms": durationMS(cfg.Tolerance)}
	var parts []string
	levels := make([]string, 0, len(perLevel))
	for l := range perLevel {
		levels = append(levels, l)
	}
	sort.Strings(levels)
	for _, l := range levels {
		d := perLevel[l]
		stale := 0
		for _, v := range d.versions {
			if v > 0 {
				stale++
			}
		}
		st[l] = map[string]any{"reads": len(d.ms), "stale_reads": stale,
			"ms_p50": percentile(d.ms, 50), "ms_p99": percentile(d.ms, 99), "ms_max": percentile(d.ms, 100),
			"versions_p50": percentile(d.versions, 50), "versions_p99": percentile(d.versions, 99), "versions_max": percentile(d.versions, 100)}
		parts = append(parts, fmt.Sprintf("%s: %d reads, %d stale, p99 %.0fms / %.0f versions, max %.0fms / %.0f versions",
			l, len(d.ms), stale, percentile(d.ms, 99), percentile(d.versions, 99), percentile(d.ms, 100), percentile(d.versions, 100)))
	}
	cr := CheckResult{Checker: CheckerStaleness, Workload: workload, Valid: an.count == 0, Anomalies: an.list, Stats: an.stats(st)}
	verdict := fmt.Sprintf("bounded reads within their bound (+%v tolerance)", cfg.Tolerance)
	if !cr.Valid {
		verdict = fmt.Sprintf("%d bounded reads over their bound (+%v tolerance)", an.count, cfg.Tolerance)
	}
	cr.Summary = verdict + "; " + strings.Join(parts, "; ")
	return cr
}

// percentile is the p-th percentile (nearest rank) of xs; 0 for none.
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	rank := int(p/100*float64(len(s))+0.5) - 1
	return s[min(max(rank, 0), len(s)-1)]
}
