package tail

import (
	"bytes"
	"context"
	"encoding/json"
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
// column names of each table map where the source logs them
// (binlog_row_metadata=FULL): a DDL on a table is then followed as it
// happens. Without names each table is read by its shape, as the fixed
// table is (ddl.go): the table's columns at start, or the shape stored with
// the position, checked against each table map's column count and types;
// after a DDL on the table, the first row event without names stops the
// tail. A TRUNCATE of a configured table is carried as op t.

// followed is one configured table as the tail reads it.
type followed struct {
	t   *schema.Table
	idx int // its place in Config.Tables: the events metric's table
	// The traveling columns' positions in the last table map seen, and
	// their columns with the ENUM and SET members that map carries.
	tm     *replication.TableMapEvent
	pos    []int
	cols   []schema.Column
	rowCap int // the largest row image's bytes so far

	// The table's shape, for row events without column names (ddl.go):
	// every column of the source table in order, as the last table map
	// with names or information_schema at start gave it, and "name:family,…"
	// as the position stores it; lost is set by a DDL on the table until
	// a table map names the columns again.
	shape    []column
	shapeStr string
	lost     *shapeLost
}

// setShape makes cols the table's shape.
func (f *followed) setShape(cols []column) {
	var sb strings.Builder
	for i, c := range cols {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(c.name + ":" + c.family)
	}
	f.shape, f.shapeStr, f.lost = cols, sb.String(), nil
}

// withShapes is p with the shapes the tail reads by: the fixed table's in
// Columns, each configured table's (or its lost marker) in Shapes.
func (t *Tail) withShapes(p Position) Position {
	p.Columns = t.layout.shape
	if t.lost != nil {
		p.Columns = t.lost.marker()
	}
	if len(t.follows) > 0 {
		m := make(map[string]string, len(t.follows))
		for name, f := range t.follows {
			m[name] = f.shapeStr
			if f.lost != nil {
				m[name] = f.lost.marker()
			}
		}
		b, _ := json.Marshal(m) // sorted keys: the same shapes give the same string
		p.Shapes = string(b)
	}
	return p
}

// resumeShapes takes each configured table's shape at the stored position
// (resumeShape does it for the fixed table): a DDL while the tail was
// stopped leaves a table in another shape now than the events it will read
// first. A table the position has no shape for is read by its columns now.
func (t *Tail) resumeShapes(stored string) error {
	if stored == "" {
		return nil
	}
	var m map[string]string
	if err := json.Unmarshal([]byte(stored), &m); err != nil {
		return permanent(fmt.Errorf("tail: the tables' shapes stored with the position (%s): %w", stored, err))
	}
	for name, f := range t.follows {
		s, ok := m[name]
		if !ok || s == "" || s == f.shapeStr {
			continue
		}
		if lost, ok := parseShapeLost(s); ok {
			f.lost = lost
			t.log.Warn("tail: the stored position lies after a DDL on a configured table whose new shape no event has named yet", "table", f.t.Source.String(), "ddl", lost.ddl, "at", lost.after.String())
			continue
		}
		t.log.Warn("tail: a configured table has changed shape since the stored position (a DDL while the tail was stopped); its events without column names are read by the stored shape until the stream reaches the DDL",
			"table", f.t.Source.String(), "stored", s, "now", f.shapeStr)
		f.setShape(parseShape(s))
	}
	return nil
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

// layoutFor maps the traveling columns to a table map's positions: by the
// names it carries, or without them by the table's shape (checked against
// the table map's column count and types), unless a DDL since made the
// shape unknown. at is where the rows event starts.
func (t *Tail) layoutFor(f *followed, tm *replication.TableMapEvent, at Position) error {
	if f.tm == tm {
		return nil
	}
	if len(tm.ColumnName) == 0 {
		return t.layoutByShape(f, tm, at)
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
	if named := tableMapColumns(tm); named != nil {
		f.setShape(named)
	}
	return nil
}

// layoutByShape is layoutFor for a table map without column names.
func (t *Tail) layoutByShape(f *followed, tm *replication.TableMapEvent, at Position) error {
	if f.lost != nil {
		from := f.lost.after
		if cv, ok := t.committed.Version(); ok {
			if lv, ok := from.Version(); ok && cv > lv {
				from = t.committed
			}
		}
		return shapeLostError(f.t.Source.String(), f.lost, at, t.srv.rowMetadata, from)
	}
	if int(tm.ColumnCount) != len(f.shape) || len(tm.ColumnType) != len(f.shape) {
		return shapeMismatchError(f.t.Source.String(), at, fmt.Sprintf("the event has %d columns, the shape the tail knows has %d", tm.ColumnCount, len(f.shape)), t.srv.rowMetadata)
	}
	byName := make(map[string]int, len(f.shape))
	for i, c := range f.shape {
		byName[c.name] = i
	}
	pos := make([]int, len(f.t.Columns))
	cols := make([]schema.Column, len(f.t.Columns))
	for k, c := range f.t.Columns {
		i, ok := byName[strings.ToLower(c.Source.Name)]
		if !ok {
			return shapeMismatchError(f.t.Source.String(), at, fmt.Sprintf("the shape the tail knows has no column %s", c.Source.Name), t.srv.rowMetadata)
		}
		if got, want := binlogFamily(tm.ColumnType[i]), f.shape[i].family; got != want && want != "other" {
			return shapeMismatchError(f.t.Source.String(), at, fmt.Sprintf("column %d is a %s in the event, but %s (%s) in the shape the tail knows", i+1, got, c.Source.Name, want), t.srv.rowMetadata)
		}
		pos[k], cols[k] = i, c.Source
	}
	f.tm, f.pos, f.cols = tm, pos, cols
	return nil
}

// image reads one row of a rows event into the traveling columns' values.
// The values point into a buffer of the row's own, which the record made
// from them may keep: a new one per row, sized by the largest row so far.
func (f *followed) image(vals []any) ([]schema.Value, error) {
	out := make([]schema.Value, len(f.cols))
	buf := make([]byte, 0, f.rowCap)
	for k, c := range f.cols {
		var v schema.Value
		var err error
		var in any
		if f.pos[k] < len(vals) {
			in = vals[f.pos[k]]
		}
		if buf, v, err = schema.AppendBinlog(buf, c, in); err != nil {
			return nil, fmt.Errorf("column %s: %w", c.Name, err)
		}
		out[k] = v
	}
	f.rowCap = max(f.rowCap, len(buf))
	return out, nil
}

// genericRows produces the change events of one rows event of a configured
// table.
func (t *Tail) genericRows(ctx context.Context, s *streamState, h *replication.EventHeader, e *replication.RowsEvent, f *followed) error {
	at := fmt.Sprintf("%s:%d", s.file, h.LogPos)
	if err := t.layoutFor(f, e.Table, Position{File: s.file, Pos: h.LogPos - h.EventSize}); err != nil {
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
				return dml, permanent(truncateRefused(s, h, f.t.Source.String(), strings.Join(strings.Fields(q), " ")))
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
			// What was read before the DDL is committed with the shape it
			// was read by; from here the table's shape is known only from
			// a table map that names its columns.
			if s.open {
				if err := t.commit(ctx, s); err != nil {
					return dml, err
				}
			}
			ddl := truncate(strings.Join(strings.Fields(q), " "), 200)
			f.lost = &shapeLost{ddl: ddl, after: Position{File: s.file, Pos: h.LogPos}}
			t.log.Info("tail: DDL on a configured table", "table", f.t.Source.String(), "ddl", ddl, "at", f.lost.after.String(), "column_names_in_binlog", t.srv.rowMetadata == "FULL")
		}
	}
	return dml, nil
}
