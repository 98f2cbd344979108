package jepsen

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/dialkv/dialkv/client"
)

// deleteWorkload: writes and deletes, strong and eventual, on a few keys at a time, each worker
// pinned to one node, while the cluster purges the tombstones every member has acknowledged;
// now and then a worker runs a probe (probe) on a key of its own. Checked against DESIGN.md's
// promise that a deleted key cannot come back (the way it does in Cassandra after a missed
// repair): see CheckDeletes.
type deleteWorkload struct {
	keys *keyRing
}

func (d *deleteWorkload) Name() string { return WorkloadDelete }

// A probe is what brings a deleted key back when a tombstone is purged too early: a key is
// written strongly, then eventually at a random node, then deleted strongly at once through
// another, and never written again. When a partition cuts the random node off, the eventual
// write waits there, uncommitted and older than the delete, while the other side commits the
// delete; a purge that does not wait for that node's acknowledgement drops the tombstone, and
// the write, submitted after the partition heals, makes the key come back. The worker reads
// its probed keys strongly now and then, and the settled state must hold them absent (or at a
// version newer than the delete). The shared keys cannot show this reliably: they are written
// again soon after a partition heals, which hides a resurrected value.
const (
	deleteProbeEvery   = 8 // about one operation in this many starts a probe
	deleteProbeReadOdd = 8 // about one operation in this many reads a probed key
)

func (d *deleteWorkload) Worker(ctx context.Context, w *Worker) {
	cl := w.env.pinned[w.Node.ID]
	var probed []string
	for n := 0; w.pace(ctx); {
		if w.Rng.IntN(deleteProbeEvery) == 0 {
			key := fmt.Sprintf("%s/p%d-%d", d.Name(), w.Index, n)
			n++
			if d.probe(ctx, w, key) {
				probed = append(probed, key)
			}
			continue
		}
		if len(probed) > 0 && w.Rng.IntN(deleteProbeReadOdd) == 0 {
			w.read(w.env.roaming[w.Node.ID], probed[w.Rng.IntN(len(probed))], client.ConsistencyStrong, 0, nil)
			continue
		}
		key := d.keys.pick(w.Rng)
		level := client.ConsistencyStrong
		if w.Rng.IntN(2) == 0 {
			level = client.ConsistencyEventual
		}
		switch p := w.Rng.Float64(); {
		case p < 0.25:
			w.read(cl, key, client.ConsistencyStrong, 0, nil) // deleted values must not show up
		case p < 0.25+0.75*0.55:
			w.write(cl, key, w.env.uniqueValue(), level, nil)
		default:
			w.del(cl, key, level, nil)
		}
	}
}

// probe runs one probe on key from the worker's node and reports whether it got as far as the
// delete. The worker's own node is restored afterwards.
func (d *deleteWorkload) probe(ctx context.Context, w *Worker, key string) bool {
	own := w.Node
	defer func() { w.Node = own }()
	// Committed first, so that the delete finds the key wherever it is judged (a delete of an
	// absent key is a 404 that writes no tombstone).
	if w.write(w.env.roaming[own.ID], key, w.env.uniqueValue(), client.ConsistencyStrong, nil).Type != TypeOK || !w.pace(ctx) {
		return false
	}
	w.Node = w.env.nodes[w.Rng.IntN(len(w.env.nodes))]
	w.write(w.env.pinned[w.Node.ID], key, w.env.uniqueValue(), client.ConsistencyEventual, nil)
	// At once, not at the next slot: the delete must be stamped after the write but reach the
	// leader before the write is committed, and as early in a partition as can be, so that a
	// purge comes before the partition heals. The slot is still taken, so the rate stays the same.
	w.skipSlot()
	w.moveOffNode(w.Node.ID)
	w.del(w.env.roaming[w.Node.ID], key, client.ConsistencyStrong, nil)
	return true
}

func (d *deleteWorkload) Check(in CheckInput) []CheckResult {
	return []CheckResult{CheckDeletes(d.Name(), in.Ops, in.Final)}
}

