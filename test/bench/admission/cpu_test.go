package main

import (
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestCPUUse(t *testing.T) {
	t0 := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	before := cpuSnapshot{at: t0, procs: map[string]uint64{"kube-apiserver": 1000, "manager-http1": 500, "gone": 7},
		busy: 10000, all: 40000}
	// 10 s on 2 CPUs = 2000 ticks; 1500 of them busy.
	after := cpuSnapshot{at: t0.Add(10 * time.Second), procs: map[string]uint64{"kube-apiserver": 1800, "manager-http1": 600, "new": 99},
		busy: 11500, all: 42000}
	got := cpuUse(before, after)
	want := CPUUse{Cores: map[string]float64{"kube-apiserver": 0.8, "manager-http1": 0.1}, Machine: 1.5, Other: 0.6}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b float64) bool { return math.Abs(a-b) < 1e-9 })); diff != "" {
		t.Errorf("cpuUse (-want +got):\n%s", diff)
	}
}

func TestKwokPids(t *testing.T) {
	state := t.TempDir()
	dir := filepath.Join(state, "kwok", "clusters", "c", "pids")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{"etcd.pid": "101\n", "kube-apiserver.pid": "102", "broken.pid": "x"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if diff := cmp.Diff(map[string]int{"etcd": 101, "kube-apiserver": 102}, kwokPids(state, "c")); diff != "" {
		t.Errorf("kwokPids (-want +got):\n%s", diff)
	}
}
