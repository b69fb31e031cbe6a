// Package swoole is goswoole: Swoole's Server rebuilt in Go — an event-driven TCP, UDP and
// Unix-socket server with its own epoll reactor, a shared connection table, framing, timers,
// heartbeat and the Swoole\Server method set under Go names.
//
// # Life of a server
//
//	NewServer (binds) ─► AddListener* ─► Set/SetOptions ─► On*/OnX ─► Start (blocks)
//	                                                                     │
//	   Start ─► WorkerStart ─► { Connect ─► Receive* ─► Close }* ─► BeforeShutdown
//	                                                                     │
//	                       Close for each open connection ─► WorkerStop ─► Shutdown ─► Start returns nil
//
// Everything before Start configures; after Start only the connection, timer and query
// methods work. Callbacks of one worker run one at a time on its event loop (no locks needed
// in them); the methods that act on connections may be called from any goroutine. Buffers
// given to OnReceive and OnPacket are valid only during the call.
//
// Errors are *Error values carrying Swoole's numeric code (Error.Code) and a message that
// says what to do; GetLastError returns the last code in this process.
package swoole
