package swoole_test

// Task worker benchmarks, over real processes (1 worker, 2 task workers, task_ipc_mode 1):
//
//	go test -run '^$' -bench 'BenchmarkTask' -benchtime 2000x .
//
// BenchmarkTaskThroughput: tasks/s with 256 tasks in flight from one worker (each result
// back through TaskWithCallback). BenchmarkTaskWait: TaskWait round trips one after another;
// p50 and p99 are per round trip. Payloads of 64 B and 64 KiB (64 KiB spills to task_tmpdir:
// a task travels in one datagram, at most 65512 bytes).

import (
	"strconv"
	"testing"
	"time"
)

func benchTaskSizes(b *testing.B, cmd string, report func(b *testing.B, f []string)) {
	for _, size := range []int{64, 64 << 10} {
		b.Run("size="+strconv.Itoa(size), func(b *testing.B) {
			ms := taskStart(b, mpEnvWorkers+"=1", taskEnvTasks+"=2", mpEnvQuiet+"=1")
			c := ms.dial()
			c.do(cmd + " 100 " + strconv.Itoa(size)) // warm up
			b.ResetTimer()
			f := c.do(cmd + " " + strconv.Itoa(b.N) + " " + strconv.Itoa(size))
			b.StopTimer()
			report(b, f)
		})
	}
}

func BenchmarkTaskThroughput(b *testing.B) {
	benchTaskSizes(b, "benchtp", func(b *testing.B, f []string) {
		if len(f) != 3 || f[2] != "0" {
			b.Fatalf("benchtp: %q", f)
		}
		total := time.Duration(atoi(f[1]))
		b.ReportMetric(float64(b.N)/total.Seconds(), "tasks/s")
	})
}

func BenchmarkTaskWait(b *testing.B) {
	benchTaskSizes(b, "benchtw", func(b *testing.B, f []string) {
		if len(f) != 5 || f[4] != "0" {
			b.Fatalf("benchtw: %q", f)
		}
		b.ReportMetric(float64(atoi(f[1]))/1e3, "p50-µs")
		b.ReportMetric(float64(atoi(f[2]))/1e3, "p99-µs")
		b.ReportMetric(float64(b.N)/time.Duration(atoi(f[3])).Seconds(), "tasks/s")
	})
}
