package jepsen

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/dialkv/dialkv/client"
)

// The linearizability checker models each key as a register holding a string; "" is absent
// (the workloads never write an empty value, so absent and a value never collide).

// regInput is an operation as the model sees it.
type regInput struct {
	f          string // read, write, cas
	value      string // written (write, cas)
	from       string // expected by a cas ("" = absent)
	eventual   bool
	fromAbsent bool
}

// regOutput is its result.
type regOutput struct {
	value   string // read
	ok      bool   // cas succeeded
	unknown bool   // outcome unknown: a write or cas that may or may not have taken effect
}

var registerModel = porcupine.Model{
	Init: func() any { return "" },
	Step: func(state, input, output any) (bool, any) {
		st, in, out := state.(string), input.(regInput), output.(regOutput)
		switch in.f {
		case FRead:
			return out.value == st, st
		case FWrite:
			return true, in.value
		case FCAS:
			switch {
			case out.unknown:
				// Taking effect where its condition holds; "never" is the same as taking
				// effect after everything else, which an unbounded return allows.
				if st == in.from {
					return true, in.value
				}
				return true, st
			case out.ok:
				return st == in.from, in.value
			default:
				return st != in.from, st
			}
		}
		return false, st
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(regInput), output.(regOutput)
		show := func(s string) string {
			if s == "" {
				return "absent"
			}
			return s
		}
		switch in.f {
		case FRead:
			return "read -> " + show(out.value)
		case FWrite:
			s := "write " + in.value
			if in.eventual {
				s = "eventual " + s
			}
			if out.unknown {
				s += " ?"
			}
			return s
		default:
			res := "fail"
			switch {
			case out.unknown:
				res = "?"
			case out.ok:
				res = "ok"
			}
			return fmt.Sprintf("cas %s -> %s : %s", show(in.from), in.value, res)
		}
	},
	DescribeState: func(state any) string {
		if s := state.(string); s != "" {
			return s
		}
		return "absent"
	},
	DescribeOperationMetadata: func(info any) string {
		if op, ok := info.(*Op); ok && op != nil {
			return describeOp(op)
		}
		return ""
	},
}

// linearOps turns one key's operations into porcupine operations. Only the strong path is
// modelled: strong reads, strong writes and compare-and-sets, and eventual writes as writes
// that may take effect at any time after they were issued, or never (DESIGN.md, guarantee 1).
//
//   - a failed operation certainly did not happen and is left out; so is a read that did not
//     return (it constrains nothing);
//   - an indeterminate write or cas, and every eventual write that was not certainly rejected,
//     gets an unbounded return time (math.MaxInt64): it may take effect at any later point;
//   - such an unbounded write whose (unique) value some read returned must have taken effect
//     before that read returned, so its return is bounded by the earliest such read. This is
//     exact (values are unique, and a version never comes back once superseded) and keeps the
//     search small;
//   - one that nobody observed is left out when the key has no compare-and-set: with only
//     reads and blind writes, a write no read returned can always be taken as "never", so
//     dropping it changes no verdict.
func linearOps(ops []*Op) []porcupine.Operation {
	hasCAS := false
	observed := map[string]int64{} // value -> earliest return of a read that saw it
	for _, op := range ops {
		if op.Level != client.ConsistencyStrong {
			continue
		}
		if op.F == FCAS {
			hasCAS = true
			if op.Type == TypeOK && !op.FromAbsent {
				noteObserved(observed, op.From, op.Complete)
			}
		}
		if op.F == FRead && op.Type == TypeOK && !op.Absent {
			noteObserved(observed, op.Value, op.Complete)
		}
	}
	var out []porcupine.Operation
	for _, op := range ops {
		in := regInput{f: op.F, value: op.Value, from: op.From, fromAbsent: op.FromAbsent,
			eventual: op.Level == client.ConsistencyEventual}
		var outp regOutput
		ret := op.Complete
		switch {
		case op.F == FRead:
			if op.Level != client.ConsistencyStrong || op.Type != TypeOK {
				continue
			}
			if !op.Absent {
				outp.value = op.Value
			}
		case op.Type == TypeFail && !(op.F == FCAS && op.Code == client.CodeConflict):
			continue // certainly not applied
		case op.Level == client.ConsistencyEventual && op.F == FWrite, op.Type == TypeInfo:
			outp.unknown = true
			ret = maxTime
			if t, ok := observed[op.Value]; ok {
				ret = max(op.Invoke, t)
			} else if !hasCAS {
				continue
			}
		case op.Level != client.ConsistencyStrong:
			continue
		case op.F == FCAS:
			outp.ok = op.Type == TypeOK
		}
		out = append(out, porcupine.Operation{ClientId: op.Process, Input: in, Output: outp,
			Call: op.Invoke, Return: ret, Metadata: op})
	}
	return out
}

