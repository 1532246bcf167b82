package simulate

import (
	"bytes"
	"flag"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/budgetgate/budgetgate/internal/budget"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// byHand is the replay of TestReplayByHand.
func byHand(t *testing.T) (Result, []Threshold) {
	t.Helper()
	day := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	at := func(h, m int) time.Time { return day.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute) }
	o := budget.Objective{Target: 0.999, Window: 30 * 24 * time.Hour}
	p := budget.Policy{
		Name: "fast", MinDuration: 30 * time.Minute, StaleHold: 30 * time.Minute, OnMissingData: budget.MissingDataRelease,
		Rules: []budget.Rule{{Name: "fast-burn", Action: budget.ActionFreeze,
			BurnRate: &budget.BurnRateRule{LongWindow: time.Hour, ShortWindow: 5 * time.Minute, Factor: 14.4}}},
	}
	h := History{}
	for t0 := at(9, 0); !t0.After(at(12, 0)); t0 = t0.Add(5 * time.Minute) {
		ratio, slo := 0.0005, 0.0005
		if !t0.Before(at(10, 0)) && t0.Before(at(10, 30)) {
			ratio = 0.02
		}
		if !t0.Before(at(10, 0)) {
			slo = 0.0007
		}
		m := budget.Measurements{}
		for _, w := range budget.Windows(o, p) {
			m[w] = budget.Measurement{ErrorRatio: ratio, Events: 1e6, OK: true}
		}
		m[o.Window] = budget.Measurement{ErrorRatio: slo, Events: 1e8, OK: true}
		h[t0] = m
	}
	res, err := Replay(Input{Objective: o, Policy: p, Start: at(9, 0), End: at(12, 0), Step: 5 * time.Minute, History: h})
	if err != nil {
		t.Fatal(err)
	}
	return res, Thresholds(o, p)
}

// The SVG shades each freeze in both panels (and the legend's swatch), at the
// freeze's place on the time axis, and draws each threshold with its label.
func TestChartSVG(t *testing.T) {
	res, th := byHand(t)
	if len(th) != 1 || th[0].Value != 14.4 {
		t.Fatalf("thresholds %+v, want fast-burn at 14.4x from the engine", th)
	}
	var buf bytes.Buffer
	if err := Chart(&buf, "checkout-availability under fast", res, th, "svg"); err != nil {
		t.Fatal(err)
	}
	svg := buf.String()
	shaded := regexp.MustCompile(`(?i)fill:#ffd6d6`).FindAllStringIndex(svg, -1)
	if len(shaded) != 2*len(res.Freezes)+1 {
		t.Errorf("%d shaded shapes, want %d (a freeze in each of 2 panels, and the legend)", len(shaded), 2*len(res.Freezes)+1)
	}
	for _, want := range []string{"fast-burn freezes at 14.4x", "burn over 1h", "budget left", "frozen (1, 55m0s)",
		"minutes since 2026-11-20 09:00 UTC"} {
		if !strings.Contains(svg, want) {
			t.Errorf("the SVG has no %q", want)
		}
	}
	// The freeze spans 10:00–10:55 of the 09:00–12:00 chart: its shapes
	// start a third of the way along the budget line and end at 115/180.
	line := regexp.MustCompile(`<path d="M([0-9.]+),[0-9.]+((?:L[0-9.]+,[0-9.]+)+)"\s*style="fill:none;stroke:#0000B0`).FindStringSubmatch(svg)
	if line == nil {
		t.Fatal("no budget line in the SVG")
	}
	lineStart := atof(t, line[1])
	lastL := line[2][strings.LastIndex(line[2], "L")+1:]
	lineEnd := atof(t, lastL[:strings.Index(lastL, ",")])
	shapes := regexp.MustCompile(`<path d="M([0-9.]+),[0-9.]+L([0-9.]+),`+"[^\"]*"+`"\s*style="fill:#FFD6D6"`).FindAllStringSubmatch(svg, -1)
	inPanels := 0
	for _, sh := range shapes {
		x0, x1 := atof(t, sh[1]), atof(t, sh[2])
		if x1-x0 > 30 { // not the legend's swatch
			inPanels++
			from, to := (x0-lineStart)/(lineEnd-lineStart), (x1-lineStart)/(lineEnd-lineStart)
			if math.Abs(from-60.0/180) > 0.005 || math.Abs(to-115.0/180) > 0.005 {
				t.Errorf("freeze shaded from %.3f to %.3f of the time axis, want %.3f to %.3f", from, to, 60.0/180, 115.0/180)
			}
		}
	}
	if inPanels != 2 {
		t.Errorf("%d freeze shapes in the panels, want 2", inPanels)
	}
	png := filepath.Join(t.TempDir(), "c.png")
	f, err := os.Create(png)
	if err != nil {
		t.Fatal(err)
	}
	if err := Chart(f, "t", res, th, "png"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	pf, _ := os.Open(png)
	defer pf.Close()
	if _, err := pngDecode(pf); err != nil {
		t.Errorf("the PNG does not decode: %v", err)
	}
	if err := Chart(&buf, "t", res, th, "gif"); err == nil {
		t.Error("gif accepted")
	}
}

func TestTerminalGolden(t *testing.T) {
	res, _ := byHand(t)
	var buf bytes.Buffer
	if err := Terminal(&buf, res, 60, 8); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "terminal.golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if buf.String() != string(want) {
		t.Errorf("terminal chart:\n%s\nwant:\n%s", buf.String(), want)
	}
	// The frozen columns are those of 10:00–10:55.
	lines := strings.Split(buf.String(), "\n")
	frozenLine := lines[8]
	start, end := strings.IndexRune(frozenLine, '█'), strings.LastIndex(frozenLine, "█")
	if start < 0 || end < start {
		t.Fatalf("no frozen columns in %q", frozenLine)
	}
}

var pngDecode = png.Decode

func atof(t *testing.T, s string) float64 {
	t.Helper()
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// The time axis counts in a unit the replay's span reads well in.
func TestAxisUnit(t *testing.T) {
	for _, c := range []struct {
		span time.Duration
		want string
	}{
		{5 * time.Minute, "minutes"}, {3 * time.Hour, "minutes"}, {3*time.Hour + time.Minute, "hours"},
		{72 * time.Hour, "hours"}, {30 * 24 * time.Hour, "days"},
	} {
		if _, got := axisUnit(c.span); got != c.want {
			t.Errorf("axisUnit(%s) = %s, want %s", c.span, got, c.want)
		}
	}
}
