<?php
// Real Swoole's echo server, the "swoole-base" and "swoole-process" rows of the benchmarks:
// a Swoole\Server whose onReceive sends the data back with $server->send, started as
//
//   php -d extension=SWOOLE_SO bench/swoole/echo.php [flags]
//
// (SWOOLE_SO: what bench/swoole/build.sh prints). It takes the flags of bench/cmd/swooleecho,
// those that apply to Swoole:
//
//   -addr host:port   where to listen (default 127.0.0.1:9501; port 0: any free port)
//   -mode base|process  SWOOLE_BASE (default) or SWOOLE_PROCESS
//   -workers N        worker_num (default 1)
//   -reactors N       reactor_num (PROCESS; 0, the default: as goswoole's default, the CPUs this
//                     process may run on (its affinity mask, so 1 under taskset -c 0) capped at
//                     worker_num; Swoole's own default counts the machine's CPUs instead)
//   -maxconn N        max_connection (0: Swoole's default; Swoole caps it at RLIMIT_NOFILE)
//   -nofile           raise the RLIMIT_NOFILE soft limit to the hard limit first
//   -coroutine 0|1    enable_coroutine (default 1, Swoole's default: each onReceive runs in a
//                     coroutine of its own)
//   -length           frame the input with a 4-byte big-endian length header (open_length_check,
//                     package_max_length 2 MiB), as swooleecho -length: the bad-peer cells
//   -idle N           heartbeat_check_interval 1 and heartbeat_idle_time N, as swooleecho -idle
// and accepts, ignoring them, those that do not apply (-multicore, -frametimeout, ...).
// open_tcp_nodelay is on, as for every peer of the benchmarks. Every worker prints
// "swoole echo server listening on HOST:PORT" (the real port) on stdout when it has started, so a
// driver waits for worker_num lines. It serves until SIGTERM (or SIGINT), then stops.
// Swoole's log goes to stderr at warning level and above.

$opt = [
    'addr' => '127.0.0.1:9501', 'mode' => 'base', 'workers' => 1, 'reactors' => 0,
    'maxconn' => 0, 'nofile' => false, 'coroutine' => 1, 'length' => false, 'idle' => 0,
];
$takesValue = ['addr' => 1, 'mode' => 1, 'workers' => 1, 'reactors' => 1, 'maxconn' => 1, 'coroutine' => 1, 'idle' => 1,
    // swooleecho's flags with a value that do not apply here
    'frametimeout' => 1, 'tlscert' => 1, 'tlskey' => 1, 'cpuprofile' => 1, 'memprofile' => 1];
$args = array_slice($argv, 1);
for ($i = 0; $i < count($args); $i++) {
    $a = $args[$i];
    if ($a === '' || $a[0] !== '-') {
        fail("no arguments follow the flags: $a");
    }
    $name = ltrim($a, '-');
    $value = null;
    if (($eq = strpos($name, '=')) !== false) {
        $value = substr($name, $eq + 1);
        $name = substr($name, 0, $eq);
    }
    if (isset($takesValue[$name]) && $value === null) {
        if (++$i >= count($args)) {
            fail("flag -$name needs a value");
        }
        $value = $args[$i];
    }
    switch ($name) {
    case 'addr': case 'mode':
        $opt[$name] = $value;
        break;
    case 'workers': case 'reactors': case 'maxconn': case 'coroutine': case 'idle':
        if (!preg_match('/^[0-9]+$/', $value)) {
            fail("-$name $value: want a number");
        }
        $opt[$name] = (int)$value;
        break;
    case 'nofile': case 'length':
        $opt[$name] = $value === null || $value === 'true' || $value === '1';
        break;
    case 'multicore': case 'frametimeout': case 'tlscert': case 'tlskey':
    case 'cpuprofile': case 'memprofile':
        fwrite(STDERR, "swoole: -$name does not apply to this server; ignored\n");
        break;
    default:
        fail("unknown flag -$name");
    }
}

