package swoole

import (
	"fmt"
	"math"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Settings is Swoole's set() array as a Go struct. The zero value of every field means
// Swoole's default for that option (the default is given in each field's comment), so
// Settings{} is a server with Swoole's defaults and a literal names only what it changes:
//
//	s.Set(swoole.Settings{WorkerNum: 4, OpenEOFSplit: true, PackageEOF: "\n"})
//
// Set merges like Swoole's set(): the non-zero fields of the argument replace the current
// ones and the others stay as they were, so several Set calls add up. A field cannot be put
// back to zero (or false) with Set; use SetOptions with the Swoole key for that
// (SetOptions(map[string]any{"open_eof_check": false})), or a nil value to put a key back
// to its default.
//
// Two options whose Swoole default is true, reload_async and enable_coroutine, are *bool
// fields: nil means the default (true); write Bool(false) to turn them off.
//
// The Swoole key for each field is in its comment; SetOptions takes those keys (and Swoole's
// aliases). Durations take seconds (fractions
// allowed) in SetOptions, as Swoole does, or a time.Duration. Sizes are bytes and take
// strings such as "2M", "64K" or "1G" in SetOptions.
//
// Fields marked [port] may also be given to Port.Set; the others belong to the server and
// Port.Set refuses them.
//
// What each mode does with each group:
//   - honoured everywhere: every socket, framing, buffer, watermark, heartbeat, max_idle_time,
//     max_connection, start_session_id, send_yield/send_timeout, log, pid_file, stats_file
//     and daemonize option;
//   - max_request (and max_request_grace), user, group, task_worker_num and AddProcess need
//     a manager to replace or start processes: with them a ModeBase server runs as a manager
//     and worker processes even with worker_num 1, as Swoole does; reload_async and
//     max_wait_time then apply; enable_reuse_port gives each ModeBase worker its own
//     listening socket;
//   - ModeProcess only (a single-process or ModeBase server accepts them without effect, as
//     Swoole's BASE mode does: there is no master dispatching): reactor_num, dispatch_mode,
//     dispatch_func, discard_timeout_request, enable_unsafe_event, max_queued_bytes;
//   - refused at Start with 507: task_ipc_mode 2;
//   - enable_coroutine: callbacks always run one at a time on the worker's event loop; a
//     callback that blocks (SendWait, a long computation) holds the loop, as Swoole does with
//     enable_coroutine false, except TaskWait/TaskWaitMulti/TaskCo, which keep the loop
//     serving other events while they wait when it is true. Start goroutines for blocking work.
//
// An unset worker_num is 1 in ModeBase (one process), the CPU count in ModeProcess.
type Settings struct {
	// ---- processes, mode and limits (server) ----

	// ReactorNum is reactor_num: the reactor threads (event loops) that do network I/O in
	// ModeProcess. Default: the CPU count capped at 8, and never more than WorkerNum.
	ReactorNum int
	// WorkerNum is worker_num: the event workers. Default: the CPU count. At most CPU×1000.
	WorkerNum int
	// MaxRequest is max_request: after this many requests (receive/packet events) a
	// worker exits gracefully and is replaced. Default 0: never.
	MaxRequest int
	// MaxRequestGrace is max_request_grace: each worker's limit gets a random 1..grace
	// added, so that workers do not all restart together. Default (0): MaxRequest/2 when
	// MaxRequest > 10, else none; -1 means no grace (SetOptions' "max_request_grace": 0,
	// as in Swoole). With no grace the limit is exact.
	MaxRequestGrace int
	// MaxConnection is max_connection (alias max_conn): the most connections held at once;
	// a connection above it is accepted and closed at once (error 9002). Default:
	// min(RLIMIT_NOFILE soft limit, 100000). At most 1048576.
	MaxConnection int
	// TaskWorkerNum is task_worker_num: the task workers. Default 0: none (a value above 0
	// needs an OnTask callback).
	TaskWorkerNum int
	// TaskIPCMode is task_ipc_mode: 1 = a socket pair per task worker (default), 2 = a
	// message queue with targeting, 3 = a queue the task workers compete for.
	TaskIPCMode int
	// TaskMaxRequest is task_max_request: MaxRequest for task workers. Default 0: never.
	TaskMaxRequest int
	// TaskEnableCoroutine is task_enable_coroutine: each OnTask runs on a goroutine of its
	// own, so one task worker works on several tasks at once (Swoole runs onTask in a
	// coroutine); a task finishes when its OnTask returns a value or calls Finish (from that
	// goroutine). The task worker counts as busy while any task runs, and a stopping task
	// worker lets the tasks in hand finish (up to max_wait_time). Off (default): a task
	// worker runs one OnTask at a time on its loop.
	TaskEnableCoroutine bool
	// TaskMaxRequestGrace is task_max_request_grace: MaxRequestGrace for task workers.
	// Default (0): TaskMaxRequest/2 when TaskMaxRequest > 10, else none; -1 means no grace
	// (SetOptions' "task_max_request_grace": 0, as in Swoole).
	TaskMaxRequestGrace int
	// TaskTmpdir is task_tmpdir: where large task payloads may be spooled. Default "/tmp".
	TaskTmpdir string
	// DispatchMode is dispatch_mode: how ModeProcess picks the worker for a packet, one of
	// DispatchRoundRobin (1), DispatchFDMod (2, the default), DispatchIdle (3),
	// DispatchIPMod (4), DispatchUIDMod (5), DispatchStream (7).
	DispatchMode int
	// DispatchFunc is dispatch_func: picks the worker itself (it then replaces
	// DispatchMode). eventType is 0 for stream data, 1 for a datagram, 4 for a close and 5
	// for a connect; it returns the worker id, −1 to drop the message, −2 to close the
	// connection, −3 to fall back to DispatchMode. For a datagram, fd is what Swoole passes:
	// the sender's IPv4 address as its in_addr reads in memory (127.0.0.1 is 16777343), the
	// CRC-32 of an IPv6 sender's address, 0 for a unix socket's. It runs on the reactor: it
	// must not block. Default nil.
	DispatchFunc func(s *Server, fd int64, eventType int, data []byte) int
	// Daemonize is daemonize: detach from the terminal (re-exec with setsid); stdout and
	// stderr go to LogFile or /dev/null. Default false.
	Daemonize bool
	// PidFile is pid_file: the master's pid is written here at start and removed on a
	// clean exit. Default "": none.
	PidFile string
	// User is user: workers and task workers switch to this user after start (only when
	// started as root). Default "": the current user.
	User string
	// Group is group: as User, for the group. Default "": the current group.
	Group string
	// StartSessionID is start_session_id: session ids start at StartSessionID+1.
	// Default 0 (the first id is 1).
	StartSessionID int64
	// LogFile is log_file: where the server logs. Default "": stderr.
	LogFile string
	// LogRotation is log_rotation: with LogRotationMonthly, LogRotationDaily,
	// LogRotationHourly or LogRotationEveryMinute, the server writes to LogFile plus "." and
	// the period in local time (log_file.20261207 for daily) and switches file when the period
	// changes, as Swoole. Default LogRotationSingle (0): LogFile itself. See logfile.go.
	LogRotation int
	// LogLevel is log_level: the lowest level logged. Default (zero): LogLevelInfo. In
	// SetOptions it takes Swoole's numbers 0 (DEBUG) to 6 (NONE).
	LogLevel LogLevel
	// StatsFile is stats_file: worker 0 writes Stats() here once a second. Default "": none.
	StatsFile string
	// AdminServer is admin_server: "[user:secret@]host:port" of an HTTP admin server (Swoole's
	// admin API, /api/{command}/{process}, and Prometheus /metrics) that the master runs (the
	// manager in ModeBase with workers, the process itself with one process). With
	// user:secret@, every request needs the header X-Admin-Server-Access-Token: hex
	// sha1(user+secret). An empty host (":9502", or "9502") means 127.0.0.1; an address that
	// is not loopback needs user:secret@, or Start refuses. See admin_server.go. Default "":
	// none.
	AdminServer string
	// EnableReusePort is enable_reuse_port: SO_REUSEPORT on the listeners. Default false.
	EnableReusePort bool
	// ReloadAsync is reload_async: a reload lets each worker finish its pending events
	// (up to MaxWaitTime) before it exits. Default (nil): true.
	ReloadAsync *bool
	// MaxWaitTime is max_wait_time: how long a stopping or reloading worker may take before
	// it is killed (error 9101); also how long Task waits for room in a full task queue
	// before it fails with 9007. Default 3s.
	MaxWaitTime time.Duration
	// EnableCoroutine is enable_coroutine. Default (nil): true, callbacks may block their
	// own goroutine as Swoole's callbacks may block their coroutine. False: the server may
	// run callbacks inline on their event loop, so a callback that blocks delays the other
	// connections of that loop.
	EnableCoroutine *bool
	// SendYield is send_yield: when a connection's output queue is full, Send waits for
	// room (up to SendTimeout) instead of failing with 1008. Default false (Swoole's
	// default is true, but in Go Send never blocks unless asked to). Not with dispatch
	// modes 1, 3 and 7.
	SendYield bool
	// SendTimeout is send_timeout: how long SendYield waits; then Send fails with ETIMEDOUT.
	// Default 0: no limit.
	SendTimeout time.Duration
	// MaxQueuedBytes is max_queued_bytes: ModeProcess stops reading from a connection while
	// more than this many of its bytes wait in workers (dispatched, not yet handled: the
	// connection's recv_queued_bytes), and reads on once they fall back to it. Default 4 MiB
	// (Swoole's default, 0, means no limit; here 0 means the default, and there is no
	// unlimited value: give a large one). Whatever it is, the master never drops a
	// connection's data: it also stops reading the connections that dispatch to a worker
	// whose pipe queue holds more than 32 MiB (see SECURITY.md).
	MaxQueuedBytes int
	// RedeliverEventInHand is redeliver_event_in_hand (goswoole's own, ModeProcess): when a
	// worker process dies (killed, crashed) in the middle of an event, its replacement gets
	// that event again before the ones queued behind it, so an event is handled at least
	// once. Default false: as in Swoole, the event in hand is lost (at most once); the
	// events the worker had received with it are never lost either way (see RELIABILITY.md).
	RedeliverEventInHand bool
	// BufferOutputSize is buffer_output_size (alias output_buffer_size): the largest single
	// Send; above it Send fails with 1202. Default 4294967295 (math.MaxUint32).
	BufferOutputSize int
	// BufferInputSize is buffer_input_size (alias input_buffer_size). As in Swoole, whose
	// server keeps the value but does not use it, it does not limit input: a connection's
	// input grows to the size of the frame being assembled, up to PackageMaxLength, so a
	// frame larger than BufferInputSize is received whole. Default 2 MiB.
	BufferInputSize int
	// DiscardTimeoutRequest is discard_timeout_request: with dispatch modes 1 and 3, data
	// that reaches a worker after its connection closed is dropped (error 1007).
	// Default false (Swoole's source; its docs say true).
	DiscardTimeoutRequest bool
	// EnableUnsafeEvent is enable_unsafe_event: in ModeProcess, deliver OnConnect, OnClose,
	// OnBufferFull and OnBufferEmpty under the dispatch modes that may pass one connection's
	// events to several workers out of order (every mode but 2 and 4, without a
	// DispatchFunc). Without it they are left out there, and Start logs a warning (9015) for
	// each one registered, as Swoole 6.2 does. Default false.
	EnableUnsafeEvent bool
	// EnableDelayReceive is enable_delay_receive: a new connection is not read until
	// Confirm(fd). Default false.
	EnableDelayReceive bool
	// HeartbeatCheckInterval is heartbeat_check_interval: how often connections are scanned
	// for idleness. Default 0: no scan, unless HeartbeatIdleTime is set, which gives
	// max(HeartbeatIdleTime/2, 1s).
	HeartbeatCheckInterval time.Duration

	// ---- sockets (all [port]) ----

	// Backlog is backlog: the listen() backlog (the kernel caps it at somaxconn).
	// Default 512. [port]
	Backlog int
	// OpenTCPNoDelay is open_tcp_nodelay: TCP_NODELAY on accepted sockets. Default false. [port]
	OpenTCPNoDelay bool
	// OpenTCPKeepalive is open_tcp_keepalive: kernel keepalive on accepted sockets, with
	// TCPKeepIdle, TCPKeepInterval and TCPKeepCount. Default false. [port]
	OpenTCPKeepalive bool
	// TCPKeepIdle is tcp_keepidle, in seconds. Default 3600. [port]
	TCPKeepIdle int
	// TCPKeepInterval is tcp_keepinterval, in seconds. Default 60. [port]
	TCPKeepInterval int
	// TCPKeepCount is tcp_keepcount: probes before the connection is dropped. Default 5. [port]
	TCPKeepCount int
	// TCPDeferAccept is tcp_defer_accept, in seconds: TCP_DEFER_ACCEPT on the listener.
	// Default 0: off. [port]
	TCPDeferAccept int
	// TCPFastOpen is tcp_fastopen: TCP_FASTOPEN on the listener. Default false. [port]
	TCPFastOpen bool
	// TCPUserTimeout is tcp_user_timeout, in milliseconds: TCP_USER_TIMEOUT on accepted
	// sockets. Default 0: the kernel's. [port]
	TCPUserTimeout int
	// SocketBufferSize is socket_buffer_size: the most output queued for one connection;
	// above it Send fails with 1008 (after OnBufferFull). Default 2 MiB (Swoole's docs;
	// its source uses 8 MiB). [port]
	SocketBufferSize int
	// KernelSocketRecvBufferSize is kernel_socket_recv_buffer_size: SO_RCVBUF on accepted
	// sockets. Default 0: the kernel's. [port]
	KernelSocketRecvBufferSize int
	// KernelSocketSendBufferSize is kernel_socket_send_buffer_size: SO_SNDBUF on accepted
	// sockets. Default 0: the kernel's. [port]
	KernelSocketSendBufferSize int
	// BufferHighWatermark is buffer_high_watermark: OnBufferFull fires when a connection's
	// queued output reaches it. Default (0): SocketBufferSize. [port]
	BufferHighWatermark int
	// BufferLowWatermark is buffer_low_watermark: after OnBufferFull, OnBufferEmpty fires
	// when the queued output falls to it. Default 0 (empty). [port]
	BufferLowWatermark int
	// HeartbeatIdleTime is heartbeat_idle_time: a connection with nothing received for this
	// long is closed by the heartbeat scan. Default 0: 2×HeartbeatCheckInterval when that
	// is set, else no limit. [port]
	HeartbeatIdleTime time.Duration
	// MaxIdleTime is max_idle_time: a connection with nothing received and nothing sent
	// for this long is closed (a timer per connection). Default 0: no limit. [port]
	MaxIdleTime time.Duration
	// FrameTimeout is frame_timeout (beyond Swoole): a connection that has sent part of a
	// frame and not its end for this long is closed, however slowly it keeps sending (the
	// heartbeat counts any byte as activity: a peer sending one byte a second would hold a
	// buffer for ever). Only for ports with framing (length or EOF). Default 0: 60 s;
	// negative: no limit. [port]
	FrameTimeout time.Duration

	// ---- input framing (all [port], stream sockets only) ----

	// OpenEOFCheck is open_eof_check: deliver data only when the buffer ends with
	// PackageEOF (one delivery may hold several messages). Default false. [port]
	OpenEOFCheck bool
	// OpenEOFSplit is open_eof_split: deliver exactly one message, ending with PackageEOF,
	// per OnReceive. It turns OpenEOFCheck on by itself. Default false. [port]
	OpenEOFSplit bool
	// PackageEOF is package_eof: the delimiter, 1 to 8 bytes. Default "\r\n\r\n". [port]
	PackageEOF string
	// OpenLengthCheck is open_length_check: frames are a header holding the length and a
	// body. Default false (PackageLengthFunc turns it on). [port]
	OpenLengthCheck bool
	// PackageLengthType is package_length_type: the length field, one PHP pack()
	// character of "cCsSnNlLqQJPvV". Default "N" (u32 big-endian). [port]
	PackageLengthType string
	// PackageLengthOffset is package_length_offset: where the length field starts.
	// Default 0. [port]
	PackageLengthOffset int
	// PackageBodyOffset is package_body_offset (alias package_body_start): added to the
	// length to get the frame's size (0 when the length counts the whole frame, the header
	// size when it counts the body). Default 0. [port]
	PackageBodyOffset int
	// PackageLengthFunc is package_length_func: returns the length of the frame at the
	// start of data, 0 when more data is needed, < 0 when the data is bad (the connection is
	// closed). It replaces PackageLengthType and the offsets, and turns OpenLengthCheck on.
	// It runs on the reactor: it must not block. Default nil. [port]
	PackageLengthFunc func(data []byte) int
	// PackageMaxLength is package_max_length: the largest frame; a larger one closes the
	// connection (error 1201). Default 2 MiB. [port]
	PackageMaxLength int

	// ---- TLS (all [port]; the socket type must include SockSSL) ----

	// SSLCertFile is ssl_cert_file: the PEM certificate (chain). Needs SSLKeyFile. [port]
	SSLCertFile string
	// SSLKeyFile is ssl_key_file: the PEM private key. Needs SSLCertFile. [port]
	SSLKeyFile string
	// SSLVerifyPeer is ssl_verify_peer: require and verify a client certificate against
	// SSLClientCertFile. Default false. [port]
	SSLVerifyPeer bool
	// SSLClientCertFile is ssl_client_cert_file: the PEM CA bundle client certificates
	// are verified against. Default "". [port]
	SSLClientCertFile string
	// SSLAllowSelfSigned is ssl_allow_self_signed: accept self-signed client
	// certificates. Default false. [port]
	SSLAllowSelfSigned bool
	// SSLProtocols is ssl_protocols: a bit set of Swoole's SWOOLE_SSL_* protocol values
	// (SSLv2 2, SSLv3 4, TLSv1 8, TLSv1.1 16, TLSv1.2 32, TLSv1.3 64). Default 0: TLS 1.2
	// and TLS 1.3. SSLv2 and SSLv3 are refused (Go's crypto/tls has neither); the versions
	// in force are those from the lowest bit set to the highest. [port]
	SSLProtocols int
	// SSLCiphers is ssl_ciphers: the cipher list, OpenSSL syntax. Default "": Go
	// crypto/tls's own secure suites (Swoole's default list,
	// "EECDH+AESGCM:EDH+AESGCM:AES256+EECDH:AES256+EDH", asks for the same kind). [port]
	SSLCiphers string
	// SSLVerifyDepth is ssl_verify_depth: with SSLVerifyPeer, the most CA certificates a
	// client certificate's verified chain may have above it (OpenSSL's depth). Default 0: no
	// limit beyond crypto/tls's. [port]
	SSLVerifyDepth int
	// SSLSNICerts is ssl_sni_certs: by server name (SNI, exact or "*.example.com"), the
	// certificate and key served to clients that ask for it instead of SSLCertFile /
	// SSLKeyFile. Through SetOptions: map[string]any{"name": map[string]any{"ssl_cert_file":
	// ..., "ssl_key_file": ...}}. [port]
	SSLSNICerts map[string]SSLCertPair
}

// SSLCertPair is a certificate file and its key file (PEM), an entry of SSLSNICerts.
type SSLCertPair struct {
	CertFile string `json:"ssl_cert_file"`
	KeyFile  string `json:"ssl_key_file"`
}

// Bool returns a pointer to v, for the *bool fields of Settings (ReloadAsync,
// EnableCoroutine), whose nil means Swoole's default, true:
//
//	swoole.Settings{ReloadAsync: swoole.Bool(false)}
func Bool(v bool) *bool { return &v }

// LogLevel is log_level. Its zero value means Swoole's default, INFO. The constants are
// Swoole's SWOOLE_LOG_* levels, one above Swoole's numbers so that zero can mean the
// default; SwooleLevel gives Swoole's number (0–6).
type LogLevel int

// The log levels, lowest first.
const (
	LogLevelDefault LogLevel = iota // Swoole's default: INFO
	LogLevelDebug                   // SWOOLE_LOG_DEBUG (0)
	LogLevelTrace                   // SWOOLE_LOG_TRACE (1)
	LogLevelInfo                    // SWOOLE_LOG_INFO (2)
	LogLevelNotice                  // SWOOLE_LOG_NOTICE (3)
	LogLevelWarning                 // SWOOLE_LOG_WARNING (4)
	LogLevelError                   // SWOOLE_LOG_ERROR (5)
	LogLevelNone                    // SWOOLE_LOG_NONE (6): nothing is logged
)

var logLevelNames = [...]string{"default", "debug", "trace", "info", "notice", "warning", "error", "none"}

// SwooleLevel returns Swoole's number for the level: 0 (DEBUG) to 6 (NONE); the default is
// INFO, 2.
func (l LogLevel) SwooleLevel() int {
	if l == LogLevelDefault {
		return int(LogLevelInfo) - 1
	}
	return int(l) - 1
}

// String returns the level's name.
func (l LogLevel) String() string {
	if l >= 0 && int(l) < len(logLevelNames) {
		return logLevelNames[l]
	}
	return "LogLevel(" + strconv.Itoa(int(l)) + ")"
}

// Defaults that are not computed from the machine.
const (
	defaultBacklog          = 512
	defaultMaxConnection    = 100000
	maxMaxConnection        = 1 << 20 // SW_SESSION_LIST_SIZE
	defaultPackageMaxLength = 2 << 20
	defaultBufferInputSize  = 2 << 20
	defaultMaxQueuedBytes   = 4 << 20
	defaultBufferOutputSize = math.MaxUint32
	defaultSocketBufferSize = 2 << 20
	defaultPackageEOF       = "\r\n\r\n"
	defaultLengthType       = "N"
	defaultMaxWaitTime      = 3 * time.Second
	defaultFrameTimeout     = 60 * time.Second
	defaultTCPKeepIdle      = 3600
	defaultTCPKeepInterval  = 60
	defaultTCPKeepCount     = 5
	defaultTaskTmpdir       = "/tmp"
	defaultReactorCap       = 8
	maxEOFLength            = 8
	packageLengthTypes      = "cCsSnNlLqQJPvV"
	sslProtocolBits         = 2 | 4 | 8 | 16 | 32 | 64
)

// withDefaults returns s with every option that is left at zero replaced by the value in
// force (Swoole's default, computed for this machine where it depends on it), and with the
// implications applied: open_eof_split turns open_eof_check on, package_length_func turns
// open_length_check on, a heartbeat interval without an idle time gives 2×interval and an
// idle time without an interval gives max(idle/2, 1s), reactor_num is capped at worker_num.
// It does not validate; values that are already set stay as they are (apart from the
// reactor_num cap, which is Swoole's documented behaviour). It is idempotent.
func (s Settings) withDefaults() Settings {
	ncpu := runtime.NumCPU()
	if s.WorkerNum == 0 {
		s.WorkerNum = ncpu
	}
	if s.ReactorNum == 0 {
		s.ReactorNum = min(ncpu, defaultReactorCap)
	}
	if s.ReactorNum > s.WorkerNum {
		s.ReactorNum = s.WorkerNum
	}
	if s.MaxRequestGrace == 0 && s.MaxRequest > 10 {
		s.MaxRequestGrace = s.MaxRequest / 2
	}
	if s.TaskMaxRequestGrace == 0 && s.TaskMaxRequest > 10 {
		s.TaskMaxRequestGrace = s.TaskMaxRequest / 2
	}
	if s.MaxConnection == 0 {
		s.MaxConnection = defaultMaxConnectionLimit()
	}
	if s.TaskIPCMode == 0 {
		s.TaskIPCMode = 1
	}
	if s.TaskTmpdir == "" {
		s.TaskTmpdir = defaultTaskTmpdir
	}
	if s.DispatchMode == 0 {
		s.DispatchMode = DispatchFDMod
	}
	if s.LogLevel == LogLevelDefault {
		s.LogLevel = LogLevelInfo
	}
	if s.ReloadAsync == nil {
		s.ReloadAsync = Bool(true)
	}
	if s.EnableCoroutine == nil {
		s.EnableCoroutine = Bool(true)
	}
	if s.MaxWaitTime == 0 {
		s.MaxWaitTime = defaultMaxWaitTime
	}
	if s.BufferOutputSize == 0 {
		s.BufferOutputSize = defaultBufferOutputSize
	}
	if s.BufferInputSize == 0 {
		s.BufferInputSize = defaultBufferInputSize
	}
	if s.MaxQueuedBytes == 0 {
		s.MaxQueuedBytes = defaultMaxQueuedBytes
	}
	if s.FrameTimeout == 0 {
		s.FrameTimeout = defaultFrameTimeout
	}
	if s.Backlog == 0 {
		s.Backlog = defaultBacklog
	}
	if s.TCPKeepIdle == 0 {
		s.TCPKeepIdle = defaultTCPKeepIdle
	}
	if s.TCPKeepInterval == 0 {
		s.TCPKeepInterval = defaultTCPKeepInterval
	}
	if s.TCPKeepCount == 0 {
		s.TCPKeepCount = defaultTCPKeepCount
	}
	if s.SocketBufferSize == 0 {
		s.SocketBufferSize = defaultSocketBufferSize
	}
	if s.BufferHighWatermark == 0 {
		s.BufferHighWatermark = s.SocketBufferSize
	}
	switch {
	case s.HeartbeatCheckInterval > 0 && s.HeartbeatIdleTime == 0:
		s.HeartbeatIdleTime = 2 * s.HeartbeatCheckInterval
	case s.HeartbeatCheckInterval == 0 && s.HeartbeatIdleTime > 0:
		s.HeartbeatCheckInterval = max(s.HeartbeatIdleTime/2, time.Second)
	}
	if s.OpenEOFSplit {
		s.OpenEOFCheck = true
	}
	if s.PackageEOF == "" {
		s.PackageEOF = defaultPackageEOF
	}
	if s.PackageLengthFunc != nil {
		s.OpenLengthCheck = true
	}
	if s.PackageLengthType == "" {
		s.PackageLengthType = defaultLengthType
	}
	if s.PackageMaxLength == 0 {
		s.PackageMaxLength = defaultPackageMaxLength
	}
	return s
}

// defaultMaxConnectionLimit is Swoole's default max_connection: min(ulimit -n, 100000).
func defaultMaxConnectionLimit() int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur == 0 {
		return defaultMaxConnection
	}
	if rl.Cur >= defaultMaxConnection {
		return defaultMaxConnection
	}
	return int(rl.Cur)
}

