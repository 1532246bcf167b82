package controller

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// A thousand SLOs re-queued at the same instant (a restart, or created
// together) settle after one evaluation on phases spread over the interval,
// then keep them: no minute of a 10-minute interval holds more than twice its
// share, each SLO waits between half and one and a half intervals the first
// time and exactly one interval after.
func TestSpread(t *testing.T) {
	const n, interval = 1000, 10 * time.Minute
	start := time.Date(2026, 12, 3, 5, 0, 17, 0, time.UTC)
	perMinute := make([]int, 10)
	for i := range n {
		uid := types.UID(fmt.Sprintf("00000000-0000-0000-0000-%012d", i))
		d := Spread(interval, uid, start)
		if d < interval/2 || d >= 3*interval/2 {
			t.Fatalf("first delay %s outside [%s, %s)", d, interval/2, 3*interval/2)
		}
		next := start.Add(d)
		perMinute[int(next.Sub(start.Truncate(interval))/time.Minute)%10]++
		if again := Spread(interval, uid, next); again != interval {
			t.Errorf("%s: after settling, delay %s, want the interval", uid, again)
		}
		if late := Spread(interval, uid, next.Add(3*time.Second)); late != interval-3*time.Second {
			t.Errorf("%s: an evaluation 3s late is followed after %s, want %s: back on its phase", uid, late, interval-3*time.Second)
		}
	}
	if most := slices.Max(perMinute); most > 2*n/10 {
		t.Errorf("evaluations per minute of the interval %v: the busiest holds %d, more than twice its share", perMinute, most)
	}
	t.Logf("evaluations per minute of a 10m interval for %d SLOs: %v", n, perMinute)
}
