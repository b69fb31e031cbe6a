package load

import (
	"testing"
	"time"
)

func TestBucketsCoverAndOrder(t *testing.T) {
	prev := -1
	for _, v := range []uint64{0, 1, 63, 64, 65, 127, 128, 1000, 1 << 20, 1<<40 + 12345, 1<<63 - 1, 1<<64 - 1} {
		i := bucket(v)
		if i < prev || i >= len(Histogram{}.counts) {
			t.Fatalf("bucket(%d) = %d after %d", v, i, prev)
		}
		prev = i
		if up := upper(i); up < v || (v >= 64 && float64(up-v) > float64(v)/32) {
			t.Errorf("upper(bucket(%d)) = %d: not within 1/32 above", v, up)
		}
		if i > 0 && upper(i-1) >= v {
			t.Errorf("upper(bucket(%d)-1) = %d: v belongs lower", v, upper(i-1))
		}
	}
}

func TestQuantile(t *testing.T) {
	var h Histogram
	if h.Quantile(0.5) != 0 {
		t.Fatal("empty histogram: want 0")
	}
	for i := 1; i <= 1000; i++ {
		h.Record(time.Duration(i) * time.Microsecond)
	}
	for _, tc := range []struct {
		name string
		q    float64
		want time.Duration
	}{
		{name: "p50", q: 0.50, want: 500 * time.Microsecond},
		{name: "p99", q: 0.99, want: 990 * time.Microsecond},
		{name: "p100", q: 1, want: 1000 * time.Microsecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := h.Quantile(tc.q)
			if got < tc.want || float64(got-tc.want) > float64(tc.want)/32 {
				t.Errorf("Quantile(%v) = %v, want %v (+3%%)", tc.q, got, tc.want)
			}
		})
	}
	var o Histogram
	o.Record(time.Second)
	h.Merge(&o)
	if h.Count() != 1001 || h.Max() != time.Second || h.Quantile(1) != time.Second {
		t.Errorf("after Merge: count %d max %v p100 %v", h.Count(), h.Max(), h.Quantile(1))
	}
}

func TestRecordDoesNotAllocate(t *testing.T) {
	var h Histogram
	if n := testing.AllocsPerRun(1000, func() { h.Record(1234 * time.Nanosecond) }); n != 0 {
		t.Errorf("Record allocates %v times", n)
	}
}