// validate checks the settings, as given or after withDefaults, and returns an *Error with
// code ErrInvalidParams naming the first bad option (by its Swoole key and Go field) and
// what to do. It never changes anything: an invalid combination is an error, not a
// rewrite. The combination checks look at the values in force (after withDefaults).
func (s Settings) validate() error {
	bad := func(key, format string, args ...any) error {
		o := optionByKey[key]
		return newError(ErrInvalidParams, "invalid setting %s (Settings.%s): %s", key, o.field, fmt.Sprintf(format, args...))
	}
	// Negative numbers, field by field in table order.
	rv := reflect.ValueOf(s)
	for i := range options {
		o := &options[i]
		f := rv.FieldByIndex(o.index)
		var neg bool
		switch o.kind {
		case kindInt, kindSize, kindInt64:
			neg = f.Int() < 0
			if neg && (o.key == "max_request_grace" || o.key == "task_max_request_grace") && f.Int() == -1 {
				neg = false
			}
		case kindSeconds:
			neg = f.Int() < 0 && o.key != "frame_timeout" // negative: no limit
		}
		if neg {
			if o.kind == kindSeconds {
				return bad(o.key, "%v is negative; use 0 for the default or a positive duration", time.Duration(f.Int()))
			}
			if o.key == "max_request_grace" || o.key == "task_max_request_grace" {
				return bad(o.key, "%d is negative; use 0 for the default, -1 for no grace, or a positive count", f.Int())
			}
			return bad(o.key, "%d is negative; use 0 for the default or a positive value", f.Int())
		}
	}
	if n := runtime.NumCPU() * 1000; s.WorkerNum > n {
		return bad("worker_num", "%d is above the limit of CPU count × 1000 = %d", s.WorkerNum, n)
	}
	if s.MaxConnection > maxMaxConnection {
		return bad("max_connection", "%d is above the limit of %d", s.MaxConnection, maxMaxConnection)
	}
	switch s.DispatchMode {
	case 0, DispatchRoundRobin, DispatchFDMod, DispatchIdle, DispatchIPMod, DispatchUIDMod, DispatchStream:
	default:
		return bad("dispatch_mode", "%d is not one of 1 (round robin), 2 (fd modulo), 3 (idle worker), 4 (ip modulo), 5 (uid modulo), 7 (stream)", s.DispatchMode)
	}
	switch s.TaskIPCMode {
	case 0, 1, 2, 3:
	default:
		return bad("task_ipc_mode", "%d is not one of 1 (socket pair), 2 (message queue), 3 (competing message queue)", s.TaskIPCMode)
	}
	if s.LogRotation > LogRotationEveryMinute {
		return bad("log_rotation", "%d is not one of 0 (single), 1 (monthly), 2 (daily), 3 (hourly), 4 (every minute)", s.LogRotation)
	}
	if s.LogRotation != LogRotationSingle && s.LogFile == "" {
		return bad("log_rotation", "needs log_file: the rotated files are named after it")
	}
	if s.LogLevel < LogLevelDefault || s.LogLevel > LogLevelNone {
		return bad("log_level", "%d is outside 0 (DEBUG) .. 6 (NONE)", int(s.LogLevel)-1)
	}
	if len(s.PackageEOF) > maxEOFLength {
		return bad("package_eof", "%q is %d bytes; at most %d are allowed", s.PackageEOF, len(s.PackageEOF), maxEOFLength)
	}
	if s.PackageLengthType != "" && (len(s.PackageLengthType) != 1 || !strings.Contains(packageLengthTypes, s.PackageLengthType)) {
		return bad("package_length_type", "%q is not one character of %q (PHP pack() codes)", s.PackageLengthType, packageLengthTypes)
	}
	if s.AdminServer != "" {
		if _, err := parseAdminServer(s.AdminServer); err != nil {
			return bad("admin_server", "%v", err)
		}
	}
	if s.SSLProtocols&^sslProtocolBits != 0 {
		return bad("ssl_protocols", "%#x has bits outside SSLv2 2, SSLv3 4, TLSv1 8, TLSv1.1 16, TLSv1.2 32, TLSv1.3 64", s.SSLProtocols)
	}
	if _, _, err := tlsVersions(s.SSLProtocols); err != nil {
		return bad("ssl_protocols", "%v", err)
	}
	if _, err := parseCiphers(s.SSLCiphers); err != nil {
		return bad("ssl_ciphers", "%v", err)
	}
	if s.SSLVerifyDepth < 0 {
		return bad("ssl_verify_depth", "%d is negative; give 0 (no limit) or the most CA certificates above a client's", s.SSLVerifyDepth)
	}
	for name, pair := range s.SSLSNICerts {
		if name == "" || pair.CertFile == "" || pair.KeyFile == "" {
			return bad("ssl_sni_certs", "entry %q needs a server name, ssl_cert_file and ssl_key_file", name)
		}
	}

	// Combinations, on the values in force.
	r := s.withDefaults()
	if r.OpenEOFCheck && r.PackageEOF == "" {
		return bad("package_eof", "is empty but open_eof_check is on; give a delimiter of 1 to 8 bytes")
	}
	if r.OpenEOFCheck && r.OpenLengthCheck {
		what := "open_eof_check"
		if s.OpenEOFSplit {
			what = "open_eof_split"
		}
		with := "open_length_check"
		if s.PackageLengthFunc != nil {
			with = "package_length_func"
		}
		return bad("open_length_check", "%s and %s are both on; a port frames its input one way, pick one", with, what)
	}
	if r.BufferLowWatermark > r.BufferHighWatermark {
		return bad("buffer_low_watermark", "%d is above buffer_high_watermark %d; the low watermark must not exceed the high one", r.BufferLowWatermark, r.BufferHighWatermark)
	}
	if s.SendYield {
		switch r.DispatchMode {
		case DispatchRoundRobin, DispatchIdle, DispatchStream:
			return bad("send_yield", "needs a dispatch_mode that keeps a connection on one worker (2, 4 or 5), not %d", r.DispatchMode)
		}
	}
	if (s.SSLCertFile == "") != (s.SSLKeyFile == "") {
		if s.SSLCertFile == "" {
			return bad("ssl_cert_file", "is empty but ssl_key_file is set; TLS needs both")
		}
		return bad("ssl_key_file", "is empty but ssl_cert_file is set; TLS needs both")
	}
	if s.SSLVerifyPeer && s.SSLClientCertFile == "" {
		return bad("ssl_client_cert_file", "is empty but ssl_verify_peer is on; give the CA file client certificates are checked against")
	}
	return nil
}

