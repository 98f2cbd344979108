package jepsen

import (
	"fmt"
	"slices"
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
// wrote (invented), values whose only writes were answered as not applied that a read returned
// or the key holds at the end (failedWritesSeen), and acknowledged writes without a version
// (unversionedAck), which it could not check.
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
			if w.Version == "" {
				an.add(unversionedAck(w))
			}
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
		if len(writers[k+"\x00"+fv.Value]) == 0 {
			an.add(Anomaly{Kind: "invented", Key: k, Description: fmt.Sprintf("%s holds %q, which no client wrote", k, fv.Value)})
		}
	}
	failedWritesSeen(&an, ops, final)
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
	if totalAcked == 0 {
		nothingChecked(&cr, "acknowledged write")
	}
	return cr
}

// unversionedAck flags an acknowledged write or delete whose answer carried no version
// (DESIGN.md: every response reports the version of the value): the checks order writes by
// version, so without one they cannot tell whether it was lost or superseded, and would pass it
// whatever became of it.
func unversionedAck(op *Op) Anomaly {
	return Anomaly{Kind: "unversioned-ack", Level: op.Level, Key: op.Key, Node: op.ServedBy,
		Description: fmt.Sprintf("acknowledged %s %s of %s carried no version: whether it was lost cannot be checked", op.Level, op.F, op.Key),
		Ops:         []string{describeOp(op)}}
}

// failedWritesSeen flags the writes the server said were not applied (failed: no_leader,
// unavailable, timeout, a 4xx, or never sent; see definitelyNotApplied) whose value showed up
// anyway: an answered read at any level returned it, or a successful compare-and-set expected
// it (failed-write-read), or the settled state holds it (failed-write-visible).
// A value counts only when every write of it on its key failed: the workloads write each value
// once per key (unique values, the set workload's key, the staleness counter), so a value seen
// came from one of its writes. An error that leaves the outcome open (outcome_unknown, no answer,
// a 5xx other than timeout) never counts as failed here.
func failedWritesSeen(an *anomalies, ops []*Op, final map[string]FinalValue) {
	writers := map[string][]*Op{} // key, value -> writes of it
	for _, op := range ops {
		if op.IsWrite() {
			writers[op.Key+"\x00"+op.Value] = append(writers[op.Key+"\x00"+op.Value], op)
		}
	}
	// failed returns the writes of value on key when every one of them failed, else nil.
	failed := func(key, value string) []*Op {
		ws := writers[key+"\x00"+value]
		for _, w := range ws {
			if w.Type != TypeFail {
				return nil
			}
		}
		return ws
	}
	describe := func(ws []*Op) []string {
		var lines []string
		for _, w := range ws {
			lines = append(lines, "rejected: "+describeOp(w))
		}
		return lines
	}
	for _, op := range ops {
		var value string
		switch {
		case op.F == FRead && op.Type == TypeOK && !op.Absent:
			value = op.Value
		case op.F == FCAS && op.Type == TypeOK && !op.FromAbsent:
			value = op.From
		default:
			continue
		}
		ws := failed(op.Key, value)
		if ws == nil {
			continue
		}
		an.add(Anomaly{Kind: "failed-write-read", Level: op.Level, Key: op.Key, Node: op.ServedBy,
			Description: fmt.Sprintf("a %s %s of %s found %q, written only by writes answered as not applied (%s): a failure must mean the write never takes effect", op.Level, op.F, op.Key, value, rejections(ws)),
			Ops:         append(describe(ws), op.F+": "+describeOp(op))})
	}
	keys := make([]string, 0, len(final))
	for k := range final {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fv := final[k]
		if ws := failed(k, fv.Value); ws != nil {
			an.add(Anomaly{Kind: "failed-write-visible", Level: ws[0].Level, Key: k,
				Description: fmt.Sprintf("%s holds %q at version %s after the cluster settled, written only by writes answered as not applied (%s): a failure must mean the write never takes effect", k, fv.Value, fv.Version, rejections(ws)),
				Ops:         describe(ws)})
		}
	}
}

// rejections says how writes were refused, for anomaly descriptions: their error codes, or
// "never sent" for a request the client did not send.
func rejections(ws []*Op) string {
	var codes []string
	for _, w := range ws {
		c := w.Code
		if c == "" {
			c = "never sent"
		}
		if !slices.Contains(codes, c) {
			codes = append(codes, c)
		}
	}
	return strings.Join(codes, ", ")
}

