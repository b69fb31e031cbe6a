package swoole

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
)

// optKind is how a Swoole key's value is read and which Go type its field has.
type optKind int

const (
	kindInt      optKind = iota // int: Go integers, or a float64 with a whole value (JSON)
	kindSize                    // int bytes: as kindInt, or a string "2M", "64K", "1G", "4096"
	kindInt64                   // int64: as kindInt
	kindBool                    // bool: a bool only
	kindBoolPtr                 // *bool: a bool only (stored as Bool(v))
	kindString                  // string: a string only
	kindSeconds                 // time.Duration: seconds as an integer or float, or a time.Duration
	kindLogLevel                // LogLevel: Swoole's 0..6, or a LogLevel
	kindFunc                    // a func field: a func with exactly the field's signature
	kindSNI                     // map[string]SSLCertPair: that, or map[string]any of {ssl_cert_file, ssl_key_file}
)

// option ties one Swoole key (and its aliases) to one Settings field. This table is the
// only place that knows the keys: applyOptions, toMap, validate and portSettingsOnly all
// read it, and the tests check that every Settings field has exactly one entry.
type option struct {
	key     string
	aliases []string
	field   string  // the Settings field's name
	kind    optKind // how the value is read, and the field's Go type
	port    bool    // may be given to Port.Set (semantics.md (d), PORT_OPTIONS)
	index   []int   // the field's index, filled in by init
}

