package jepsen

import (
	"slices"
	"time"

	"github.com/dialkv/dialkv/client"
)

// Levels in report order.
var levels = []string{client.ConsistencyStrong, client.ConsistencyBounded, client.ConsistencySession, client.ConsistencyEventual}

// LevelStats is one row of the summary table: one consistency level over the whole run.
type LevelStats struct {
	Level string `json:"level"`
	OK    int    `json:"ok"`
	Fail  int    `json:"failed"`
	Info  int    `json:"indeterminate"`
	// Availability is ok / all operations invoked inside fault windows (Faulted) and outside
	// them (Quiet); -1 when there were none.
	AvailFaulted float64 `json:"availability_during_faults"`
	AvailQuiet   float64 `json:"availability_quiet"`
	// P50 and P99 latency of ok operations, ms; -1 when none.
	P50       float64 `json:"latency_p50_ms"`
	P99       float64 `json:"latency_p99_ms"`
	Anomalies int     `json:"anomalies"`
}

// SideStats is one level on one side of the partitions: the trade-off in numbers.
type SideStats struct {
	Level string `json:"level"`
	// Side is "minority" (nodes cut off from any majority) or "majority".
	Side  string  `json:"side"`
	OK    int     `json:"ok"`
	Fail  int     `json:"failed"`
	Info  int     `json:"indeterminate"`
	Avail float64 `json:"availability"`
	P50   float64 `json:"latency_p50_ms"`
	P99   float64 `json:"latency_p99_ms"`
}

// Summary is the numbers of a run.
type Summary struct {
	Levels []LevelStats `json:"levels"`
	// Partition is per level and side, for operations invoked while a partition was in force.
	Partition []SideStats `json:"partition,omitempty"`
	// Baseline is the ok throughput (ops/s) before the first fault, after a warm-up second.
	Baseline float64 `json:"baseline_ops_per_s"`
	// Total operations.
	Total int `json:"operations"`
}

type opCounter struct {
	ok, fail, info int
	lat            []float64
}

// answered reports whether the operation got a definite answer from a working cluster: ok,
// or a compare-and-set refused because its condition did not hold (a correct answer, not an
// outage). The summary and the plots count both as ok.
func answered(op *Op) bool {
	return op.Type == TypeOK || op.Type == TypeFail && op.Code == client.CodeConflict
}

func (c *opCounter) add(op *Op) {
	switch {
	case answered(op):
		c.ok++
		c.lat = append(c.lat, durationMS(op.Latency()))
	case op.Type == TypeFail:
		c.fail++
	default:
		c.info++
	}
}

// latency is the p-th percentile latency of the ok operations, -1 when there were none.
func (c *opCounter) latency(p float64) float64 {
	if len(c.lat) == 0 {
		return -1
	}
	return percentile(c.lat, p)
}

func (c *opCounter) avail() float64 {
	n := c.ok + c.fail + c.info
	if n == 0 {
		return -1
	}
	return float64(c.ok) / float64(n)
}

// windowAt returns the window an invocation time falls in, or nil.
func windowAt(ws []AppliedWindow, t int64) *AppliedWindow {
	for i := range ws {
		if t >= ws[i].Start && t <= ws[i].End {
			return &ws[i]
		}
	}
	return nil
}

// Summarize computes the summary table. anomaliesByLevel comes from the checkers.
func Summarize(ops []*Op, ws []AppliedWindow, anomaliesByLevel map[string]int) Summary {
	all := map[string]*opCounter{}
	faulted := map[string]*opCounter{}
	quiet := map[string]*opCounter{}
	sides := map[[2]string]*opCounter{}
	get := func(m map[string]*opCounter, k string) *opCounter {
		if m[k] == nil {
			m[k] = &opCounter{}
		}
		return m[k]
	}
	firstFault := int64(-1)
	if len(ws) > 0 {
		firstFault = ws[0].Start
	}
	var baselineOK int
	var lastComplete int64
	for _, op := range ops {
		get(all, op.Level).add(op)
		if op.Complete != maxTime {
			lastComplete = max(lastComplete, op.Complete)
		}
		w := windowAt(ws, op.Invoke)
		if w == nil {
			get(quiet, op.Level).add(op)
		} else {
			get(faulted, op.Level).add(op)
			if len(w.Minority) > 0 {
				// The node that took the request: a roaming client that failed over to the
				// majority was served there.
				node := op.ReceivedBy
				if node == "" {
					node = op.Node
				}
				side := "majority"
				if slices.Contains(w.Minority, node) {
					side = "minority"
				}
				k := [2]string{op.Level, side}
				if sides[k] == nil {
					sides[k] = &opCounter{}
				}
				sides[k].add(op)
			}
		}
		if answered(op) && op.Complete >= int64(time.Second) && (firstFault < 0 || op.Complete < firstFault) {
			baselineOK++
		}
	}
	s := Summary{Total: len(ops)}
	end := firstFault
	if end < 0 {
		end = lastComplete
	}
	if span := time.Duration(end) - time.Second; span > 0 {
		s.Baseline = float64(baselineOK) / span.Seconds()
	}
	for _, l := range levels {
		c := all[l]
		if c == nil {
			continue
		}
		row := LevelStats{Level: l, OK: c.ok, Fail: c.fail, Info: c.info, AvailFaulted: -1, AvailQuiet: -1,
			P50: c.latency(50), P99: c.latency(99), Anomalies: anomaliesByLevel[l]}
		if f := faulted[l]; f != nil {
			row.AvailFaulted = f.avail()
		}
		if q := quiet[l]; q != nil {
			row.AvailQuiet = q.avail()
		}
		s.Levels = append(s.Levels, row)
	}
	for _, l := range levels {
		for _, side := range []string{"majority", "minority"} {
			c := sides[[2]string{l, side}]
			if c == nil {
				continue
			}
			s.Partition = append(s.Partition, SideStats{Level: l, Side: side, OK: c.ok, Fail: c.fail, Info: c.info,
				Avail: c.avail(), P50: c.latency(50), P99: c.latency(99)})
		}
	}
	return s
}

// timeline is per-second counts per level, for the plots.
type timeline struct {
	seconds int
	// ok[level][s] counts ok completions in second s; total counts invocations (any outcome)
	// and okInvoked the ok ones among them, for availability.
	ok, total, okInvoked, failed map[string][]float64
}

func buildTimeline(ops []*Op, seconds int) timeline {
	t := timeline{seconds: seconds, ok: map[string][]float64{}, total: map[string][]float64{},
		okInvoked: map[string][]float64{}, failed: map[string][]float64{}}
	slot := func(m map[string][]float64, l string, ns int64) {
		s := int(ns / int64(time.Second))
		if s < 0 || s >= seconds {
			return
		}
		if m[l] == nil {
			m[l] = make([]float64, seconds)
		}
		m[l][s]++
	}
	for _, op := range ops {
		slot(t.total, op.Level, op.Invoke)
		switch {
		case answered(op):
			slot(t.ok, op.Level, op.Complete)
			slot(t.okInvoked, op.Level, op.Invoke)
		default:
			slot(t.failed, op.Level, op.Invoke)
		}
	}
	return t
}
