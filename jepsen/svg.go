package jepsen

import (
	"fmt"
	"html"
	"math"
	"strings"
	"time"

	"github.com/dialkv/dialkv/client"
)

// Plots are plain SVG written by hand: a frame, ticks, shaded fault windows, and dots or lines.

var levelColors = map[string]string{
	client.ConsistencyStrong:   "#1f77b4",
	client.ConsistencyBounded:  "#9467bd",
	client.ConsistencySession:  "#2ca02c",
	client.ConsistencyEventual: "#ff7f0e",
}

type series struct {
	name   string
	color  string
	points [][2]float64
	dots   bool
}

type band struct {
	x0, x1 float64
	label  string
}

type plot struct {
	title, xlabel, ylabel string
	xmax                  float64
	ymin, ymax            float64
	logY                  bool
	series                []series
	bands                 []band
}

const (
	plotW, plotH                   = 960, 360
	padL, padR, padT, padB float64 = 64, 150, 36, 44
)

func (p *plot) x(v float64) float64 {
	return padL + v/math.Max(p.xmax, 1e-9)*(plotW-padL-padR)
}

func (p *plot) y(v float64) float64 {
	lo, hi, v2 := p.ymin, p.ymax, v
	if p.logY {
		lo, hi, v2 = math.Log10(lo), math.Log10(hi), math.Log10(math.Max(v, p.ymin))
	}
	f := (v2 - lo) / math.Max(hi-lo, 1e-9)
	f = math.Min(math.Max(f, 0), 1)
	return plotH - padB - f*(plotH-padT-padB)
}

// niceTicks returns about n round tick values from 0 to max.
func niceTicks(maxV float64, n int) []float64 {
	if maxV <= 0 {
		return []float64{0}
	}
	raw := maxV / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	var out []float64
	for v := 0.0; v <= maxV*1.0001; v += step {
		out = append(out, v)
	}
	return out
}

func fmtTick(v float64) string {
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.2f", v), "0"), ".")
}

// svg renders the plot.
func (p *plot) svg() string {
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">`+"\n", plotW, plotH, plotW, plotH)
	fmt.Fprintf(&b, `<rect x="0" y="0" width="%d" height="%d" fill="white"/>`+"\n", plotW, plotH)
	fmt.Fprintf(&b, `<text x="%d" y="20" text-anchor="middle" font-size="14">%s</text>`+"\n", plotW/2, html.EscapeString(p.title))
	top, bottom := padT, float64(plotH)-padB
	for _, bd := range p.bands {
		x0, x1 := p.x(bd.x0), p.x(math.Min(bd.x1, p.xmax))
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#f4c7c3" fill-opacity="0.5"><title>%s</title></rect>`+"\n",
			x0, top, math.Max(x1-x0, 1), bottom-top, html.EscapeString(bd.label))
	}
	// Axes and ticks.
	fmt.Fprintf(&b, `<path d="M%.1f %.1f V%.1f H%.1f" stroke="black" fill="none"/>`+"\n", padL, top, bottom, float64(plotW)-padR)
	for _, t := range niceTicks(p.xmax, 10) {
		x := p.x(t)
		fmt.Fprintf(&b, `<path d="M%.1f %.1f v5" stroke="black"/><text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", x, bottom, x, bottom+17, fmtTick(t))
	}
	var yticks []float64
	if p.logY {
		for v := math.Pow(10, math.Ceil(math.Log10(p.ymin))); v <= p.ymax*1.0001; v *= 10 {
			yticks = append(yticks, v)
		}
	} else {
		yticks = niceTicks(p.ymax, 5)
	}
	for _, t := range yticks {
		y := p.y(t)
		fmt.Fprintf(&b, `<path d="M%.1f %.1f h-5" stroke="black"/><path d="M%.1f %.1f H%.1f" stroke="#ddd"/><text x="%.1f" y="%.1f" text-anchor="end">%s</text>`+"\n",
			padL, y, padL, y, float64(plotW)-padR, padL-8, y+4, fmtTick(t))
	}
	fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", padL+(plotW-padL-padR)/2, plotH-8, html.EscapeString(p.xlabel))
	fmt.Fprintf(&b, `<text x="14" y="%.1f" text-anchor="middle" transform="rotate(-90 14 %.1f)">%s</text>`+"\n", (top+bottom)/2, (top+bottom)/2, html.EscapeString(p.ylabel))
	// Data.
	for _, s := range p.series {
		if len(s.points) == 0 {
			continue
		}
		if s.dots {
			fmt.Fprintf(&b, `<g fill="%s" fill-opacity="0.6">`, s.color)
			for _, pt := range s.points {
				fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="1.6"/>`, p.x(pt[0]), p.y(pt[1]))
			}
			b.WriteString("</g>\n")
			continue
		}
		var d strings.Builder
		for i, pt := range s.points {
			cmd := "L"
			if i == 0 {
				cmd = "M"
			}
			fmt.Fprintf(&d, "%s%.1f %.1f ", cmd, p.x(pt[0]), p.y(pt[1]))
		}
		fmt.Fprintf(&b, `<path d="%s" stroke="%s" stroke-width="1.5" fill="none"/>`+"\n", strings.TrimSpace(d.String()), s.color)
	}
	// Legend.
	ly := top + 6
	for _, s := range p.series {
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="12" height="12" fill="%s"/><text x="%.1f" y="%.1f">%s</text>`+"\n",
			float64(plotW)-padR+12, ly, s.color, float64(plotW)-padR+30, ly+10, html.EscapeString(s.name))
		ly += 18
	}
	if len(p.bands) > 0 {
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="12" height="12" fill="#f4c7c3"/><text x="%.1f" y="%.1f">fault window</text>`+"\n",
			float64(plotW)-padR+12, ly, float64(plotW)-padR+30, ly+10)
	}
	b.WriteString("</svg>\n")
	return b.String()
}

