package main

import (
	"math"
	"math/bits"
	"time"
)

// The latency histogram's layout, HdrHistogram's log-linear one: a value below histSub
// nanoseconds has a bucket of its own; above, each power-of-two range [2^k, 2^(k+1)) is cut into
// histHalf equal buckets. A bucket is therefore at most 1/histHalf (1.6 %) of its lower bound
// wide, whatever the magnitude, and every int64 fits in histBuckets fixed counters (29 KiB).
const (
	histSubBits = 7
	histSub     = 1 << histSubBits
	histHalf    = histSub / 2
	histBuckets = histSub + (63-histSubBits)*histHalf
)

// histogram counts latencies. Its memory is fixed, whatever the number of values recorded; the
// percentiles it reports are the highest value of the bucket the rank falls in, capped at the
// largest value recorded, so they are never below the exact percentile and at most 1.6 % above
// it. The zero value is empty and ready; it is not safe for concurrent use.
type histogram struct {
	counts   [histBuckets]uint64
	n        uint64
	sum      float64 // nanoseconds; a float so that it cannot overflow
	min, max int64
}

// bucketOf returns the index of the bucket holding v nanoseconds (negative values count as 0).
func bucketOf(v int64) int {
	if v < histSub {
		return int(max(v, 0))
	}
	shift := bits.Len64(uint64(v)) - histSubBits // >= 1: v>>shift is in [histHalf, histSub)
	return histSub + (shift-1)*histHalf + int(v>>shift) - histHalf
}

// bucketHigh returns the largest value bucket i holds.
func bucketHigh(i int) int64 {
	if i < histSub {
		return int64(i)
	}
	shift := (i-histSub)/histHalf + 1
	top := uint64((i-histSub)%histHalf + histHalf)
	high := (top+1)<<shift - 1
	if high > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(high)
}

func (h *histogram) record(d time.Duration) {
	v := int64(d)
	if h.n == 0 || v < h.min {
		h.min = v
	}
	if h.n == 0 || v > h.max {
		h.max = v
	}
	h.counts[bucketOf(v)]++
	h.n++
	h.sum += float64(v)
}

// merge adds o's values to h.
func (h *histogram) merge(o *histogram) {
	if o.n == 0 {
		return
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	if h.n == 0 || o.max > h.max {
		h.max = o.max
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.sum += o.sum
}

func (h *histogram) reset() { *h = histogram{} }

// count is the number of values recorded.
func (h *histogram) count() uint64 { return h.n }

// quantile returns the q-quantile (0 < q <= 1) by the nearest-rank rule: the smallest recorded
// value that at least q of all values do not exceed, rounded up to its bucket's highest value.
// It is 0 for an empty histogram.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return time.Duration(min(max(bucketHigh(i), h.min), h.max))
		}
	}
	return time.Duration(h.max)
}

// mean is the average of the values recorded (exact, not bucketed).
func (h *histogram) mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sum / float64(h.n))
}

// maximum is the largest value recorded (exact).
func (h *histogram) maximum() time.Duration { return time.Duration(h.max) }