// del deletes key at level. A 404 (nothing to delete) is a failed operation with code
// not_found: it changed nothing, though the node found the key absent (CheckSessions uses that).
func (w *Worker) del(cl *client.Client, key, level string, sess *client.Session) *Op {
	op := &Op{F: FDelete, Key: key, Level: level}
	w.do(op, func(ctx context.Context) (client.Meta, error) {
		return cl.Delete(ctx, key, client.DeleteOptions{Consistency: level, Session: sess})
	})
	return op
}

// CheckDeletes checks writes (compare-and-sets included) and deletes against the settled committed state (final, from a
// strong list: a deleted key is absent), by version, and the strong reads made meanwhile:
//   - resurrection: a key holds a value older than an acknowledged delete of it, or a strong read
//     returned one after an acknowledged strong delete of it had completed (a strong delete is
//     committed when acknowledged, so nothing older may show up after it, even briefly);
//   - lost write: a key holds a value older than an acknowledged write, or is absent although
//     no delete newer than an acknowledged write was acknowledged (and none is in doubt);
//   - a strong operation that went back before an acknowledged strong write made before it began
//     (checkObservationsAfterWrites): a strong read of an older value (stale-read), or a strong
//     read, 404 delete or create-if-absent that found the key absent with no delete that could be
//     newer made meanwhile (lost-value). Strong deletes are strong operations (DESIGN.md,
//     guarantee 1), and no porcupine check covers this workload.
//
// Like CheckDurability, it also flags a value whose only writes were answered as not applied,
// when a read returned it or the key holds it at the end (failedWritesSeen).
//
// A delete whose outcome is unknown (or acknowledged without a version) may have taken effect
// at any version, so an absent key is not held against the writes before it. A write or delete
// acknowledged without a version is itself flagged (unversionedAck): nothing can be checked of it.
func CheckDeletes(workload string, ops []*Op, final map[string]FinalValue) CheckResult {
	byKey, reads, observations := map[string][]*Op{}, map[string][]*Op{}, map[string][]*Op{}
	for _, op := range ops {
		if observesStrongly(op) {
			observations[op.Key] = append(observations[op.Key], op)
		}
		switch {
		case op.IsWrite() || op.F == FDelete:
			byKey[op.Key] = append(byKey[op.Key], op)
		case op.F == FRead && op.Type == TypeOK && op.Level == client.ConsistencyStrong && !op.Absent && op.Version != "":
			reads[op.Key] = append(reads[op.Key], op)
		}
	}
	keys := make([]string, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var an anomalies
	acked := map[string]int{}
	deletedAtEnd := 0
	for _, k := range keys {
		fv, present := final[k]
		if !present {
			deletedAtEnd++
		}
		newestDelete, deleteInDoubt := "", false
		for _, op := range byKey[k] {
			if op.F != FDelete {
				continue
			}
			switch {
			case op.Type == TypeInfo, op.Type == TypeOK && op.Version == "":
				deleteInDoubt = true
			case op.Type == TypeOK && (newestDelete == "" || compareVersions(op.Version, newestDelete) > 0):
				newestDelete = op.Version
			}
		}
		for _, op := range byKey[k] {
			if op.Type != TypeOK {
				continue
			}
			if op.IsWrite() {
				acked[FWrite]++ // a compare-and-set (the session workload's create-if-absent) too
			} else {
				acked[op.F]++
			}
			if op.Version == "" {
				an.add(unversionedAck(op))
				continue
			}
			switch {
			case present && fv.Version != "" && compareVersions(op.Version, fv.Version) > 0 && op.F == FDelete:
				an.add(Anomaly{Kind: "resurrected", Level: op.Level, Key: k,
					Description: fmt.Sprintf("%s was deleted (acknowledged %s delete, version %s) but holds %q at the older version %s", k, op.Level, op.Version, fv.Value, fv.Version),
					Ops:         []string{describeOp(op)}})
			case present && fv.Version != "" && compareVersions(op.Version, fv.Version) > 0:
				an.add(Anomaly{Kind: "lost-write", Level: op.Level, Key: k,
					Description: fmt.Sprintf("acknowledged %s write (version %s) lost: %s ended with %q at the older version %s", op.Level, op.Version, k, fv.Value, fv.Version),
					Ops:         []string{describeOp(op)}})
			case !present && op.IsWrite() && !deleteInDoubt && (newestDelete == "" || compareVersions(newestDelete, op.Version) < 0):
				an.add(Anomaly{Kind: "lost-write", Level: op.Level, Key: k,
					Description: fmt.Sprintf("acknowledged %s write (version %s) of %s is gone, and no delete newer than it was acknowledged", op.Level, op.Version, k),
					Ops:         []string{describeOp(op)}})
			}
		}
	}
	failedWritesSeen(&an, ops, final)
	nreads := 0
	for _, k := range keys {
		nreads += len(reads[k])
		checkReadsAfterDeletes(&an, k, byKey[k], reads[k])
		checkObservationsAfterWrites(&an, k, byKey[k], observations[k])
	}
	cr := CheckResult{Checker: CheckerDeletes, Workload: workload, Valid: an.count == 0, Anomalies: an.list}
	cr.Stats = an.stats(map[string]any{"keys": len(keys), "absent_at_end": deletedAtEnd, "acked_writes": acked[FWrite], "acked_deletes": acked[FDelete], "strong_reads": nreads})
	var parts []string
	parts = append(parts, fmt.Sprintf("%d keys (%d deleted at the end), %d acknowledged writes, %d acknowledged deletes, %d strong reads of values", len(keys), deletedAtEnd, acked[FWrite], acked[FDelete], nreads))
	if cr.Valid {
		cr.Summary = "no deleted key came back and no acknowledged write was lost; " + strings.Join(parts, "")
	} else {
		cr.Summary = fmt.Sprintf("%d anomalies; %s", an.count, strings.Join(parts, ""))
	}
	if acked[FDelete] == 0 {
		nothingChecked(&cr, "acknowledged delete")
	}
	return cr
}

// checkReadsAfterDeletes flags the strong reads of key that returned a value older than an
// acknowledged strong delete completed before the read began.
func checkReadsAfterDeletes(an *anomalies, key string, ops, reads []*Op) {
	var dels []*Op
	for _, op := range ops {
		if op.F == FDelete && op.Type == TypeOK && op.Level == client.ConsistencyStrong && op.Version != "" {
			dels = append(dels, op)
		}
	}
	if len(dels) == 0 || len(reads) == 0 {
		return
	}
	// reads is CheckDeletes' own slice: sorted in place. newest: the newest (by version) strong
	// delete acknowledged before r began.
	eachWithNewestBefore(dels, reads, func(r, newest *Op) {
		if newest != nil && compareVersions(newest.Version, r.Version) > 0 {
			an.add(Anomaly{Kind: "resurrected", Level: r.Level, Key: key,
				Description: fmt.Sprintf("a strong read of %s returned %q at version %s, older than the strong delete (version %s) acknowledged before the read began", key, r.Value, r.Version, newest.Version),
				Ops:         []string{"delete: " + describeOp(newest), "read: " + describeOp(r)}})
		}
	})
}

// eachWithNewestBefore calls f for each of obs in the order they were invoked, with the newest
// (by version) of acked that completed before it was invoked, nil when none had. It sorts acked
// by completion and obs by invocation, in place.
func eachWithNewestBefore(acked, obs []*Op, f func(o, newest *Op)) {
	sort.Slice(acked, func(i, j int) bool { return acked[i].Complete < acked[j].Complete })
	sort.Slice(obs, func(i, j int) bool { return obs[i].Invoke < obs[j].Invoke })
	var newest *Op
	next := 0
	for _, o := range obs {
		for ; next < len(acked) && acked[next].Complete < o.Invoke; next++ {
			if newest == nil || compareVersions(acked[next].Version, newest.Version) > 0 {
				newest = acked[next]
			}
		}
		f(o, newest)
	}
}
