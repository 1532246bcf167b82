package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/budgetgate/budgetgate/test/utils"
)

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
		if t, err := utils.ProcTicks(string(data)); err == nil {
			s.procs[name] = t
		}
	}
	if data, err := os.ReadFile("/proc/stat"); err == nil {
		s.busy, s.all, _ = utils.MachineTicks(string(data))
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
		c := float64(t1-t0) / utils.ClockTicks / secs
		u.Cores[name] = c
		ours += c
	}
	if after.all > before.all && after.busy >= before.busy {
		// Machine-wide ticks count every CPU: busy share × CPUs = cores.
		cpus := float64(after.all-before.all) / utils.ClockTicks / secs
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
