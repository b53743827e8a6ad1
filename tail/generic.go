package tail

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-mysql-org/go-mysql/replication"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/schema"
)

// The tail of configured tables (Config.Tables): the rows events of every
// configured table, on the one binlog stream, become generic change events
// (schema.Change) in each table's topic, in the same Kafka transactions as
// the position, as the fixed IoT table's do. Their values are read by the
// column names of each table map, so the source must log
// binlog_row_metadata=FULL; a DDL on a table is then followed as it
// happens. A TRUNCATE of a configured table is carried as op t.

// followed is one configured table as the tail reads it.
type followed struct {
	t   *schema.Table
	idx int // its place in Config.Tables: the events metric's table
	// The traveling columns' positions in the last table map seen, and
	// their columns with the ENUM and SET members that map carries.
	tm   *replication.TableMapEvent
	pos  []int
	cols []schema.Column
	buf  []byte
	key  []byte
}

// generic reports whether the tail follows configured tables.
func (t *Tail) generic() bool { return len(t.cfg.Tables) > 0 }

// followedTables indexes the configured tables by lower-case "db.table".
func followedTables(tables []*schema.Table) map[string]*followed {
	out := make(map[string]*followed, len(tables))
	for i, tb := range tables {
		out[strings.ToLower(tb.Source.String())] = &followed{t: tb, idx: i}
	}
	return out
}

// followedOf is the configured table a table map names, or nil.
func (t *Tail) followedOf(tm *replication.TableMapEvent) *followed {
	if tm == nil || t.follows == nil {
		return nil
	}
	return t.follows[strings.ToLower(string(tm.Schema)+"."+string(tm.Table))]
}

// layoutFor maps the traveling columns to a table map's positions, by name.
func (f *followed) layoutFor(tm *replication.TableMapEvent, at string) error {
	if f.tm == tm {
		return nil
	}
	if len(tm.ColumnName) == 0 {
		return fmt.Errorf("tail: %s: binlog %s carries no column names: the tail of configured tables needs binlog_row_metadata=FULL", f.t.Source, at)
	}
	byName := make(map[string]int, len(tm.ColumnName))
	for i, n := range tm.ColumnName {
		byName[strings.ToLower(string(n))] = i
	}
	pos := make([]int, len(f.t.Columns))
	cols := make([]schema.Column, len(f.t.Columns))
	full := make([]schema.Column, len(tm.ColumnName))
	for k, c := range f.t.Columns {
		i, ok := byName[strings.ToLower(c.Source.Name)]
		if !ok {
			return fmt.Errorf("tail: %s: binlog %s: column %s is gone from the table (a DDL dropped or renamed it): restore it, or exclude it in the configuration and restart the tail", f.t.Source, at, c.Source.Name)
		}
		pos[k], cols[k], full[i] = i, c.Source, c.Source
	}
	// ENUM and SET members as the table map has them (information_schema
	// may show a 4-byte character as '?'), for the traveling columns only.
	enums, sets := map[int][]string{}, map[int][]string{}
	for i, m := range tm.EnumStrValueMap() {
		if full[i].Name != "" {
			enums[i] = m
		}
	}
	for i, m := range tm.SetStrValueMap() {
		if full[i].Name != "" {
			sets[i] = m
		}
	}
	if err := schema.ElementsFromBinlog(full, enums, sets); err != nil {
		return fmt.Errorf("tail: %s: binlog %s: %w", f.t.Source, at, err)
	}
	for k := range cols {
		cols[k] = full[pos[k]]
	}
	f.tm, f.pos, f.cols = tm, pos, cols
	return nil
}

// image reads one row of a rows event into the traveling columns' values.
func (f *followed) image(vals []any) ([]schema.Value, error) {
	out := make([]schema.Value, len(f.cols))
	for k, c := range f.cols {
		var v schema.Value
		var err error
		var in any
		if f.pos[k] < len(vals) {
			in = vals[f.pos[k]]
		}
		if f.buf, v, err = schema.AppendBinlog(f.buf, c, in); err != nil {
			return nil, fmt.Errorf("column %s: %w", c.Name, err)
		}
		out[k] = v
	}
	// The values point into f.buf, which later rows may move: copy them
	// out per row (an event holds few rows; the copies are small).
	for k := range out {
		if !out[k].Null {
			out[k].B = bytes.Clone(out[k].B)
		}
	}
	f.buf = f.buf[:0]
	return out, nil
}

