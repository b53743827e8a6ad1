package verify

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// WriteText writes the report as sluice verify prints it: a line per
// slice, the totals for the window [start, end) compared in took, and
// whether both sides match or, if not, the first differing slice and the
// keys that differ in it.
func (r Report) WriteText(w io.Writer, start, end time.Time, took time.Duration) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "slice\tstart\tend\tsource rows\ttarget rows\tsource sum\ttarget sum\tstatus\t")
	for i, sl := range r.Slices {
		status := "ok"
		if !sl.Match() {
			status = "DIFFERS"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%d\t%016x\t%016x\t%s\t\n", i+1, sl.Start.Format(time.DateTime), sl.End.Format(time.DateTime),
			sl.SourceRows, sl.TargetRows, sl.SourceSum, sl.TargetSum, status)
	}
	tw.Flush()
	fmt.Fprintf(w, "verify [%s, %s): %d slices, %d source rows, %d target rows, %.1f s\n", start.Format(time.DateTime),
		end.Format(time.DateTime), len(r.Slices), r.SourceRows, r.TargetRows, took.Seconds())
	if r.OK() {
		fmt.Fprintln(w, "verify: source and target match")
		return
	}
	first := r.Slices[r.FirstDiff]
	fmt.Fprintf(w, "verify: first differing slice %d [%s, %s): source %d rows, target %d rows\n", r.FirstDiff+1,
		first.Start.Format(time.DateTime), first.End.Format(time.DateTime), first.SourceRows, first.TargetRows)
	for _, d := range r.DiffKeys {
		fmt.Fprintf(w, "  key %s: %s\n", d.Key, d.How)
	}
}

// Differing counts the slices that differ.
func (r Report) Differing() int {
	n := 0
	for _, sl := range r.Slices {
		if !sl.Match() {
			n++
		}
	}
	return n
}

// WriteText writes a configured table's report as sluice verify --config
// prints it: what was compared (the window [start, end) in slices, or the
// whole table) in took, and whether both sides match or, if not, the first
// differing slice and the keys that differ in it.
func (r *TableReport) WriteText(w io.Writer, start, end time.Time, took time.Duration) {
	scope := fmt.Sprintf("[%s, %s) in %d slices", start.Format(time.DateTime), end.Format(time.DateTime), len(r.Slices))
	if r.Whole {
		scope = "the whole table (no traveling window column)"
	}
	fmt.Fprintf(w, "verify %s -> %s, %s: %d source rows, %d target rows, %d refused by rules, %.1f s\n", r.Table.Source, r.Table.Target, scope,
		r.SourceRows, r.TargetRows, r.Refused, took.Seconds())
	if r.OK() {
		fmt.Fprintf(w, "verify %s: source and target match\n", r.Table.Source)
		return
	}
	sl := r.Slices[r.FirstDiff]
	fmt.Fprintf(w, "verify %s: first differing slice [%s, %s): source %d rows, target %d rows\n", r.Table.Source,
		sl.Start.Format(time.DateTime), sl.End.Format(time.DateTime), sl.SourceRows, sl.TargetRows)
	for _, d := range r.DiffKeys {
		fmt.Fprintf(w, "  key %s: %s\n", d.Key, d.How)
	}
}
