package consumer

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/schema"
)

// TableWriter applies batches of generic change events (schema.Change) of
// one resolved schema.Table to its target, each batch in one transaction,
// with the semantics the package doc says: the newest version of a key wins however late it
// arrives, the same content writes nothing, a versioned delete leaves a
// tombstone in <target>_tombstones that drops older upserts of its key, and
// a change that moves a row to another key deletes the old key.
//
// It is built for any table: it writes with the versioned multi-row
// INSERT … ON DUPLICATE KEY UPDATE, after the look-up of existing rows
// (tablelookup.go), which leaves unchanged rows out of the upsert. On
// MariaDB, with a pool dialed through a Wire, the rows known to be new (the
// look-up found no row of their key, or, when it did not run, the last
// batch met next to no existing row) go first as one bulk insert
// (tablebulk.go), which falls back to the upsert unless the server took
// every row without a warning. A
// truncate (op "t") is applied as tabletruncate.go says. A Write is one
// transaction, all or nothing: a record the target refuses fails it with
// the server's error. The table-driven member (tablePath.apply) retries
// a Write that fails with a transient error (retryTx) and isolates a
// record the target refuses (isolate.go: halves of the batch in
// transactions of their own, down to the refused record, which goes to the
// dead-letter topic with reason database while the rest commits); other
// errors stop the member with the batch's offsets uncommitted.
type TableWriter struct {
	t    *schema.Table
	db   *sql.DB
	cols []schema.Column // the target columns, in Table.Columns order

	upsert    multiRow // INSERT … (columns, source_version, loaded_at) VALUES … ON DUPLICATE KEY UPDATE …
	tombs     multiRow // INSERT INTO <target>_tombstones … ON DUPLICATE KEY UPDATE …
	tombFind  multiRow // SELECT ?, source_version FROM <target>_tombstones WHERE <key> UNION ALL …
	tombAny   string   // whether the tombstone table has any row
	delete    string   // a delete without a version: by key
	deleteVer string   // a versioned delete: by key, unless the row is not older
	tombDrop  string   // the tombstone of a key, unless it is newer
	raise     string   // a row's version raised to a merged change's, unless newer
	trunc     tableTruncateStmts
	look      tableLookup // the look-up of existing rows (tablelookup.go)

	txOpts *sql.TxOptions // READ COMMITTED, unless the target logs statements (newTableWriter says why)

	bulk tableBulk // MariaDB's bulk insert of new rows (tablebulk.go)

	// Reused between batches.
	buf   []byte
	rows  []schema.Value
	items []titem
	args  []any
	dkey  []byte
}

// TableRecord is one decoded record handed to TableWriter.Write: the change
// and its Kafka coordinates, which a dead-letter decision names.
type TableRecord struct {
	Change    *schema.Change
	Topic     string
	Partition int32
	Offset    int64
}

// Rejected is a record the writer did not apply and that its caller must
// dead-letter: a transform failed on one of its values, or a rule refused
// one (errors.As gives the *schema.RuleError, naming table, column and
// rule). The rest of the batch applies without it.
type Rejected struct {
	Record    int // index into the batch handed to Write
	Topic     string
	Partition int32
	Offset    int64
	Err       error
}

// TableResult counts what one batch did to the target.
type TableResult struct {
	Inserted   int // keys new to the target
	Updated    int // keys the target had, changed by a change not older than the row
	Unchanged  int // keys the target had, already as the change says (or newer)
	Deleted    int // rows deleted
	Tombstoned int // upserts dropped: their key was deleted by a newer change
	Merged     int // changes replaced by a later change of their key in the batch
	Truncates  int // truncates applied
	Truncated  int // changes dropped: older than the table's last truncate
	Rejected   []Rejected
}

// titem is one change the batch writes: an upsert of a target row, or a
// delete of a key (row then holds the key's values only).
type titem struct {
	rec     int
	del     bool
	row     []schema.Value // len(Table.Columns), aliasing TableWriter.rows
	key     string         // Table.AppendDedupeKey of row
	version uint64
	hasVer  bool
	merged  bool
}

// maxParams is the most placeholders one prepared statement takes.
const maxParams = 65535

// multiRow is a statement of many rows: the text for a full chunk is built
// once, a shorter last chunk's when it comes.
type multiRow struct {
	prefix, tuple, sep, suffix string
	params                     int // per tuple
	perStmt                    int // tuples per statement
	full                       string
}