// CheckSessions checks read-your-writes and monotonic reads (DESIGN.md, guarantee 4): within
// one session and key, a session read must return a version at least as new as the newest
// the session has written (acknowledged) or read before it. It also checks that the session's
// own writes are ordered as it made them: an acknowledged write must carry a newer version than
// the session's earlier writes and reads of the key, or last-writer-wins would keep the older
// value and the session would later read its own earlier write back (monotonic writes,
// writes-follow-reads; clocks that disagree are what breaks it).
//
// A session's strong delete must come after what the session wrote or read of the key
// (docs/http-api.md, Sessions): once acknowledged (ok, or 404 "nothing to delete", which also
// says the key was absent), the session's reads of the key find it absent or a value newer than
// the delete and than everything the session had seen of the key before it; one that returns a
// value no newer than that read the deleted value (read-your-deletes). A delete that found
// nothing although the session had just written the key, or at a version older than one the
// session had seen, was judged without that write (delete-missed-write); a create-if-absent
// that succeeded on such a key likewise (create-over-value). A create-if-absent that conflicts
// reports the key's live committed version and is held to the same rules as a read. A delete in
// doubt may or may not have happened: absence is then allowed, and nothing is concluded from
// the key's presence until a strong operation of the session on the key is answered (Raft
// orders it after the delete in doubt, or that delete never happens). Absence is never held
// against a session on a key that another session deletes.
func CheckSessions(workload string, ops []*Op) CheckResult {
	type state struct {
		floor string // the newest version the session wrote, read or deleted of the key
		op    *Op    // the operation floor comes from
		own   bool   // floor is from the session's own write or delete
		// deleted is the session's acknowledged delete, when it has observed no value of the key
		// since: the key may be absent, and a value no newer than floor is the deleted one.
		deleted *Op
		// present is the session's latest write or observation of a value, when nothing the
		// session did since may have removed the key.
		present *Op
		// unsure: a delete of the key by the session is in doubt, and no strong operation of the
		// session on the key has been answered since.
		unsure bool
	}
	sorted := append([]*Op(nil), ops...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Invoke < sorted[j].Invoke })
	deleters := map[string]map[int]bool{} // key -> sessions that delete it (0: none)
	for _, op := range sorted {
		if op.F == FDelete {
			if deleters[op.Key] == nil {
				deleters[op.Key] = map[int]bool{}
			}
			deleters[op.Key][op.Session] = true
		}
	}
	othersDelete := func(op *Op) bool {
		d := deleters[op.Key]
		return len(d) > 1 || len(d) == 1 && !d[op.Session]
	}
	states := map[string]state{} // session/key
	var an anomalies
	reads, writes, deletes, conflicts := 0, 0, 0, 0
	// observed checks a value (or absence) the session saw of the key, from a session read or a
	// conflicting create-if-absent, against what it had seen before; false when it is a violation.
	observed := func(f state, op *Op, absent bool, what string) bool {
		if f.op == nil {
			return true
		}
		var kind, why string
		switch {
		case absent && f.deleted == nil && !f.unsure && !othersDelete(op):
			kind, why = "monotonic-reads", "nothing (absent), after it had read version "+f.floor
			if f.own {
				kind, why = "read-your-writes", "nothing (absent), after its own acknowledged write at version "+f.floor
			}
		case absent:
			return true
		case f.deleted != nil && compareVersions(op.Version, f.floor) <= 0:
			got := "a value"
			if op.F == FRead {
				got = fmt.Sprintf("%q", op.Value)
			}
			kind, why = "read-your-deletes", fmt.Sprintf("%s at version %s, after its acknowledged delete of the key (%s): no newer than %s, so the deleted value", got, op.Version, deleteOutcome(f.deleted), f.floor)
		case compareVersions(op.Version, f.floor) < 0:
			kind, why = "monotonic-reads", "version "+op.Version+", an older version than "+f.floor+", which it had already read"
			if f.own {
				kind, why = "read-your-writes", "version "+op.Version+", older than its own acknowledged write at version "+f.floor
			}
		default:
			return true
		}
		an.add(Anomaly{Kind: kind, Level: op.Level, Key: op.Key, Node: op.ServedBy,
			Description: fmt.Sprintf("session %d %s %s: %s", op.Session, what, op.Key, why),
			Ops:         []string{"earlier: " + describeOp(f.op), op.F + ": " + describeOp(op)}})
		return false
	}
	for _, op := range sorted {
		if op.Session == 0 {
			continue
		}
		k := fmt.Sprintf("%d\x00%s", op.Session, op.Key)
		f := states[k]
		switch {
		case op.F == FDelete && op.Type == TypeInfo:
			f.unsure, f.present = true, nil
		case op.F == FDelete && (op.Type == TypeOK || op.Type == TypeFail && op.Code == client.CodeNotFound):
			deletes++
			found := op.Type == TypeOK
			switch {
			case !found && f.present != nil && !f.unsure && !othersDelete(op):
				an.add(Anomaly{Kind: "delete-missed-write", Level: op.Level, Key: op.Key, Node: op.ServedBy,
					Description: fmt.Sprintf("session %d deleted %s and the node found nothing to delete, but the key held what the session had written or read (version %s) and nothing since could have removed it: the delete was judged without it, so that value can come back", op.Session, op.Key, f.present.Version),
					Ops:         []string{"earlier: " + describeOp(f.present), "delete: " + describeOp(op)}})
			case op.Version != "" && f.op != nil && compareVersions(op.Version, f.floor) < 0:
				kind, why := "delete-missed-write", fmt.Sprintf("found nothing to delete at version %s, older than %s, which it had already read", op.Version, f.floor)
				switch {
				case found && f.own:
					kind, why = "monotonic-writes", fmt.Sprintf("wrote its tombstone at version %s, older than its own earlier acknowledged write at %s: last-writer-wins keeps the earlier value", op.Version, f.floor)
				case found:
					kind, why = "writes-follow-reads", fmt.Sprintf("wrote its tombstone at version %s, older than %s, which it had already read: last-writer-wins keeps that value", op.Version, f.floor)
				case f.own:
					why = fmt.Sprintf("found nothing to delete at version %s, older than its own acknowledged write at %s: the delete was judged without it, so that write can come back", op.Version, f.floor)
				}
				an.add(Anomaly{Kind: kind, Level: op.Level, Key: op.Key, Node: op.ServedBy,
					Description: fmt.Sprintf("session %d deleted %s and %s", op.Session, op.Key, why),
					Ops:         []string{"earlier: " + describeOp(f.op), "delete: " + describeOp(op)}})
			}
			floor := f.floor
			if op.Version != "" && (f.op == nil || compareVersions(op.Version, floor) > 0) {
				floor = op.Version
			}
			f = state{floor: floor, op: op, own: true, deleted: op, unsure: f.unsure && op.Level != client.ConsistencyStrong}
		case op.F == FCAS && op.FromAbsent && op.Type == TypeFail && op.Code == client.CodeConflict && op.Version != "":
			// The key held a live value at this committed version: an observation of it.
			conflicts++
			if observed(f, op, false, "got a conflict creating") {
				f = state{floor: op.Version, op: op, present: op}
			}
			f.unsure = false // answered by Raft: a delete in doubt is settled
		case op.IsWrite() && op.Type == TypeOK:
			writes++
			if op.F == FCAS && op.FromAbsent && f.present != nil && !f.unsure && !othersDelete(op) {
				an.add(Anomaly{Kind: "create-over-value", Level: op.Level, Key: op.Key, Node: op.ServedBy,
					Description: fmt.Sprintf("session %d created %s if absent, and it was, although the key held what the session had written or read (version %s) and nothing since could have removed it: the condition was judged without that value", op.Session, op.Key, f.present.Version),
					Ops:         []string{"earlier: " + describeOp(f.present), "create: " + describeOp(op)}})
			}
			f.present, f.deleted = op, nil
			f.unsure = f.unsure && op.Level != client.ConsistencyStrong
			if op.Version == "" {
				break
			}
			if f.op != nil && compareVersions(op.Version, f.floor) < 0 {
				kind, what := "writes-follow-reads", "a version it had already read"
				if f.own {
					kind, what = "monotonic-writes", "its own earlier acknowledged write or delete"
				}
				an.add(Anomaly{Kind: kind, Level: op.Level, Key: op.Key, Node: op.ServedBy,
					Description: fmt.Sprintf("session %d wrote %s with version %s, older than %s (%s): last-writer-wins keeps the earlier value", op.Session, op.Key, op.Version, what, f.floor),
					Ops:         []string{"earlier: " + describeOp(f.op), "write: " + describeOp(op)}})
				break
			}
			f.floor, f.op, f.own = op.Version, op, true
		case op.F == FRead && op.Type == TypeOK && op.Level == client.ConsistencySession:
			reads++
			if !observed(f, op, op.Absent, "read") {
				break
			}
			if op.Absent {
				f.present = nil
			} else if op.Version != "" {
				f = state{floor: op.Version, op: op, present: op, unsure: f.unsure}
			}
		}
		states[k] = f
	}
	cr := CheckResult{Checker: CheckerSession, Workload: workload, Valid: an.count == 0, Anomalies: an.list,
		Stats: an.stats(map[string]any{"session_reads": reads, "session_writes": writes, "session_deletes": deletes})}
	if cr.Valid {
		cr.Summary = fmt.Sprintf("read-your-writes (and deletes), monotonic reads and session-ordered writes held: %d session reads after %d acknowledged writes and %d acknowledged deletes", reads, writes, deletes)
	} else {
		cr.Summary = fmt.Sprintf("%d session violations in %d session reads, %d acknowledged writes and %d acknowledged deletes", an.count, reads, writes, deletes)
	}
	if reads+conflicts == 0 {
		nothingChecked(&cr, "answered session read")
	}
	return cr
}

