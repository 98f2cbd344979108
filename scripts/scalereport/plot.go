package main

import (
	"fmt"
	"html"
	"math"
	"slices"
	"strings"
)

// The plot: node count across, latency up on a log scale (the series span two to three orders
// of magnitude), one colour per measurement, p50 a solid line with filled dots and p99 a dashed
// line with open ones. Every dot carries its exact value as a tooltip.

const (
	svgW, svgH                                 = 780, 430
	marginL, marginR, marginT, marginB float64 = 64, 260, 58, 50
	plotRight, plotBottom                      = svgW - marginR, svgH - marginB
)

// seriesColors fixes each measurement's colour, so plots of different runs compare at a glance.
var seriesColors = map[string]string{
	"strong put, sequential":           "#1f4e9c",
	"strong put, 16 clients":           "#5fa8d3",
	"eventual put, sequential":         "#c2410c",
	"eventual put, 16 clients":         "#f2a516",
	"eventual write reaches all nodes": "#2b8a3e",
}

var fallbackColors = []string{"#6b7280", "#9333ea", "#be185d", "#0f766e"}

type curve struct {
	name  string
	color string
	nodes []int
	p50   []float64
	p99   []float64
}

// curves groups the measurements that have a point by name, in order of first appearance,
// each sorted by node count.
func curves(ms []measurement) []*curve {
	var out []*curve
	byName := map[string]*curve{}
	for _, m := range ms {
		p50, p99, ok := m.point()
		if !ok {
			continue
		}
		c := byName[m.name()]
		if c == nil {
			c = &curve{name: m.name(), color: seriesColors[m.name()]}
			if c.color == "" {
				c.color = fallbackColors[len(byName)%len(fallbackColors)]
			}
			byName[c.name] = c
			out = append(out, c)
		}
		i, _ := slices.BinarySearch(c.nodes, m.Nodes)
		c.nodes = slices.Insert(c.nodes, i, m.Nodes)
		c.p50 = slices.Insert(c.p50, i, p50)
		c.p99 = slices.Insert(c.p99, i, p99)
	}
	return out
}

// axes maps node counts and latencies to the drawing.
type axes struct {
	nmin, nmax   float64 // node counts at the left and right edges
	logLo, logHi float64 // log10 of the latencies at the bottom and top edges
}

func (a axes) x(nodes int) float64 {
	return marginL + (float64(nodes)-a.nmin)/(a.nmax-a.nmin)*(plotRight-marginL)
}

func (a axes) y(ms float64) float64 {
	f := (math.Log10(math.Max(ms, 1e-3)) - a.logLo) / (a.logHi - a.logLo)
	return plotBottom - f*(plotBottom-marginT)
}

func plot(ms []measurement, caption string) string {
	cs := curves(ms)
	var nodes []int
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, c := range cs {
		nodes = append(nodes, c.nodes...)
		for i := range c.p50 {
			lo, hi = math.Min(lo, math.Min(c.p50[i], c.p99[i])), math.Max(hi, math.Max(c.p50[i], c.p99[i]))
		}
	}
	slices.Sort(nodes)
	nodes = slices.Compact(nodes)
	if len(nodes) == 0 {
		nodes, lo, hi = []int{3}, 1, 10
	}
	lo = math.Max(lo, 1e-3)
	a := axes{nmin: float64(nodes[0]) - 1, nmax: float64(nodes[len(nodes)-1]) + 1,
		logLo: math.Floor(math.Log10(lo)), logHi: math.Ceil(math.Log10(hi))}
	if a.logHi <= a.logLo {
		a.logHi = a.logLo + 1
	}

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", svgW, svgH, svgW, svgH)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", svgW, svgH)
	fmt.Fprintf(&b, `<text x="%d" y="22" font-size="15" font-weight="bold">How cost grows with cluster size</text>`+"\n", int(marginL))
	if caption != "" {
		fmt.Fprintf(&b, `<text x="%d" y="40" fill="#555">%s</text>`+"\n", int(marginL), html.EscapeString(caption))
	}
	// Grid and y ticks: 1, 2 and 5 of every decade.
	for e := a.logLo; e <= a.logHi; e++ {
		for _, m := range []float64{1, 2, 5} {
			v := m * math.Pow(10, e)
			if math.Log10(v) > a.logHi+1e-9 {
				break
			}
			y := a.y(v)
			stroke := "#eee"
			if m == 1 {
				stroke = "#ccc"
			}
			fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="%s"/>`, marginL, plotRight, y, y, stroke)
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="end">%s</text>`+"\n", marginL-6, y+4, formatMs(v))
		}
	}
	for _, n := range nodes {
		x := a.x(n)
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#eee"/>`, x, x, marginT, plotBottom)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%d</text>`+"\n", x, plotBottom+18, n)
	}
	fmt.Fprintf(&b, `<path d="M%.1f %.1f V%.1f H%.1f" stroke="black" fill="none"/>`+"\n", marginL, marginT, plotBottom, plotRight)
	fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">nodes</text>`+"\n", (marginL+plotRight)/2, svgH-12)
	fmt.Fprintf(&b, `<text x="16" y="%.1f" text-anchor="middle" transform="rotate(-90 16 %.1f)">latency, ms (log scale)</text>`+"\n",
		(marginT+plotBottom)/2, (marginT+plotBottom)/2)

	for _, c := range cs {
		for _, q := range []struct {
			name   string
			values []float64
			dash   string
			fill   string
		}{{"p50", c.p50, "", c.color}, {"p99", c.p99, ` stroke-dasharray="5 4"`, "white"}} {
			var d strings.Builder
			for i, n := range c.nodes {
				verb := "L"
				if i == 0 {
					verb = "M"
				}
				fmt.Fprintf(&d, "%s%.1f %.1f ", verb, a.x(n), a.y(q.values[i]))
			}
			fmt.Fprintf(&b, `<path d="%s" stroke="%s" stroke-width="2" fill="none"%s/>`+"\n", strings.TrimSpace(d.String()), c.color, q.dash)
			for i, n := range c.nodes {
				fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3.5" fill="%s" stroke="%s" stroke-width="1.5"><title>%s, %d nodes: %s %s ms</title></circle>`+"\n",
					a.x(n), a.y(q.values[i]), q.fill, c.color, html.EscapeString(c.name), n, q.name, formatMs(q.values[i]))
			}
		}
	}

	// Legend.
	lx, ly := plotRight+20, marginT+4
	for _, c := range cs {
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="%s" stroke-width="3"/><text x="%.1f" y="%.1f">%s</text>`+"\n",
			lx, lx+22, ly, ly, c.color, lx+30, ly+4, html.EscapeString(c.name))
		ly += 22
	}
	ly += 8
	fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="black" stroke-width="2"/><circle cx="%.1f" cy="%.1f" r="3.5"/><text x="%.1f" y="%.1f">p50</text>`+"\n",
		lx, lx+22, ly, ly, lx+11, ly, lx+30, ly+4)
	ly += 22
	fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="black" stroke-width="2" stroke-dasharray="5 4"/><circle cx="%.1f" cy="%.1f" r="3.5" fill="white" stroke="black" stroke-width="1.5"/><text x="%.1f" y="%.1f">p99</text>`+"\n",
		lx, lx+22, ly, ly, lx+11, ly, lx+30, ly+4)
	b.WriteString("</svg>\n")
	return b.String()
}

// formatMs renders a latency in milliseconds with about three significant digits.
func formatMs(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return strings.TrimSuffix(fmt.Sprintf("%.1f", v), ".0")
	case v >= 1:
		return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.2f", v), "0"), ".")
	}
	return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.3f", v), "0"), ".")
}