var options = []option{
	// processes, mode and limits: server only
	{key: "reactor_num", field: "ReactorNum", kind: kindInt},
	{key: "worker_num", field: "WorkerNum", kind: kindInt},
	{key: "max_request", field: "MaxRequest", kind: kindInt},
	{key: "max_request_grace", field: "MaxRequestGrace", kind: kindInt},
	{key: "max_connection", aliases: []string{"max_conn"}, field: "MaxConnection", kind: kindInt},
	{key: "task_worker_num", field: "TaskWorkerNum", kind: kindInt},
	{key: "task_ipc_mode", field: "TaskIPCMode", kind: kindInt},
	{key: "task_max_request", field: "TaskMaxRequest", kind: kindInt},
	{key: "task_enable_coroutine", field: "TaskEnableCoroutine", kind: kindBool},
	{key: "task_max_request_grace", field: "TaskMaxRequestGrace", kind: kindInt},
	{key: "task_tmpdir", field: "TaskTmpdir", kind: kindString},
	{key: "dispatch_mode", field: "DispatchMode", kind: kindInt},
	{key: "dispatch_func", field: "DispatchFunc", kind: kindFunc},
	{key: "daemonize", field: "Daemonize", kind: kindBool},
	{key: "pid_file", field: "PidFile", kind: kindString},
	{key: "user", field: "User", kind: kindString},
	{key: "group", field: "Group", kind: kindString},
	{key: "start_session_id", field: "StartSessionID", kind: kindInt64},
	{key: "log_file", field: "LogFile", kind: kindString},
	{key: "log_level", field: "LogLevel", kind: kindLogLevel},
	{key: "log_rotation", field: "LogRotation", kind: kindInt},
	{key: "stats_file", field: "StatsFile", kind: kindString},
	{key: "admin_server", field: "AdminServer", kind: kindString},
	{key: "enable_reuse_port", field: "EnableReusePort", kind: kindBool},
	{key: "reload_async", field: "ReloadAsync", kind: kindBoolPtr},
	{key: "max_wait_time", field: "MaxWaitTime", kind: kindSeconds},
	{key: "enable_coroutine", field: "EnableCoroutine", kind: kindBoolPtr},
	{key: "send_yield", field: "SendYield", kind: kindBool},
	{key: "send_timeout", field: "SendTimeout", kind: kindSeconds},
	{key: "max_queued_bytes", field: "MaxQueuedBytes", kind: kindSize},
	{key: "redeliver_event_in_hand", field: "RedeliverEventInHand", kind: kindBool},
	{key: "buffer_output_size", aliases: []string{"output_buffer_size"}, field: "BufferOutputSize", kind: kindSize},
	{key: "buffer_input_size", aliases: []string{"input_buffer_size"}, field: "BufferInputSize", kind: kindSize},
	{key: "discard_timeout_request", field: "DiscardTimeoutRequest", kind: kindBool},
	{key: "enable_unsafe_event", field: "EnableUnsafeEvent", kind: kindBool},
	{key: "enable_delay_receive", field: "EnableDelayReceive", kind: kindBool},
	{key: "heartbeat_check_interval", field: "HeartbeatCheckInterval", kind: kindSeconds},

	// sockets: port
	{key: "backlog", field: "Backlog", kind: kindInt, port: true},
	{key: "open_tcp_nodelay", field: "OpenTCPNoDelay", kind: kindBool, port: true},
	{key: "open_tcp_keepalive", field: "OpenTCPKeepalive", kind: kindBool, port: true},
	{key: "tcp_keepidle", field: "TCPKeepIdle", kind: kindInt, port: true},
	{key: "tcp_keepinterval", field: "TCPKeepInterval", kind: kindInt, port: true},
	{key: "tcp_keepcount", field: "TCPKeepCount", kind: kindInt, port: true},
	{key: "tcp_defer_accept", field: "TCPDeferAccept", kind: kindInt, port: true},
	{key: "tcp_fastopen", field: "TCPFastOpen", kind: kindBool, port: true},
	{key: "tcp_user_timeout", field: "TCPUserTimeout", kind: kindInt, port: true},
	{key: "socket_buffer_size", field: "SocketBufferSize", kind: kindSize, port: true},
	{key: "kernel_socket_recv_buffer_size", field: "KernelSocketRecvBufferSize", kind: kindSize, port: true},
	{key: "kernel_socket_send_buffer_size", field: "KernelSocketSendBufferSize", kind: kindSize, port: true},
	{key: "buffer_high_watermark", field: "BufferHighWatermark", kind: kindSize, port: true},
	{key: "buffer_low_watermark", field: "BufferLowWatermark", kind: kindSize, port: true},
	{key: "heartbeat_idle_time", field: "HeartbeatIdleTime", kind: kindSeconds, port: true},
	{key: "max_idle_time", field: "MaxIdleTime", kind: kindSeconds, port: true},
	{key: "frame_timeout", field: "FrameTimeout", kind: kindSeconds, port: true},

	// input framing: port
	{key: "open_eof_check", field: "OpenEOFCheck", kind: kindBool, port: true},
	{key: "open_eof_split", field: "OpenEOFSplit", kind: kindBool, port: true},
	{key: "package_eof", field: "PackageEOF", kind: kindString, port: true},
	{key: "open_length_check", field: "OpenLengthCheck", kind: kindBool, port: true},
	{key: "package_length_type", field: "PackageLengthType", kind: kindString, port: true},
	{key: "package_length_offset", field: "PackageLengthOffset", kind: kindInt, port: true},
	{key: "package_body_offset", aliases: []string{"package_body_start"}, field: "PackageBodyOffset", kind: kindInt, port: true},
	{key: "package_length_func", field: "PackageLengthFunc", kind: kindFunc, port: true},
	{key: "package_max_length", field: "PackageMaxLength", kind: kindSize, port: true},

	// TLS: port
	{key: "ssl_cert_file", field: "SSLCertFile", kind: kindString, port: true},
	{key: "ssl_key_file", field: "SSLKeyFile", kind: kindString, port: true},
	{key: "ssl_verify_peer", field: "SSLVerifyPeer", kind: kindBool, port: true},
	{key: "ssl_client_cert_file", field: "SSLClientCertFile", kind: kindString, port: true},
	{key: "ssl_allow_self_signed", field: "SSLAllowSelfSigned", kind: kindBool, port: true},
	{key: "ssl_protocols", field: "SSLProtocols", kind: kindInt, port: true},
	{key: "ssl_ciphers", field: "SSLCiphers", kind: kindString, port: true},
	{key: "ssl_verify_depth", field: "SSLVerifyDepth", kind: kindInt, port: true},
	{key: "ssl_sni_certs", field: "SSLSNICerts", kind: kindSNI, port: true},
}