// genericRows produces the change events of one rows event of a configured
// table.
func (t *Tail) genericRows(ctx context.Context, s *streamState, h *replication.EventHeader, e *replication.RowsEvent, f *followed) error {
	at := fmt.Sprintf("%s:%d", s.file, h.LogPos)
	if err := f.layoutFor(e.Table, at); err != nil {
		return permanent(err)
	}
	src := schema.Source{
		Connector: "mysql", Name: "sluice", TsMs: int64(h.Timestamp) * 1000, Snapshot: "false",
		DB: f.t.Source.DB, Table: f.t.Source.Table, ServerID: h.ServerID, GTID: s.curGTID, File: s.file, Pos: uint64(h.LogPos), Epoch: t.era.Epoch,
	}
	if _, ok := src.Version(); !ok {
		return permanent(fmt.Errorf("tail: binlog file %q at %d gives no source version (a file name ending in a sequence number is needed)", s.file, h.LogPos))
	}
	img := func(vals []any) ([]schema.Value, error) {
		r, err := f.image(vals)
		if err != nil {
			return nil, permanent(fmt.Errorf("tail: %s row in binlog %s: %w", f.t.Source, at, err))
		}
		return r, nil
	}
	now := time.Now().UnixMilli()
	emit := func(i int, op schema.Op, before, after []schema.Value) error {
		src.Row = i
		c := schema.Change{Op: op, Before: before, After: after, Source: src, TsMs: now}
		return t.produceChange(ctx, s, f, &c)
	}
	switch e.Type() {
	case replication.EnumRowsEventTypeInsert, replication.EnumRowsEventTypeDelete:
		op := schema.OpCreate
		if e.Type() == replication.EnumRowsEventTypeDelete {
			op = schema.OpDelete
		}
		for i, vals := range e.Rows {
			r, err := img(vals)
			if err != nil {
				return err
			}
			if op == schema.OpDelete {
				err = emit(i, op, r, nil)
			} else {
				err = emit(i, op, nil, r)
			}
			if err != nil {
				return err
			}
		}
	case replication.EnumRowsEventTypeUpdate:
		for i := 0; i+1 < len(e.Rows); i += 2 {
			b, err := img(e.Rows[i])
			if err != nil {
				return err
			}
			a, err := img(e.Rows[i+1])
			if err != nil {
				return err
			}
			if !sameKey(f.t, b, a) {
				// The key changed: the old key is gone and a new one
				// exists, each in its own partition.
				if err := emit(i/2, schema.OpDelete, b, nil); err != nil {
					return err
				}
				if err := emit(i/2, schema.OpCreate, nil, a); err != nil {
					return err
				}
				continue
			}
			if err := emit(i/2, schema.OpUpdate, b, a); err != nil {
				return err
			}
		}
	}
	return nil
}

// sameKey tells whether two images of a row have the same key values.
func sameKey(t *schema.Table, a, b []schema.Value) bool {
	for _, k := range t.Key {
		if a[k].Null != b[k].Null || !bytes.Equal(a[k].B, b[k].B) {
			return false
		}
	}
	return true
}

// produceChange adds one change event of a configured table to the open
// Kafka transaction, in the table's topic, keyed by the table's key.
func (t *Tail) produceChange(ctx context.Context, s *streamState, f *followed, c *schema.Change) error {
	key, err := schema.AppendChangeKey(nil, f.t, c)
	if errors.Is(err, schema.ErrNoKey) {
		key, err = nil, nil // a truncate, as in Debezium
	}
	if err != nil {
		return permanent(fmt.Errorf("tail: %s: record key: %w", f.t.Source, err))
	}
	value, err := schema.AppendChange(make([]byte, 0, 512), f.t, c)
	if err != nil {
		return permanent(fmt.Errorf("tail: %s: record at binlog %s:%d: %w", f.t.Source, c.Source.File, c.Source.Pos, err))
	}
	if !s.open {
		t.begin(s)
	}
	t.cl.Produce(ctx, &kgo.Record{Topic: f.t.Topic, Key: key, Value: value}, t.promise)
	s.count(f.idx, c.Op)
	return nil
}

// genericStatement checks a statement against the configured tables: DML
// logged as a statement stops the tail as for the fixed table; a TRUNCATE
// is carried as a truncate event (op t, no key), or stops the tail with
// --on-truncate=fail. A DDL is followed by the column names of the next
// table map.
func (t *Tail) genericStatement(ctx context.Context, s *streamState, h *replication.EventHeader, q, session string) (dml bool, err error) {
	for _, f := range t.follows {
		effect, isDML := classifyStatement(q, session, f.t.Source.DB, f.t.Source.Table)
		dml = dml || isDML
		switch effect {
		case stmtDML, stmtPartition:
			return dml, permanent(t.statementError(s, h, q, effect, f.t.Source.DB, f.t.Source.Table))
		case stmtTruncate:
			if t.cfg.OnTruncate == "fail" {
				return dml, permanent(fmt.Errorf("tail: binlog %s:%d: %s of %s, and --on-truncate=fail: restart the tail with `--reset --from %s:%d` once the target is dealt with",
					s.file, h.LogPos, truncate(strings.Join(strings.Fields(q), " "), 120), f.t.Source, s.file, h.LogPos))
			}
			src := schema.Source{
				Connector: "mysql", Name: "sluice", TsMs: int64(h.Timestamp) * 1000, Snapshot: "false",
				DB: f.t.Source.DB, Table: f.t.Source.Table, ServerID: h.ServerID, GTID: s.curGTID, File: s.file, Pos: uint64(h.LogPos), Epoch: t.era.Epoch,
			}
			if _, ok := src.Version(); !ok {
				return dml, permanent(fmt.Errorf("tail: binlog file %q at %d gives no source version", s.file, h.LogPos))
			}
			c := schema.Change{Op: schema.OpTruncate, Source: src, TsMs: time.Now().UnixMilli()}
			if err := t.produceChange(ctx, s, f, &c); err != nil {
				return dml, err
			}
			t.log.Info("tail: TRUNCATE of a configured table carried as a truncate event", "table", f.t.Source.String(), "at", fmt.Sprintf("%s:%d", s.file, h.LogPos))
		case stmtShape:
			t.log.Info("tail: DDL on a configured table; its columns are read by name from the next table map", "table", f.t.Source.String(), "ddl", truncate(strings.Join(strings.Fields(q), " "), 200), "at", fmt.Sprintf("%s:%d", s.file, h.LogPos))
		}
	}
	return dml, nil
}
