package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"unicode/utf8"
)

// table is a Markdown table with a title and notes under it.
type table struct {
	title  string
	header []string
	rows   [][]string
	notes  []string
}

func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

func (t *table) note(format string, args ...any) {
	t.notes = append(t.notes, fmt.Sprintf(format, args...))
}

// print writes the table, its columns padded to line up.
func (t *table) print(w io.Writer) {
	width := make([]int, len(t.header))
	for i, h := range t.header {
		width[i] = utf8.RuneCountInString(h)
	}
	for _, r := range t.rows {
		for i, c := range r {
			if i < len(width) {
				width[i] = max(width[i], utf8.RuneCountInString(c))
			}
		}
	}
	line := func(cells []string) {
		var b strings.Builder
		b.WriteString("|")
		for i := range width {
			c := ""
			if i < len(cells) {
				c = cells[i]
			}
			pad := strings.Repeat(" ", width[i]-utf8.RuneCountInString(c))
			if i == 0 {
				b.WriteString(" " + c + pad + " |")
			} else {
				b.WriteString(" " + pad + c + " |")
			}
		}
		fmt.Fprintln(w, b.String())
	}
	fmt.Fprintf(w, "\n### %s\n\n", t.title)
	line(t.header)
	seps := make([]string, len(width))
	for i := range seps {
		seps[i] = strings.Repeat("-", width[i])
		if i > 0 {
			seps[i] = seps[i][:len(seps[i])-1] + ":"
		}
	}
	line(seps)
	for _, r := range t.rows {
		line(r)
	}
	if len(t.notes) > 0 {
		fmt.Fprintln(w)
		for _, n := range t.notes {
			fmt.Fprintln(w, "- "+n)
		}
	}
}

// kindNames are the column titles of the transports compared.
var kindNames = map[string]string{
	kindTCP: "raw TCP", kindMTCP: "mtcp", kindYamuxSession: "yamux session", kindYamuxStream: "yamux stream",
}

// cmpTable compares figures of several transports, the first being the
// reference the others are given as ratios of. Each figure holds one value
// per run; the table shows their median, and their range when there were
// several.
type cmpTable struct {
	title string
	kinds []string
	rows  []cmpRow
	notes []string
}

type cmpRow struct {
	name   string
	vals   map[string][]float64
	format func(float64) string
}

// row returns the figure named name, adding it if needed.
func (t *cmpTable) row(name string, format func(float64) string) *cmpRow {
	for i := range t.rows {
		if t.rows[i].name == name {
			return &t.rows[i]
		}
	}
	t.rows = append(t.rows, cmpRow{name: name, vals: map[string][]float64{}, format: format})
	return &t.rows[len(t.rows)-1]
}

// add records one run's value of a figure for a kind.
func (t *cmpTable) add(name, kind string, v float64, format func(float64) string) {
	r := t.row(name, format)
	r.vals[kind] = append(r.vals[kind], v)
}

func (t *cmpTable) table() *table {
	out := &table{title: t.title, header: []string{""}, notes: t.notes}
	for i, k := range t.kinds {
		out.header = append(out.header, kindNames[k])
		if i > 0 {
			out.header = append(out.header, "× "+kindNames[t.kinds[0]])
		}
	}
	for _, r := range t.rows {
		cells := []string{r.name}
		ref := r.vals[t.kinds[0]]
		for i, k := range t.kinds {
			vs := r.vals[k]
			switch {
			case len(vs) == 0:
				cells = append(cells, "–")
			case len(vs) == 1:
				cells = append(cells, r.format(vs[0]))
			default:
				cells = append(cells, fmt.Sprintf("%s (%s–%s)", r.format(median(vs)), r.format(slices.Min(vs)), r.format(slices.Max(vs))))
			}
			if i > 0 {
				cells = append(cells, ratio(vs, ref))
			}
		}
		out.rows = append(out.rows, cells)
	}
	return out
}

// ratio is median(vs) / median(ref), or "–" when there is none.
func ratio(vs, ref []float64) string {
	if len(vs) == 0 || len(ref) == 0 {
		return "–"
	}
	a, b := median(vs), median(ref)
	switch {
	case b == 0 && a == 0:
		return "–"
	case b == 0:
		return "∞"
	}
	r := a / b
	switch {
	case r >= 100:
		return fmt.Sprintf("%.0fx", r)
	case r >= 10:
		return fmt.Sprintf("%.1fx", r)
	default:
		return fmt.Sprintf("%.2fx", r)
	}
}

// Formats of figures.
func fmtKiB(v float64) string { return fmt.Sprintf("%.2f KiB", v/1024) }
func fmtCount(v float64) string {
	if v == math.Trunc(v) || math.Abs(v) >= 100 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.2f", v)
}
func fmtPct(v float64) string  { return fmt.Sprintf("%.3f%%", v) }
func fmtRate(v float64) string { return fmt.Sprintf("%.0f/s", v) }
func fmtMBs(v float64) string  { return fmt.Sprintf("%.0f MB/s", v/1e6) }
func fmtSecs(v float64) string { return fmt.Sprintf("%.2f s", v) }
func fmtMicros(v float64) string {
	if v >= 10000 {
		return fmt.Sprintf("%.1f ms", v/1000)
	}
	return fmt.Sprintf("%.1f µs", v)
}