// unsupportedOptions are Swoole keys goswoole knows but refuses with ErrOperationNotSupport
// (507), each with the reason, so that no option is silently accepted and ignored.
//
//	key                                    why it does not apply
//	hook_flags                             PHP runtime hooks; Go's net and os calls already yield
//	display_errors                         PHP error display; errors are returned as *Error
//	enable_preemptive_scheduler            PHP coroutine scheduler; the Go runtime preempts goroutines
//	c_stack_size, stack_size               PHP coroutine C stacks; goroutine stacks grow by themselves
//	max_coroutine, max_coro_num            PHP coroutine limit; callbacks run on goroutines
//	task_use_object, task_object           PHP object-style onTask; OnTask has one typed signature
//	event_object                           PHP object-style callbacks; callbacks are typed Go funcs
//	open_http_protocol, open_websocket_protocol, open_http2_protocol,
//	open_mqtt_protocol, open_redis_protocol, open_websocket_*
//	                                       protocol servers are not part of goswoole's Server core
//	bootstrap, init_arguments              PHP thread-mode entry script; ModeThread runs Go code
//	single_thread                          PHP ZTS workaround; reactors are goroutines
//	message_queue_key                      System V queues of task_ipc_mode 2/3 are not kept across restarts
//	(plus the PHP client, debug and async-IO keys below, and the options goswoole leaves out)
var unsupportedOptions = map[string]string{
	"hook_flags":                  "it sets PHP runtime hooks (SWOOLE_HOOK_*); in Go, blocking calls in a callback already block only their own goroutine",
	"display_errors":              "it controls PHP's error display; goswoole returns every error as *swoole.Error and logs to log_file",
	"enable_preemptive_scheduler": "it configures PHP's coroutine scheduler; the Go runtime preempts goroutines by itself",
	"c_stack_size":                "it sizes PHP coroutines' C stacks; goroutine stacks grow by themselves",
	"stack_size":                  "it sizes PHP coroutines' C stacks; goroutine stacks grow by themselves",
	"max_coroutine":               "it limits PHP coroutines; goswoole callbacks run on goroutines",
	"max_coro_num":                "it limits PHP coroutines; goswoole callbacks run on goroutines",
	"task_use_object":             "it switches PHP's onTask to object style; Go's OnTask has one typed signature",
	"task_object":                 "it switches PHP's onTask to object style; Go's OnTask has one typed signature",
	"event_object":                "it switches PHP callbacks to object style; Go callbacks are typed funcs",
	"open_http_protocol":          "the HTTP server is not part of goswoole's Server core",
	"open_websocket_protocol":     "the WebSocket server is not part of goswoole's Server core",
	"open_websocket_close_frame":  "the WebSocket server is not part of goswoole's Server core",
	"open_websocket_ping_frame":   "the WebSocket server is not part of goswoole's Server core",
	"open_websocket_pong_frame":   "the WebSocket server is not part of goswoole's Server core",
	"open_http2_protocol":         "the HTTP/2 server is not part of goswoole's Server core",
	"open_mqtt_protocol":          "MQTT framing is not part of goswoole's Server core; use package_length_func",
	"open_redis_protocol":         "Redis framing is not part of goswoole's Server core; use package_length_func or open_eof_split",
	"bootstrap":                   "it names the PHP script each thread runs in thread mode; ModeThread runs your Go code",
	"init_arguments":              "it builds PHP thread-shared objects in thread mode; share Go values directly",
	"single_thread":               "it is a workaround for PHP ZTS; goswoole's reactors are goroutines",
	"message_queue_key":           "System V message queues that outlive the server are not used; task_ipc_mode 2 and 3 keep their delivery rules without one",
	"enable_deadlock_check":       "it checks PHP coroutines for deadlocks; use the Go race detector and runtime tools",
	"debug_mode":                  "it is a PHP extension debug switch; use log_level",
	"trace_flags":                 "it is a PHP extension trace switch; use log_level",
	"dns_server":                  "it configures Swoole's coroutine DNS client; Go's resolver reads /etc/resolv.conf",
	"socket_dns_timeout":          "it configures Swoole's coroutine clients; set deadlines on your own net.Conn",
	"socket_connect_timeout":      "it configures Swoole's coroutine clients; set deadlines on your own net.Conn",
	"socket_timeout":              "it configures Swoole's coroutine clients; set deadlines on your own net.Conn",
	"socket_read_timeout":         "it configures Swoole's coroutine clients; set deadlines on your own net.Conn",
	"socket_recv_timeout":         "it configures Swoole's coroutine clients; set deadlines on your own net.Conn",
	"socket_write_timeout":        "it configures Swoole's coroutine clients; set deadlines on your own net.Conn",
	"socket_send_timeout":         "it configures Swoole's coroutine clients; set deadlines on your own net.Conn",
	"aio_core_worker_num":         "it sizes Swoole's async-IO thread pool; Go's runtime does its own file IO",
	"aio_worker_num":              "it sizes Swoole's async-IO thread pool; Go's runtime does its own file IO",
	"aio_max_wait_time":           "it tunes Swoole's async-IO thread pool; Go's runtime does its own file IO",
	"aio_max_idle_time":           "it tunes Swoole's async-IO thread pool; Go's runtime does its own file IO",
	"request_slowlog_file":        "it was removed in Swoole 4.4.8",
	"request_slowlog_timeout":     "it was removed in Swoole 4.4.8",
	"ssl_method":                  "it was removed in Swoole 4.5.4; use ssl_protocols",
	"ssl_compress":                "TLS compression is insecure (CRIME) and Go's crypto/tls has none",
	"ssl_dhparam":                 "Go's crypto/tls has no finite-field DHE suites; ECDHE is always used",
	"ssl_ecdh_curve":              "goswoole uses crypto/tls's curve preferences",
	"ssl_prefer_server_ciphers":   "Go's crypto/tls chooses the cipher suite itself",
	"ssl_cafile":                  "goswoole takes the client CA bundle from ssl_client_cert_file",
	"ssl_capath":                  "goswoole takes the client CA bundle from ssl_client_cert_file",
	"max_concurrency":             "request concurrency limits are not supported yet",
	"worker_max_concurrency":      "request concurrency limits are not supported yet",
	"open_cpu_affinity":           "CPU pinning is not supported; the Go scheduler places goroutines",
	"cpu_affinity_ignore":         "CPU pinning is not supported; the Go scheduler places goroutines",
	"chroot":                      "chroot is not supported; run the server in a container or with systemd's RootDirectory",
	"log_date_format":             "the log line format is fixed",
	"log_date_with_microseconds":  "the log line format is fixed",
	"stats_timer_interval":        "stats_file is written once a second",
}