function fail(string $msg): void
{
    fwrite(STDERR, "swoole: $msg\n");
    exit(2);
}

if (!extension_loaded('swoole')) {
    fail('the swoole extension is not loaded: php -d extension=PATH/swoole.so ' . $argv[0]);
}
$modes = ['base' => SWOOLE_BASE, 'process' => SWOOLE_PROCESS];
if (!isset($modes[$opt['mode']])) {
    fail("-mode {$opt['mode']}: use base or process");
}
if ($opt['workers'] < 1) {
    fail('-workers: at least 1');
}
if (($c = strrpos($opt['addr'], ':')) === false) {
    fail("-addr {$opt['addr']}: want host:port");
}
$host = trim(substr($opt['addr'], 0, $c), '[]');
$port = (int)substr($opt['addr'], $c + 1);

if ($opt['nofile']) {
    $lim = posix_getrlimit();
    $hard = $lim['hard openfiles'];
    if ($hard !== 'unlimited' && !posix_setrlimit(POSIX_RLIMIT_NOFILE, (int)$hard, (int)$hard)) {
        fail('raising RLIMIT_NOFILE: ' . posix_strerror(posix_get_last_error()));
    }
    fwrite(STDERR, "swoole: RLIMIT_NOFILE $hard\n");
}

// usableCPUs counts the CPUs in this process's affinity mask (Cpus_allowed_list), as Go's
// runtime.NumCPU does for goswoole's reactor_num default.
function usableCPUs(): int
{
    $status = @file_get_contents('/proc/self/status');
    if ($status === false || !preg_match('/^Cpus_allowed_list:\s*(\S+)/m', $status, $m)) {
        return swoole_cpu_num();
    }
    $n = 0;
    foreach (explode(',', $m[1]) as $r) {
        $ab = explode('-', $r);
        $n += count($ab) === 2 ? (int)$ab[1] - (int)$ab[0] + 1 : 1;
    }
    return max($n, 1);
}

$settings = [
    'worker_num' => $opt['workers'],
    'open_tcp_nodelay' => true,
    'enable_coroutine' => (bool)$opt['coroutine'],
    'log_level' => SWOOLE_LOG_WARNING,
];
if ($opt['mode'] === 'process') {
    $settings['reactor_num'] = $opt['reactors'] > 0 ? $opt['reactors'] : min(usableCPUs(), $opt['workers']);
} elseif ($opt['reactors'] > 0) {
    fwrite(STDERR, "swoole: -reactors applies to -mode process only; ignored\n");
}
if ($opt['maxconn'] > 0) {
    $settings['max_connection'] = $opt['maxconn'];
}
if ($opt['length']) {
    $settings += ['open_length_check' => true, 'package_length_type' => 'N', 'package_length_offset' => 0,
        'package_body_offset' => 4, 'package_max_length' => 2 << 20];
}
if ($opt['idle'] > 0) {
    $settings += ['heartbeat_check_interval' => 1, 'heartbeat_idle_time' => $opt['idle']];
}

$server = new Swoole\Server($host, $port, $modes[$opt['mode']], SWOOLE_SOCK_TCP);
$server->set($settings);
$bound = $server->port; // the port the listening socket got (port 0: the one the kernel chose)
$server->on('workerStart', function (Swoole\Server $s, int $id) use ($host, $bound) {
    $h = strpos($host, ':') !== false ? "[$host]" : $host;
    echo "swoole echo server listening on $h:$bound\n";
});
$server->on('receive', function (Swoole\Server $s, int $fd, int $reactorId, string $data) {
    $s->send($fd, $data);
});
fwrite(STDERR, sprintf("swoole: Swoole %s, %s, worker_num %d%s\n", SWOOLE_VERSION, strtoupper($opt['mode']),
    $opt['workers'], isset($settings['reactor_num']) ? ", reactor_num {$settings['reactor_num']}" : ''));
if (!$server->start()) {
    fail('start failed: ' . swoole_strerror(swoole_last_error()));
}
