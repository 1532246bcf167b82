package simulate

import (
	"fmt"
	"image/color"
	"io"
	"math"
	"slices"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/budgetgate/budgetgate/internal/budget"
)

// FreezeColor shades the freeze periods of a chart (tests find them by it).
var FreezeColor = color.RGBA{R: 0xff, G: 0xd6, B: 0xd6, A: 0xff}

// Threshold is a line drawn on the burn-rate panel: a Freeze or Warn rule's
// threshold over its long window.
type Threshold struct {
	Rule   string
	Window time.Duration
	Value  float64
	Freeze bool
}

// Thresholds are the burn-rate thresholds of p for o, from the engine
// (BurnRateRule.Threshold), in policy order.
func Thresholds(o budget.Objective, p budget.Policy) []Threshold {
	var out []Threshold
	for _, r := range p.Rules {
		if r.BurnRate != nil {
			out = append(out, Threshold{Rule: r.Name, Window: r.BurnRate.LongWindow, Value: r.BurnRate.Threshold(o),
				Freeze: r.Action == budget.ActionFreeze})
		}
	}
	return out
}

// ChartFormat is "svg" or "png".
type ChartFormat string

// Chart draws the replay: budget left over time (top) and the burn rate over
// each threshold's window with the threshold drawn (bottom), freeze periods
// shaded in both, into w as SVG or PNG.
func Chart(w io.Writer, title string, res Result, th []Threshold, format ChartFormat) error {
	if len(res.Points) == 0 {
		return fmt.Errorf("simulate: nothing to draw")
	}
	t0 := res.Points[0].At
	unit, unitName := axisUnit(res.Points[len(res.Points)-1].At.Sub(t0))
	x := func(t time.Time) float64 { return float64(t.Sub(t0)) / float64(unit) }
	xEnd := x(res.Points[len(res.Points)-1].At)

	budgetPlot := plot.New()
	budgetPlot.Title.Text = title
	budgetPlot.Y.Label.Text = "budget left (%)"
	budgetPlot.X.Label.Text = fmt.Sprintf("%s since %s", unitName, t0.UTC().Format("2006-01-02 15:04 MST"))
	burnPlot := plot.New()
	burnPlot.Y.Label.Text = "burn rate (x)"
	burnPlot.X.Label.Text = budgetPlot.X.Label.Text
	burnPlot.Legend.Top = true

	var budgetPts plotter.XYs
	lo, hi := 0.0, 100.0
	for _, p := range res.Points {
		if p.HasBudget {
			v := 100 * p.Remaining
			budgetPts = append(budgetPts, plotter.XY{X: x(p.At), Y: v})
			lo, hi = math.Min(lo, v), math.Max(hi, v)
		}
	}
	burnMax := 1.0
	for _, t := range th {
		burnMax = math.Max(burnMax, t.Value)
	}
	windows := []time.Duration{}
	for _, t := range th {
		if !slices.Contains(windows, t.Window) {
			windows = append(windows, t.Window)
		}
	}
	burnPts := map[time.Duration]plotter.XYs{}
	for _, p := range res.Points {
		for _, wdw := range windows {
			if b, ok := p.BurnRates[wdw]; ok {
				burnPts[wdw] = append(burnPts[wdw], plotter.XY{X: x(p.At), Y: b})
				burnMax = math.Max(burnMax, b)
			}
		}
	}
	// Freeze periods first, under the lines.
	for _, pl := range []struct {
		p      *plot.Plot
		lo, hi float64
	}{{budgetPlot, lo, hi}, {burnPlot, 0, burnMax * 1.05}} {
		for _, f := range res.Freezes {
			poly, err := plotter.NewPolygon(plotter.XYs{{X: x(f.From), Y: pl.lo}, {X: x(f.To), Y: pl.lo}, {X: x(f.To), Y: pl.hi}, {X: x(f.From), Y: pl.hi}})
			if err != nil {
				return err
			}
			poly.Color = FreezeColor
			poly.LineStyle.Width = 0
			pl.p.Add(poly)
		}
		pl.p.Add(plotter.NewGrid())
	}
	if len(res.Freezes) > 0 {
		budgetPlot.Legend.Add(fmt.Sprintf("frozen (%d, %s)", len(res.Freezes), res.FrozenFor.Round(time.Minute)),
			swatch{FreezeColor})
	}
	if len(budgetPts) > 0 {
		l, err := plotter.NewLine(budgetPts)
		if err != nil {
			return err
		}
		l.Color = color.RGBA{B: 0xb0, A: 0xff}
		l.Width = vg.Points(1.5)
		budgetPlot.Add(l)
		budgetPlot.Legend.Add("budget left", l)
	}
	palette := []color.Color{color.RGBA{R: 0xd0, A: 0xff}, color.RGBA{R: 0xe0, G: 0x80, A: 0xff}, color.RGBA{G: 0x80, A: 0xff}, color.RGBA{B: 0xc0, A: 0xff}, color.RGBA{R: 0x80, B: 0x80, A: 0xff}}
	for i, wdw := range windows {
		c := palette[i%len(palette)]
		if pts := burnPts[wdw]; len(pts) > 0 {
			l, err := plotter.NewLine(pts)
			if err != nil {
				return err
			}
			l.Color = c
			burnPlot.Add(l)
			burnPlot.Legend.Add("burn over "+durationText(wdw), l)
		}
		for _, t := range th {
			if t.Window != wdw {
				continue
			}
			tl, err := plotter.NewLine(plotter.XYs{{X: 0, Y: t.Value}, {X: xEnd, Y: t.Value}})
			if err != nil {
				return err
			}
			tl.Color = c
			tl.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
			burnPlot.Add(tl)
			action := "warns"
			if t.Freeze {
				action = "freezes"
			}
			burnPlot.Legend.Add(fmt.Sprintf("%s %s at %sx", t.Rule, action, trimFloat(t.Value)), tl)
		}
	}
	budgetPlot.X.Min, budgetPlot.X.Max, burnPlot.X.Min, burnPlot.X.Max = 0, xEnd, 0, xEnd
	burnPlot.Y.Min, burnPlot.Y.Max = 0, burnMax*1.05

	const width, height = 10 * vg.Inch, 7 * vg.Inch
	var c draw.Canvas
	var out io.WriterTo
	switch format {
	case "svg":
		s := vgsvg.New(width, height)
		c, out = draw.New(s), s
	case "png":
		img := vgimg.New(width, height)
		c, out = draw.New(img), vgimg.PngCanvas{Canvas: img}
	default:
		return fmt.Errorf("simulate: chart format %q: svg or png", format)
	}
	tiles := draw.Tiles{Rows: 2, Cols: 1, PadX: vg.Millimeter, PadY: vg.Millimeter, PadTop: vg.Millimeter, PadBottom: vg.Millimeter, PadLeft: vg.Millimeter, PadRight: vg.Millimeter}
	plots := [][]*plot.Plot{{budgetPlot}, {burnPlot}}
	canvases := plot.Align(plots, tiles, c)
	budgetPlot.Draw(canvases[0][0])
	burnPlot.Draw(canvases[1][0])
	_, err := out.WriteTo(w)
	return err
}

