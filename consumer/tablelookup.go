package consumer

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/go-sql-driver/mysql"

	"github.com/sluice-dev/sluice/schema"
)

// tableLookup is the TableWriter's look-up of existing rows: before an upsert, the
// batch's keys are read from the target, and an upsert the statement would
// leave as it is (older than the row, or the same in every column it
// compares) is left out of the statement. A re-run of a window then costs
// the server a range read of the key instead of parsing and evaluating a
// multi-row upsert that changes nothing.
//
// The read is one join of the batch's keys with the target (probeJoin says
// when the server takes it by the key's index); elsewhere it is IN lists of 1,000 keys, a range read of the
// key each. The join cost the server about a third less CPU than the IN
// lists on a re-run of the IoT table (README, Performance).
//
// The read locks the rows it finds (FOR UPDATE, as the upsert would) and
// reads their latest committed version, so a row cannot change between
// the read and the commit, and a row another member deletes meanwhile (a
// key move) is not found: the upsert then writes it, as it would have.
//
// It only ever marks rows it is sure of. A row found is matched to its
// upsert by its key's text, byte for byte (a key the server returns in
// another text, or equal only by collation, matches nothing). A value is
// the same when its text is byte for byte the server's text of the stored
// value (which, written back, stores that value); a DOUBLE when the server
// prints doubles so that they round-trip (exactDouble) and the two parse
// to the same float64; a FLOAT never (the server prints it rounded).
// Whatever is not marked goes to the upsert, which decides as it always
// has.
type tableLookup struct {
	prefix, suffix string // SELECT <key>, source_version, <non-key columns> FROM t WHERE <key> IN ( … ) FOR UPDATE
	tuple          string // one key in the IN list
	perStmt        int

	// The join (see probeJoin): WITH v(i, <key>) AS (VALUES (?, …), …)
	// SELECT v.i, <key>, source_version, <non-key columns> FROM v JOIN t
	// ON <key> = v.<key> FOR UPDATE, one statement for a whole batch, where
	// the server's plan reads the table by its key for each row of v.
	join                   bool
	joinPrefix, joinSuffix string
	joinOn                 string // the suffix's end, after the index's name
	joinTuple              string
	joinPer                int
	cols                   []int  // the non-key columns, in the select list's order
	exactDouble            bool   // the server prints a DOUBLE's shortest round-trip text
	q                      []byte // the statement's text (not TableWriter.buf: the rows alias it)
	raw                    []sql.RawBytes
	dest                   []any  // &at, then raw's: the IN list's rows scan into dest[1:]
	at                     *int64 // the join's v.i (a pointer: dest outlives the copy newTableLookup returns)
	keyRow                 []schema.Value
	pos                    map[string]int
	skip                   []bool
	exists                 []bool // found in the target, by position in idx
	// What the last call of unchanged kept: the upserts whose key the
	// look-up did not find (new to the target), and those it found.
	fresh, found []int
	skipped      int // upserts left out, in all (for tests)
	// off: the last batch met (almost) no existing row, so this one is
	// not looked up (a first load): see note.
	off bool
}

