package main

import (
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cpuSnap is CPU time used so far by this process, PostgreSQL (the
// postmaster and its children) and nats-server, in seconds; pg and nats
// are measured only with their pids.
type cpuSnap struct {
	at             time.Time
	self, pg, nats float64
	pgOn, natsOn   bool
}

func snapCPU(pgPID, natsPID int) cpuSnap {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	s := cpuSnap{at: time.Now(), self: seconds(ru.Utime) + seconds(ru.Stime), pgOn: pgPID > 0, natsOn: natsPID > 0}
	if pgPID > 0 {
		s.pg = procCPU(pgPID, true)
		for _, p := range children(pgPID) {
			s.pg += procCPU(p, false)
		}
	}
	if natsPID > 0 {
		s.nats = procCPU(natsPID, false)
	}
	return s
}

func seconds(tv syscall.Timeval) float64 { return float64(tv.Sec) + float64(tv.Usec)/1e6 }

// statFields are the fields of /proc/<pid>/stat after the command name.
func statFields(pid int) []string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 > len(s) {
		return nil
	}
	return strings.Fields(s[i+2:])
}

// procCPU is pid's user and system time (with its waited-for children's).
func procCPU(pid int, waited bool) float64 {
	f := statFields(pid)
	if len(f) < 15 {
		return 0
	}
	fields := []int{11, 12} // utime, stime
	if waited {
		fields = append(fields, 13, 14) // cutime, cstime
	}
	var ticks float64
	for _, k := range fields {
		v, _ := strconv.ParseFloat(f[k], 64)
		ticks += v
	}
	return ticks / 100 // USER_HZ
}

func children(ppid int) []int {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	var out []int
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		if f := statFields(pid); len(f) > 1 && f[1] == strconv.Itoa(ppid) {
			out = append(out, pid)
		}
	}
	return out
}

// cpuUse is the CPU used between a and b: each party's share of one core
// over the window, and the machine's cores.
func cpuUse(a, b cpuSnap) map[string]float64 {
	w := b.at.Sub(a.at).Seconds()
	if w <= 0 {
		return nil
	}
	pct := func(x float64) float64 { return float64(int(x/w*100 + 0.5)) }
	m := map[string]float64{"go": pct(b.self - a.self), "machine_cores": float64(runtime.NumCPU())}
	if a.pgOn {
		m["pg"] = pct(b.pg - a.pg)
	}
	if a.natsOn {
		m["nats"] = pct(b.nats - a.nats)
	}
	return m
}
