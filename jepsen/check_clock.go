package jepsen

import (
	"fmt"
	"sort"
	"time"

	"github.com/dialkv/dialkv/client"
	"github.com/dialkv/dialkv/consistency"
)

// CheckClockInversions measures what DESIGN.md ("Mixing levels on one key") warns of and says
// the partition tests measure: an eventual write stamped by a node whose clock runs ahead can
// win over a strong write made later in real time. Per key, an acknowledged eventual write is
// inverted when its version is newer than that of an acknowledged strong write invoked after the
// eventual write was acknowledged: last-writer-wins then keeps the older write. It is a
// measurement, never a failure; the summary says how often, how much later in real time the
// strong write came, and by how much the eventual write's stamp led.
func CheckClockInversions(workload string, ops []*Op) CheckResult {
	type write struct {
		op      *Op
		version consistency.Version
	}
	eventual, strong := map[string][]write{}, map[string][]write{}
	for _, op := range ops {
		if op.Type != TypeOK || !op.IsWrite() || op.Version == "" {
			continue
		}
		w := write{op, parseVersion(op.Version)}
		switch op.Level {
		case client.ConsistencyEventual:
			eventual[op.Key] = append(eventual[op.Key], w)
		case client.ConsistencyStrong:
			strong[op.Key] = append(strong[op.Key], w)
		}
	}
	var compared, inverted, losers int
	var maxGap, maxLead time.Duration
	var worst []string
	for key, es := range eventual {
		ss := strong[key]
		sort.Slice(ss, func(i, j int) bool { return ss[i].op.Invoke < ss[j].op.Invoke })
		lost := map[*Op]bool{}
		for _, e := range es {
			// The strong writes invoked after e was acknowledged.
			later := ss[sort.Search(len(ss), func(i int) bool { return ss[i].op.Invoke > e.op.Complete }):]
			if len(later) == 0 {
				continue
			}
			compared++
			won := false
			for _, s := range later {
				if !e.version.Newer(s.version) {
					continue
				}
				won, lost[s.op] = true, true
				gap := time.Duration(s.op.Invoke - e.op.Complete)
				lead := time.Duration(e.version.Wall - s.version.Wall)
				if gap > maxGap {
					maxGap = gap
					worst = []string{"eventual: " + describeOp(e.op), "later strong: " + describeOp(s.op)}
				}
				maxLead = max(maxLead, lead)
			}
			if won {
				inverted++
			}
		}
		losers += len(lost)
	}
	cr := CheckResult{Checker: CheckerClock, Workload: workload, Valid: true, Stats: map[string]any{
		"eventual_writes_compared": compared, "eventual_writes_inverted": inverted, "strong_writes_lost": losers,
		"max_real_time_gap_ms": maxGap.Milliseconds(), "max_stamp_lead_ms": maxLead.Milliseconds(),
	}}
	switch {
	case compared == 0:
		cr.Summary = "no acknowledged eventual write had a strong write on its key after it: nothing to measure"
	case inverted == 0:
		cr.Summary = fmt.Sprintf("no clock inversion: each of %d eventual writes lost to every strong write made after it", compared)
	default:
		cr.Summary = fmt.Sprintf("%d of %d eventual writes won over %d strong writes made after them (up to %v later in real time; stamps up to %v ahead): last-writer-wins with skewed clocks, as DESIGN.md warns",
			inverted, compared, losers, maxGap.Round(time.Millisecond), maxLead.Round(time.Millisecond))
		cr.Stats["example"] = worst
	}
	return cr
}
