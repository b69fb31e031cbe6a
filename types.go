package swoole

// ClientAddr is the sender of a datagram, given to OnPacket.
type ClientAddr struct {
	Address      string // the peer's IP address, or its path on a unix datagram socket
	Port         int    // the peer's port (0 for unix sockets)
	ServerSocket int    // the listening socket's descriptor that received the datagram
	ServerPort   int    // the port that received it
}

// ClientInfo describes one connection (GetClientInfo). Fields follow the seed's keys, which
// the JSON tags give.
type ClientInfo struct {
	ServerPort       int     `json:"server_port"`        // the listening port it came in on
	ServerFD         int     `json:"server_fd"`          // the listening socket's descriptor
	SocketFD         int     `json:"socket_fd"`          // the connection's OS descriptor (in its worker)
	SocketType       int     `json:"socket_type"`        // SockType of the listener
	RemotePort       int     `json:"remote_port"`        // the peer's port (0 for unix sockets)
	RemoteIP         string  `json:"remote_ip"`          // the peer's address (a path, or "", for unix sockets)
	ReactorID        int     `json:"reactor_id"`         // the worker (BASE) that holds the connection
	ConnectTime      int64   `json:"connect_time"`       // Unix seconds when it was accepted
	LastTime         int64   `json:"last_time"`          // Unix seconds of the last receive (connect time before any)
	LastRecvTime     float64 `json:"last_recv_time"`     // Unix seconds, with fraction, of the last receive; 0 before any
	LastSendTime     float64 `json:"last_send_time"`     // Unix seconds, with fraction, of the last Send; 0 before any
	LastDispatchTime float64 `json:"last_dispatch_time"` // Unix seconds, with fraction, of the last delivery to a callback
	CloseErrno       int     `json:"close_errno"`        // the errno that closed it (0 while open or for a clean close)
	RecvQueuedBytes  int     `json:"recv_queued_bytes"`  // bytes received but not yet delivered (an incomplete frame; ModeProcess: dispatched to a worker and not yet handled)
	SendQueuedBytes  int     `json:"send_queued_bytes"`  // bytes waiting to be written to the peer
	WebSocketStatus  int     `json:"websocket_status"`   // always 0: goswoole has no WebSocket server
	UID              uint32  `json:"uid,omitempty"`      // the uid given to Bind (0 when not bound)
	SSLClientCert    string  `json:"ssl_client_cert,omitempty"`
}

// Stats is a snapshot of the server's counters (Stats). Fields follow the seed's keys, which the
// JSON tags give. Server-wide counters cover every worker; the Worker* fields describe the
// calling worker.
//
// In a single-process ModeBase server: DispatchCount and WorkerDispatchCount stay 0 (there is
// no master to dispatch; Swoole counts them only in ModeProcess); PipePacketMsgID is 0 (no IPC);
// the Task*, Tasking* and Coroutine* fields are 0 (no task workers; callbacks run on the loop,
// not in coroutines). SessionRound is the last session id handed out.
type Stats struct {
	StartTime           int64 `json:"start_time"`       // Unix seconds when Start began serving
	ConnectionNum       int   `json:"connection_num"`   // open connections
	AbortCount          int64 `json:"abort_count"`      // connections refused (max_connection)
	AcceptCount         int64 `json:"accept_count"`     // connections accepted
	CloseCount          int64 `json:"close_count"`      // connections closed
	WorkerNum           int   `json:"worker_num"`       // event workers
	TaskWorkerNum       int   `json:"task_worker_num"`  // task workers
	UserWorkerNum       int   `json:"user_worker_num"`  // user processes
	IdleWorkerNum       int   `json:"idle_worker_num"`  // event workers not running a callback
	DispatchCount       int64 `json:"dispatch_count"`   // packets the master dispatched (ModeProcess)
	RequestCount        int64 `json:"request_count"`    // OnReceive and OnPacket deliveries
	ResponseCount       int64 `json:"response_count"`   // successful Send calls
	TotalRecvBytes      int64 `json:"total_recv_bytes"` // bytes received from peers
	TotalSendBytes      int64 `json:"total_send_bytes"` // bytes accepted by Send
	PipePacketMsgID     int64 `json:"pipe_packet_msg_id"`
	SessionRound        int64 `json:"session_round"`         // the last session id handed out
	MinFD               int   `json:"min_fd"`                // the smallest OS descriptor a connection had
	MaxFD               int   `json:"max_fd"`                // the largest OS descriptor a connection had
	WorkerRequestCount  int64 `json:"worker_request_count"`  // requests this worker handled
	WorkerResponseCount int64 `json:"worker_response_count"` // sends this worker made
	WorkerDispatchCount int64 `json:"worker_dispatch_count"` // packets dispatched to this worker
	TaskIdleWorkerNum   int   `json:"task_idle_worker_num"`
	TaskingNum          int   `json:"tasking_num"`
	CoroutineNum        int   `json:"coroutine_num"`
	CoroutinePeekNum    int   `json:"coroutine_peek_num"`
	TaskQueueNum        int   `json:"task_queue_num"`
	TaskQueueBytes      int64 `json:"task_queue_bytes"`
	// LostMessageCount (goswoole's own) counts messages between the server's processes
	// that were dropped (malformed, cut short, too large for package_max_length) or lost
	// with a process that died handling them (the event in hand of a killed worker); each
	// kind is also logged, once per second at most. See RELIABILITY.md.
	LostMessageCount int64 `json:"lost_message_count"`
}