func faultBands(ws []AppliedWindow) []band {
	var out []band
	for _, w := range ws {
		out = append(out, band{x0: float64(w.Start) / 1e9, x1: float64(w.End) / 1e9, label: w.Description})
	}
	return out
}

// maxPlotPoints caps the dots of the latency plot (every k-th operation beyond it).
const maxPlotPoints = 20000

// latencyPlot: each operation's latency (log ms) at its invocation time, by level; failed and
// indeterminate ones in their own colours.
func latencyPlot(ops []*Op, ws []AppliedWindow, seconds float64) string {
	p := &plot{title: "Latency by consistency level (shaded: fault windows)", xlabel: "time (s)", ylabel: "latency (ms, log)",
		xmax: seconds, ymin: 0.1, ymax: 10, logY: true, bands: faultBands(ws)}
	step := max(1, len(ops)/maxPlotPoints)
	byName := map[string]*series{}
	var order []string
	add := func(name, color string, op *Op) {
		s := byName[name]
		if s == nil {
			s = &series{name: name, color: color, dots: true}
			byName[name] = s
			order = append(order, name)
		}
		ms := math.Max(durationMS(op.Latency()), 0.1)
		p.ymax = math.Max(p.ymax, ms)
		s.points = append(s.points, [2]float64{float64(op.Invoke) / 1e9, ms})
	}
	for i, op := range ops {
		if i%step != 0 || op.Complete == maxTime {
			continue
		}
		switch {
		case answered(op):
			add(op.Level+" ok", levelColors[op.Level], op)
		case op.Type == TypeFail:
			add("failed", "#d62728", op)
		default:
			add("indeterminate", "#000000", op)
		}
	}
	p.ymax = math.Pow(10, math.Ceil(math.Log10(p.ymax)))
	for _, l := range levels {
		if s := byName[l+" ok"]; s != nil {
			p.series = append(p.series, *s)
		}
	}
	for _, n := range []string{"failed", "indeterminate"} {
		if s := byName[n]; s != nil {
			p.series = append(p.series, *s)
		}
	}
	return p.svg()
}

// throughputPlot: ok completions per second, by level.
func throughputPlot(t timeline, ws []AppliedWindow) string {
	p := &plot{title: "Throughput: ok operations per second (shaded: fault windows)", xlabel: "time (s)", ylabel: "ok ops/s",
		xmax: float64(t.seconds), ymax: 1, bands: faultBands(ws)}
	for _, l := range levels {
		counts := t.ok[l]
		if counts == nil {
			continue
		}
		s := series{name: l, color: levelColors[l]}
		for i, c := range counts {
			s.points = append(s.points, [2]float64{float64(i) + 0.5, c})
			p.ymax = math.Max(p.ymax, c)
		}
		p.series = append(p.series, s)
	}
	p.ymax = niceMax(p.ymax)
	return p.svg()
}

// availabilityPlot: the fraction of operations invoked in each second that succeeded.
func availabilityPlot(t timeline, ws []AppliedWindow) string {
	p := &plot{title: "Availability: share of operations that succeeded, by second invoked", xlabel: "time (s)", ylabel: "ok / all",
		xmax: float64(t.seconds), ymax: 1, bands: faultBands(ws)}
	for _, l := range levels {
		total := t.total[l]
		if total == nil {
			continue
		}
		s := series{name: l, color: levelColors[l]}
		for i, n := range total {
			if n == 0 {
				continue
			}
			var ok float64
			if t.okInvoked[l] != nil {
				ok = t.okInvoked[l][i]
			}
			s.points = append(s.points, [2]float64{float64(i) + 0.5, ok / n})
		}
		p.series = append(p.series, s)
	}
	return p.svg()
}

func niceMax(v float64) float64 {
	ticks := niceTicks(v, 5)
	top := ticks[len(ticks)-1]
	if top < v {
		top += ticks[1] - ticks[0]
	}
	return math.Max(top, 1)
}

func secondsOf(d time.Duration) int { return int(math.Ceil(d.Seconds())) }
