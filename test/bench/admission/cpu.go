package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of /proc CPU times: 100 on every Linux
// architecture Go supports (getconf CLK_TCK).
const clockTicks = 100

// procTicks parses the user and system CPU time, in clock ticks, from the
// contents of /proc/PID/stat. The command name (field 2) is in parentheses
// and may itself contain spaces and parentheses, so fields are counted from
// the last ')'.
func procTicks(stat string) (uint64, error) {
	end := strings.LastIndexByte(stat, ')')
	if end < 0 {
		return 0, fmt.Errorf("no command name in %q", stat)
	}
	// After ") ": field 3 (state) is rest[0]; utime and stime are fields 14
	// and 15.
	rest := strings.Fields(stat[end+1:])
	if len(rest) < 13 {
		return 0, fmt.Errorf("short stat line %q", stat)
	}
	utime, err1 := strconv.ParseUint(rest[11], 10, 64)
	stime, err2 := strconv.ParseUint(rest[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("bad utime/stime in %q", stat)
	}
	return utime + stime, nil
}

// machineTicks parses the busy and total clock ticks of all CPUs from the
// first line of /proc/stat ("cpu  user nice system idle iowait irq softirq
// steal ..."). Idle and iowait are idle; guest time is already in user.
func machineTicks(stat string) (busy, total uint64, err error) {
	line, _, _ := strings.Cut(stat, "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, 0, fmt.Errorf("unexpected /proc/stat line %q", line)
	}
	var v [8]uint64
	for i := range v {
		if v[i], err = strconv.ParseUint(f[i+1], 10, 64); err != nil {
			return 0, 0, fmt.Errorf("unexpected /proc/stat line %q", line)
		}
		total += v[i]
	}
	idle := v[3] + v[4]
	return total - idle, total, nil
}

// cpuSnapshot is the CPU time of the processes of interest and of the whole
// machine at one instant.
type cpuSnapshot struct {
	at        time.Time
	procs     map[string]uint64
	busy, all uint64
}

// takeCPU reads /proc for pids (name → pid); processes that cannot be read
// are left out.
func takeCPU(pids map[string]int) cpuSnapshot {
	s := cpuSnapshot{at: time.Now(), procs: map[string]uint64{}}
	for name, pid := range pids {
		data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
		if err != nil {
			continue
		}
		if t, err := procTicks(string(data)); err == nil {
			s.procs[name] = t
		}
	}
	if data, err := os.ReadFile("/proc/stat"); err == nil {
		s.busy, s.all, _ = machineTicks(string(data))
	}
	return s
}

// CPUUse is how many cores each process used on average between two
// snapshots; Other is the rest of the machine's busy time (other people's
// work on a shared machine), Machine all of it.
type CPUUse struct {
	Cores   map[string]float64 `json:"cores"`
	Other   float64            `json:"otherCores"`
	Machine float64            `json:"machineCores"`
}

func cpuUse(before, after cpuSnapshot) CPUUse {
	u := CPUUse{Cores: map[string]float64{}}
	secs := after.at.Sub(before.at).Seconds()
	if secs <= 0 {
		return u
	}
	var ours float64
	for name, t1 := range after.procs {
		t0, ok := before.procs[name]
		if !ok || t1 < t0 {
			continue
		}
		c := float64(t1-t0) / clockTicks / secs
		u.Cores[name] = c
		ours += c
	}
	if after.all > before.all && after.busy >= before.busy {
		// Machine-wide ticks count every CPU: busy share × CPUs = cores.
		cpus := float64(after.all-before.all) / clockTicks / secs
		share := float64(after.busy-before.busy) / float64(after.all-before.all)
		u.Machine = share * cpus
		u.Other = max(0, u.Machine-ours)
	}
	return u
}

// kwokPids reads the pids kwokctl keeps of a cluster's components
// (STATE/kwok/clusters/NAME/pids/COMPONENT.pid).
func kwokPids(state, name string) map[string]int {
	out := map[string]int{}
	files, _ := filepath.Glob(filepath.Join(state, "kwok", "clusters", name, "pids", "*.pid"))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if pid, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil {
			out[strings.TrimSuffix(filepath.Base(f), ".pid")] = pid
		}
	}
	return out
}