// swatch is a legend entry that fills its box with a colour.
type swatch struct{ c color.Color }

func (s swatch) Thumbnail(c *draw.Canvas) {
	c.FillPolygon(s.c, []vg.Point{{X: c.Min.X, Y: c.Min.Y}, {X: c.Max.X, Y: c.Min.Y}, {X: c.Max.X, Y: c.Max.Y}, {X: c.Min.X, Y: c.Max.Y}})
}

func durationText(d time.Duration) string {
	s := d.String()
	s = strings.TrimSuffix(s, "0s")
	return strings.TrimSuffix(s, "0m")
}

func trimFloat(f float64) string {
	s := fmt.Sprintf("%.2f", f)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return s
}

// Terminal draws the replay for a terminal: the budget left as a line chart
// of the given size with the frozen columns shaded (░), and under it a
// timeline of freezes (█) and pages (!).
func Terminal(w io.Writer, res Result, width, height int) error {
	if len(res.Points) == 0 || width < 10 || height < 3 {
		return fmt.Errorf("simulate: nothing to draw")
	}
	first, last := res.Points[0].At, res.Points[len(res.Points)-1].At
	lo, hi := 0.0, 100.0
	vals := make([]float64, width)
	has := make([]bool, width)
	frozen := make([]bool, width)
	paged := make([]bool, width)
	// Each column shows the point nearest its instant.
	n := len(res.Points)
	for c := range width {
		p := res.Points[int(math.Round(float64(c)/float64(max(1, width-1))*float64(n-1)))]
		if p.HasBudget {
			vals[c], has[c] = 100*p.Remaining, true
			lo, hi = math.Min(lo, vals[c]), math.Max(hi, vals[c])
		}
		frozen[c] = p.Frozen
		for _, pg := range res.Pages {
			paged[c] = paged[c] || !p.At.Before(pg.From) && (p.At.Before(pg.To) || pg.Open)
		}
	}
	grid := make([][]rune, height)
	for r := range grid {
		grid[r] = make([]rune, width)
		for c := range grid[r] {
			grid[r][c] = ' '
			if frozen[c] {
				grid[r][c] = '░'
			}
		}
	}
	for c := range width {
		if has[c] {
			r := int(math.Round((hi - vals[c]) / (hi - lo) * float64(height-1)))
			grid[r][c] = '●'
		}
	}
	for r := range grid {
		label := "      "
		switch r {
		case 0:
			label = fmt.Sprintf("%5.0f%%", hi)
		case height - 1:
			label = fmt.Sprintf("%5.0f%%", lo)
		}
		if _, err := fmt.Fprintf(w, "%s ┤%s\n", label, string(grid[r])); err != nil {
			return err
		}
	}
	line := func(label string, on []bool, mark rune) error {
		b := make([]rune, width)
		for c := range b {
			b[c] = ' '
			if on[c] {
				b[c] = mark
			}
		}
		_, err := fmt.Fprintf(w, "%6s │%s\n", label, string(b))
		return err
	}
	if err := line("frozen", frozen, '█'); err != nil {
		return err
	}
	if err := line("paged", paged, '!'); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "        %s%s%s\n", first.UTC().Format("Jan 02 15:04"),
		strings.Repeat(" ", max(1, width-24)), last.UTC().Format("Jan 02 15:04"))
	return err
}

// axisUnit is the time axis's unit for a replay of span: minutes for a
// demo's few minutes, hours up to three days, days beyond.
func axisUnit(span time.Duration) (time.Duration, string) {
	switch {
	case span <= 3*time.Hour:
		return time.Minute, "minutes"
	case span <= 72*time.Hour:
		return time.Hour, "hours"
	default:
		return 24 * time.Hour, "days"
	}
}
