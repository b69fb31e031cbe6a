package swoole

import (
	"errors"
	"math"
	"reflect"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"
)

// kindType is the Go type a field of each kind must have.
func kindType(k optKind, field string) reflect.Type {
	switch k {
	case kindInt, kindSize:
		return reflect.TypeFor[int]()
	case kindInt64:
		return reflect.TypeFor[int64]()
	case kindBool:
		return reflect.TypeFor[bool]()
	case kindBoolPtr:
		return reflect.TypeFor[*bool]()
	case kindString:
		return reflect.TypeFor[string]()
	case kindSeconds:
		return durationType
	case kindLogLevel:
		return logLevelType
	case kindFunc:
		switch field {
		case "DispatchFunc":
			return reflect.TypeFor[func(s *Server, fd int64, eventType int, data []byte) int]()
		case "PackageLengthFunc":
			return reflect.TypeFor[func(data []byte) int]()
		}
	case kindSNI:
		return reflect.TypeFor[map[string]SSLCertPair]()
	}
	return nil
}

func TestOptionTableCoversEveryField(t *testing.T) {
	st := reflect.TypeFor[Settings]()
	seen := map[string]int{}
	for _, o := range options {
		seen[o.field]++
		f, ok := st.FieldByName(o.field)
		if !ok {
			t.Errorf("option %q names missing field %s", o.key, o.field)
			continue
		}
		if want := kindType(o.kind, o.field); f.Type != want {
			t.Errorf("option %q: field %s has type %s, the table's kind wants %v", o.key, o.field, f.Type, want)
		}
	}
	for i := range st.NumField() {
		f := st.Field(i)
		if n := seen[f.Name]; n != 1 {
			t.Errorf("field %s has %d entries in the options table, want 1", f.Name, n)
		}
	}
	for k := range unsupportedOptions {
		if _, ok := optionByKey[k]; ok {
			t.Errorf("key %q is both supported and unsupported", k)
		}
	}
}

// sample returns a non-zero value to give under o's key and the field value it must yield.
func sample(o *option) (given, want any) {
	switch o.kind {
	case kindInt:
		return 7, 7
	case kindSize:
		return 4096, 4096
	case kindInt64:
		return 1000, int64(1000)
	case kindBool:
		return true, true
	case kindBoolPtr:
		return false, Bool(false)
	case kindString:
		switch o.key {
		case "package_eof":
			return "\n", "\n"
		case "package_length_type":
			return "n", "n"
		case "admin_server":
			return "127.0.0.1:9502", "127.0.0.1:9502"
		}
		return "/x/" + o.key, "/x/" + o.key
	case kindSeconds:
		return 2, 2 * time.Second
	case kindLogLevel:
		return 4, LogLevelWarning
	case kindFunc:
		if o.field == "DispatchFunc" {
			f := func(s *Server, fd int64, eventType int, data []byte) int { return 1 }
			return f, f
		}
		f := func(data []byte) int { return 3 }
		return f, f
	case kindSNI:
		return map[string]any{"a.test": map[string]any{"ssl_cert_file": "/x/a.pem", "ssl_key_file": "/x/a.key"}},
			map[string]SSLCertPair{"a.test": {CertFile: "/x/a.pem", KeyFile: "/x/a.key"}}
	}
	panic("unknown kind")
}

// sameValue compares field values, funcs by pointer.
func sameValue(a, b reflect.Value) bool {
	if a.Kind() == reflect.Func {
		return a.Pointer() == b.Pointer()
	}
	return reflect.DeepEqual(a.Interface(), b.Interface())
}

func TestApplyOptionsEveryKey(t *testing.T) {
	for i := range options {
		o := &options[i]
		for _, k := range append([]string{o.key}, o.aliases...) {
			t.Run(k, func(t *testing.T) {
				given, want := sample(o)
				var s Settings
				if err := applyOptions(&s, map[string]any{k: given}, false); err != nil {
					t.Fatalf("applyOptions: %v", err)
				}
				rv := reflect.ValueOf(s)
				got := rv.FieldByName(o.field)
				if !sameValue(got, reflect.ValueOf(want)) {
					t.Fatalf("%s = %#v, want %#v", o.field, got.Interface(), want)
				}
				for j := range rv.NumField() {
					if f := rv.Type().Field(j); f.Name != o.field && !rv.Field(j).IsZero() {
						t.Errorf("%s also changed %s", k, f.Name)
					}
				}
				if err := applyOptions(&s, map[string]any{k: given}, o.port); err != nil && o.port {
					t.Errorf("port key %q refused on a port: %v", k, err)
				}
				// nil puts it back to the default.
				if err := applyOptions(&s, map[string]any{k: nil}, false); err != nil {
					t.Fatalf("applyOptions nil: %v", err)
				}
				if !reflect.ValueOf(s).FieldByName(o.field).IsZero() {
					t.Errorf("%s = nil did not reset %s", k, o.field)
				}
			})
		}
	}
}