func newTableLookup(w *TableWriter, qt string, names []string) tableLookup {
	l := tableLookup{pos: map[string]int{}}
	isKey := make([]bool, len(w.cols))
	var keys []string
	for _, k := range w.t.Key {
		isKey[k] = true
		keys = append(keys, names[k])
	}
	// The consumer's session parses times (parseTime): a time read as
	// text would come back in Go's format, so times are read as CAST(… AS
	// CHAR), the server's own text.
	text := func(c int) string {
		switch w.cols[c].DataType {
		case "date", "datetime", "timestamp":
			return "CAST(t." + names[c] + " AS CHAR)"
		}
		return "t." + names[c]
	}
	var sel []string
	for _, k := range w.t.Key {
		sel = append(sel, text(k))
	}
	sel = append(sel, "t.`source_version`")
	for c := range w.cols {
		if !isKey[c] {
			l.cols = append(l.cols, c)
			sel = append(sel, text(c))
		}
	}
	l.tuple = "(" + placeholders(len(keys)) + ")"
	lhs := "(t." + strings.Join(keys, ", t.") + ")"
	if len(keys) == 1 {
		l.tuple, lhs = "?", "t."+keys[0]
	}
	l.prefix = "SELECT " + strings.Join(sel, ", ") + " FROM " + qt + " t WHERE " + lhs + " IN ("
	l.suffix = ") FOR UPDATE"
	l.perStmt = max(1, min(1000, maxParams/len(keys)))

	vcols := []string{"i"}
	var on []string
	for n, k := range keys {
		v := "k" + strconv.Itoa(n)
		vcols = append(vcols, v)
		on = append(on, "t."+k+" = v."+v)
	}
	l.joinPrefix = "WITH v(" + strings.Join(vcols, ", ") + ") AS (VALUES "
	// The index goes between the two halves (probeJoin).
	l.joinSuffix = ") SELECT v.i, " + strings.Join(sel, ", ") + " FROM v STRAIGHT_JOIN " + qt + " t FORCE INDEX ("
	l.joinOn = ") ON " + strings.Join(on, " AND ") + " FOR UPDATE"
	l.joinTuple = "(" + placeholders(len(keys)+1) + ")"
	l.joinPer = max(1, min(10000, maxParams/(len(keys)+1)))
	l.raw = make([]sql.RawBytes, len(sel))
	l.at = new(int64)
	l.dest = append(l.dest, l.at) // the join's v.i, then the select list
	for i := range l.raw {
		l.dest = append(l.dest, &l.raw[i])
	}
	l.keyRow = make([]schema.Value, len(w.cols))
	return l
}

// probeExactDouble tells whether the server prints a DOUBLE as its
// shortest round-trip text (MariaDB 10.11 and MySQL 8 do): only then is a
// DOUBLE read back compared in the look-up.
func probeExactDouble(ctx context.Context, db *sql.DB) (bool, error) {
	var s string
	if err := db.QueryRowContext(ctx, "SELECT CAST(0.1e0 + 0.2e0 AS CHAR)").Scan(&s); err != nil {
		return false, fmt.Errorf("print a double: %w", err)
	}
	return s == "0.30000000000000004", nil
}

// probeJoin tells whether the look-up can be the join: the server takes a
// table value constructor (MariaDB 10.3 and later; MySQL 8 spells it
// VALUES ROW(…), and is not tried), and its plan for the join reads the
// target by its key, one row of v at a time (eq_ref or ref). The keys'
// values travel as the upsert's arguments (binary strings, mostly), which
// the server must convert to each key column's type and collation; where
// it would not use the key for that (a key column it cannot compare with
// a string by index), the look-up stays the IN list, which it plans as a
// range read of the key. The join names its order (v, then the target)
// and the target's unique index on the key, so that its plan does not
// depend on the table's statistics (an empty table's would scan it); it
// explains the join of two rows of zeros to see that the server reads the
// index by the key's values.
func (w *TableWriter) probeJoin(ctx context.Context, db *sql.DB) (bool, error) {
	l := &w.look
	index, err := keyIndex(ctx, db, w.t)
	if err != nil || index == "" {
		return false, err
	}
	q, err := schema.QuoteIdent(index)
	if err != nil {
		return false, nil
	}
	l.joinSuffix += q + l.joinOn
	row := make([]schema.Value, len(w.cols))
	for _, k := range w.t.Key {
		row[k] = schema.Value{B: []byte("0")}
	}
	var args []any
	for i := range 2 {
		args = append(args, i)
		var err error
		if args, err = w.keyArgs(args, row); err != nil {
			return false, nil
		}
	}
	rows, err := db.QueryContext(ctx, "EXPLAIN "+l.joinPrefix+l.joinTuple+","+l.joinTuple+l.joinSuffix, args...)
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return false, nil // no table value constructor, or no such comparison
	}
	if err != nil {
		return false, fmt.Errorf("explain the look-up: %w", err)
	}
	defer rows.Close()
	names, err := rows.Columns()
	if err != nil {
		return false, fmt.Errorf("explain the look-up: %w", err)
	}
	tcol, typ := slices.Index(names, "table"), slices.Index(names, "type")
	if tcol < 0 || typ < 0 {
		return false, nil
	}
	vals := make([]sql.NullString, len(names))
	dest := make([]any, len(names))
	for i := range vals {
		dest[i] = &vals[i]
	}
	byKey := false
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return false, fmt.Errorf("explain the look-up: %w", err)
		}
		if vals[tcol].String == "t" {
			byKey = vals[typ].String == "eq_ref" || vals[typ].String == "ref"
		}
	}
	if err := rows.Err(); err != nil {
		return false, fmt.Errorf("explain the look-up: %w", err)
	}
	return byKey, nil
}