func noteObserved(m map[string]int64, value string, at int64) {
	if t, ok := m[value]; !ok || at < t {
		m[value] = at
	}
}

// LinearConfig bounds the linearizability check.
type LinearConfig struct {
	// Timeout bounds the search on one key; reaching it fails the check (no verdict is not a
	// pass).
	Timeout time.Duration
	// Budget bounds the whole check; keys not reached are failures.
	Budget time.Duration
	// Dir, when set, receives porcupine's HTML visualization of every key that fails.
	Dir string
	// Windows are shown in the visualization as annotations.
	Windows []AppliedWindow
}

// CheckLinearizability checks one workload's strong history, key by key, with porcupine, and
// holds strong reads to the versions of the strong writes acknowledged before they began
// (checkObservationsAfterWrites), which porcupine, seeing values and real time only, cannot.
func CheckLinearizability(workload string, ops []*Op, cfg LinearConfig) CheckResult {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.Budget <= 0 {
		cfg.Budget = 2 * time.Minute
	}
	byKey := map[string][]*Op{}
	for _, op := range ops {
		byKey[op.Key] = append(byKey[op.Key], op)
	}
	keys := make([]string, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	sort.Strings(keys)

	type keyResult struct {
		key     string
		result  porcupine.CheckResult
		info    porcupine.LinearizationInfo
		ops     []porcupine.Operation
		skipped bool
	}
	results := make([]keyResult, len(keys))
	deadline := time.Now().Add(cfg.Budget)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 2)
	for i, k := range keys {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			pops := linearOps(byKey[k])
			left := time.Until(deadline)
			if left <= 0 {
				results[i] = keyResult{key: k, skipped: true, result: porcupine.Unknown}
				return
			}
			res, info := porcupine.CheckOperationsVerbose(registerModel, pops, min(cfg.Timeout, left))
			results[i] = keyResult{key: k, result: res, info: info, ops: pops}
		})
	}
	wg.Wait()

	cr := CheckResult{Checker: CheckerLinearizable, Workload: workload, Valid: true}
	var an anomalies
	checked, opsChecked, unknown, illegal, timedOut, eventual, reads := 0, 0, 0, 0, 0, 0, 0
	for _, r := range results {
		checked++
		opsChecked += len(r.ops)
		for _, o := range r.ops {
			if o.Return == maxTime {
				unknown++
			}
			if o.Input.(regInput).eventual {
				eventual++
			}
			if o.Input.(regInput).f == FRead {
				reads++
			}
		}
		switch r.result {
		case porcupine.Ok:
			continue
		case porcupine.Unknown:
			cr.Valid = false
			timedOut++
			why := fmt.Sprintf("checker timed out after %v on %d operations: no verdict, which counts as a failure", cfg.Timeout, len(r.ops))
			if r.skipped {
				why = fmt.Sprintf("not checked: the %v budget for the whole check ran out", cfg.Budget)
			}
			an.add(Anomaly{Kind: "checker-timeout", Level: client.ConsistencyStrong, Key: r.key, Description: why})
			continue
		}
		cr.Valid = false
		illegal++
		a := Anomaly{Kind: "not-linearizable", Level: client.ConsistencyStrong, Key: r.key}
		state, tailOps, stuck := explainIllegal(r.info, r.ops)
		a.Description = fmt.Sprintf("no linearization of key %s: after the longest order found (state %s), none of the %d operations that must come next can", r.key, state, len(stuck))
		for _, op := range tailOps {
			a.Ops = append(a.Ops, "linearized: "+describeOp(op))
		}
		for _, op := range stuck {
			a.Ops = append(a.Ops, "cannot follow: "+describeOp(op))
		}
		an.add(a)
		for _, s := range staleReads(byKey[r.key]) {
			an.add(s)
		}
		if cfg.Dir != "" {
			name := "linearizability-" + sanitize(r.key) + ".html"
			r.info.AddAnnotations(windowAnnotations(cfg.Windows))
			if err := porcupine.VisualizePath(registerModel, r.info, filepath.Join(cfg.Dir, name)); err == nil {
				cr.Files = append(cr.Files, name)
			}
		}
	}
	before := an.count
	for _, k := range keys {
		var observations []*Op
		for _, op := range byKey[k] {
			if observesStrongly(op) {
				observations = append(observations, op)
			}
		}
		checkObservationsAfterWrites(&an, k, byKey[k], observations)
	}
	behind := an.count - before
	before = an.count
	tentativeReads(&an, ops, client.ConsistencyStrong)
	tentative := an.count - before
	if behind > 0 || tentative > 0 {
		cr.Valid = false
	}
	cr.Anomalies = an.list
	cr.Stats = an.stats(map[string]any{"keys": checked, "tentative_reads": tentative, "reads_behind_writes": behind, "operations": opsChecked, "unbounded_writes": unknown, "eventual_writes": eventual,
		"keys_not_linearizable": illegal, "keys_timed_out": timedOut})
	switch {
	case illegal == 0 && timedOut == 0 && (behind > 0 || tentative > 0):
		var what []string
		if behind > 0 {
			what = append(what, fmt.Sprintf("%d strong reads behind the version of a strong write acknowledged before they began", behind))
		}
		if tentative > 0 {
			what = append(what, fmt.Sprintf("%d strong reads showed tentative data", tentative))
		}
		cr.Summary = fmt.Sprintf("NOT linearizable: %s (%d keys, %d operations linearizable by value otherwise)", strings.Join(what, ", "), checked, opsChecked)
	case cr.Valid:
		cr.Summary = fmt.Sprintf("linearizable: %d keys, %d operations on the strong path (%d still unbounded: outcome unknown, never counted as failed)", checked, opsChecked, unknown)
		if eventual > 0 {
			cr.Summary += fmt.Sprintf(", %d of them eventual writes a strong read saw", eventual)
		}
	default:
		cr.Summary = fmt.Sprintf("NOT linearizable: %d of %d keys have no linearization, %d could not be decided in time (%d anomalies listed, stale reads among them)", illegal, checked, timedOut, an.count)
	}
	cr.Stats["strong_reads"] = reads
	if reads == 0 {
		// Writes alone are always linearizable: only an answered strong read can contradict
		// an order.
		nothingChecked(&cr, "answered strong read")
	}
	return cr
}

