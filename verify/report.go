package verify

import (
	"fmt"
	"io"
	"time"
)

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
