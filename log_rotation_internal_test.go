package swoole

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLogPeriodNames: the suffix of each log_rotation period is Swoole's strftime format
// (%Y%m, %Y%m%d, %Y%m%d%H, %Y%m%d%H%M) and each period ends where the next one begins.
func TestLogPeriodNames(t *testing.T) {
	at := time.Date(2026, 12, 31, 23, 59, 30, 0, time.Local)
	for _, c := range []struct {
		rotation int
		name     string
		end      time.Time
	}{
		{LogRotationMonthly, "202612", time.Date(2027, 1, 1, 0, 0, 0, 0, time.Local)},
		{LogRotationDaily, "20261231", time.Date(2027, 1, 1, 0, 0, 0, 0, time.Local)},
		{LogRotationHourly, "2026123123", time.Date(2027, 1, 1, 0, 0, 0, 0, time.Local)},
		{LogRotationEveryMinute, "202612312359", time.Date(2027, 1, 1, 0, 0, 0, 0, time.Local)},
	} {
		if got := logPeriodName(c.rotation, at); got != c.name {
			t.Errorf("rotation %d: name %q, want %q", c.rotation, got, c.name)
		}
		if got := logPeriodEnd(c.rotation, at); !got.Equal(c.end) {
			t.Errorf("rotation %d: period ends %v, want %v", c.rotation, got, c.end)
		}
		if got, want := logFileName("/var/log/app.log", c.rotation, at), "/var/log/app.log."+c.name; got != want {
			t.Errorf("rotation %d: file %q, want %q", c.rotation, got, want)
		}
	}
	if got := logFileName("/var/log/app.log", LogRotationSingle, at); got != "/var/log/app.log" {
		t.Errorf("no rotation: file %q, want log_file itself", got)
	}
	mid := time.Date(2026, 3, 10, 14, 7, 5, 0, time.Local)
	if got, want := logPeriodEnd(LogRotationHourly, mid), time.Date(2026, 3, 10, 15, 0, 0, 0, time.Local); !got.Equal(want) {
		t.Errorf("hourly: period ends %v, want %v", got, want)
	}
	if got, want := logPeriodEnd(LogRotationEveryMinute, mid), time.Date(2026, 3, 10, 14, 8, 0, 0, time.Local); !got.Equal(want) {
		t.Errorf("every minute: period ends %v, want %v", got, want)
	}
}

// TestLogRotationSwitchesOnTimer: with log_rotation every minute, the owner's rotation timer
// opens the next minute's file when the minute ends (the clock is moved so that it ends a
// moment after the start), and the logger writes there from then on; the previous file
// keeps what was written before.
func TestLogRotationSwitchesOnTimer(t *testing.T) {
	dir := t.TempDir()
	base := time.Date(2026, 12, 7, 10, 41, 59, 700e6, time.Local) // 300 ms before 10:42
	realStart := time.Now()
	logNow = func() time.Time { return base.Add(time.Since(realStart)) }
	defer func() { logNow = time.Now }()

	s := &Server{serverCore: &serverCore{}}
	s.eff = Settings{LogFile: filepath.Join(dir, "app.log"), LogRotation: LogRotationEveryMinute}
	if err := s.newLogger(); err != nil {
		t.Fatal(err)
	}
	defer s.logFile.Close()
	first := filepath.Join(dir, "app.log.202612071041")
	second := filepath.Join(dir, "app.log.202612071042")
	s.log.Warn("before the minute ends")
	s.startLogWatch()
	defer s.stopLogWatch()

	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(second); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the rotation timer did not open %s within 10 s", second)
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.log.Warn("after the minute ended")
	s.stopLogWatch()

	a, _ := os.ReadFile(first)
	b, _ := os.ReadFile(second)
	if !strings.Contains(string(a), "before the minute ends") || strings.Contains(string(a), "after the minute ended") {
		t.Errorf("%s holds %q, want only the line from before the rotation", first, a)
	}
	if !strings.Contains(string(b), "after the minute ended") || strings.Contains(string(b), "before the minute ends") {
		t.Errorf("%s holds %q, want only the line from after the rotation", second, b)
	}
	if _, err := os.Stat(filepath.Join(dir, "app.log")); !os.IsNotExist(err) {
		t.Errorf("log_file itself exists (%v): with a rotation only the dated files are written", err)
	}
	// Within the same period, a rotation check changes nothing.
	s.reopenLog(false)
	s.log.Warn("same minute")
	b, _ = os.ReadFile(second)
	if !strings.Contains(string(b), "same minute") {
		t.Errorf("%s holds %q after a check within the same minute, want the new line", second, b)
	}
}
