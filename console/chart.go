package console

// The charts: bars per minute over the last hour, laid out here so that
// the template only writes SVG elements (no script, no inline style).

import (
	"fmt"
	"time"
)

// chart is one chart of the overview.
type chart struct {
	Title string
	// Total is the hour's count; Peak the busiest minute's.
	Total, Peak uint64
	Bars        []bar
	Legend      []legend
}

// bar is one rectangle, in the SVG's coordinates.
type bar struct {
	X, Y, W, H int
	Fill       string
	// Label is the bar's tooltip: its minute and count.
	Label string
}

type legend struct{ Name, Fill string }

// The SVG's geometry: 60 bars of barWidth in plotWidth, plotHeight tall.
const (
	plotWidth  = Minutes * barStep
	plotHeight = 100
	barStep    = 10
	barWidth   = 8
)

const (
	colorIssued  = "#2563eb"
	colorOK      = "#16a34a"
	colorRefused = "#dc2626"
	colorErrors  = "#d97706"
)

// charts draws the History as of now.
func (c *Console) charts(now time.Time) []*chart {
	h := c.cfg.History
	return []*chart{
		stacked("Tokens issued", now, []layer{{"issued", colorIssued, h.TokensIssued.Last(now)}}),
		stacked("bearer_auth outcomes", now, []layer{{"let through", colorOK, h.BearerOK.Last(now)}, {"refused", colorRefused, h.BearerRefused.Last(now)}}),
		stacked("Token endpoint errors", now, []layer{{"errors", colorErrors, h.TokenErrors.Last(now)}}),
	}
}

// layer is one series of a stacked chart.
type layer struct {
	name, fill string
	counts     [Minutes]uint64
}

// stacked lays out layers as bars stacked per minute, scaled to the
// busiest minute.
func stacked(title string, now time.Time, layers []layer) *chart {
	ch := &chart{Title: title}
	for i := range Minutes {
		var sum uint64
		for _, l := range layers {
			sum += l.counts[i]
		}
		ch.Total += sum
		ch.Peak = max(ch.Peak, sum)
	}
	for _, l := range layers {
		ch.Legend = append(ch.Legend, legend{l.name, l.fill})
	}
	if ch.Peak == 0 {
		return ch
	}
	start := now.Truncate(time.Minute).Add(-(Minutes - 1) * time.Minute)
	for i := range Minutes {
		base := plotHeight
		minute := start.Add(time.Duration(i) * time.Minute).UTC().Format("15:04")
		for _, l := range layers {
			n := l.counts[i]
			if n == 0 {
				continue
			}
			// At least a pixel, so that a quiet minute beside a busy
			// one still shows.
			height := max(1, int(n*plotHeight/ch.Peak))
			base -= height
			ch.Bars = append(ch.Bars, bar{X: i * barStep, Y: base, W: barWidth, H: height, Fill: l.fill,
				Label: fmt.Sprintf("%s UTC: %d %s", minute, n, l.name)})
		}
	}
	return ch
}