// optionByKey maps every key and alias to its option.
var optionByKey = map[string]*option{}

var (
	durationType = reflect.TypeFor[time.Duration]()
	logLevelType = reflect.TypeFor[LogLevel]()
)

func init() {
	st := reflect.TypeFor[Settings]()
	for i := range options {
		o := &options[i]
		f, ok := st.FieldByName(o.field)
		if !ok {
			panic("swoole: settings table names a missing field " + o.field)
		}
		o.index = f.Index
		for _, k := range append([]string{o.key}, o.aliases...) {
			if _, dup := optionByKey[k]; dup {
				panic("swoole: settings table has key " + k + " twice")
			}
			optionByKey[k] = o
		}
	}
}

// applyOptions applies Swoole-keyed options to dst, as SetOptions does: keys are Swoole's
// names or aliases (max_conn, package_body_start, input_buffer_size, output_buffer_size);
// a nil value puts the option back to its zero value (Swoole's default). Integers take any
// Go integer kind or a float64 with a whole value (as JSON gives); sizes also take strings
// such as "2M", "64K", "1G"; durations take seconds as an integer or float, or a
// time.Duration; booleans take a bool, strings a string, and dispatch_func /
// package_length_func a func with exactly their signature. log_level takes Swoole's 0–6 or
// a LogLevel.
//
// An unknown key, or a value of the wrong type, is an *Error with code ErrInvalidParams
// (505) naming the key; a key that exists in Swoole but not in goswoole (the PHP-only keys
// and the others of unsupportedOptions) is an *Error with code ErrOperationNotSupport (507)
// saying why. With portOnly, a server setting is an *Error 505 saying to set it on the
// Server. Keys are checked in sorted order, so the error is the same on each run.
//
// dst is changed only when every key applies; ranges and combinations are left to
// validate.
func applyOptions(dst *Settings, opts map[string]any, portOnly bool) error {
	keys := make([]string, 0, len(opts))
	for k := range opts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	n := *dst
	rv := reflect.ValueOf(&n).Elem()
	for _, k := range keys {
		o, ok := optionByKey[k]
		if !ok {
			if why, ok := unsupportedOptions[k]; ok {
				return newError(ErrOperationNotSupport, "setting %q is not supported in goswoole: %s", k, why)
			}
			if s := suggestKey(k); s != "" {
				return newError(ErrInvalidParams, "unknown setting %q; did you mean %q?", k, s)
			}
			return newError(ErrInvalidParams, "unknown setting %q", k)
		}
		if portOnly && !o.port {
			return serverOnlyError(o)
		}
		if err := o.set(rv.FieldByIndex(o.index), k, opts[k]); err != nil {
			return err
		}
	}
	*dst = n
	return nil
}

