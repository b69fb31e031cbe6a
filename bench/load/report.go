package load

// Report is one run of cmd/load as JSON (its -json output, and what cmd/matrix reads back).
// Each mode fills its own fields.
type Report struct {
	Mode   string  `json:"mode"` // echo, idle or connect
	Conns  int     `json:"conns"`
	Size   int     `json:"size"`
	Depth  int     `json:"depth,omitempty"`
	Rate   float64 `json:"rate,omitempty"`   // echo: messages a second per connection (-rate), 0: closed loop
	TLS    bool    `json:"tls,omitempty"`    // connections over TLS (-tls)
	Resume bool    `json:"resume,omitempty"` // ... with a client session cache (-resume)

	// echo and connect
	Seconds  float64 `json:"seconds,omitempty"` // the measured window
	Msgs     uint64  `json:"msgs,omitempty"`    // echo: round trips; connect: connections
	Total    uint64  `json:"total,omitempty"`   // ... warmup included
	PerSec   float64 `json:"per_sec,omitempty"` // msgs/s or conns/s
	MBPerSec float64 `json:"mb_per_sec,omitempty"`
	P50us    float64 `json:"p50_us,omitempty"`
	P99us    float64 `json:"p99_us,omitempty"`
	P999us   float64 `json:"p999_us,omitempty"`
	MaxUs    float64 `json:"max_us,omitempty"`
	Errors   uint64  `json:"errors,omitempty"`
	Resumed  uint64  `json:"resumed,omitempty"` // connect -tls: handshakes that resumed a session
	FirstErr string  `json:"first_error,omitempty"`

	// every mode: the server's CPU time over the window (idle: while connecting), and per
	// message (echo) or per connection (idle, connect)
	ServerCPU float64 `json:"server_cpu_s,omitempty"`
	CPUPer    float64 `json:"server_cpu_us_per,omitempty"`

	// idle
	RSSBefore    int64   `json:"rss_before,omitempty"`
	RSSAfter     int64   `json:"rss_after,omitempty"`
	BytesPerConn float64 `json:"rss_per_conn,omitempty"`
	PSSPerConn   float64 `json:"pss_per_conn,omitempty"`
	AnonPerConn  float64 `json:"anon_per_conn,omitempty"`  // RssAnon growth per connection
	ShmemPerConn float64 `json:"shmem_per_conn,omitempty"` // RssShmem growth per connection
	OpenSeconds  float64 `json:"open_s,omitempty"`

	// An echo run beside an attack (-slowloris, -badrate): what the attack did.
	Attack *AttackStats `json:"attack,omitempty"`
}