// keyIndex names the target's unique index on exactly the key's columns,
// in the key's order (the primary key, when sluice migrate made the
// table), or "" when it has none.
func keyIndex(ctx context.Context, db *sql.DB, t *schema.Table) (string, error) {
	var want []string
	for _, k := range t.Key {
		want = append(want, t.Columns[k].Target.Name)
	}
	rows, err := db.QueryContext(ctx, `SELECT index_name, column_name FROM information_schema.statistics
WHERE table_schema = ? AND table_name = ? AND non_unique = 0 ORDER BY index_name, seq_in_index`, t.Target.DB, t.Target.Table)
	if err != nil {
		return "", fmt.Errorf("target %s: look up its unique indexes: %w", t.Target, err)
	}
	defer rows.Close()
	cols := map[string][]string{}
	var order []string
	for rows.Next() {
		var index, col string
		if err := rows.Scan(&index, &col); err != nil {
			return "", fmt.Errorf("target %s: look up its unique indexes: %w", t.Target, err)
		}
		if _, ok := cols[index]; !ok {
			order = append(order, index)
		}
		cols[index] = append(cols[index], col)
	}
	if err := rows.Err(); err != nil {
		return "", fmt.Errorf("target %s: look up its unique indexes: %w", t.Target, err)
	}
	for _, index := range order {
		if slices.Equal(cols[index], want) {
			return index, nil
		}
	}
	return "", nil
}

// unchanged returns idx (w.items' upserts) without the ones the target
// already holds as the upsert would leave them, and how many it left out.
// It runs unless the last batch found next to no existing row.
func (w *TableWriter) unchanged(ctx context.Context, tx *sql.Tx, idx []int) ([]int, int, error) {
	l := &w.look
	if l.off || len(idx) == 0 {
		return idx, 0, nil
	}
	l.skip = append(l.skip[:0], make([]bool, len(idx))...)
	l.exists = append(l.exists[:0], make([]bool, len(idx))...)
	per, prefix, tuple, suffix := l.perStmt, l.prefix, l.tuple, l.suffix
	if l.join {
		per, prefix, tuple, suffix = l.joinPer, l.joinPrefix, l.joinTuple, l.joinSuffix
	}
	for from := 0; from < len(idx); from += per {
		chunk := idx[from:min(len(idx), from+per)]
		if !l.join {
			clear(l.pos)
		}
		args := w.args[:0]
		l.q = append(l.q[:0], prefix...)
		var err error
		for n, i := range chunk {
			it := &w.items[i]
			if n > 0 {
				l.q = append(l.q, ',')
			}
			l.q = append(l.q, tuple...)
			if l.join {
				args = append(args, from+n)
			} else {
				l.pos[it.key] = from + n
			}
			if args, err = w.keyArgs(args, it.row); err != nil {
				return nil, 0, fmt.Errorf("look up key %s: %w", w.keyText(it.row), err)
			}
		}
		l.q = append(l.q, suffix...)
		w.args = args
		if err := w.scanUnchanged(ctx, tx, idx, string(l.q), len(chunk), args); err != nil {
			return nil, 0, err
		}
	}
	kept := idx[:0:0]
	l.fresh, l.found = l.fresh[:0], l.found[:0]
	for n, i := range idx {
		if !l.skip[n] {
			kept = append(kept, i)
			if l.exists[n] {
				l.found = append(l.found, i)
			} else {
				l.fresh = append(l.fresh, i)
			}
		}
	}
	l.skipped += len(idx) - len(kept)
	return kept, len(idx) - len(kept), nil
}