// set stores v, given under key k, into the field f.
func (o *option) set(f reflect.Value, k string, v any) error {
	if v == nil {
		f.SetZero()
		return nil
	}
	rv := reflect.ValueOf(v)
	switch o.kind {
	case kindInt, kindSize, kindInt64:
		if o.kind == kindSize && rv.Kind() == reflect.String {
			n, err := parseSize(rv.String())
			if err != nil {
				return newError(ErrInvalidParams, "setting %q: %v", k, err)
			}
			f.SetInt(n)
			return nil
		}
		n, err := intValue(rv)
		if err != nil {
			return wrongType(k, o.kind, v, err)
		}
		if o.kind != kindInt64 && (n < math.MinInt || n > math.MaxInt) {
			return wrongType(k, o.kind, v, fmt.Errorf("out of range"))
		}
		if n == 0 && (k == "max_request_grace" || k == "task_max_request_grace") {
			n = -1 // Swoole: a grace of 0 given explicitly turns it off (the field's 0 is the default)
		}
		f.SetInt(n)
	case kindBool, kindBoolPtr:
		if rv.Kind() != reflect.Bool {
			return wrongType(k, o.kind, v, nil)
		}
		if o.kind == kindBool {
			f.SetBool(rv.Bool())
		} else {
			f.Set(reflect.ValueOf(Bool(rv.Bool())))
		}
	case kindString:
		if rv.Kind() != reflect.String {
			return wrongType(k, o.kind, v, nil)
		}
		s := rv.String()
		if s == "" && (k == "package_eof" || k == "package_length_type") {
			return newError(ErrInvalidParams, "setting %q is empty; give a value, or nil for the default", k)
		}
		f.SetString(s)
	case kindSeconds:
		d, err := durationValue(rv)
		if err != nil {
			return wrongType(k, o.kind, v, err)
		}
		f.SetInt(int64(d))
	case kindLogLevel:
		if rv.Type() == logLevelType {
			f.SetInt(rv.Int())
			return nil
		}
		n, err := intValue(rv)
		if err != nil {
			return wrongType(k, o.kind, v, err)
		}
		if n < 0 || n > 6 {
			return newError(ErrInvalidParams, "setting %q: %d is outside 0 (DEBUG) .. 6 (NONE)", k, n)
		}
		f.SetInt(n + 1)
	case kindFunc:
		if rv.Kind() != reflect.Func || !rv.Type().ConvertibleTo(f.Type()) {
			return wrongType(k, o.kind, v, fmt.Errorf("want %s", f.Type()))
		}
		f.Set(rv.Convert(f.Type()))
	case kindSNI:
		m, err := sniValue(v)
		if err != nil {
			return wrongType(k, o.kind, v, err)
		}
		f.Set(reflect.ValueOf(m))
	}
	return nil
}

// sniValue reads ssl_sni_certs: a map[string]SSLCertPair, or Swoole's shape, a map of server
// name to a map with ssl_cert_file and ssl_key_file.
func sniValue(v any) (map[string]SSLCertPair, error) {
	switch m := v.(type) {
	case map[string]SSLCertPair:
		return maps.Clone(m), nil
	case map[string]any:
		out := make(map[string]SSLCertPair, len(m))
		for name, e := range m {
			var pair SSLCertPair
			switch e := e.(type) {
			case SSLCertPair:
				pair = e
			case map[string]any:
				for k, x := range e {
					s, ok := x.(string)
					switch {
					case !ok:
						return nil, fmt.Errorf("entry %q: %q is %T, want a string", name, k, x)
					case k == "ssl_cert_file":
						pair.CertFile = s
					case k == "ssl_key_file":
						pair.KeyFile = s
					default:
						return nil, fmt.Errorf("entry %q: unknown key %q (give ssl_cert_file and ssl_key_file)", name, k)
					}
				}
			case map[string]string:
				pair = SSLCertPair{CertFile: e["ssl_cert_file"], KeyFile: e["ssl_key_file"]}
			default:
				return nil, fmt.Errorf("entry %q is %T, want a map with ssl_cert_file and ssl_key_file", name, e)
			}
			out[name] = pair
		}
		return out, nil
	}
	return nil, fmt.Errorf("want a map of server name to {ssl_cert_file, ssl_key_file}")
}

