package verify

import (
	"context"
	"database/sql"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/sluice-dev/sluice/schema"
)

// Reconciling a configured table (schema.Table): the window is cut into
// equal time slices on the table's window column (the whole table, one
// slice, when it has none or the column does not travel). For every slice
// both sides are read and summarised as a row count and the sum of a
// 64-bit FNV-1a hash of each row: on the source side the row the target
// must keep (the columns' transforms applied, Table.TargetRow), on the
// target side the traveling columns under their target names; values are
// compared in their canonical text (schema.Value), through the target
// column's type where the two types differ. A source row its rules refuse
// is dead-lettered by the consumer, not written: it is counted apart. For
// the first slice that differs, its rows are compared key by key.

// TableConfig says which window of a configured table to reconcile.
type TableConfig struct {
	Start, End time.Time // ignored for a table read whole
	Slices     int       // equal time slices of the window
	ChunkRows  int       // > 0: instead of Slices, as many slices as hold about ChunkRows source rows each
	MaxKeys    int       // differing keys to name
}

// TableReport is the outcome of one configured table's reconciliation.
type TableReport struct {
	Table                  *schema.Table
	Whole                  bool // no traveling window column: the whole table was compared
	Slices                 []Slice
	SourceRows, TargetRows int
	Refused                int // source rows the table's rules refuse (dead-lettered, not in the target)
	FirstDiff              int // index of the first differing slice, -1 when all match
	DiffKeys               []TableDiff
}

// OK reports whether every slice matched.
func (r *TableReport) OK() bool { return r.FirstDiff < 0 }

// TableDiff is one key that differs, and how.
type TableDiff struct {
	Key string // the key's values, "|"-joined
	How string // "missing in target", "extra in target" or "content differs (column …)"
}

// RunTable reconciles one configured table.
func RunTable(ctx context.Context, src, dst *sql.DB, t *schema.Table, cfg TableConfig) (*TableReport, error) {
	rep := &TableReport{Table: t, FirstDiff: -1}
	win := windowColumn(t)
	bounds := []time.Time{cfg.Start, cfg.End}
	if win < 0 {
		rep.Whole = true
	} else {
		if cfg.ChunkRows > 0 && cfg.End.After(cfg.Start) {
			n, err := countWindow(ctx, src, t, win, cfg.Start, cfg.End)
			if err != nil {
				return nil, err
			}
			secs := int(cfg.End.Sub(cfg.Start) / time.Second)
			cfg.Slices = max(1, min((n+cfg.ChunkRows-1)/cfg.ChunkRows, secs))
		}
		if !cfg.End.After(cfg.Start) || cfg.Slices < 1 {
			return nil, fmt.Errorf("verify %s: window [%s, %s) in %d slices: the end must be after the start, and slices at least 1",
				t.Source, cfg.Start.Format(time.DateTime), cfg.End.Format(time.DateTime), cfg.Slices)
		}
		step := cfg.End.Sub(cfg.Start) / time.Duration(cfg.Slices)
		bounds = bounds[:1]
		for i := 1; i < cfg.Slices; i++ {
			bounds = append(bounds, cfg.Start.Add(time.Duration(i)*step))
		}
		bounds = append(bounds, cfg.End)
	}
	for i := 0; i+1 < len(bounds); i++ {
		var sl Slice
		sl.Start, sl.End = bounds[i], bounds[i+1]
		srcRows, dstRows, err := readSides(ctx, src, dst, t, win, sl.Start, sl.End, nil, nil)
		if err != nil {
			return nil, err
		}
		sl.SourceRows, sl.SourceSum = srcRows.n, srcRows.sum
		sl.TargetRows, sl.TargetSum = dstRows.n, dstRows.sum
		rep.Refused += srcRows.refused
		rep.SourceRows += sl.SourceRows
		rep.TargetRows += sl.TargetRows
		rep.Slices = append(rep.Slices, sl)
		if !sl.Match() && rep.FirstDiff < 0 {
			rep.FirstDiff = len(rep.Slices) - 1
		}
	}
	if rep.FirstDiff >= 0 {
		sl := rep.Slices[rep.FirstDiff]
		a, b, err := readSides(ctx, src, dst, t, win, sl.Start, sl.End, map[string][]schema.Value{}, map[string][]schema.Value{})
		if err != nil {
			return nil, err
		}
		rep.DiffKeys = diffRows(t, a.rows, b.rows, cfg.MaxKeys)
	}
	return rep, nil
}

// readSides reads one slice of both sides at once: the source's rows go
// through the transforms in Go while the target's are read, so neither
// server nor this process waits for the other side.
func readSides(ctx context.Context, src, dst *sql.DB, t *schema.Table, win int, start, end time.Time, keepSrc, keepDst map[string][]schema.Value) (a, b side, err error) {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) { a, err = readSide(gctx, src, t, true, win, start, end, keepSrc); return err })
	g.Go(func() (err error) { b, err = readSide(gctx, dst, t, false, win, start, end, keepDst); return err })
	err = g.Wait()
	return a, b, err
}

// countWindow counts the source rows of t in the window [start, end).
func countWindow(ctx context.Context, src *sql.DB, t *schema.Table, win int, start, end time.Time) (int, error) {
	qn, err := t.Source.Quoted()
	if err != nil {
		return 0, err
	}
	q, err := schema.QuoteIdent(t.Columns[win].Source.Name)
	if err != nil {
		return 0, err
	}
	var n int
	if err := src.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+qn+" WHERE "+q+" >= ? AND "+q+" < ?", start, end).Scan(&n); err != nil {
		return 0, fmt.Errorf("verify %s: count the source rows of [%s, %s): %w", t.Source, start.Format(time.DateTime), end.Format(time.DateTime), err)
	}
	return n, nil
}