// observesStrongly reports whether op is a strong operation whose answer says what the key held
// when Raft ordered it: a read, a delete that found nothing (404), or a create-if-absent that
// found the key absent and wrote.
func observesStrongly(op *Op) bool {
	if op.Level != client.ConsistencyStrong {
		return false
	}
	switch {
	case op.F == FRead:
		return op.Type == TypeOK
	case op.F == FDelete:
		return op.Type == TypeFail && op.Code == client.CodeNotFound
	case op.F == FCAS:
		return op.Type == TypeOK && op.FromAbsent
	}
	return false
}

// checkObservationsAfterWrites flags the strong observations of key (observesStrongly) that
// went back before an acknowledged strong write completed before they began (DESIGN.md,
// guarantee 1: a strong write is committed when acknowledged, and a key's committed version
// never goes back): a value older than that write (stale-read), or the key absent although no
// delete that could be newer than the write (acknowledged at a newer version, or at an unknown
// one, or in doubt) had been invoked by the time the observation returned (lost-value). A 404
// delete judged on a node that had not applied the write shows up here, for one.
func checkObservationsAfterWrites(an *anomalies, key string, ops, observations []*Op) {
	var writes, deletes []*Op
	for _, op := range ops {
		switch {
		case op.IsWrite() && op.Level == client.ConsistencyStrong && op.Type == TypeOK && op.Version != "":
			writes = append(writes, op)
		case op.F == FDelete && (op.Type == TypeOK || op.Type == TypeInfo):
			deletes = append(deletes, op)
		}
	}
	if len(writes) == 0 || len(observations) == 0 {
		return
	}
	obs := append([]*Op(nil), observations...)
	// newest: the newest (by version) strong write acknowledged before o began.
	eachWithNewestBefore(writes, obs, func(o, newest *Op) {
		if newest == nil {
			return
		}
		absent := o.F != FRead || o.Absent
		if !absent {
			if compareVersions(o.Version, newest.Version) < 0 {
				an.add(Anomaly{Kind: "stale-read", Level: o.Level, Key: key, Node: o.ServedBy,
					Description: fmt.Sprintf("a strong read of %s returned %q at version %s, older than the strong write (version %s) acknowledged before the read began", key, o.Value, o.Version, newest.Version),
					Ops:         []string{"write: " + describeOp(newest), "read: " + describeOp(o)}})
			}
			return
		}
		excused := false
		for _, d := range deletes {
			if d.Invoke < o.Complete && (d.Type != TypeOK || d.Version == "" || compareVersions(d.Version, newest.Version) > 0) {
				excused = true
				break
			}
		}
		if !excused {
			what := map[string]string{FRead: "a strong read of %s found it absent", FDelete: "a strong delete of %s found nothing to delete",
				FCAS: "a strong create-if-absent of %s found it absent and wrote"}[o.F]
			an.add(Anomaly{Kind: "lost-value", Level: o.Level, Key: key, Node: o.ServedBy,
				Description: fmt.Sprintf(what+", after the strong write (version %s) acknowledged before it began, and no delete that could be newer had been made", key, newest.Version),
				Ops:         []string{"write: " + describeOp(newest), o.F + ": " + describeOp(o)}})
		}
	})
}