type namedLengthFunc func(data []byte) int

func TestApplyOptionsValueForms(t *testing.T) {
	lf := namedLengthFunc(func(data []byte) int { return len(data) })
	tests := []struct {
		name  string
		opts  map[string]any
		check func(s Settings) bool
	}{
		{"size 2M", map[string]any{"package_max_length": "2M"}, func(s Settings) bool { return s.PackageMaxLength == 2<<20 }},
		{"size 64K", map[string]any{"socket_buffer_size": "64K"}, func(s Settings) bool { return s.SocketBufferSize == 64<<10 }},
		{"size 1G", map[string]any{"buffer_output_size": "1G"}, func(s Settings) bool { return s.BufferOutputSize == 1<<30 }},
		{"size 2mb lower", map[string]any{"buffer_input_size": "2mb"}, func(s Settings) bool { return s.BufferInputSize == 2<<20 }},
		{"size spaces", map[string]any{"buffer_high_watermark": " 8 k "}, func(s Settings) bool { return s.BufferHighWatermark == 8<<10 }},
		{"size digits", map[string]any{"max_queued_bytes": "4096"}, func(s Settings) bool { return s.MaxQueuedBytes == 4096 }},
		{"size float", map[string]any{"package_max_length": float64(65536)}, func(s Settings) bool { return s.PackageMaxLength == 65536 }},
		{"int float64 JSON", map[string]any{"worker_num": 4.0}, func(s Settings) bool { return s.WorkerNum == 4 }},
		{"int uint8", map[string]any{"worker_num": uint8(3)}, func(s Settings) bool { return s.WorkerNum == 3 }},
		{"int int32", map[string]any{"backlog": int32(128)}, func(s Settings) bool { return s.Backlog == 128 }},
		{"int named", map[string]any{"dispatch_mode": Mode(3)}, func(s Settings) bool { return s.DispatchMode == 3 }},
		{"int64 float", map[string]any{"start_session_id": 1e6}, func(s Settings) bool { return s.StartSessionID == 1000000 }},
		{"seconds int", map[string]any{"heartbeat_check_interval": 5}, func(s Settings) bool { return s.HeartbeatCheckInterval == 5*time.Second }},
		{"seconds float", map[string]any{"heartbeat_idle_time": 1.5}, func(s Settings) bool { return s.HeartbeatIdleTime == 1500*time.Millisecond }},
		{"seconds Duration", map[string]any{"max_wait_time": 250 * time.Millisecond}, func(s Settings) bool { return s.MaxWaitTime == 250*time.Millisecond }},
		{"seconds send_timeout", map[string]any{"send_timeout": 0.1}, func(s Settings) bool { return s.SendTimeout == 100*time.Millisecond }},
		{"seconds max_idle_time", map[string]any{"max_idle_time": int64(9)}, func(s Settings) bool { return s.MaxIdleTime == 9*time.Second }},
		{"log_level LogLevel", map[string]any{"log_level": LogLevelError}, func(s Settings) bool { return s.LogLevel == LogLevelError }},
		{"log_level 0 is debug", map[string]any{"log_level": 0}, func(s Settings) bool { return s.LogLevel == LogLevelDebug }},
		{"log_level float", map[string]any{"log_level": 6.0}, func(s Settings) bool { return s.LogLevel == LogLevelNone }},
		{"named func", map[string]any{"package_length_func": lf}, func(s Settings) bool {
			return s.PackageLengthFunc != nil && s.PackageLengthFunc([]byte("abc")) == 3
		}},
		{"false clears", map[string]any{"open_eof_check": false}, func(s Settings) bool { return !s.OpenEOFCheck }},
		{"bool ptr true", map[string]any{"reload_async": true}, func(s Settings) bool { return s.ReloadAsync != nil && *s.ReloadAsync }},
		{"max_request_grace -1", map[string]any{"max_request_grace": -1}, func(s Settings) bool { return s.MaxRequestGrace == -1 }},
		{"empty map", map[string]any{}, func(s Settings) bool { return s.WorkerNum == 9 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Settings{WorkerNum: 9, OpenEOFCheck: true}
			if err := applyOptions(&s, tt.opts, false); err != nil {
				t.Fatalf("applyOptions(%v): %v", tt.opts, err)
			}
			if !tt.check(s) {
				t.Fatalf("applyOptions(%v) gave %+v", tt.opts, s)
			}
		})
	}
}

