package utils

import "testing"

func TestProcTicks(t *testing.T) {
	// A command name with spaces and parentheses; utime 1500, stime 250.
	stat := "4242 (kube (api) server) S 1 4242 4242 0 -1 4194560 12345 0 0 0 1500 250 0 0 20 0 12 0 100 0 0"
	got, err := ProcTicks(stat)
	if err != nil || got != 1750 {
		t.Errorf("procTicks = %d, %v; want 1750", got, err)
	}
	for _, bad := range []string{"", "4242 kube S 1", "4242 (x) S 1 2 3", "4242 (x) S 1 4242 4242 0 -1 4194560 12345 0 0 0 abc 250 0"} {
		if _, err := ProcTicks(bad); err == nil {
			t.Errorf("ProcTicks(%q) did not fail", bad)
		}
	}
}

func TestMachineTicks(t *testing.T) {
	busy, total, err := MachineTicks("cpu  100 5 50 800 20 3 2 10 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n")
	if err != nil || busy != 170 || total != 990 {
		t.Errorf("machineTicks = %d, %d, %v; want busy 170 (user+nice+system+irq+softirq+steal), total 990", busy, total, err)
	}
	if _, _, err := MachineTicks("intr 1 2 3"); err == nil {
		t.Error("machineTicks accepted a line that is not cpu")
	}
}