func newMultiRow(prefix, tuple, sep, suffix string, params, maxRows int) multiRow {
	m := multiRow{prefix: prefix, tuple: tuple, sep: sep, suffix: suffix, params: params}
	m.perStmt = max(1, min(maxRows, maxParams/params))
	m.full = m.text(m.perStmt)
	return m
}

func (m *multiRow) text(n int) string {
	if n == m.perStmt && m.full != "" {
		return m.full
	}
	var sb strings.Builder
	sb.WriteString(m.prefix)
	for i := range n {
		if i > 0 {
			sb.WriteString(m.sep)
		}
		sb.WriteString(m.tuple)
	}
	sb.WriteString(m.suffix)
	return sb.String()
}

// NewTableWriter builds the writer of t's target: every statement's text
// once. It checks that the target has the lineage columns and the
// tombstone table (sluice migrate --config makes both).
func NewTableWriter(ctx context.Context, db *sql.DB, t *schema.Table) (*TableWriter, error) {
	if len(t.Key) == 0 {
		return nil, fmt.Errorf("table %s: no key to upsert on", t.Target)
	}
	qt, err := t.Target.Quoted()
	if err != nil {
		return nil, fmt.Errorf("table %s: %w", t.Target, err)
	}
	tombName := schema.TableName{DB: t.Target.DB, Table: schema.TombstoneTable(t.Target.Table)}
	qtt, err := tombName.Quoted()
	if err != nil {
		return nil, fmt.Errorf("table %s: %w", t.Target, err)
	}
	if err := checkTarget(ctx, db, t, tombName); err != nil {
		return nil, err
	}
	onUpdate, err := onUpdateColumns(ctx, db, t.Target)
	if err != nil {
		return nil, err
	}
	w, err := buildTableWriter(t, qt, qtt, onUpdate)
	if err != nil {
		return nil, err
	}
	if w.trunc, err = newTableTruncateStmts(t, qt, qtt); err != nil {
		return nil, err
	}
	if w.look.exactDouble, err = probeExactDouble(ctx, db); err != nil {
		return nil, fmt.Errorf("table %s: %w", t.Target, err)
	}
	if w.look.join, err = w.probeJoin(ctx, db); err != nil {
		return nil, fmt.Errorf("table %s: %w", t.Target, err)
	}
	// READ COMMITTED: the look-up's locking read of a batch's keys then
	// locks the rows it finds, not the gaps where the missing ones go, on
	// which members loading into one index's gaps (a re-run after deletes)
	// deadlocked past their retries. Only the owner of a key's partition
	// writes it, and the upsert decides by the row's latest version, so
	// nothing relies on a snapshot. A server logging statements (binlog
	// STATEMENT) refuses writes under READ COMMITTED: it keeps the default.
	var format string
	if err := db.QueryRowContext(ctx, "SELECT @@SESSION.binlog_format").Scan(&format); err != nil {
		return nil, fmt.Errorf("table %s: read the target's binlog_format: %w", t.Target, err)
	}
	if !strings.EqualFold(format, "STATEMENT") {
		w.txOpts = &sql.TxOptions{Isolation: sql.LevelReadCommitted}
	}
	w.db = db
	return w, nil
}