// windowColumn is the index of the window column among the traveling
// columns, or -1.
func windowColumn(t *schema.Table) int {
	if t.Window == nil {
		return -1
	}
	for i, c := range t.Columns {
		if strings.EqualFold(c.Source.Name, t.Window.Name) {
			return i
		}
	}
	return -1
}

// side is one side of a slice: its count and sum, and with rows, its rows
// by key.
type side struct {
	n, refused int
	sum        uint64
	rows       map[string][]schema.Value
}

// readSide reads one side of a slice. The source's rows go through the
// table's transforms and rules; both sides' values are hashed in the target
// column's canonical form.
func readSide(ctx context.Context, db *sql.DB, t *schema.Table, source bool, win int, start, end time.Time, keep map[string][]schema.Value) (side, error) {
	s := side{rows: keep}
	cols := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		col := c.Target
		if source {
			col = c.Source
		}
		x, err := schema.SelectExpr(col)
		if err != nil {
			return s, err
		}
		cols[i] = x
	}
	name, where := t.Target, ""
	if source {
		name = t.Source
	}
	var args []any
	if win >= 0 {
		wc := t.Columns[win].Target.Name
		if source {
			wc = t.Columns[win].Source.Name
		}
		q, err := schema.QuoteIdent(wc)
		if err != nil {
			return s, err
		}
		where = " WHERE " + q + " >= ? AND " + q + " < ?"
		args = []any{start, end}
	}
	qn, err := name.Quoted()
	if err != nil {
		return s, err
	}
	rows, err := db.QueryContext(ctx, "SELECT "+strings.Join(cols, ", ")+" FROM "+qn+where, args...)
	if err != nil {
		return s, fmt.Errorf("verify %s: read %s: %w", t.Source, name, err)
	}
	defer rows.Close()
	raw := make([]sql.RawBytes, len(cols))
	ptrs := make([]any, len(raw))
	for i := range raw {
		ptrs[i] = &raw[i]
	}
	vals := make([]schema.Value, len(cols))
	out := make([]schema.Value, len(cols))
	var buf, tbuf []byte
	h := fnv.New64a()
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return s, fmt.Errorf("verify %s: read %s: %w", t.Source, name, err)
		}
		buf = buf[:0]
		for i, c := range t.Columns {
			col := c.Target
			if source {
				col = c.Source
			}
			if raw[i] == nil {
				vals[i] = schema.Value{Null: true}
				continue
			}
			if buf, vals[i], err = schema.AppendText(buf, col, raw[i]); err != nil {
				return s, fmt.Errorf("verify %s: %s column %s: %w", t.Source, name, col.Name, err)
			}
		}
		row := vals
		if source {
			if tbuf, err = t.TargetRow(tbuf[:0], vals, out); err != nil {
				s.refused++
				continue
			}
			for i, c := range t.Columns {
				if out[i], err = canonical(c, out[i]); err != nil {
					return s, fmt.Errorf("verify %s: %s column %s: %w", t.Source, name, c.Target.Name, err)
				}
			}
			row = out
		}
		h.Reset()
		for _, v := range row {
			if v.Null {
				h.Write([]byte{0})
			} else {
				h.Write([]byte{1})
				h.Write(v.B)
			}
			h.Write([]byte{0xff})
		}
		s.n++
		s.sum += h.Sum64()
		if keep != nil {
			keep[keyString(t, row)] = cloneRow(row)
		}
	}
	return s, rows.Err()
}

// canonical is a source value in its target column's text: one whose
// type differs from the target's (DATETIME(0) into DATETIME(6), say) is
// carried through the target's encoding, as the writer stores it.
func canonical(c schema.TableColumn, v schema.Value) (schema.Value, error) {
	if v.Null || c.Source.ColumnType == c.Target.ColumnType {
		return v, nil
	}
	enc, err := schema.AppendDebezium(nil, c.Target, v)
	if err != nil {
		return v, err
	}
	return schema.ParseDebezium(c.Target, enc)
}

// diffRows names up to max keys that differ between the two sides.
func diffRows(t *schema.Table, src, dst map[string][]schema.Value, max int) []TableDiff {
	var out []TableDiff
	keys := make([]string, 0, len(src)+len(dst))
	for k := range src {
		keys = append(keys, k)
	}
	for k := range dst {
		if _, ok := src[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		if len(out) >= max {
			break
		}
		a, inSrc := src[k]
		b, inDst := dst[k]
		switch {
		case !inDst:
			out = append(out, TableDiff{Key: k, How: "missing in target"})
		case !inSrc:
			out = append(out, TableDiff{Key: k, How: "extra in target"})
		default:
			for i, c := range t.Columns {
				if a[i].Null != b[i].Null || string(a[i].B) != string(b[i].B) {
					out = append(out, TableDiff{Key: k, How: fmt.Sprintf("content differs (column %s: source %q, target %q)", c.Target.Name, a[i].B, b[i].B)})
					break
				}
			}
		}
	}
	return out
}

func keyString(t *schema.Table, row []schema.Value) string {
	parts := make([]string, len(t.Key))
	for i, k := range t.Key {
		if row[k].Null {
			parts[i] = "NULL"
			continue
		}
		parts[i] = string(row[k].B)
	}
	return strings.Join(parts, "|")
}

func cloneRow(row []schema.Value) []schema.Value {
	out := slices.Clone(row)
	for i := range out {
		out[i].B = slices.Clone(out[i].B)
	}
	return out
}
