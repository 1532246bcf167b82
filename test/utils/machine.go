package utils

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
)

// Machine is what a benchmark report says of the machine and tree it ran on.
type Machine struct {
	CPUs      int    `json:"cpus"`
	GoVersion string `json:"goVersion"`
	OSArch    string `json:"osArch"`
	Commit    string `json:"commit"`
	Dirty     bool   `json:"dirty"`
	Host      string `json:"host,omitempty"`
}

// MachineInfo describes this machine and the git tree at root.
func MachineInfo(root string) Machine {
	m := Machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), OSArch: runtime.GOOS + "/" + runtime.GOARCH}
	if out, err := exec.Command("git", "-C", root, "rev-parse", "--short", "HEAD").Output(); err == nil {
		m.Commit = strings.TrimSpace(string(out))
	}
	if out, err := exec.Command("git", "-C", root, "status", "--porcelain", "--untracked-files=no").Output(); err == nil {
		m.Dirty = len(strings.TrimSpace(string(out))) > 0
	}
	if out, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(out), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.Host = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}

// ClockTicks is USER_HZ, the unit of /proc CPU times: 100 on every Linux
// architecture Go supports (getconf CLK_TCK).
const ClockTicks = 100

// ProcTicks parses the user and system CPU time, in clock ticks, from the
// contents of /proc/PID/stat. The command name (field 2) is in parentheses
// and may itself contain spaces and parentheses, so fields are counted from
// the last ')'.
func ProcTicks(stat string) (uint64, error) {
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

// MachineTicks parses the busy and total clock ticks of all CPUs from the
// first line of /proc/stat ("cpu  user nice system idle iowait irq softirq
// steal ..."). Idle and iowait are idle; guest time is already in user.
func MachineTicks(stat string) (busy, total uint64, err error) {
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