// merge returns s with every non-zero field of o put in its place: Set(o)'s semantics, as
// Swoole's set() keeps the keys that are not given. A nil *bool or func in o keeps s's.
func (s Settings) merge(o Settings) Settings {
	dst := reflect.ValueOf(&s).Elem()
	src := reflect.ValueOf(o)
	for i := range src.NumField() {
		if f := src.Field(i); !f.IsZero() {
			dst.Field(i).Set(f)
		}
	}
	return s
}

// toMap returns the settings under Swoole's keys (the main key, not the aliases), one entry
// per field, in Swoole's units: durations as float64 seconds, log_level as Swoole's 0–6,
// a nil *bool as true (the default it stands for), functions as they are (nil when
// unset). Call it on withDefaults() to show the values in force. applyOptions takes the
// map back.
func (s Settings) toMap() map[string]any {
	m := make(map[string]any, len(options))
	rv := reflect.ValueOf(s)
	for i := range options {
		o := &options[i]
		f := rv.FieldByIndex(o.index)
		var v any
		switch o.kind {
		case kindInt, kindSize:
			v = int(f.Int())
		case kindInt64:
			v = f.Int()
		case kindBool:
			v = f.Bool()
		case kindBoolPtr:
			v = f.IsNil() || f.Elem().Bool()
		case kindString:
			v = f.String()
		case kindSeconds:
			v = time.Duration(f.Int()).Seconds()
		case kindLogLevel:
			v = LogLevel(f.Int()).SwooleLevel()
		case kindFunc:
			if f.IsNil() {
				v = nil
			} else {
				v = f.Interface()
			}
		case kindSNI:
			if f.Len() > 0 {
				sni := map[string]any{}
				for name, pair := range f.Interface().(map[string]SSLCertPair) {
					sni[name] = map[string]any{"ssl_cert_file": pair.CertFile, "ssl_key_file": pair.KeyFile}
				}
				v = sni
			}
		}
		m[o.key] = v
	}
	return m
}