// kindNames says what each kind accepts, for error messages.
var kindNames = map[optKind]string{
	kindInt:      "an integer",
	kindSize:     `a size in bytes (an integer, or a string such as "2M", "64K", "1G")`,
	kindInt64:    "an integer",
	kindBool:     "a bool",
	kindBoolPtr:  "a bool",
	kindString:   "a string",
	kindSeconds:  "a duration (seconds as an integer or float, or a time.Duration)",
	kindLogLevel: "a log level (an integer 0..6, or a swoole.LogLevel)",
	kindFunc:     "a function",
	kindSNI:      "a map of server name to {ssl_cert_file, ssl_key_file}",
}

// errWrongType says a value's kind does not fit; wrongType's message already says so.
var errWrongType = errors.New("wrong type")

// wrongType is the error for a value of the wrong type (or not representable).
func wrongType(k string, kind optKind, v any, why error) *Error {
	got := fmt.Sprintf("%T", v)
	switch reflect.ValueOf(v).Kind() {
	case reflect.Func:
	case reflect.String:
		got += fmt.Sprintf(" %q", v)
	default:
		got += fmt.Sprintf(" %v", v)
	}
	if why != nil && why != errWrongType {
		got += " (" + why.Error() + ")"
	}
	return newError(ErrInvalidParams, "setting %q wants %s, got %s", k, kindNames[kind], got)
}

// intValue reads an integer from any Go integer kind (but not a time.Duration) or a float
// with a whole value.
func intValue(v reflect.Value) (int64, error) {
	if v.Type() == durationType {
		return 0, fmt.Errorf("a time.Duration is not a count")
	}
	switch v.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int(), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		if u := v.Uint(); u <= math.MaxInt64 {
			return int64(u), nil
		}
		return 0, fmt.Errorf("out of range")
	case reflect.Float32, reflect.Float64:
		f := v.Float()
		if f != math.Trunc(f) || math.IsInf(f, 0) {
			return 0, fmt.Errorf("not a whole number")
		}
		if f < -(1<<63) || f >= 1<<63 {
			return 0, fmt.Errorf("out of range")
		}
		return int64(f), nil
	}
	return 0, errWrongType
}

// durationValue reads a duration: a time.Duration as it is, other numbers as seconds.
func durationValue(v reflect.Value) (time.Duration, error) {
	if v.Type() == durationType {
		return time.Duration(v.Int()), nil
	}
	switch v.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		n, err := intValue(v)
		if err != nil {
			return 0, err
		}
		if n > math.MaxInt64/int64(time.Second) || n < math.MinInt64/int64(time.Second) {
			return 0, fmt.Errorf("out of range")
		}
		return time.Duration(n) * time.Second, nil
	case reflect.Float32, reflect.Float64:
		f := v.Float() * float64(time.Second)
		if math.IsNaN(f) || f < -(1<<63) || f >= 1<<63 {
			return 0, fmt.Errorf("out of range")
		}
		return time.Duration(math.Round(f)), nil
	}
	return 0, errWrongType
}

// parseSize reads a size such as "4096", "64K", "2M", "1G" (also "2MB", "2m"), as Swoole's
// size parser does.
func parseSize(s string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	if len(t) >= 2 && t[len(t)-1] == 'B' && strings.ContainsRune("KMG", rune(t[len(t)-2])) {
		t = t[:len(t)-1]
	}
	mult := int64(1)
	if t != "" {
		switch t[len(t)-1] {
		case 'K':
			mult = 1 << 10
		case 'M':
			mult = 1 << 20
		case 'G':
			mult = 1 << 30
		}
		if mult > 1 {
			t = strings.TrimSpace(t[:len(t)-1])
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a size; write bytes as a number or a string such as \"2M\", \"64K\", \"1G\"", s)
	}
	if n > math.MaxInt64/mult || n < math.MinInt64/mult {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return n * mult, nil
}

// suggestKey returns the known key closest to k (within an edit distance of
// max(2, len(k)/3)), or "" when none is close.
func suggestKey(k string) string {
	best, bestD := "", max(2, len(k)/3)+1
	for c := range optionByKey {
		if d := editDistance(k, c); d < bestD || (d == bestD && c < best) {
			best, bestD = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := prev[j-1]
			if a[i-1] != b[j-1] {
				c++
			}
			cur[j] = min(c, prev[j]+1, cur[j-1]+1)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
