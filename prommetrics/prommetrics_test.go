package prommetrics_test

import (
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/goswoole/swoole"
	_ "github.com/goswoole/swoole/prommetrics"
)

// With the package imported, /metrics is client_golang's: the server's families and its
// whole Go collector (go_gc_duration_seconds is one that only client_golang writes).
func TestMetricsWithClientGolang(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	admin := ln.Addr().String()
	ln.Close()
	s, err := swoole.NewServer("127.0.0.1", 0, swoole.ModeBase, swoole.SockTCP)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetOptions(map[string]any{"log_level": 6, "max_connection": 64, "admin_server": admin}); err != nil {
		t.Fatal(err)
	}
	s.OnReceive(func(*swoole.Server, int64, int, []byte) {})
	done := make(chan error, 1)
	go func() { done <- s.Start() }()
	defer func() {
		_ = s.Shutdown()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Start: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Start did not return")
		}
	}()
	var body string
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + admin + "/metrics")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				body = string(b)
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no /metrics: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	for _, name := range []string{"goswoole_connection_num", "go_gc_duration_seconds", "process_resident_memory_bytes"} {
		if fams[name] == nil {
			t.Errorf("/metrics has no %s (%d families)", name, len(fams))
		}
	}
	if f := fams["goswoole_connection_num"]; f != nil {
		if v := f.GetMetric()[0].GetGauge().GetValue(); v != 0 {
			t.Errorf("goswoole_connection_num = %s, want 0", strconv.FormatFloat(v, 'g', -1, 64))
		}
	}
}