// explainIllegal picks the longest partial linearization porcupine found and returns the
// state it reached, its last few operations, and the operations that would have to come next
// (those invoked before any remaining operation returned) — none of which the model accepts.
func explainIllegal(info porcupine.LinearizationInfo, all []porcupine.Operation) (string, []*Op, []*Op) {
	parts := info.PartialLinearizationsOperations()
	var best []porcupine.Operation
	for _, p := range parts {
		for _, seq := range p {
			if len(seq) > len(best) {
				best = seq
			}
		}
	}
	state := registerModel.Init()
	done := map[*Op]bool{}
	for _, o := range best {
		_, state = registerModel.Step(state, o.Input, o.Output)
		if op, ok := o.Metadata.(*Op); ok {
			done[op] = true
		}
	}
	var tailOps []*Op
	for _, o := range best[max(0, len(best)-3):] {
		if op, ok := o.Metadata.(*Op); ok {
			tailOps = append(tailOps, op)
		}
	}
	var rest []porcupine.Operation
	minRet := maxTime
	for _, o := range all {
		op, ok := o.Metadata.(*Op)
		if !ok || done[op] {
			continue
		}
		rest = append(rest, o)
		minRet = min(minRet, o.Return)
	}
	var stuck []*Op
	for _, o := range rest {
		if o.Call <= minRet {
			stuck = append(stuck, o.Metadata.(*Op))
		}
	}
	sort.Slice(stuck, func(i, j int) bool { return stuck[i].Invoke < stuck[j].Invoke })
	if len(stuck) > 8 {
		stuck = stuck[:8]
	}
	return registerModel.DescribeState(state), tailOps, stuck
}

// staleReads finds strong reads that certainly returned an old value: a strong write that was
// acknowledged after the read value's own write was acknowledged, and before the read began.
// They explain a failed check in plain words; porcupine's verdict is the authority.
func staleReads(ops []*Op) []Anomaly {
	var writes []*Op // acknowledged strong writes and cas, by completion
	writer := map[string]*Op{}
	for _, op := range ops {
		if op.IsWrite() {
			writer[op.Value] = op
			if op.Level == client.ConsistencyStrong && op.Type == TypeOK {
				writes = append(writes, op)
			}
		}
	}
	sort.Slice(writes, func(i, j int) bool { return writes[i].Complete < writes[j].Complete })
	var out []Anomaly
	for _, r := range ops {
		if r.F != FRead || r.Level != client.ConsistencyStrong || r.Type != TypeOK {
			continue
		}
		w := writer[r.Value]
		if !r.Absent && (w == nil || w.Type != TypeOK || w.Level != client.ConsistencyStrong) {
			continue // its write has no certain time of effect
		}
		for _, w2 := range writes {
			if w2.Complete >= r.Invoke {
				break
			}
			if !r.Absent && (w2 == w || w2.Invoke <= w.Complete) {
				continue
			}
			what := fmt.Sprintf("%q", r.Value)
			if r.Absent {
				what = "absent"
			}
			out = append(out, Anomaly{Kind: "stale-read", Level: client.ConsistencyStrong, Key: r.Key, Node: r.ServedBy,
				Description: fmt.Sprintf("strong read on %s returned %s, but %q had been acknowledged at %s, before the read began at %s", r.Node, what, w2.Value, fmtTime(w2.Complete), fmtTime(r.Invoke)),
				Ops:         staleOps(w, w2, r)})
			break
		}
		if len(out) >= 10 {
			break
		}
	}
	return out
}

func staleOps(w, w2, r *Op) []string {
	var out []string
	if w != nil {
		out = append(out, "wrote the value read: "+describeOp(w))
	}
	return append(out, "newer write, acknowledged first: "+describeOp(w2), "stale read: "+describeOp(r))
}

func windowAnnotations(ws []AppliedWindow) []porcupine.Annotation {
	var out []porcupine.Annotation
	for _, w := range ws {
		out = append(out, porcupine.Annotation{Tag: "nemesis", Start: w.Start, End: w.End,
			Description: w.Kinds, Details: w.Description, BackgroundColor: "#f6d6d6"})
	}
	return out
}

// sanitize makes a key usable in a file name.
func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' {
			return r
		}
		return '_'
	}, s)
}
