package budget

import (
	"math"
	"strconv"
	"strings"
	"time"
)

// formatBurn formats a burn rate with two decimals and an "x": "14.40x".
func formatBurn(b float64) string {
	return strconv.FormatFloat(b, 'f', 2, 64) + "x"
}

// formatPercent formats a fraction as a percentage with one decimal: "62.3%".
func formatPercent(f float64) string {
	s := strconv.FormatFloat(f*100, 'f', 1, 64)
	if s == "-0.0" {
		s = "0.0"
	}
	return s + "%"
}

// formatTarget formats a target fraction as a percentage without trailing zeros: "99.9%".
func formatTarget(t float64) string {
	return strconv.FormatFloat(math.Round(t*100*1e6)/1e6, 'f', -1, 64) + "%"
}

// formatNeededTarget is the least target, in percent with two decimals rounded up,
// whose highest possible burn rate reaches threshold: 1 − 1/threshold.
func formatNeededTarget(threshold float64) string {
	need := (1 - 1/threshold) * 100
	return strconv.FormatFloat(math.Ceil(need*100-1e-6)/100, 'f', 2, 64)
}

// formatDuration formats a duration the way SLO windows are written: "30d", "1h",
// "5m", "1d12h", "1h30m". Durations with sub-millisecond parts fall back to
// time.Duration.String.
func formatDuration(d time.Duration) string {
	switch {
	case d == 0:
		return "0s"
	case d == math.MinInt64 || d%time.Millisecond != 0:
		return d.String()
	case d < 0:
		return "-" + formatDuration(-d)
	}
	var b strings.Builder
	for _, u := range []struct {
		unit time.Duration
		name string
	}{
		{24 * time.Hour, "d"}, {time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}, {time.Millisecond, "ms"},
	} {
		if n := d / u.unit; n > 0 {
			b.WriteString(strconv.FormatInt(int64(n), 10))
			b.WriteString(u.name)
			d -= n * u.unit
		}
	}
	return b.String()
}

// formatCount formats an event count: "12", "1500", "0.5".
func formatCount(n float64) string {
	return strconv.FormatFloat(n, 'f', -1, 64)
}
