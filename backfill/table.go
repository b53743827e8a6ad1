package backfill

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/schema"
)

// The table: a resolved schema.Table (Config.Resolved) sets what Run reads.
// The keyset is the table's ID column, the window its Window column (none:
// the whole table), the select list the traveling columns
// (schema.SelectExpr), and each row becomes a schema.Change of op "r" whose
// values are the columns' canonical text (schema.AppendText), handed to a
// ChangeSink.

// ChangeSink takes the change events of one chunk. It must not keep the
// changes (nor their values) after it returns. Unless Send returns an error
// (it then took none of them and never calls acked), it calls acked exactly
// once, when every change is durable (nil) or when one failed. A failed
// chunk is read and sent again, so a ChangeSink may see the same changes
// more than once.
type ChangeSink interface {
	Send(ctx context.Context, changes []schema.Change, acked func(error)) error
}

// NewTable prepares a backfill of the configured table cfg.Resolved into
// sink. cfg.Database and cfg.Table are set from the table's source. db is
// the source, read through SourceSession; m may be nil.
func NewTable(cfg Config, db *sql.DB, sink ChangeSink, m *Metrics, log *slog.Logger) (*Backfill, error) {
	t := cfg.Resolved
	if t == nil {
		return nil, errors.New("backfill: NewTable needs Config.Resolved, the configured table to read")
	}
	if len(t.Columns) == 0 {
		return nil, fmt.Errorf("backfill: table %s: no column travels", t.Source)
	}
	cfg.Database, cfg.Table = t.Source.DB, t.Source.Table
	b, err := newBackfill(cfg, db, m, log)
	if err != nil {
		return nil, fmt.Errorf("backfill: table %s: %w", t.Source, err)
	}
	b.sink = sink
	if err := b.tableQueries(t); err != nil {
		return nil, fmt.Errorf("backfill: table %s: %w", t.Source, err)
	}
	return b, nil
}

// tableQueries builds the configured table's queries, every identifier
// quoted.
func (b *Backfill) tableQueries(t *schema.Table) error {
	qdb, err := schema.QuoteIdent(t.Source.DB)
	if err != nil {
		return fmt.Errorf("source database: %w", err)
	}
	qt, err := schema.QuoteIdent(t.Source.Table)
	if err != nil {
		return fmt.Errorf("source table: %w", err)
	}
	from := qdb + "." + qt
	id, err := schema.QuoteIdent(t.ID.Name)
	if err != nil {
		return fmt.Errorf("id: %w", err)
	}
	exprs := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		if exprs[i], err = schema.SelectExpr(c.Source); err != nil {
			return fmt.Errorf("column %s: %w", c.Source.Name, err)
		}
	}
	window := ""
	if t.Window != nil {
		w, err := schema.QuoteIdent(t.Window.Name)
		if err != nil {
			return fmt.Errorf("window: %w", err)
		}
		window = " AND " + w + " >= ? AND " + w + " < ?"
		b.rangeQuery = "SELECT MIN(" + id + "), MAX(" + id + ") FROM " + from + " WHERE " + w + " >= ? AND " + w + " < ?"
	} else {
		b.rangeQuery = "SELECT MIN(" + id + "), MAX(" + id + ") FROM " + from
	}
	sel := "SELECT " + strings.Join(exprs, ", ") + " FROM " + from
	b.query = [3]string{
		sel + " WHERE " + id + " > ? AND " + id + " <= ?" + window + " ORDER BY " + id,
		sel + " WHERE " + id + " >= ? AND " + id + " <= ?" + window + " ORDER BY " + id,
		"SELECT MIN(" + id + ") FROM " + from + " WHERE " + id + " >= ?",
	}
	return nil
}

// whole reports whether the run reads the table whole (it has no window
// column).
func (b *Backfill) whole() bool { return b.cfg.Resolved.Window == nil }