// deleteOutcome is how a delete was acknowledged, for anomaly descriptions.
func deleteOutcome(op *Op) string {
	if op.Type == TypeOK {
		v := op.Version
		if v == "" {
			v = "unknown"
		}
		return "tombstone at version " + v
	}
	return "answered: nothing to delete"
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
	before := an.count
	reportedOverBound(&an, ops)
	reported := an.count - before
	before = an.count
	tentativeReads(&an, ops, client.ConsistencyBounded)
	st := map[string]any{"tolerance_ms": durationMS(cfg.Tolerance), "tentative_reads": an.count - before, "reported_over_bound": reported}
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
		verdict = fmt.Sprintf("%d bounded reads over their bound (+%v tolerance), reporting a staleness over it or none, or showing tentative data", an.count, cfg.Tolerance)
	}
	cr.Summary = verdict + "; " + strings.Join(parts, "; ")
	if d := perLevel[client.ConsistencyBounded]; d == nil || len(d.ms) == 0 {
		nothingChecked(&cr, "answered bounded read")
	}
	return cr
}

// reportedOverBound flags the answered bounded reads whose own answer contradicts the bound
// they asked for (DESIGN.md: every response says what it got; guarantee 5). A node answers a
// bounded read only when the staleness it can promise is within max_staleness, and reports that
// staleness (Dialkv-Staleness, docs/http-api.md "Staleness"), measured on its own clock: one
// over the bound (staleness-over-bound-reported) means it served a read it should have refused,
// whatever the harness measured; one missing or garbled (staleness-unreported) means it did not
// say what it promised. No tolerance applies: the node compares and reports the same number. A
// read that named no bound (op.Bound 0) got the node's default, which the history does not
// record, so only the report's presence is checked.
func reportedOverBound(an *anomalies, ops []*Op) {
	for _, op := range ops {
		if op.F != FRead || op.Level != client.ConsistencyBounded || op.Type != TypeOK {
			continue
		}
		reported, err := time.ParseDuration(op.Staleness)
		switch {
		case op.Staleness == "" || err != nil || reported < 0:
			an.add(Anomaly{Kind: "staleness-unreported", Level: op.Level, Key: op.Key, Node: op.ServedBy,
				Description: fmt.Sprintf("bounded read (max_staleness %v) of %s answered without a staleness it promises (Dialkv-Staleness %q)", op.Bound, op.Key, op.Staleness),
				Ops:         []string{describeOp(op)}})
		case op.Bound > 0 && reported > op.Bound:
			an.add(Anomaly{Kind: "staleness-over-bound-reported", Level: op.Level, Key: op.Key, Node: op.ServedBy,
				Description: fmt.Sprintf("bounded read (max_staleness %v) of %s answered with its own reported staleness %v, over the bound: the node should have refused it (503 unavailable)", op.Bound, op.Key, reported),
				Ops:         []string{describeOp(op)}})
		}
	}
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
