package load

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Probe measures the server under load: its CPU time and its resident memory. The modes
// sample it before and after what they measure and report the difference.
type Probe interface {
	CPU() (time.Duration, error) // CPU time used so far (user + system)
	RSS() (int64, error)         // resident memory now, bytes
}

// ProcTree is a Probe over a process and all its descendants, read from /proc (Linux): the
// process tree is found by following /proc/PID/task/TID/children from Pid (or, where the
// kernel lacks that file, from the parent ids in /proc/*/stat).
type ProcTree struct{ Pid int }

// clockTick is USER_HZ, the unit of the times in /proc/PID/stat: 100 on every Linux ABI.
const clockTick = 10 * time.Millisecond

// CPU sums utime+stime+cutime+cstime over the tree. The c-times hold the time of children
// that have exited and been reaped, so a worker that exits between two samples keeps its time
// in the sum (in its parent's cutime) instead of taking it away.
func (p ProcTree) CPU() (time.Duration, error) {
	pids, err := Tree(p.Pid)
	if err != nil {
		return 0, err
	}
	var ticks int64
	for _, pid := range pids {
		f, err := statFields(pid)
		if err != nil {
			if pid == p.Pid {
				return 0, err
			}
			continue // exited since Tree: its time is in its parent's cutime now
		}
		// Fields after "(comm) ": state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14).
		for _, i := range []int{11, 12, 13, 14} {
			v, err := strconv.ParseInt(f[i], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("/proc/%d/stat: field %d: %w", pid, i, err)
			}
			ticks += v
		}
	}
	return time.Duration(ticks) * clockTick, nil
}

// RSS sums VmRSS (anonymous + file + shared memory resident) over the tree. Pages shared
// between processes of the tree count once per process that maps them.
func (p ProcTree) RSS() (int64, error) {
	pids, err := Tree(p.Pid)
	if err != nil {
		return 0, err
	}
	var sum int64
	for _, pid := range pids {
		kb, err := statusKB(pid, "VmRSS:")
		if err != nil {
			if pid == p.Pid {
				return 0, err
			}
			continue
		}
		sum += kb << 10
	}
	return sum, nil
}

// RSSParts sums the parts of VmRSS over the tree: RssAnon (heap, stacks), RssFile (the
// executable's and libraries' pages) and RssShmem (shared memory, memfd mappings included).
func (p ProcTree) RSSParts() (anon, file, shmem int64, err error) {
	pids, err := Tree(p.Pid)
	if err != nil {
		return 0, 0, 0, err
	}
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			if pid == p.Pid {
				return 0, 0, 0, err
			}
			continue
		}
		a, err1 := fieldKB(b, "RssAnon:")
		f, err2 := fieldKB(b, "RssFile:")
		m, err3 := fieldKB(b, "RssShmem:")
		if err := errors.Join(err1, err2, err3); err != nil {
			return 0, 0, 0, fmt.Errorf("/proc/%d/status: %w", pid, err)
		}
		anon, file, shmem = anon+a<<10, file+f<<10, shmem+m<<10
	}
	return anon, file, shmem, nil
}

// PSS sums the proportional set size (Pss in /proc/PID/smaps_rollup) over the tree: each page
// shared by k processes counts 1/k in each, so the sum counts it once.
func (p ProcTree) PSS() (int64, error) {
	pids, err := Tree(p.Pid)
	if err != nil {
		return 0, err
	}
	var sum int64
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
		if err != nil {
			if pid == p.Pid {
				return 0, err
			}
			continue
		}
		kb, err := fieldKB(b, "Pss:")
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/smaps_rollup: %w", pid, err)
		}
		sum += kb << 10
	}
	return sum, nil
}

// Tree returns pid followed by all its descendants (children, their children, ...).
func Tree(pid int) ([]int, error) {
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err != nil {
		return nil, err
	}
	out := []int{pid}
	byParent := map[int][]int(nil) // built on first need, when children files are missing
	for i := 0; i < len(out); i++ {
		kids, ok := childrenOf(out[i])
		if !ok {
			if byParent == nil {
				byParent = parentMap()
			}
			kids = byParent[out[i]]
		}
		out = append(out, kids...)
	}
	return out, nil
}

// childrenOf reads /proc/PID/task/*/children; ok is false when the kernel has no such file
// (CONFIG_PROC_CHILDREN off).
func childrenOf(pid int) (kids []int, ok bool) {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	if err != nil || len(tasks) == 0 {
		return nil, false // no children files (or the process is gone: the fallback finds none)
	}
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue // the thread exited
		}
		for _, s := range strings.Fields(string(b)) {
			if k, err := strconv.Atoi(s); err == nil {
				kids = append(kids, k)
			}
		}
	}
	return kids, true
}

// parentMap maps every process's parent id to its children, from /proc/*/stat.
func parentMap() map[int][]int {
	m := map[int][]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		f, err := statFields(pid)
		if err != nil {
			continue
		}
		if ppid, err := strconv.Atoi(f[1]); err == nil {
			m[ppid] = append(m[ppid], pid)
		}
	}
	return m
}

// statFields returns the fields of /proc/PID/stat after "(comm) ", from the state on.
func statFields(pid int) ([]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil, fmt.Errorf("/proc/%d/stat: no ')'", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 15 {
		return nil, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	return f, nil
}

func statusKB(pid int, key string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	kb, err := fieldKB(b, key)
	if err != nil {
		return 0, fmt.Errorf("/proc/%d/status: %w", pid, err)
	}
	return kb, nil
}

// fieldKB finds a "Key:   123 kB" line and returns 123.
func fieldKB(b []byte, key string) (int64, error) {
	for line := range bytes.Lines(b) {
		if rest, ok := bytes.CutPrefix(line, []byte(key)); ok {
			f := strings.Fields(string(rest))
			if len(f) == 0 {
				break
			}
			return strconv.ParseInt(f[0], 10, 64)
		}
	}
	return 0, errors.New("no " + key + " line")
}