// scanUnchanged runs one look-up statement of n keys and marks l.skip. A
// row found is matched to its upsert by its key's text, byte for byte:
// through the join's v.i, checked, or else by the text alone.
func (w *TableWriter) scanUnchanged(ctx context.Context, tx *sql.Tx, idx []int, q string, n int, args []any) error {
	l := &w.look
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("look up %d keys in the target: %w", n, err)
	}
	defer rows.Close()
	dest := l.dest[1:]
	if l.join {
		dest = l.dest
	}
	nk := len(w.t.Key)
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return fmt.Errorf("look up keys in the target: %w", err)
		}
		for j, k := range w.t.Key {
			l.keyRow[k] = schema.Value{B: l.raw[j], Null: l.raw[j] == nil}
		}
		w.dkey = w.t.AppendDedupeKey(w.dkey[:0], l.keyRow)
		pos, ok := 0, false
		if l.join {
			pos = int(*l.at)
			if pos < 0 || pos >= len(idx) {
				return fmt.Errorf("look up keys in the target: row %d of %d", pos, len(idx))
			}
			ok = w.items[idx[pos]].key == string(w.dkey)
		} else {
			pos, ok = l.pos[string(w.dkey)]
		}
		if !ok {
			continue // a key in another text than the batch's: the upsert decides
		}
		l.exists[pos] = true
		l.skip[pos] = w.same(&w.items[idx[pos]], l.raw[nk], l.raw[nk+1:])
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("look up keys in the target: %w", err)
	}
	return nil
}

// same tells whether the upsert of it would leave the row (its stored
// version, and its non-key columns' texts) as it is.
func (w *TableWriter) same(it *titem, stored sql.RawBytes, vals []sql.RawBytes) bool {
	if it.hasVer && stored != nil {
		v, err := strconv.ParseUint(string(stored), 10, 64)
		if err == nil && it.version < v {
			return true // older than the row
		}
	}
	for n, c := range w.look.cols {
		got, want := vals[n], it.row[c]
		if want.Null || got == nil {
			if want.Null != (got == nil) {
				return false
			}
			continue
		}
		switch w.cols[c].DataType {
		case "float":
			return false
		case "double", "real":
			if !w.look.exactDouble {
				return false
			}
			a, err1 := strconv.ParseFloat(string(got), 64)
			b, err2 := strconv.ParseFloat(string(want.B), 64)
			if err1 != nil || err2 != nil || a != b {
				return false
			}
			continue
		}
		if !bytes.Equal(want.B, got) {
			return false
		}
	}
	return true
}

// note decides whether the next batch is looked up: when more than a tenth
// of this one's upserts met an existing row (a re-run, a replay, a tail's
// updates), not while a first load writes new ones.
func (l *tableLookup) note(existing, total int) {
	if total > 0 {
		l.off = 10*existing <= total
	}
}

// fullUpsert runs the upsert of a full chunk as a statement prepared on
// the server once per batch: its values then travel in the binary
// protocol, which the server does not parse as SQL text.
func (w *TableWriter) fullUpsert(ctx context.Context, tx *sql.Tx, stmt **sql.Stmt, args []any) (sql.Result, error) {
	if *stmt == nil {
		s, err := tx.PrepareContext(ctx, w.upsert.full)
		if err != nil {
			return nil, fmt.Errorf("prepare the upsert of %d rows: %w", w.upsert.perStmt, err)
		}
		*stmt = s
	}
	return (*stmt).ExecContext(ctx, args...)
}