// onUpdateColumns returns the target's columns that the server sets to the
// current time when a row changes (ON UPDATE CURRENT_TIMESTAMP).
func onUpdateColumns(ctx context.Context, db *sql.DB, target schema.TableName) ([]string, error) {
	rows, err := db.QueryContext(ctx, `SELECT column_name FROM information_schema.columns
WHERE table_schema = ? AND table_name = ? AND LOWER(extra) LIKE '%on update%' ORDER BY ordinal_position`, target.DB, target.Table)
	if err != nil {
		return nil, fmt.Errorf("target %s: look up the ON UPDATE columns: %w", target, err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, fmt.Errorf("target %s: look up the ON UPDATE columns: %w", target, err)
		}
		names = append(names, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("target %s: look up the ON UPDATE columns: %w", target, err)
	}
	return names, nil
}

// keepAssignments assigns each of the target's ON UPDATE columns that
// assigned does not name to itself (", `c` = `c`"): a statement that
// changes a row would otherwise set them to now, where Sluice changed
// nothing of theirs (a version raised, a target-only column).
func keepAssignments(onUpdate, assigned []string) (string, error) {
	var sb strings.Builder
	for _, c := range onUpdate {
		q, err := schema.QuoteIdent(c)
		if err != nil {
			return "", err
		}
		if !slices.Contains(assigned, q) {
			sb.WriteString(", " + q + " = " + q)
		}
	}
	return sb.String(), nil
}

// buildTableWriter builds every statement of t's writer; qt and qtt are
// the quoted target and tombstone tables, onUpdate the target's ON UPDATE
// columns.
func buildTableWriter(t *schema.Table, qt, qtt string, onUpdate []string) (*TableWriter, error) {
	w := &TableWriter{t: t}
	isKey := make([]bool, len(t.Columns))
	for _, k := range t.Key {
		isKey[k] = true
	}
	var names, keyNames []string
	for i := range t.Columns {
		c := t.Columns[i].Target
		w.cols = append(w.cols, c)
		q, err := schema.QuoteIdent(c.Name)
		if err != nil {
			return nil, fmt.Errorf("table %s: %w", t.Target, err)
		}
		names = append(names, q)
	}
	for _, k := range t.Key {
		keyNames = append(keyNames, names[k])
	}
	var byKey strings.Builder
	for n, k := range keyNames {
		if n > 0 {
			byKey.WriteString(" AND ")
		}
		byKey.WriteString(k + " = ?")
	}
	where := " WHERE " + byKey.String()

	// The upsert decides, once per existing row, whether the incoming
	// change applies: only when it is not older than what the row has (by
	// source_version; a NULL on either side applies) and it changes
	// something. A replayed, re-delivered or re-run change then writes
	// nothing, and an older change arriving late never overwrites a newer
	// one. A newer version with the same content keeps the stored version:
	// changes of one key arrive in order (one partition), so the next real
	// change still compares against a version no newer than its own; a
	// change kept over others of its key in one batch is the exception
	// (apply raises the row's version). MySQL assigns ON DUPLICATE KEY
	// UPDATE columns left to right, each seeing the ones before, so the
	// decision is taken in the first assignment and reused; source_version
	// is assigned last, after every column compared it. Text is compared
	// as bytes: a collation's equality would take an update that only
	// changes case, or trailing spaces, for no change.
	var same, assign []string
	for i, q := range names {
		if isKey[i] {
			continue
		}
		if textual(w.cols[i]) {
			same = append(same, "BINARY "+q+" <=> BINARY VALUES("+q+")")
		} else {
			same = append(same, q+" <=> VALUES("+q+")")
		}
		assign = append(assign, q)
	}
	assign = append(assign, "`loaded_at`", "`source_version`")
	cmp := "TRUE"
	if len(same) > 0 {
		cmp = strings.Join(same, " AND ")
	}
	var suffix strings.Builder
	suffix.WriteString(" ON DUPLICATE KEY UPDATE\n ")
	for n, q := range assign {
		if n > 0 {
			suffix.WriteString(",\n ")
		}
		if n == 0 {
			suffix.WriteString(q + " = IF((@sluice_dups := @sluice_dups + 1) > 0 AND (@sluice_apply :=\n" +
				"   (VALUES(`source_version`) IS NULL OR `source_version` IS NULL OR VALUES(`source_version`) >= `source_version`)\n" +
				"   AND NOT (" + cmp + ")),\n   VALUES(" + q + "), " + q + ")")
			continue
		}
		suffix.WriteString(q + " = IF(@sluice_apply, VALUES(" + q + "), " + q + ")")
	}
	keep, err := keepAssignments(onUpdate, assign)
	if err != nil {
		return nil, fmt.Errorf("table %s: %w", t.Target, err)
	}
	suffix.WriteString(keep)
	nup := len(names) + 2
	w.upsert = newMultiRow("INSERT INTO "+qt+" ("+strings.Join(names, ", ")+", `source_version`, `loaded_at`) VALUES ",
		"("+placeholders(nup)+")", ",", suffix.String(), nup, 2000)

	ntomb := len(keyNames) + 2
	w.tombs = newMultiRow("INSERT INTO "+qtt+" ("+strings.Join(keyNames, ", ")+", `source_version`, `deleted_at`) VALUES ",
		"("+placeholders(ntomb)+")", ",",
		// The newest delete of a key stays: deleted_at is assigned first,
		// while source_version still holds the old value.
		" ON DUPLICATE KEY UPDATE\n `deleted_at` = IF(VALUES(`source_version`) > `source_version`, VALUES(`deleted_at`), `deleted_at`),\n"+
			" `source_version` = GREATEST(`source_version`, VALUES(`source_version`))",
		ntomb, 2000)
	w.tombFind = newMultiRow("", "SELECT ? AS i, `source_version` FROM "+qtt+where, " UNION ALL ", "", len(keyNames)+1, 256)
	w.tombAny = "SELECT 1 FROM " + qtt + " LIMIT 1"
	w.delete = "DELETE FROM " + qt + where
	w.deleteVer = "DELETE FROM " + qt + where + " AND (`source_version` IS NULL OR `source_version` < ?)" // at one version the row wins (later)
	w.tombDrop = "DELETE FROM " + qtt + where + " AND `source_version` <= ?"
	w.look = newTableLookup(w, qt, names)
	w.bulk = newTableBulk(w, qt, names)
	if keep, err = keepAssignments(onUpdate, []string{"`source_version`"}); err != nil {
		return nil, fmt.Errorf("table %s: %w", t.Target, err)
	}
	w.raise = "UPDATE " + qt + " SET `source_version` = ?" + keep + where + " AND (`source_version` IS NULL OR `source_version` < ?)"
	return w, nil
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}

// textual reports whether the column's values compare by collation, where
// two different texts can be equal.
func textual(c schema.Column) bool {
	switch c.DataType {
	case "char", "varchar", "tinytext", "text", "mediumtext", "longtext", "json", "enum", "set":
		return true
	}
	return false
}

// checkTarget refuses a target the writer cannot keep its promises on: one
// without the lineage columns, or without its tombstone table.
func checkTarget(ctx context.Context, db *sql.DB, t *schema.Table, tombs schema.TableName) error {
	var n int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM information_schema.columns
WHERE table_schema = ? AND table_name = ? AND column_name IN ('source_version', 'loaded_at')`,
		t.Target.DB, t.Target.Table).Scan(&n); err != nil {
		return fmt.Errorf("target %s: look up the lineage columns: %w", t.Target, err)
	}
	if n != 2 {
		return fmt.Errorf("target %s lacks source_version or loaded_at, which the writer keeps a row's version and load time in (run 'sluice migrate --config')", t.Target)
	}
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
		tombs.DB, tombs.Table).Scan(&n); err != nil {
		return fmt.Errorf("target %s: look up the table: %w", tombs, err)
	}
	if n == 0 {
		return fmt.Errorf("target %s is missing, or this user has no privilege on it: deletes leave tombstones there so that an older change cannot bring a row back (run 'sluice migrate --config', and grant the consumer's user SELECT, INSERT, UPDATE, DELETE on it)", tombs)
	}
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
		t.Target.DB, schema.TruncatesTable).Scan(&n); err != nil {
		return fmt.Errorf("target %s.%s: look up the table: %w", t.Target.DB, schema.TruncatesTable, err)
	}
	if n == 0 {
		return fmt.Errorf("target %s.%s is missing, or this user has no privilege on it: a truncate's version is kept there so that older changes arriving later are dropped (run 'sluice migrate --config', and grant the consumer's user SELECT, INSERT, UPDATE on it)", t.Target.DB, schema.TruncatesTable)
	}
	return nil
}

// Write applies recs, a batch in the order polled (each partition's
// records in offset order), in one transaction. A record whose values a
// transform or a rule refuses is left out and returned in Rejected, for the
// caller to dead-letter; any other error fails the whole batch, and nothing
// of it is written.
func (w *TableWriter) Write(ctx context.Context, recs []TableRecord) (TableResult, error) {
	var res TableResult
	tx, release, err := w.begin(ctx)
	if err != nil {
		return TableResult{}, fmt.Errorf("table %s: begin: %w", w.t.Target, err)
	}
	defer release()
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	// A truncate cuts the batch: the changes before it apply, then it, then
	// the changes after it, in the one transaction.
	start := 0
	for i := 0; i <= len(recs); i++ {
		if i < len(recs) && (recs[i].Change == nil || recs[i].Change.Op != schema.OpTruncate) {
			continue
		}
		if err := w.segment(ctx, tx, recs, start, i, &res); err != nil {
			return TableResult{}, fmt.Errorf("table %s: batch of %d records: %w", w.t.Target, len(recs), err)
		}
		if i < len(recs) {
			if err := w.truncate(ctx, tx, recs[i].Change, &res); err != nil {
				return TableResult{}, fmt.Errorf("table %s: record %s/%d@%d: %w", w.t.Target, recs[i].Topic, recs[i].Partition, recs[i].Offset, err)
			}
		}
		start = i + 1
	}
	if err := tx.Commit(); err != nil {
		return TableResult{}, fmt.Errorf("table %s: commit: %w", w.t.Target, err)
	}
	return res, nil
}

// segment applies recs[from:to], which hold no truncate, after the table's
// truncate marker: a change older than it is dropped. Rejected records are
// reported by their index in recs.
func (w *TableWriter) segment(ctx context.Context, tx *sql.Tx, recs []TableRecord, from, to int, res *TableResult) error {
	if from == to {
		return nil
	}
	mark, err := w.marker(ctx, tx)
	if err != nil {
		return err
	}
	seg := recs[from:to]
	var index []int // a kept record's index in recs, when some are dropped
	if mark > 0 {
		kept := make([]TableRecord, 0, len(seg))
		for i, r := range seg {
			if v, ok := r.Change.Source.Version(); ok && v < mark {
				res.Truncated++
				continue
			}
			kept = append(kept, r)
			index = append(index, from+i)
		}
		seg = kept
	}
	var part TableResult
	if err := w.prepare(seg, &part); err != nil {
		return err
	}
	for _, rj := range part.Rejected {
		if index != nil {
			rj.Record = index[rj.Record]
		} else {
			rj.Record += from
		}
		res.Rejected = append(res.Rejected, rj)
	}
	res.Merged += part.Merged
	if len(w.items) == 0 {
		return nil
	}
	if err := w.apply(ctx, tx, res); err != nil {
		return err
	}
	return nil
}

// prepare computes each record's target row (or key) and keeps the last
// change of each key, sorted by key (w.items).
func (w *TableWriter) prepare(recs []TableRecord, res *TableResult) error {
	n := len(w.cols)
	w.buf = w.buf[:0]
	w.items = w.items[:0]
	// Two row slots per record: a key change needs the old key and the new row.
	w.rows = slices.Grow(w.rows[:0], 2*n*len(recs))[:2*n*len(recs)]
	clear(w.rows)
	byKey := make(map[string]int, len(recs))
	var all []titem
	for i := range recs {
		c := recs[i].Change
		if c == nil {
			return fmt.Errorf("table %s: record %s/%d@%d: no change", w.t.Target, recs[i].Topic, recs[i].Partition, recs[i].Offset)
		}
		at := func(which string) error {
			return fmt.Errorf("table %s: record %s/%d@%d: %s", w.t.Target, recs[i].Topic, recs[i].Partition, recs[i].Offset, which)
		}
		ver, hasVer := c.Source.Version()
		slot := w.rows[2*n*i : 2*n*i+2*n : 2*n*i+2*n]
		var err error
		switch c.Op {
		case schema.OpDelete:
			if len(c.Before) != n {
				return at(fmt.Sprintf("delete with %d values for %d columns", len(c.Before), n))
			}
			row := slot[:n:n]
			if w.buf, err = w.keyRow(w.buf, c.Before, row); err != nil {
				w.reject(res, recs, i, err)
				continue
			}
			all = append(all, titem{rec: i, del: true, row: row, version: ver, hasVer: hasVer})
		case schema.OpCreate, schema.OpRead, schema.OpUpdate:
			if len(c.After) != n {
				return at(fmt.Sprintf("op %q with %d values for %d columns", c.Op, len(c.After), n))
			}
			row := slot[:n:n]
			if w.buf, err = w.t.TargetRow(w.buf, c.After, row); err != nil {
				w.reject(res, recs, i, err)
				continue
			}
			up := titem{rec: i, row: row, version: ver, hasVer: hasVer}
			if c.Before != nil {
				if len(c.Before) != n {
					return at(fmt.Sprintf("update with %d before values for %d columns", len(c.Before), n))
				}
				old := slot[n:]
				if w.buf, err = w.keyRow(w.buf, c.Before, old); err != nil {
					w.reject(res, recs, i, err)
					continue
				}
				w.dkey = w.t.AppendDedupeKey(w.dkey[:0], old)
				oldKey := string(w.dkey)
				w.dkey = w.t.AppendDedupeKey(w.dkey[:0], row)
				if oldKey != string(w.dkey) {
					// The row moved to another key: the old key is gone,
					// with the change's version, in the same transaction.
					all = append(all, titem{rec: i, del: true, row: old, version: ver, hasVer: hasVer})
				}
			}
			all = append(all, up)
		default:
			return at(fmt.Sprintf("unknown op %q", c.Op))
		}
	}
	// The last change of each key wins, by later's rule.
	for _, it := range all {
		w.dkey = w.t.AppendDedupeKey(w.dkey[:0], it.row)
		if k, ok := byKey[string(w.dkey)]; ok {
			kept := &w.items[k]
			if later(it.hasVer && kept.hasVer, it.version, kept.version, it.del, kept.del) {
				it.key = kept.key
				*kept = it
			}
			kept.merged = true
			res.Merged++
			continue
		}
		it.key = string(w.dkey)
		byKey[it.key] = len(w.items)
		w.items = append(w.items, it)
	}
	// Sorted by key, so that members take row locks in one order.
	slices.SortFunc(w.items, func(a, b titem) int { return strings.Compare(a.key, b.key) })
	return nil
}

func (w *TableWriter) reject(res *TableResult, recs []TableRecord, i int, err error) {
	r := &recs[i]
	res.Rejected = append(res.Rejected, Rejected{Record: i, Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Err: err})
}

// keyRow sets the key's values of out from img, a source image, through
// the key columns' transforms; the other columns stay unset. A delete's or
// an old image's other values are not checked against rules: only the key
// is written.
func (w *TableWriter) keyRow(dst []byte, img, out []schema.Value) ([]byte, error) {
	for _, k := range w.t.Key {
		c := &w.t.Columns[k]
		v := img[k]
		if len(c.Transforms) > 0 {
			b, null, err := schema.ApplyTransforms(c.Transforms, v.B, v.Null)
			if err != nil {
				return dst, fmt.Errorf("table %s: column %s: %w", w.t.Source, c.Source.Name, err)
			}
			if null {
				v = schema.Null
			} else {
				start := len(dst)
				dst = append(dst, b...)
				v = schema.Value{B: dst[start:len(dst):len(dst)]}
			}
		}
		out[k] = v
	}
	return dst, nil
}

// keyOf names the key of c, a change of the writer's table, in errors:
// the target key's values (keyText) of its image, through the key
// columns' transforms.
func (w *TableWriter) keyOf(c *schema.Change) string {
	img := c.Image()
	if len(img) != len(w.cols) {
		return "(none)" // a truncate, or a malformed change Write refuses anyway
	}
	row := make([]schema.Value, len(w.cols))
	if _, err := w.keyRow(nil, img, row); err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	return w.keyText(row)
}

// keyArgs appends the key's values of row as arguments.
func (w *TableWriter) keyArgs(args []any, row []schema.Value) ([]any, error) {
	for _, k := range w.t.Key {
		a, err := schema.Arg(w.cols[k], row[k])
		if err != nil {
			return args, err
		}
		args = append(args, a)
	}
	return args, nil
}

// keyText names a key in errors: its values' texts.
func (w *TableWriter) keyText(row []schema.Value) string {
	var sb strings.Builder
	sb.WriteByte('(')
	for n, k := range w.t.Key {
		if n > 0 {
			sb.WriteString(", ")
		}
		if row[k].Null {
			sb.WriteString("NULL")
		} else {
			fmt.Fprintf(&sb, "%q", row[k].B)
		}
	}
	sb.WriteByte(')')
	return sb.String()
}

// apply writes w.items in tx: deletes and their tombstones, then the
// upserts that no newer tombstone drops, then the versions of merged
// changes. The changes a kept change replaced in the batch are never
// written, so the target must still learn their versions: otherwise
// updates to b (V1) and back to a (V2) merge into a row equal to the
// target's, which keeps its old version, and a backfill read of b taken
// between them (V1 < P < V2, produced late) would then apply. So the
// stored version of such a row is raised to the kept change's, unless
// the row is newer.
func (w *TableWriter) apply(ctx context.Context, tx *sql.Tx, res *TableResult) error {
	tombs, err := w.findTombstones(ctx, tx)
	if err != nil {
		return err
	}
	loadedAt := time.Now().UTC().Format("2006-01-02 15:04:05.000000")
	var tombRows []int
	var ups []int
	for i := range w.items {
		it := &w.items[i]
		if it.del {
			w.args, err = w.keyArgs(w.args[:0], it.row)
			if err != nil {
				return fmt.Errorf("delete key %s: %w", w.keyText(it.row), err)
			}
			stmt := w.delete
			if it.hasVer {
				stmt = w.deleteVer
				w.args = append(w.args, it.version)
				tombRows = append(tombRows, i)
			}
			r, err := tx.ExecContext(ctx, stmt, w.args...)
			if err != nil {
				return fmt.Errorf("delete key %s: %w", w.keyText(it.row), err)
			}
			n, _ := r.RowsAffected()
			res.Deleted += int(n)
			continue
		}
		if v, ok := tombs[i]; ok && it.hasVer {
			if it.version < v {
				res.Tombstoned++
				continue
			}
			w.args, err = w.keyArgs(w.args[:0], it.row)
			if err == nil {
				_, err = tx.ExecContext(ctx, w.tombDrop, append(w.args, it.version)...)
			}
			if err != nil {
				return fmt.Errorf("remove the tombstone of key %s: %w", w.keyText(it.row), err)
			}
		}
		ups = append(ups, i)
	}
	if err := w.writeTombstones(ctx, tx, tombRows, loadedAt); err != nil {
		return err
	}
	if err := w.upserts(ctx, tx, ups, loadedAt, res); err != nil {
		return err
	}
	for _, i := range ups {
		it := &w.items[i]
		if !it.merged || !it.hasVer {
			continue
		}
		w.args = append(w.args[:0], it.version)
		if w.args, err = w.keyArgs(w.args, it.row); err == nil {
			_, err = tx.ExecContext(ctx, w.raise, append(w.args, it.version)...)
		}
		if err != nil {
			return fmt.Errorf("raise the version of key %s to %d: %w", w.keyText(it.row), it.version, err)
		}
	}
	return nil
}

// findTombstones returns the tombstone versions of the batch's versioned
// upserts, by item index. An empty tombstone table (a first load, a table
// without deletes) costs one query; otherwise each key is a point read of
// the tombstones' primary key, many to a statement.
func (w *TableWriter) findTombstones(ctx context.Context, tx *sql.Tx) (map[int]uint64, error) {
	var look []int
	for i := range w.items {
		if !w.items[i].del && w.items[i].hasVer {
			look = append(look, i)
		}
	}
	if len(look) == 0 {
		return nil, nil
	}
	var one int
	switch err := tx.QueryRowContext(ctx, w.tombAny).Scan(&one); {
	case errors.Is(err, sql.ErrNoRows):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("look up tombstones: %w", err)
	}
	found := map[int]uint64{}
	for len(look) > 0 {
		chunk := look[:min(len(look), w.tombFind.perStmt)]
		look = look[len(chunk):]
		args := w.args[:0]
		var err error
		for _, i := range chunk {
			args = append(args, i)
			if args, err = w.keyArgs(args, w.items[i].row); err != nil {
				return nil, fmt.Errorf("look up the tombstone of key %s: %w", w.keyText(w.items[i].row), err)
			}
		}
		w.args = args
		if err := w.scanTombstones(ctx, tx, len(chunk), args, found); err != nil {
			return nil, err
		}
	}
	return found, nil
}

func (w *TableWriter) scanTombstones(ctx context.Context, tx *sql.Tx, n int, args []any, found map[int]uint64) error {
	rows, err := tx.QueryContext(ctx, w.tombFind.text(n), args...)
	if err != nil {
		return fmt.Errorf("look up the tombstones of %d keys: %w", n, err)
	}
	defer rows.Close()
	for rows.Next() {
		var i int
		var v uint64
		if err := rows.Scan(&i, &v); err != nil {
			return fmt.Errorf("look up tombstones: %w", err)
		}
		found[i] = v
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("look up tombstones: %w", err)
	}
	return nil
}

// writeTombstones leaves a tombstone for each versioned delete (w.items at
// idx), keeping the newest per key.
func (w *TableWriter) writeTombstones(ctx context.Context, tx *sql.Tx, idx []int, deletedAt string) error {
	for len(idx) > 0 {
		chunk := idx[:min(len(idx), w.tombs.perStmt)]
		idx = idx[len(chunk):]
		args := w.args[:0]
		var err error
		for _, i := range chunk {
			it := &w.items[i]
			if args, err = w.keyArgs(args, it.row); err != nil {
				return fmt.Errorf("tombstone of key %s: %w", w.keyText(it.row), err)
			}
			args = append(args, it.version, deletedAt)
		}
		w.args = args
		if _, err := tx.ExecContext(ctx, w.tombs.text(len(chunk)), args...); err != nil {
			return fmt.Errorf("write %d tombstones: %w", len(chunk), err)
		}
	}
	return nil
}

// upserts writes the rows of w.items at idx, and counts what they did:
// affected rows count 1 for a new row, 2 for a changed one and 0 for an
// unchanged one (the session does not set CLIENT_FOUND_ROWS), and
// @sluice_dups counts the rows that met an existing key.
func (w *TableWriter) upserts(ctx context.Context, tx *sql.Tx, idx []int, loadedAt string, res *TableResult) error {
	looked := !w.look.off
	idx, skipped, err := w.unchanged(ctx, tx, idx)
	if err != nil {
		return err
	}
	res.Unchanged += skipped
	all := len(idx)
	if w.bulk.bi != nil && len(idx) > 0 {
		// The rows the look-up did not find, or all of them when it did
		// not run, go as a bulk insert; the rest (and all, when it falls
		// back) as the upsert.
		fresh, rest := idx, []int(nil)
		if looked {
			fresh, rest = w.look.fresh, w.look.found
		}
		if len(fresh) > 0 {
			done, err := w.bulkInsert(ctx, tx, fresh, loadedAt)
			if err != nil {
				return err
			}
			if done {
				res.Inserted += len(fresh)
				idx = rest
			}
		}
	}
	if len(idx) == 0 {
		w.look.note(skipped, skipped+all)
		return nil
	}
	if _, err := tx.ExecContext(ctx, "SET @sluice_dups = 0, @sluice_apply = 0"); err != nil {
		return fmt.Errorf("upsert: %w", err)
	}
	total := len(idx)
	var affected int64
	var stmt *sql.Stmt
	defer func() {
		if stmt != nil {
			stmt.Close()
		}
	}()
	for len(idx) > 0 {
		chunk := idx[:min(len(idx), w.upsert.perStmt)]
		idx = idx[len(chunk):]
		args := w.args[:0]
		for _, i := range chunk {
			it := &w.items[i]
			for c := range w.cols {
				a, err := schema.Arg(w.cols[c], it.row[c])
				if err != nil {
					return fmt.Errorf("upsert key %s: %w", w.keyText(it.row), err)
				}
				args = append(args, a)
			}
			var ver any
			if it.hasVer {
				ver = it.version
			}
			args = append(args, ver, loadedAt)
		}
		w.args = args
		var r sql.Result
		if len(chunk) == w.upsert.perStmt {
			r, err = w.fullUpsert(ctx, tx, &stmt, args)
		} else {
			r, err = tx.ExecContext(ctx, w.upsert.text(len(chunk)), args...)
		}
		if err != nil {
			return fmt.Errorf("upsert %d rows: %w", len(chunk), err)
		}
		n, _ := r.RowsAffected()
		affected += n
	}
	var dups int
	if err := tx.QueryRowContext(ctx, "SELECT @sluice_dups").Scan(&dups); err != nil {
		return fmt.Errorf("upsert: count duplicate keys: %w", err)
	}
	res.Inserted += total - dups
	updated := (int(affected) - (total - dups)) / 2
	res.Updated += updated
	res.Unchanged += dups - updated
	w.look.note(skipped+dups, skipped+all)
	w.bulk.refusedBy()
	return nil
}

// later reports whether a change of a key replaces kept, the change the
// batch holds for that key: when it is newer; at the same version, unless
// it is a delete and kept is not; and when either has no version (nothing
// to order them by but the partition), always. One version is one binlog
// event, and within one event a key is only ever vacated before it is
// taken (unique keys are checked row by row), so at one version an upsert
// wins over a delete. That matters for an update that changes the key in
// a way the target does not see (a case-only change under a _ci collation,
// or one a key column's transform folds away): the tail carries it as a
// delete of the old key and a create of the new, each in its key's
// partition, and the two reach the target in either order. The writer's
// versioned deletes keep a row of their own version for the same reason.
func later(versioned bool, v, keptV uint64, del, keptDel bool) bool {
	if !versioned {
		return true
	}
	return v > keptV || v == keptV && (!del || keptDel)
}
