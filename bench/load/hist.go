package load

import (
	"math/bits"
	"time"
)

// Histogram is a log-linear latency histogram: exact below 64 ns, then 32 buckets per power
// of two (a relative error under 3.2%). Record does not allocate. The zero value is ready;
// one goroutine records into it, Merge combines them afterwards.
type Histogram struct {
	counts [64 + 58*32]uint64
	n      uint64
	max    time.Duration
}

func bucket(v uint64) int {
	if v < 64 {
		return int(v)
	}
	shift := bits.Len64(v) - 6 // ≥ 1: v>>shift is in [32, 63]
	return 64 + (shift-1)*32 + int(v>>uint(shift)) - 32
}

// upper returns the largest value that falls in bucket i.
func upper(i int) uint64 {
	if i < 64 {
		return uint64(i)
	}
	shift := uint((i-64)/32 + 1)
	mant := uint64((i-64)%32 + 32)
	return (mant+1)<<shift - 1
}

// Record adds one latency.
func (h *Histogram) Record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.counts[bucket(uint64(d))]++
	h.n++
	if d > h.max {
		h.max = d
	}
}

// Merge adds o's samples to h.
func (h *Histogram) Merge(o *Histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.max = max(h.max, o.max)
}

// Count returns the number of samples.
func (h *Histogram) Count() uint64 { return h.n }

// Max returns the largest sample.
func (h *Histogram) Max() time.Duration { return h.max }

// Quantile returns the latency below which a fraction q (0..1) of the samples fall: the upper
// edge of the bucket holding the sample of rank ceil(q·n), capped at the largest sample. It
// is 0 with no samples.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q*float64(h.n) + 0.999999)
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return min(time.Duration(upper(i)), h.max)
		}
	}
	return h.max
}
