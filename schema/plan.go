package schema

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WritePlan writes the table as resolved, for a person to check before
// anything runs (sluice check): source and target, topic, id, window, key
// and its target index, each traveling column's types, transforms and
// rules, and the columns that do not travel.
func (t *Table) WritePlan(w io.Writer) {
	fmt.Fprintf(w, "table %s -> %s\n", t.Source, t.Target)
	fmt.Fprintf(w, "  topic:  %s\n", t.Topic)
	fmt.Fprintf(w, "  id:     %s (%s)\n", t.ID.Name, t.ID.ColumnType)
	if t.Window != nil {
		fmt.Fprintf(w, "  window: %s (%s)\n", t.Window.Name, t.Window.ColumnType)
	} else {
		fmt.Fprintf(w, "  window: none (the table is read whole)\n")
	}
	var key []string
	for _, c := range t.KeyColumns() {
		key = append(key, c.Target.Name)
	}
	fmt.Fprintf(w, "  key:    %s (target index %s)\n", strings.Join(key, ", "), t.KeyIndex)
	for _, u := range t.ExtraUnique {
		fmt.Fprintf(w, "  warning: the target's unique index %s (%s) is not the key: a change whose value another key's row still holds there (its own change in another partition, not applied yet) would land on that row; drop the index, or make it the key\n",
			u.Name, strings.Join(u.Columns, ", "))
	}
	fmt.Fprintf(w, "  columns:\n")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "    SOURCE\tTYPE\tTARGET\tTYPE\tTRANSFORMS\tRULES")
	for _, c := range t.Columns {
		var ts, rs []string
		for _, tr := range c.Transforms {
			ts = append(ts, tr.String())
		}
		for _, r := range c.Rules {
			rs = append(rs, r.String())
		}
		fmt.Fprintf(tw, "    %s\t%s\t%s\t%s\t%s\t%s\n", c.Source.Name, c.Source.ColumnType, c.Target.Name, c.Target.ColumnType, orDash(ts), orDash(rs))
	}
	tw.Flush()
	if len(t.Dropped) > 0 {
		fmt.Fprintf(w, "  not traveling: %s\n", strings.Join(t.Dropped, ", "))
	}
}

func orDash(s []string) string {
	if len(s) == 0 {
		return "-"
	}
	return strings.Join(s, ", ")
}