// portSettingsOnly returns an *Error (ErrInvalidParams) when s, given to Port.Set, has a
// server setting (one not marked [port]) that is not zero.
func portSettingsOnly(s Settings) error {
	rv := reflect.ValueOf(s)
	for i := range options {
		o := &options[i]
		if !o.port && !rv.FieldByIndex(o.index).IsZero() {
			return serverOnlyError(o)
		}
	}
	return nil
}

// withoutPortSettings returns s with every port setting at its zero value: the server-only
// part of s, which a port that has settings of its own shares with the server.
func withoutPortSettings(s Settings) Settings {
	rv := reflect.ValueOf(&s).Elem()
	for i := range options {
		if o := &options[i]; o.port {
			f := rv.FieldByIndex(o.index)
			f.Set(reflect.Zero(f.Type()))
		}
	}
	return s
}

// serverOnlyError is the error for a server setting given to a Port.
func serverOnlyError(o *option) *Error {
	return newError(ErrInvalidParams, "%s (Settings.%s) is a server setting; set it on the Server, not on a Port", o.key, o.field)
}

// mergeSettings is Set(o): on the server (port false) or on a Port (port true, where a
// server setting in o is refused by portSettingsOnly). It returns cur.merge(o) once that
// validates; on an error it returns cur unchanged with the *Error.
func mergeSettings(cur, o Settings, port bool) (Settings, error) {
	if port {
		if err := portSettingsOnly(o); err != nil {
			return cur, err
		}
	}
	n := cur.merge(o)
	if err := n.validate(); err != nil {
		return cur, err
	}
	return n, nil
}

// applySettingsOptions is SetOptions(opts): applyOptions on a copy of cur (port true for a
// Port), then validate. On an error it returns cur unchanged with the *Error.
func applySettingsOptions(cur Settings, opts map[string]any, port bool) (Settings, error) {
	n := cur
	if err := applyOptions(&n, opts, port); err != nil {
		return cur, err
	}
	if err := n.validate(); err != nil {
		return cur, err
	}
	return n, nil
}