// wholeIDRange is IDRange of a table read whole: one MIN/MAX through the
// id's index.
func (b *Backfill) wholeIDRange(ctx context.Context) (lo, hi uint64, ok bool, err error) {
	var smn, smx sql.NullString // text keeps the full unsigned range
	if err := b.db.QueryRowContext(ctx, b.rangeQuery).Scan(&smn, &smx); err != nil {
		return 0, 0, false, fmt.Errorf("backfill: id range of %s.%s: %w", b.cfg.Database, b.cfg.Table, err)
	}
	if lo, hi, ok, err = b.parseIDRange(smn, smx); err != nil {
		return 0, 0, false, fmt.Errorf("backfill: id range of %s.%s: %w", b.cfg.Database, b.cfg.Table, err)
	}
	return lo, hi, ok, nil
}

// TableProgressKey names the progress of one backfill of a configured
// table into its topic: ProgressKey of the window, or for a table read
// whole progress/<db>.<table>/whole/<topic>.
func TableProgressKey(t *schema.Table, start, end time.Time) string {
	if t.Window == nil {
		return fmt.Sprintf("progress/%s/whole/%s", t.Source, t.Topic)
	}
	return ProgressKey(t.Source.DB, t.Source.Table, start, end, t.Topic)
}

// tableBatch is one reader's rows of a chunk: their values in one flat
// slice (len(Columns) a row) over one text buffer, and their
// change events, all reused from chunk to chunk, so a row costs no
// allocation once the buffers have grown to a chunk's size.
type tableBatch struct {
	b       *Backfill
	t       *schema.Table
	raw     []sql.RawBytes // one row as the driver hands it
	dest    []any          // pointers into raw, for Scan
	buf     []byte         // the values' text
	vals    []schema.Value // rows × columns
	rows    int
	args    []any
	changes []schema.Change
}

func newTableBatch(b *Backfill) *tableBatch {
	t := b.cfg.Resolved
	tb := &tableBatch{b: b, t: t, raw: make([]sql.RawBytes, len(t.Columns)), dest: make([]any, len(t.Columns))}
	for i := range tb.raw {
		tb.dest[i] = &tb.raw[i]
	}
	return tb
}

func (tb *tableBatch) len() int { return tb.rows }

// read runs the chunk's keyset query and appends each row's values.
func (tb *tableBatch) read(ctx context.Context, db queryer, c Chunk) error {
	b := tb.b
	q := b.query[0]
	if c.IncludeLo {
		q = b.query[1]
	}
	tb.args = append(tb.args[:0], c.Lo, c.Hi)
	if !b.whole() {
		tb.args = append(tb.args, b.cfg.Start, b.cfg.End)
	}
	tb.buf, tb.vals, tb.rows = tb.buf[:0], tb.vals[:0], 0
	res, err := db.QueryContext(ctx, q, tb.args...)
	if err != nil {
		return fmt.Errorf("read %s.%s: %w", b.cfg.Database, b.cfg.Table, err)
	}
	defer res.Close()
	cols := tb.t.Columns
	for res.Next() {
		if err := res.Scan(tb.dest...); err != nil {
			return fmt.Errorf("scan %s.%s after %d rows of the chunk: %w", b.cfg.Database, b.cfg.Table, tb.rows, err)
		}
		for i := range cols {
			var v schema.Value
			if tb.buf, v, err = schema.AppendText(tb.buf, cols[i].Source, tb.raw[i]); err != nil {
				return fmt.Errorf("read %s.%s after %d rows of the chunk: %w", b.cfg.Database, b.cfg.Table, tb.rows, err)
			}
			tb.vals = append(tb.vals, v)
		}
		tb.rows++
	}
	if err := res.Err(); err != nil {
		return fmt.Errorf("read %s.%s after %d rows of the chunk: %w", b.cfg.Database, b.cfg.Table, tb.rows, err)
	}
	return nil
}

// send wraps the rows as snapshot-read changes labelled src and hands them
// to the ChangeSink (its contract).
func (tb *tableBatch) send(ctx context.Context, src schema.Source, acked func(error)) error {
	now := time.Now().UnixMilli()
	src.TsMs = now
	n := len(tb.t.Columns)
	if cap(tb.changes) < tb.rows {
		tb.changes = make([]schema.Change, tb.rows)
	}
	tb.changes = tb.changes[:tb.rows]
	for i := range tb.changes {
		tb.changes[i] = schema.Change{Op: schema.OpRead, After: tb.vals[i*n : (i+1)*n : (i+1)*n], Source: src, TsMs: now}
	}
	return tb.b.sink.Send(ctx, tb.changes, acked)
}