// wantError checks that err is an *Error with code and that its message has every part.
func wantError(t *testing.T, err error, code int, parts ...string) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not an *Error", err, err)
	}
	if e.Code != code {
		t.Fatalf("code %d, want %d: %v", e.Code, code, err)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not mention %q", err, p)
		}
	}
}

func TestApplyOptionsErrors(t *testing.T) {
	tests := []struct {
		name  string
		opts  map[string]any
		code  int
		parts []string
	}{
		{"int from string", map[string]any{"worker_num": "four"}, ErrInvalidParams, []string{`"worker_num"`, "integer", "string"}},
		{"int from fraction", map[string]any{"worker_num": 1.5}, ErrInvalidParams, []string{`"worker_num"`, "whole"}},
		{"int from Duration", map[string]any{"reactor_num": time.Second}, ErrInvalidParams, []string{`"reactor_num"`, "time.Duration"}},
		{"int from bool", map[string]any{"backlog": true}, ErrInvalidParams, []string{`"backlog"`, "bool"}},
		{"int overflow", map[string]any{"max_request": uint64(math.MaxUint64)}, ErrInvalidParams, []string{`"max_request"`, "out of range"}},
		{"bool from int", map[string]any{"open_eof_check": 1}, ErrInvalidParams, []string{`"open_eof_check"`, "a bool", "int"}},
		{"bool from string", map[string]any{"daemonize": "true"}, ErrInvalidParams, []string{`"daemonize"`, "a bool"}},
		{"bool ptr from int", map[string]any{"enable_coroutine": 0}, ErrInvalidParams, []string{`"enable_coroutine"`, "a bool"}},
		{"string from int", map[string]any{"package_eof": 5}, ErrInvalidParams, []string{`"package_eof"`, "a string"}},
		{"empty package_eof", map[string]any{"package_eof": ""}, ErrInvalidParams, []string{`"package_eof"`, "empty"}},
		{"empty package_length_type", map[string]any{"package_length_type": ""}, ErrInvalidParams, []string{`"package_length_type"`, "empty"}},
		{"seconds from string", map[string]any{"max_wait_time": "3"}, ErrInvalidParams, []string{`"max_wait_time"`, "duration", "string"}},
		{"size bad suffix", map[string]any{"socket_buffer_size": "2X"}, ErrInvalidParams, []string{`"socket_buffer_size"`, `"2X"`}},
		{"size too large", map[string]any{"socket_buffer_size": "99999999999999G"}, ErrInvalidParams, []string{`"socket_buffer_size"`, "too large"}},
		{"size from bool", map[string]any{"package_max_length": false}, ErrInvalidParams, []string{`"package_max_length"`, "size"}},
		{"log_level out of range", map[string]any{"log_level": 9}, ErrInvalidParams, []string{`"log_level"`, "0 (DEBUG) .. 6 (NONE)"}},
		{"log_level negative", map[string]any{"log_level": -1}, ErrInvalidParams, []string{`"log_level"`}},
		{"log_level string", map[string]any{"log_level": "info"}, ErrInvalidParams, []string{`"log_level"`, "log level"}},
		{"dispatch_func wrong signature", map[string]any{"dispatch_func": func(fd int) int { return 0 }}, ErrInvalidParams, []string{`"dispatch_func"`, "func(int) int"}},
		{"package_length_func wrong signature", map[string]any{"package_length_func": func(data []byte) int64 { return 0 }}, ErrInvalidParams, []string{`"package_length_func"`, "func([]uint8) int"}},
		{"func from string", map[string]any{"package_length_func": "strlen"}, ErrInvalidParams, []string{`"package_length_func"`, "function"}},
		{"unknown with suggestion", map[string]any{"wokrer_num": 2}, ErrInvalidParams, []string{`"wokrer_num"`, `did you mean "worker_num"`}},
		{"unknown alias-like", map[string]any{"max_connections": 2}, ErrInvalidParams, []string{`"max_connections"`, `"max_connection"`}},
		{"unknown far", map[string]any{"zzzzzzzz_qqqq": 2}, ErrInvalidParams, []string{`unknown setting "zzzzzzzz_qqqq"`}},
		{"first error in key order", map[string]any{"zz_unknown": 1, "backlog": "x"}, ErrInvalidParams, []string{`"backlog"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := Settings{WorkerNum: 3, Backlog: 10}
			s := before
			opts := map[string]any{"task_worker_num": 5} // applies, but must not stick on error
			for k, v := range tt.opts {
				opts[k] = v
			}
			err := applyOptions(&s, opts, false)
			wantError(t, err, tt.code, tt.parts...)
			if !reflect.DeepEqual(s, before) {
				t.Errorf("dst changed on error: %+v", s)
			}
		})
	}
	t.Run("unknown has no suggestion when far", func(t *testing.T) {
		err := applyOptions(&Settings{}, map[string]any{"zzzzzzzz_qqqq": 1}, false)
		if strings.Contains(err.Error(), "did you mean") {
			t.Errorf("unexpected suggestion: %v", err)
		}
	})
}

func TestApplyOptionsUnsupported(t *testing.T) {
	php := []string{"hook_flags", "display_errors", "enable_preemptive_scheduler", "c_stack_size",
		"max_coroutine", "task_use_object", "task_object", "event_object",
		"open_http_protocol", "open_websocket_protocol", "open_http2_protocol", "open_mqtt_protocol",
		"open_redis_protocol", "bootstrap", "init_arguments", "single_thread",
		"message_queue_key"}
	keys := append([]string{}, php...)
	for k := range unsupportedOptions {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		t.Run(k, func(t *testing.T) {
			if unsupportedOptions[k] == "" {
				t.Fatalf("%q has no reason in unsupportedOptions", k)
			}
			for _, port := range []bool{false, true} {
				err := applyOptions(&Settings{}, map[string]any{k: true}, port)
				wantError(t, err, ErrOperationNotSupport, `"`+k+`"`, "not supported", unsupportedOptions[k])
			}
		})
	}
}

func TestPortOnly(t *testing.T) {
	for i := range options {
		o := &options[i]
		t.Run(o.key, func(t *testing.T) {
			given, want := sample(o)
			err := applyOptions(&Settings{}, map[string]any{o.key: given}, true)
			var s Settings
			reflect.ValueOf(&s).Elem().FieldByName(o.field).Set(reflect.ValueOf(want))
			perr := portSettingsOnly(s)
			if o.port {
				if err != nil {
					t.Errorf("applyOptions on a port: %v", err)
				}
				if perr != nil {
					t.Errorf("portSettingsOnly: %v", perr)
				}
				return
			}
			wantError(t, err, ErrInvalidParams, o.key, "is a server setting; set it on the Server, not on a Port")
			wantError(t, perr, ErrInvalidParams, o.key, "Settings."+o.field, "is a server setting")
		})
	}
	t.Run("alias", func(t *testing.T) {
		err := applyOptions(&Settings{}, map[string]any{"output_buffer_size": 10}, true)
		wantError(t, err, ErrInvalidParams, "buffer_output_size", "server setting")
	})
	t.Run("port keys table", func(t *testing.T) {
		want := []string{"backlog", "open_tcp_nodelay", "open_tcp_keepalive", "tcp_keepidle",
			"tcp_keepinterval", "tcp_keepcount", "tcp_defer_accept", "tcp_fastopen", "tcp_user_timeout",
			"socket_buffer_size", "kernel_socket_recv_buffer_size", "kernel_socket_send_buffer_size",
			"buffer_high_watermark", "buffer_low_watermark", "heartbeat_idle_time", "max_idle_time", "frame_timeout",
			"open_eof_check", "open_eof_split", "package_eof", "open_length_check", "package_length_type",
			"package_length_offset", "package_body_offset", "package_length_func", "package_max_length",
			"ssl_cert_file", "ssl_key_file", "ssl_verify_peer", "ssl_client_cert_file",
			"ssl_allow_self_signed", "ssl_protocols", "ssl_ciphers", "ssl_verify_depth", "ssl_sni_certs"}
		var got []string
		for _, o := range options {
			if o.port {
				got = append(got, o.key)
			}
		}
		sort.Strings(want)
		sort.Strings(got)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("port keys\n got %v\nwant %v", got, want)
		}
	})
	t.Run("zero settings", func(t *testing.T) {
		if err := portSettingsOnly(Settings{Backlog: 5, OpenEOFSplit: true, SSLCertFile: "a"}); err != nil {
			t.Error(err)
		}
	})
}

func TestWithDefaults(t *testing.T) {
	ncpu := runtime.NumCPU()
	d := Settings{}.withDefaults()
	checks := []struct {
		name      string
		got, want any
	}{
		{"worker_num", d.WorkerNum, ncpu},
		{"reactor_num", d.ReactorNum, min(ncpu, 8)},
		{"backlog", d.Backlog, 512},
		{"max_connection", d.MaxConnection, defaultMaxConnectionLimit()},
		{"package_max_length", d.PackageMaxLength, 2 << 20},
		{"buffer_input_size", d.BufferInputSize, 2 << 20},
		{"buffer_output_size", d.BufferOutputSize, math.MaxUint32},
		{"socket_buffer_size", d.SocketBufferSize, 2 << 20},
		{"buffer_high_watermark", d.BufferHighWatermark, 2 << 20},
		{"buffer_low_watermark", d.BufferLowWatermark, 0},
		{"package_eof", d.PackageEOF, "\r\n\r\n"},
		{"package_length_type", d.PackageLengthType, "N"},
		{"max_wait_time", d.MaxWaitTime, 3 * time.Second},
		{"tcp_keepidle", d.TCPKeepIdle, 3600},
		{"tcp_keepinterval", d.TCPKeepInterval, 60},
		{"tcp_keepcount", d.TCPKeepCount, 5},
		{"dispatch_mode", d.DispatchMode, DispatchFDMod},
		{"task_ipc_mode", d.TaskIPCMode, 1},
		{"task_tmpdir", d.TaskTmpdir, "/tmp"},
		{"log_level", d.LogLevel, LogLevelInfo},
		{"reload_async", *d.ReloadAsync, true},
		{"enable_coroutine", *d.EnableCoroutine, true},
		{"heartbeat_check_interval", d.HeartbeatCheckInterval, time.Duration(0)},
		{"heartbeat_idle_time", d.HeartbeatIdleTime, time.Duration(0)},
		{"open_eof_check", d.OpenEOFCheck, false},
		{"open_length_check", d.OpenLengthCheck, false},
		{"send_yield", d.SendYield, false},
		{"max_request_grace", d.MaxRequestGrace, 0},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			if !reflect.DeepEqual(c.got, c.want) {
				t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
			}
		})
	}
	if d.MaxConnection < 1 || d.MaxConnection > 100000 {
		t.Errorf("max_connection %d", d.MaxConnection)
	}

	cases := []struct {
		name  string
		in    Settings
		check func(s Settings) bool
	}{
		{"heartbeat interval only", Settings{HeartbeatCheckInterval: 5 * time.Second}, func(s Settings) bool {
			return s.HeartbeatCheckInterval == 5*time.Second && s.HeartbeatIdleTime == 10*time.Second
		}},
		{"heartbeat idle only", Settings{HeartbeatIdleTime: 10 * time.Second}, func(s Settings) bool {
			return s.HeartbeatCheckInterval == 5*time.Second && s.HeartbeatIdleTime == 10*time.Second
		}},
		{"heartbeat idle only, at least 1s", Settings{HeartbeatIdleTime: time.Second}, func(s Settings) bool {
			return s.HeartbeatCheckInterval == time.Second && s.HeartbeatIdleTime == time.Second
		}},
		{"heartbeat both", Settings{HeartbeatCheckInterval: 2 * time.Second, HeartbeatIdleTime: 7 * time.Second}, func(s Settings) bool {
			return s.HeartbeatCheckInterval == 2*time.Second && s.HeartbeatIdleTime == 7*time.Second
		}},
		{"eof split implies check", Settings{OpenEOFSplit: true}, func(s Settings) bool { return s.OpenEOFCheck && s.OpenEOFSplit }},
		{"length func implies length check", Settings{PackageLengthFunc: func([]byte) int { return 0 }}, func(s Settings) bool { return s.OpenLengthCheck }},
		{"reactor capped at worker_num", Settings{WorkerNum: 1, ReactorNum: 4}, func(s Settings) bool { return s.ReactorNum == 1 }},
		{"grace from max_request", Settings{MaxRequest: 100, TaskMaxRequest: 20}, func(s Settings) bool {
			return s.MaxRequestGrace == 50 && s.TaskMaxRequestGrace == 10
		}},
		{"no grace for small max_request", Settings{MaxRequest: 10}, func(s Settings) bool { return s.MaxRequestGrace == 0 }},
		{"grace -1 stays", Settings{MaxRequest: 100, MaxRequestGrace: -1}, func(s Settings) bool { return s.MaxRequestGrace == -1 }},
		{"high watermark follows socket buffer", Settings{SocketBufferSize: 1 << 20}, func(s Settings) bool { return s.BufferHighWatermark == 1<<20 }},
		{"bools kept false", Settings{ReloadAsync: Bool(false), EnableCoroutine: Bool(false)}, func(s Settings) bool {
			return !*s.ReloadAsync && !*s.EnableCoroutine
		}},
		{"given values kept", Settings{WorkerNum: 3, Backlog: 7, PackageEOF: "\n", LogLevel: LogLevelDebug}, func(s Settings) bool {
			return s.WorkerNum == 3 && s.Backlog == 7 && s.PackageEOF == "\n" && s.LogLevel == LogLevelDebug
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := c.in.withDefaults()
			if !c.check(r) {
				t.Fatalf("withDefaults(%+v) = %+v", c.in, r)
			}
			if err := r.validate(); err != nil {
				t.Errorf("validate after withDefaults: %v", err)
			}
			if c.in.PackageLengthFunc == nil && !reflect.DeepEqual(r.withDefaults(), r) {
				t.Errorf("withDefaults is not idempotent")
			}
		})
	}
}

func TestValidate(t *testing.T) {
	lf := func([]byte) int { return 0 }
	bad := []struct {
		name  string
		s     Settings
		parts []string
	}{
		{"negative worker_num", Settings{WorkerNum: -1}, []string{"worker_num", "Settings.WorkerNum", "negative"}},
		{"negative reactor_num", Settings{ReactorNum: -2}, []string{"reactor_num"}},
		{"negative max_connection", Settings{MaxConnection: -1}, []string{"max_connection"}},
		{"negative task_worker_num", Settings{TaskWorkerNum: -1}, []string{"task_worker_num"}},
		{"negative backlog", Settings{Backlog: -1}, []string{"backlog"}},
		{"negative package_max_length", Settings{PackageMaxLength: -1}, []string{"package_max_length"}},
		{"negative socket_buffer_size", Settings{SocketBufferSize: -5}, []string{"socket_buffer_size"}},
		{"negative package_length_offset", Settings{PackageLengthOffset: -1}, []string{"package_length_offset"}},
		{"negative start_session_id", Settings{StartSessionID: -1}, []string{"start_session_id"}},
		{"negative grace below -1", Settings{MaxRequestGrace: -2}, []string{"max_request_grace", "-1 for no grace"}},
		{"negative heartbeat", Settings{HeartbeatCheckInterval: -time.Second}, []string{"heartbeat_check_interval", "negative"}},
		{"negative max_wait_time", Settings{MaxWaitTime: -1}, []string{"max_wait_time"}},
		{"negative tcp_keepcount", Settings{TCPKeepCount: -1}, []string{"tcp_keepcount"}},
		{"worker_num above cap", Settings{WorkerNum: runtime.NumCPU()*1000 + 1}, []string{"worker_num", "CPU count × 1000"}},
		{"max_connection above cap", Settings{MaxConnection: 1<<20 + 1}, []string{"max_connection", "1048576"}},
		{"dispatch_mode 6", Settings{DispatchMode: 6}, []string{"dispatch_mode", "6", "1 (round robin)"}},
		{"dispatch_mode 8", Settings{DispatchMode: 8}, []string{"dispatch_mode"}},
		{"task_ipc_mode 4", Settings{TaskIPCMode: 4}, []string{"task_ipc_mode", "4"}},
		{"log_level 7", Settings{LogLevel: LogLevelNone + 1}, []string{"log_level", "7", "0 (DEBUG) .. 6 (NONE)"}},
		{"log_level negative", Settings{LogLevel: -1}, []string{"log_level"}},
		{"package_eof too long", Settings{OpenEOFCheck: true, PackageEOF: "123456789"}, []string{"package_eof", "9 bytes", "at most 8"}},
		{"package_length_type unknown", Settings{PackageLengthType: "x"}, []string{"package_length_type", `"x"`}},
		{"package_length_type two chars", Settings{PackageLengthType: "NN"}, []string{"package_length_type"}},
		{"eof and length", Settings{OpenEOFCheck: true, OpenLengthCheck: true}, []string{"open_length_check", "open_eof_check", "pick one"}},
		{"eof split and length", Settings{OpenEOFSplit: true, OpenLengthCheck: true}, []string{"open_eof_split"}},
		{"eof and length func", Settings{OpenEOFCheck: true, PackageLengthFunc: lf}, []string{"package_length_func", "open_eof_check"}},
		{"low above high", Settings{BufferHighWatermark: 100, BufferLowWatermark: 200}, []string{"buffer_low_watermark", "200", "100"}},
		{"low above default high", Settings{BufferLowWatermark: 3 << 20}, []string{"buffer_low_watermark"}},
		{"send_yield with round robin", Settings{SendYield: true, DispatchMode: DispatchRoundRobin}, []string{"send_yield", "dispatch_mode"}},
		{"send_yield with idle", Settings{SendYield: true, DispatchMode: DispatchIdle}, []string{"send_yield"}},
		{"cert without key", Settings{SSLCertFile: "c.pem"}, []string{"ssl_key_file", "both"}},
		{"key without cert", Settings{SSLKeyFile: "k.pem"}, []string{"ssl_cert_file", "both"}},
		{"verify_peer without CA", Settings{SSLCertFile: "c", SSLKeyFile: "k", SSLVerifyPeer: true}, []string{"ssl_client_cert_file", "ssl_verify_peer"}},
		{"ssl_protocols unknown bit", Settings{SSLProtocols: 1}, []string{"ssl_protocols"}},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			wantError(t, tt.s.validate(), ErrInvalidParams, tt.parts...)
		})
	}
	good := []struct {
		name string
		s    Settings
	}{
		{"zero", Settings{}},
		{"every dispatch mode", Settings{DispatchMode: DispatchStream}},
		{"uid mode", Settings{DispatchMode: DispatchUIDMod, SendYield: true}},
		{"eof", Settings{OpenEOFSplit: true, PackageEOF: "12345678"}},
		{"length", Settings{OpenLengthCheck: true, PackageLengthType: "V", PackageLengthOffset: 4, PackageBodyOffset: 8}},
		{"length func", Settings{PackageLengthFunc: lf}},
		{"grace -1", Settings{MaxRequest: 100, MaxRequestGrace: -1, TaskMaxRequestGrace: -1}},
		{"watermarks", Settings{BufferHighWatermark: 8 << 20, BufferLowWatermark: 1 << 20}},
		{"tls", Settings{SSLCertFile: "c", SSLKeyFile: "k", SSLVerifyPeer: true, SSLClientCertFile: "ca", SSLProtocols: 32 | 64}},
		{"log levels", Settings{LogLevel: LogLevelNone}},
		{"task ipc 3", Settings{TaskIPCMode: 3}},
	}
	for _, tt := range good {
		t.Run("ok "+tt.name, func(t *testing.T) {
			if err := tt.s.validate(); err != nil {
				t.Error(err)
			}
			if err := tt.s.withDefaults().validate(); err != nil {
				t.Errorf("after withDefaults: %v", err)
			}
		})
	}
}

func TestMerge(t *testing.T) {
	lf := func([]byte) int { return 1 }
	a := Settings{WorkerNum: 4, Backlog: 100, OpenEOFCheck: true, PackageEOF: "\n", ReloadAsync: Bool(false), PackageLengthFunc: lf}
	b := Settings{WorkerNum: 2, MaxRequest: 7, EnableCoroutine: Bool(false)}
	m := a.merge(b)
	want := Settings{WorkerNum: 2, Backlog: 100, MaxRequest: 7, OpenEOFCheck: true, PackageEOF: "\n",
		ReloadAsync: Bool(false), EnableCoroutine: Bool(false)}
	if m.PackageLengthFunc == nil {
		t.Fatal("merge dropped PackageLengthFunc")
	}
	m.PackageLengthFunc = nil
	if !reflect.DeepEqual(m, want) {
		t.Errorf("merge\n got %+v\nwant %+v", m, want)
	}
	t.Run("zero keeps everything", func(t *testing.T) {
		c := a.merge(Settings{})
		if c.WorkerNum != 4 || !c.OpenEOFCheck || *c.ReloadAsync || c.PackageLengthFunc == nil {
			t.Errorf("merge with zero changed settings: %+v", c)
		}
	})
	t.Run("bool ptr true overrides false", func(t *testing.T) {
		if c := a.merge(Settings{ReloadAsync: Bool(true)}); !*c.ReloadAsync {
			t.Error("ReloadAsync not overridden")
		}
	})
	t.Run("every field overrides", func(t *testing.T) {
		var o Settings
		ov := reflect.ValueOf(&o).Elem()
		for i := range options {
			_, want := sample(&options[i])
			ov.FieldByName(options[i].field).Set(reflect.ValueOf(want))
		}
		got := reflect.ValueOf(Settings{}.merge(o))
		for i := range ov.NumField() {
			if !sameValue(got.Field(i), ov.Field(i)) {
				t.Errorf("field %s not merged", ov.Type().Field(i).Name)
			}
		}
	})
}

func TestToMap(t *testing.T) {
	d := Settings{}.withDefaults()
	m := d.toMap()
	t.Run("keys", func(t *testing.T) {
		if len(m) != len(options) || len(m) != reflect.TypeFor[Settings]().NumField() {
			t.Errorf("toMap has %d keys, table %d, fields %d", len(m), len(options), reflect.TypeFor[Settings]().NumField())
		}
		for _, o := range options {
			if _, ok := m[o.key]; !ok {
				t.Errorf("toMap lacks %q", o.key)
			}
			for _, a := range o.aliases {
				if _, ok := m[a]; ok {
					t.Errorf("toMap has alias %q", a)
				}
			}
		}
	})
	values := map[string]any{
		"worker_num":          runtime.NumCPU(),
		"backlog":             512,
		"log_level":           2,
		"max_wait_time":       3.0,
		"reload_async":        true,
		"enable_coroutine":    true,
		"package_eof":         "\r\n\r\n",
		"buffer_output_size":  math.MaxUint32,
		"start_session_id":    int64(0),
		"dispatch_func":       nil,
		"package_length_func": nil,
		"open_eof_check":      false,
	}
	for k, want := range values {
		t.Run(k, func(t *testing.T) {
			if got := m[k]; !reflect.DeepEqual(got, want) {
				t.Errorf("toMap[%q] = %#v (%T), want %#v (%T)", k, got, got, want, want)
			}
		})
	}
	t.Run("raw settings", func(t *testing.T) {
		r := Settings{HeartbeatIdleTime: 1500 * time.Millisecond}.toMap()
		if r["worker_num"] != 0 || r["reload_async"] != true || r["log_level"] != 2 || r["heartbeat_idle_time"] != 1.5 {
			t.Errorf("raw toMap: %v", r)
		}
	})
	t.Run("round trip", func(t *testing.T) {
		src := Settings{
			WorkerNum: 3, HeartbeatCheckInterval: 1500 * time.Millisecond, OpenEOFSplit: true, PackageEOF: "\n",
			LogLevel: LogLevelDebug, ReloadAsync: Bool(false), StartSessionID: 1 << 40,
			DispatchFunc: func(*Server, int64, int, []byte) int { return 0 },
		}.withDefaults()
		var back Settings
		if err := applyOptions(&back, src.toMap(), false); err != nil {
			t.Fatal(err)
		}
		// A resolved grace of 0 is none; the key's 0 comes back as -1, none too (Swoole: an
		// explicit max_request_grace 0 turns the grace off).
		for _, g := range []*int{&back.MaxRequestGrace, &back.TaskMaxRequestGrace} {
			if *g == -1 {
				*g = 0
			}
		}
		sv, bv := reflect.ValueOf(src), reflect.ValueOf(back)
		for i := range sv.NumField() {
			if !sameValue(sv.Field(i), bv.Field(i)) {
				t.Errorf("%s: %v came back as %v", sv.Type().Field(i).Name, sv.Field(i), bv.Field(i))
			}
		}
	})
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true}, {"1", 1, true}, {"1k", 1024, true}, {"1KB", 1024, true}, {"3m", 3 << 20, true},
		{"2G", 2 << 30, true}, {"-1", -1, true}, {"", 0, false}, {"K", 0, false}, {"1.5M", 0, false},
		{"B", 0, false}, {"12B", 0, false}, {"1T", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseSize(tt.in)
			if (err == nil) != tt.ok || got != tt.want {
				t.Errorf("parseSize(%q) = %d, %v", tt.in, got, err)
			}
		})
	}
}

func TestLogLevel(t *testing.T) {
	if LogLevelDefault.SwooleLevel() != 2 || LogLevelDebug.SwooleLevel() != 0 || LogLevelNone.SwooleLevel() != 6 {
		t.Error("SwooleLevel numbers")
	}
	if LogLevelWarning.String() != "warning" || LogLevel(42).String() != "LogLevel(42)" {
		t.Error("String")
	}
}

func TestSetHelpers(t *testing.T) {
	cur := Settings{WorkerNum: 2, OpenEOFCheck: true}
	t.Run("merge ok", func(t *testing.T) {
		n, err := mergeSettings(cur, Settings{Backlog: 9}, false)
		if err != nil || n.WorkerNum != 2 || n.Backlog != 9 || !n.OpenEOFCheck {
			t.Fatalf("%+v, %v", n, err)
		}
	})
	t.Run("merge invalid combination", func(t *testing.T) {
		n, err := mergeSettings(cur, Settings{OpenLengthCheck: true}, false)
		wantError(t, err, ErrInvalidParams, "open_length_check")
		if !reflect.DeepEqual(n, cur) {
			t.Errorf("settings changed on error: %+v", n)
		}
	})
	t.Run("merge server key on port", func(t *testing.T) {
		_, err := mergeSettings(Settings{}, Settings{WorkerNum: 1}, true)
		wantError(t, err, ErrInvalidParams, "worker_num", "server setting")
	})
	t.Run("options ok", func(t *testing.T) {
		n, err := applySettingsOptions(cur, map[string]any{"open_eof_check": false, "open_length_check": true}, true)
		if err != nil || n.OpenEOFCheck || !n.OpenLengthCheck || n.WorkerNum != 2 {
			t.Fatalf("%+v, %v", n, err)
		}
	})
	t.Run("options invalid", func(t *testing.T) {
		n, err := applySettingsOptions(cur, map[string]any{"dispatch_mode": 6}, false)
		wantError(t, err, ErrInvalidParams, "dispatch_mode")
		if !reflect.DeepEqual(n, cur) {
			t.Errorf("settings changed on error: %+v", n)
		}
	})
}
