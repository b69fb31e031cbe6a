package swoole

import (
	"net/http"
	"os"
	"strconv"

	"github.com/goswoole/swoole/internal/metrics"
)

// /metrics of the admin server: Prometheus' text exposition of Stats() (server-wide), of
// every process of the server (per worker, task worker and user process, from the shared
// table and /proc), and of the Go runtime of the process that serves it (go_*, process_*).
// Names start with goswoole_; what only grows is a counter (_total), the rest gauges.
// client_golang is used by internal/metrics only.

func (as *adminServer) serveMetrics(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		adminJSON(w, http.StatusMethodNotAllowed, adminCodeDenied, "Bad request method: /metrics takes GET")
		return
	}
	as.mOnce.Do(func() { as.metrics = metrics.Handler(as.s.metricFamilies) })
	as.metrics.ServeHTTP(w, r)
}

// metricFamilies is one scrape's numbers.
func (s *Server) metricFamilies() []metrics.Family {
	if !s.tableLive() {
		return nil
	}
	st := s.Stats()
	g := func(name, help string, v float64) metrics.Family {
		return metrics.Family{Name: name, Help: help, Kind: metrics.Gauge, Samples: []metrics.Sample{{Value: v}}}
	}
	c := func(name, help string, v float64) metrics.Family {
		return metrics.Family{Name: name, Help: help, Kind: metrics.Counter, Samples: []metrics.Sample{{Value: v}}}
	}
	fams := []metrics.Family{
		g("goswoole_start_time_seconds", "Unix time the server started serving (Stats start_time).", float64(st.StartTime)),
		g("goswoole_connection_num", "Open connections (Stats connection_num).", float64(st.ConnectionNum)),
		c("goswoole_accept_total", "Connections accepted (Stats accept_count).", float64(st.AcceptCount)),
		c("goswoole_close_total", "Connections closed (Stats close_count).", float64(st.CloseCount)),
		c("goswoole_abort_total", "Connections refused at max_connection (Stats abort_count).", float64(st.AbortCount)),
		g("goswoole_worker_num", "Event workers (Stats worker_num).", float64(st.WorkerNum)),
		g("goswoole_idle_worker_num", "Event workers not running a callback (Stats idle_worker_num).", float64(st.IdleWorkerNum)),
		g("goswoole_task_worker_num", "Task workers (Stats task_worker_num).", float64(st.TaskWorkerNum)),
		g("goswoole_task_idle_worker_num", "Task workers waiting for a task (Stats task_idle_worker_num).", float64(st.TaskIdleWorkerNum)),
		g("goswoole_user_worker_num", "User processes (AddProcess).", float64(len(s.procs))),
		g("goswoole_tasking_num", "Tasks queued or running (Stats tasking_num).", float64(st.TaskingNum)),
		g("goswoole_task_queue_num", "Tasks waiting in the queue (Stats task_queue_num).", float64(st.TaskQueueNum)),
		g("goswoole_task_queue_bytes", "Bytes of the tasks waiting in the queue (Stats task_queue_bytes).", float64(st.TaskQueueBytes)),
		c("goswoole_lost_messages_total", "Messages between the server's processes dropped or lost with a process (Stats lost_message_count).", float64(st.LostMessageCount)),
		c("goswoole_dispatch_total", "Packets the master dispatched to workers (Stats dispatch_count).", float64(st.DispatchCount)),
		c("goswoole_request_total", "Receive and Packet deliveries (Stats request_count).", float64(st.RequestCount)),
		c("goswoole_response_total", "Successful Send calls (Stats response_count).", float64(st.ResponseCount)),
		c("goswoole_receive_bytes_total", "Bytes received from peers (Stats total_recv_bytes).", float64(st.TotalRecvBytes)),
		c("goswoole_send_bytes_total", "Bytes accepted by Send (Stats total_send_bytes).", float64(st.TotalSendBytes)),
		g("goswoole_session_round", "The last session id handed out (Stats session_round).", float64(st.SessionRound)),
		g("goswoole_coroutine_num", "Callbacks blocked now, all workers (Stats coroutine_num).", float64(st.CoroutineNum)),
	}

	labels := []string{"process", "type"}
	fam := func(name, help string, kind metrics.Kind) metrics.Family {
		return metrics.Family{Name: name, Help: help, Kind: kind, Labels: labels}
	}
	pid := fam("goswoole_process_pid", "The pid of each process of the server (0 while it is being replaced).", metrics.Gauge)
	status := fam("goswoole_process_status", "Each process's status: 1 busy, 2 idle, 3 exiting, 0 not started.", metrics.Gauge)
	start := fam("goswoole_process_start_time_seconds", "Unix time each worker process started.", metrics.Gauge)
	reqs := fam("goswoole_worker_request_total", "Requests each worker handled (Stats worker_request_count).", metrics.Counter)
	resps := fam("goswoole_worker_response_total", "Sends each worker made (Stats worker_response_count).", metrics.Counter)
	disp := fam("goswoole_worker_dispatch_total", "Packets dispatched to each worker (Stats worker_dispatch_count).", metrics.Counter)
	coro := fam("goswoole_worker_coroutine_num", "Callbacks blocked now in each worker.", metrics.Gauge)
	cpu := fam("goswoole_process_cpu_seconds_total", "CPU time (user and system) of each process of the server.", metrics.Counter)
	rss := fam("goswoole_process_resident_memory_bytes", "Resident memory of each process of the server.", metrics.Gauge)

	add := func(name, typ string, p int) {
		lv := []string{name, typ}
		pid.Samples = append(pid.Samples, metrics.Sample{Labels: lv, Value: float64(p)})
		cpu.Samples = append(cpu.Samples, metrics.Sample{Labels: lv, Value: float64(procCPUTicks(p)) / clockTicks})
		rss.Samples = append(rss.Samples, metrics.Sample{Labels: lv, Value: float64(procRSS(p))})
	}
	switch mgr := s.GetManagerPID(); {
	case s.mode == ModeProcess:
		add("master", "master", os.Getpid()) // it does the manager's work too
	case mgr > 0:
		add("manager", "manager", mgr)
	} // with one process, that process is worker-0 below
	for id := range s.procTotal() {
		ws := s.table.Worker(id)
		if ws == nil {
			continue
		}
		name, typ := "worker-"+strconv.Itoa(id), "worker"
		switch {
		case s.userProcessIndex(id) >= 0:
			name, typ = "process-"+strconv.Itoa(s.userProcessIndex(id)), "user_process"
		case id >= s.eff.WorkerNum:
			name, typ = "task_worker-"+strconv.Itoa(id-s.eff.WorkerNum), "task_worker"
		}
		lv := []string{name, typ}
		p := int(ws.PID.Load())
		add(name, typ, p)
		status.Samples = append(status.Samples, metrics.Sample{Labels: lv, Value: float64(ws.Status.Load())})
		start.Samples = append(start.Samples, metrics.Sample{Labels: lv, Value: float64(ws.StartTime.Load())})
		if typ == "user_process" {
			continue
		}
		reqs.Samples = append(reqs.Samples, metrics.Sample{Labels: lv, Value: float64(ws.RequestCount.Load())})
		resps.Samples = append(resps.Samples, metrics.Sample{Labels: lv, Value: float64(ws.ResponseCount.Load())})
		disp.Samples = append(disp.Samples, metrics.Sample{Labels: lv, Value: float64(ws.DispatchCount.Load())})
		coro.Samples = append(coro.Samples, metrics.Sample{Labels: lv, Value: float64(ws.CoroutineNum.Load())})
	}
	return append(fams, pid, status, start, reqs, resps, disp, coro, cpu, rss)
}

// clockTicks is the kernel's USER_HZ, the unit of /proc/<pid>/stat's times (100 on Linux).
const clockTicks = 100
