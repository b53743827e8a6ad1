package consumer

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/schema"
)

// upsertCols are the target columns the consumer writes, in argument order.
const upsertCols = "date, timestamp, device_type, event_type, message, created_at, updated_at, source_id, source_version, loaded_at"

// writer applies batches to the target table, each in one transaction.
type writer struct {
	db         *sql.DB
	prefix     string // INSERT … VALUES
	suffix     string // ON DUPLICATE KEY UPDATE …
	delete     string // a delete without a version: by key
	deleteVer  string // a versioned delete: by key, unless the row is not older
	raise      string // a row's version raised to a merged change's, unless newer
	raises     []int  // the batch items whose row version to raise, reused between batches
	tombPrefix string // INSERT INTO <table>_tombstones … VALUES
	tombLookup string // the tombstones of a timestamp range
	tombRemove string // the tombstone of a key, unless it is newer
	backslash  bool   // the session's sql_mode lets backslashes escape
	buf        []byte // the statement, reused between batches
	tbuf       []byte // the tombstones statement, reused between batches

	// The look-up of existing rows (see unchanged): the query around the
	// batch's keys, whether the server takes it, and whether the last batch
	// suggests this one will find rows.
	lookupPrefix, lookupSuffix string
	lookupOK                   bool
	lookupOff                  string // why lookupOK is false, for the log
	expectRows                 bool
	lbuf                       []byte
	skip                       []bool

	// The bulk load of batches whose rows are all new (load.go).
	loadOK   bool
	loadOff  string // why loadOK is false, for the log
	loadStmt string
	reader   string           // the name of the reader LOAD DATA reads
	warned   int              // loads in a row that ended in a warning
	loadGone func(why string) // told when the writer stops loading; may be nil
	fbuf     []byte           // the rows as LOAD DATA text, reused between batches
	upserts  []int            // the batch items to write, reused between batches

	// MariaDB's bulk insert of batches whose rows are all new
	// (bulkinsert.go): with a Wire, the writer holds one connection of the
	// pool and the socket under it.
	wire      *Wire
	conn      *sql.Conn
	wc        *wireConn // nil: this connection cannot take it (binWhy)
	binOK     bool
	binOff    string // why binOK is false, for the log
	binWhy    string // why the held connection cannot take it
	binStmt   string
	maxPacket int              // the server's max_allowed_packet, less room for the header
	cmds      bulkCmds         // the rows as bulk commands, reused between batches
	binGone   func(why string) // told when the connection or the writer stops taking it; may be nil

	attempts int
	backoff  time.Duration
	metrics  *Metrics

	trunc      truncateStmts // truncate.go
	markerGone bool          // the truncate marker was found missing: make it again
}

func newWriter(ctx context.Context, db *sql.DB, database, table string, attempts int, backoff time.Duration, m *Metrics) (*writer, error) {
	qdb, err := schema.QuoteIdent(database)
	if err != nil {
		return nil, fmt.Errorf("target database: %w", err)
	}
	qt, err := schema.QuoteIdent(table)
	if err != nil {
		return nil, fmt.Errorf("target table: %w", err)
	}
	tombs := schema.TombstoneTable(table)
	qtt, err := schema.QuoteIdent(tombs)
	if err != nil {
		return nil, fmt.Errorf("target tombstone table: %w", err)
	}
	var n int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
		database, tombs).Scan(&n); err != nil {
		return nil, fmt.Errorf("target %s.%s: look up the table: %w", database, tombs, err)
	}
	if n == 0 {
		// information_schema lists only the tables the user has a privilege
		// on: a missing grant looks the same as a missing table.
		return nil, fmt.Errorf("target %s.%s is missing, or this user has no privilege on it: deletes leave tombstones there so that an older change cannot bring a row back (run 'sluice migrate', and grant the consumer's user SELECT, INSERT, UPDATE, DELETE on it)",
			database, tombs)
	}
	var mode string
	if err := db.QueryRowContext(ctx, "SELECT @@SESSION.sql_mode").Scan(&mode); err != nil {
		return nil, fmt.Errorf("target sql_mode: %w", err)
	}
	byKey := " WHERE device_type = ? AND event_type = ? AND timestamp = ?"
	lookupOff, err := lookupSupported(ctx, db, database, table)
	if err != nil {
		return nil, err
	}
	loadOff, binOff, maxPacket, err := loadSupported(ctx, db)
	if err != nil {
		return nil, err
	}
	reader := "sluice-" + strconv.FormatInt(loadSeq.Add(1), 10)
	trunc, err := newTruncateStmts(database, table) // truncate.go
	if err != nil {
		return nil, err
	}
	w := &writer{
		loadOK:       loadOff == "",
		loadOff:      loadOff,
		binOK:        binOff == "",
		binOff:       binOff,
		binStmt:      "INSERT INTO " + qdb + "." + qt + " (" + upsertCols + ") VALUES (?,?,?,?,?,?,?,?,?,?)",
		maxPacket:    maxPacket - bulkPacketSlack,
		loadStmt:     loadStatement(reader, qdb+"."+qt),
		reader:       reader,
		lookupPrefix: "WITH v(i, dt, et, ts) AS (VALUES ",
		lookupSuffix: ") SELECT v.i, r.date, r.message, r.created_at, r.updated_at, r.source_id, r.source_version FROM v JOIN " +
			qdb + "." + qt + " r ON r.device_type = v.dt AND r.event_type = v.et AND r.timestamp = v.ts",
		lookupOK:   lookupOff == "",
		lookupOff:  lookupOff,
		expectRows: true,
		db:         db,
		prefix:     "INSERT INTO " + qdb + "." + qt + " (" + upsertCols + ") VALUES ",
		suffix:     upsertSuffix,
		delete:     "DELETE FROM " + qdb + "." + qt + byKey,
		deleteVer:  "DELETE FROM " + qdb + "." + qt + byKey + " AND (source_version IS NULL OR source_version < ?)",                                                 // at one version the row wins (later)
		raise:      "UPDATE " + qdb + "." + qt + " SET source_version = ?, updated_at = updated_at" + byKey + " AND (source_version IS NULL OR source_version < ?)", // updated_at is ON UPDATE CURRENT_TIMESTAMP: assigned, it keeps the source's value
		tombPrefix: "INSERT INTO " + qdb + "." + qtt + " (" + tombstoneCols + ") VALUES ",
		tombLookup: "SELECT timestamp, device_type, event_type, source_version FROM " + qdb + "." + qtt + " WHERE timestamp >= ? AND timestamp <= ?",
		tombRemove: "DELETE FROM " + qdb + "." + qtt + byKey + " AND source_version <= ?",
		backslash:  !strings.Contains(mode, "NO_BACKSLASH_ESCAPES"),
		attempts:   attempts,
		backoff:    backoff,
		metrics:    m,
		trunc:      trunc,
	}
	if err := w.ensureTruncateMarker(ctx); err != nil {
		return nil, err
	}
	return w, nil
}

// upsertSuffix decides, once per existing row, whether the incoming change
// applies: only when it is not older than what the row has (by
// source_version, the source's binlog position; a NULL on either side
// applies, as before versions) and it changes something. A replayed,
// re-delivered or re-run change then writes nothing: no page write, no redo,
// no binlog on the target, and an older change arriving late never
// overwrites a newer one. A newer version with the same content keeps the
// stored version: changes of one key arrive in order (one partition), so the
// next real change still compares against a version no newer than its own.
// The one exception is a change kept over others of its key in one batch:
// the dropped changes' versions must not be forgotten, and raiseVersions
// raises the row's version after the upsert (batch.final says why;
// TestIntegrationInterleavings checks every delivery order).
//
// MySQL assigns ODKU columns left to right, each seeing the ones before, so
// the decision is taken in the first assignment into @sluice_apply and reused;
// source_version is assigned last, after every column compared it. The same
// assignment counts the rows that hit an existing key into @sluice_dups:
// with unchanged rows counting 0 in affected-rows, it is what tells new rows
// from merged ones.
const upsertSuffix = ` ON DUPLICATE KEY UPDATE
 date = IF((@sluice_dups := @sluice_dups + 1) > 0 AND (@sluice_apply :=
   (VALUES(source_version) IS NULL OR source_version IS NULL OR VALUES(source_version) >= source_version)
   AND NOT (date <=> VALUES(date) AND message <=> VALUES(message) AND created_at <=> VALUES(created_at)
     AND updated_at <=> VALUES(updated_at) AND source_id <=> VALUES(source_id))),
   VALUES(date), date),
 message = IF(@sluice_apply, VALUES(message), message),
 created_at = IF(@sluice_apply, VALUES(created_at), created_at),
 updated_at = IF(@sluice_apply, VALUES(updated_at), updated_at),
 source_id = IF(@sluice_apply, VALUES(source_id), source_id),
 loaded_at = IF(@sluice_apply, VALUES(loaded_at), loaded_at),
 source_version = IF(@sluice_apply, VALUES(source_version), source_version)`

// tombstoneCols are the tombstone table's columns, in argument order.
const tombstoneCols = "timestamp, device_type, event_type, source_version, deleted_at"

// tombstoneSuffix keeps the newest delete of a key: a delete re-delivered or
// arriving late leaves a newer tombstone as it is. deleted_at is assigned
// first, while source_version still holds the old value.
const tombstoneSuffix = ` ON DUPLICATE KEY UPDATE
 deleted_at = IF(VALUES(source_version) > source_version, VALUES(deleted_at), deleted_at),
 source_version = GREATEST(source_version, VALUES(source_version))`

// writeResult counts what one batch did to the target.
type writeResult struct {
	inserted   int // keys new to the target
	updated    int // keys the target had, changed by a newer change
	unchanged  int // keys the target had, already as the change says (or newer)
	deleted    int
	tombstoned int // upserts dropped: their key was deleted by a newer change
	merged     int // changes replaced by a later change of their key in the batch
}

// add counts o's rows into r.
func (r *writeResult) add(o writeResult) {
	r.inserted += o.inserted
	r.updated += o.updated
	r.unchanged += o.unchanged
	r.deleted += o.deleted
	r.tombstoned += o.tombstoned
	r.merged += o.merged
}

// write applies the batch's final items in one transaction, retried as a
// whole on transient errors (retry).
func (w *writer) write(ctx context.Context, items []item) (res writeResult, err error) {
	err = w.retry(ctx, fmt.Sprintf("write batch of %d rows", len(items)), func() (err error) {
		res, err = w.writeOnce(ctx, items)
		return err
	})
	if err != nil {
		return writeResult{}, err
	}
	return res, nil
}

// retry runs attempt, one whole transaction, until it succeeds, fails with
// an error that is not transient, or has failed w.attempts times, waiting
// w.backoff before the second try and twice as long before each further
// one (at most 10 s), jittered. A failed attempt releases the connection
// the writer holds, so the next starts on one known to be good. what names
// the transaction in errors.
func (w *writer) retry(ctx context.Context, what string, attempt func() error) error {
	return retryTx(ctx, w.attempts, w.backoff, w.metrics, what, w.release, attempt)
}

// retryTx is writer.retry's loop, shared with the table-driven path
// (tables.go): attempts tries at most, release called after each failure.
func retryTx(ctx context.Context, attempts int, backoff time.Duration, m *Metrics, what string, release func(), attempt func() error) error {
	delay := backoff
	for n := 1; ; n++ {
		err := attempt()
		if err == nil {
			return nil
		}
		release()
		m.dbErrors.Inc()
		if !transientMySQL(err) || n >= attempts {
			return fmt.Errorf("%s (attempt %d of %d): %w", what, n, attempts, err)
		}
		m.dbRetries.Inc()
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: interrupted while retrying %v: %w", what, err, ctx.Err())
		case <-time.After(delay/2 + rand.N(delay/2+1)):
		}
		delay = min(2*delay, 10*time.Second)
	}
}

// begin starts a transaction: on the connection the writer holds with a
// Wire (whose socket MariaDB's bulk insert writes to), else on the pool.
func (w *writer) begin(ctx context.Context) (*sql.Tx, error) {
	var b interface {
		BeginTx(context.Context, *sql.TxOptions) (*sql.Tx, error)
	} = w.db
	if w.wire != nil {
		c, err := w.connect(ctx)
		if err != nil {
			return nil, err
		}
		b = c
	}
	tx, err := b.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	return tx, nil
}

// writeOnce applies the batch in one transaction. Deletes and upserts meet
// through the tombstone table (see the package doc for the rule):
//
//   - a versioned delete removes the row unless the row is newer, and leaves
//     a tombstone with its version (the highest one the key has seen);
//   - a versioned upsert whose key has a newer tombstone is dropped (counted
//     in tombstoned); one not older applies as usual and removes the
//     tombstone, since the row it writes now carries a version at least as
//     new;
//   - a change without a version (a Debezium topic without binlog
//     positions) applies as it always has: a delete is a hard delete without
//     a tombstone, which would have no version to compare with, and an upsert
//     neither checks nor removes tombstones.
//
// The tombstone lookup is a plain consistent read, not a locking one: a key
// is written only by the member that owns its partition, and locking a
// timestamp range would make members that own neighbouring keys wait on
// each other's gap locks.
func (w *writer) writeOnce(ctx context.Context, items []item) (res writeResult, err error) {
	t0 := time.Now()
	tx, err := w.begin(ctx)
	if err != nil {
		return res, err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit

	truncated, err := w.truncatedBefore(ctx, tx, items) // first: see truncate.go
	if err != nil {
		return res, err
	}
	tombs, err := w.lookupTombstones(ctx, tx, items)
	if err != nil {
		return res, err
	}
	var skip []bool
	existing := 0 // rows the look-up found that the batch still writes
	looked := w.lookupOK && w.expectRows
	if looked {
		if skip, existing, err = w.unchanged(ctx, tx, items); err != nil {
			return res, err
		}
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	loadedAt, loadedAtSQL := loadedAtText(now)
	w.tbuf = append(w.tbuf[:0], w.tombPrefix...)
	w.upserts = w.upserts[:0]
	w.raises = w.raises[:0]
	deletes := 0
	for i := range items {
		it := &items[i]
		k := &it.key
		if it.op == schema.OpDelete {
			var r sql.Result
			if it.hasVer {
				r, err = tx.ExecContext(ctx, w.deleteVer, k.DeviceType, k.EventType, k.Timestamp, it.version)
				if deletes > 0 {
					w.tbuf = append(w.tbuf, ',')
				}
				w.tbuf = appendTombstone(w.tbuf, it, loadedAtSQL, w.backslash)
				deletes++
			} else {
				r, err = tx.ExecContext(ctx, w.delete, k.DeviceType, k.EventType, k.Timestamp)
			}
			if err != nil {
				return res, fmt.Errorf("delete key %s: %w", it.key, err)
			}
			n, _ := r.RowsAffected()
			res.deleted += int(n)
			continue
		}
		if it.hasVer && it.version < truncated { // older than a truncate of the table
			res.tombstoned++
			continue
		}
		if it.hasVer && tombs != nil {
			if v, ok := tombs[tombKeyOf(k)]; ok {
				if it.version < v {
					res.tombstoned++
					continue
				}
				if _, err := tx.ExecContext(ctx, w.tombRemove, k.DeviceType, k.EventType, k.Timestamp, it.version); err != nil {
					return res, fmt.Errorf("remove the tombstone of key %s: %w", it.key, err)
				}
			}
		}
		if it.merged && it.hasVer {
			w.raises = append(w.raises, i)
		}
		if skip != nil && skip[i] {
			res.unchanged++
			continue
		}
		w.upserts = append(w.upserts, i)
	}
	if deletes > 0 {
		w.tbuf = append(w.tbuf, tombstoneSuffix...)
		if _, err := tx.ExecContext(ctx, string(w.tbuf)); err != nil {
			return res, fmt.Errorf("write %d tombstones: %w", deletes, err)
		}
	}
	rows, skipped := len(w.upserts), res.unchanged
	// The bulk load takes the rows when none is known to exist: the look-up
	// found none the batch writes, or the last batch met no existing row
	// (then no look-up ran).
	bin := w.binOK && w.wc != nil
	if rows > 0 && (w.loadOK || bin) && ((looked && existing == 0) || !w.expectRows) {
		var loaded bool
		if bin {
			loaded, err = w.bulkInsert(ctx, tx, items, now)
		} else {
			loaded, err = w.bulkLoad(ctx, tx, items, loadedAt)
		}
		if err != nil {
			return res, err
		}
		if loaded {
			res.inserted = rows
			rows = 0 // written
		}
	}
	if rows > 0 {
		if err := w.upsert(ctx, tx, items, loadedAtSQL, &res); err != nil {
			return res, err
		}
	}
	if err := w.raiseVersions(ctx, tx, items); err != nil {
		return res, err
	}
	// Look the next batch's rows up when this one met existing rows (a
	// re-run, a replay, a tail's updates), not while it loads new ones.
	if n := len(w.upserts) + skipped; n > 0 {
		w.expectRows = 10*(res.updated+res.unchanged) > n
	}
	if err := tx.Commit(); err != nil {
		return res, fmt.Errorf("commit: %w", err)
	}
	w.metrics.commitSeconds.Observe(time.Since(t0).Seconds())
	return res, nil
}

// raiseVersions raises the stored version of each row a merged change was
// kept for (w.raises) to that change's version, unless the row is newer: a
// version never goes backwards on a key, even where the merged change
// wrote nothing because the row already had its content (batch.final says
// why). Where the change was written, or was older than the row, the
// statement matches no row. Merges come from keys changed several times
// within one batch (a tail's hot rows, replays), never from a backfill's
// own reads, so a first load or a re-run runs none of these statements.
func (w *writer) raiseVersions(ctx context.Context, tx *sql.Tx, items []item) error {
	for _, i := range w.raises {
		it := &items[i]
		k := &it.key
		if _, err := tx.ExecContext(ctx, w.raise, it.version, k.DeviceType, k.EventType, k.Timestamp, it.version); err != nil {
			return fmt.Errorf("raise the version of key %s to %d: %w", it.key, it.version, err)
		}
	}
	return nil
}

// upsert writes the batch's rows (w.upserts) in one INSERT … ON DUPLICATE KEY
// UPDATE, and counts what it did into res.
func (w *writer) upsert(ctx context.Context, tx *sql.Tx, items []item, loadedAt []byte, res *writeResult) error {
	w.buf = append(w.buf[:0], w.prefix...)
	for n, i := range w.upserts {
		if n > 0 {
			w.buf = append(w.buf, ',')
		}
		w.buf = appendTuple(w.buf, &items[i], loadedAt, w.backslash)
	}
	w.buf = append(w.buf, w.suffix...)
	if _, err := tx.ExecContext(ctx, "SET @sluice_dups = 0, @sluice_apply = 0"); err != nil {
		return fmt.Errorf("upsert: %w", err)
	}
	r, err := tx.ExecContext(ctx, string(w.buf))
	if err != nil {
		return fmt.Errorf("upsert: %w", err)
	}
	var dups int
	if err := tx.QueryRowContext(ctx, "SELECT @sluice_dups").Scan(&dups); err != nil {
		return fmt.Errorf("upsert: count duplicate keys: %w", err)
	}
	// Affected rows count 1 for a new row, 2 for a changed one and 0 for an
	// unchanged one (the session does not set CLIENT_FOUND_ROWS).
	rows := len(w.upserts)
	affected, _ := r.RowsAffected()
	res.inserted = rows - dups
	res.updated = (int(affected) - res.inserted) / 2
	res.unchanged += dups - res.updated
	return nil
}

// tombKey is a dedupe key as a comparable map key: the wall clock as Unix
// milliseconds, so that equal times with different locations match.
type tombKey struct {
	deviceType, eventType string
	ms                    int64
}

func tombKeyOf(k *schema.Key) tombKey {
	return tombKey{k.DeviceType, k.EventType, k.Timestamp.UnixMilli()}
}

// lookupTombstones returns the tombstones that may concern the batch's
// versioned upserts, by key, or nil when there are none (or no versioned
// upserts to check).
//
// It is one range read of the tombstone table's primary key, which starts
// with timestamp: every tombstone between the smallest and the largest
// timestamp of those upserts. Measured on MariaDB 10.11 with 10,000-key
// batches, that costs 0.2 to 0.4 ms when no tombstone is in the range (an
// empty table, or a purge's tombstones far in the past), against a few
// hundred ms for the batch's upsert; the alternatives cost more where it
// matters most, the backfill with no deletes: an IN list of the batch's
// timestamps up to 38 ms (parsing up to 10,000 literals), a row-constructor
// IN list of the keys 3 to 13 s (MariaDB does not turn it into ranges). The
// range's cost grows with the tombstones inside it (about 12 ms for 24,000),
// which are read and matched here by key.
func (w *writer) lookupTombstones(ctx context.Context, tx *sql.Tx, items []item) (map[tombKey]uint64, error) {
	var lo, hi time.Time
	found := false
	for i := range items {
		it := &items[i]
		if it.op == schema.OpDelete || !it.hasVer {
			continue
		}
		switch ts := it.key.Timestamp; {
		case !found:
			lo, hi, found = ts, ts, true
		case ts.Before(lo):
			lo = ts
		case ts.After(hi):
			hi = ts
		}
	}
	if !found {
		return nil, nil
	}
	rows, err := tx.QueryContext(ctx, w.tombLookup, lo, hi)
	if err != nil {
		return nil, fmt.Errorf("look up tombstones of [%s, %s]: %w", lo.Format(time.DateTime), hi.Format(time.DateTime), err)
	}
	defer rows.Close()
	var tombs map[tombKey]uint64
	for rows.Next() {
		var k schema.Key
		var v uint64
		if err := rows.Scan(&k.Timestamp, &k.DeviceType, &k.EventType, &v); err != nil {
			return nil, fmt.Errorf("look up tombstones: %w", err)
		}
		if tombs == nil {
			tombs = map[tombKey]uint64{}
		}
		tombs[tombKeyOf(&k)] = v
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("look up tombstones: %w", err)
	}
	return tombs, nil
}

// lookupSupported tells whether the target takes the look-up of existing rows:
// a join of the batch's keys, given as a table value constructor (MariaDB
// 10.3 and later; MySQL 8 spells it VALUES ROW(…), and is not tried), with
// the table's unique key. The keys' literals carry the session's collation,
// so the look-up runs only where device_type and event_type have it too:
// another collation would make the join fail, or miss the index.
//
// It returns why not, or "" when it does.
func lookupSupported(ctx context.Context, db *sql.DB, database, table string) (string, error) {
	var one int
	if err := db.QueryRowContext(ctx, "WITH v(a) AS (VALUES (1)) SELECT a FROM v").Scan(&one); err != nil {
		return fmt.Sprintf("the server takes no table value constructor (MariaDB 10.3+): %v", err), nil
	}
	var n int
	err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM information_schema.columns
WHERE table_schema = ? AND table_name = ? AND column_name IN ('device_type', 'event_type') AND collation_name = @@collation_connection`,
		database, table).Scan(&n)
	if err != nil {
		return "", fmt.Errorf("target %s.%s: look up the key columns' collation: %w", database, table, err)
	}
	if n != 2 {
		return fmt.Sprintf("%s.%s's device_type and event_type are not both in the connection's collation", database, table), nil
	}
	return "", nil
}

// unchanged reads the rows the target already has for the batch's upserts,
// in one join by the unique key, and marks the upserts that the upsert
// statement would leave as they are: older than the row, or the same in
// every column it compares. Those are left out of the statement, so a
// re-run or a replay costs the server a key look-up per row instead of
// parsing and evaluating a 10,000-row upsert (README, Performance).
//
// It only ever marks rows it is sure of. Values are compared exactly, where
// SQL compares by collation (an upper-cased message differing in case from
// the row would be "unchanged" for the upsert), and a time with fractions
// of a second is never marked (the column may round it): whatever is not
// marked goes to the upsert, which decides as it always has. The key is
// written only by the member that owns its partition, and the read and the
// upsert are in one transaction, so the row cannot change in between.
func (w *writer) unchanged(ctx context.Context, tx *sql.Tx, items []item) (skip []bool, existing int, err error) {
	w.lbuf = append(w.lbuf[:0], w.lookupPrefix...)
	n := 0
	for i := range items {
		it := &items[i]
		if it.op == schema.OpDelete {
			continue
		}
		if n > 0 {
			w.lbuf = append(w.lbuf, ',')
		}
		w.lbuf = append(w.lbuf, '(')
		w.lbuf = strconv.AppendInt(w.lbuf, int64(i), 10)
		w.lbuf = append(w.lbuf, ',')
		w.lbuf = appendQuoted(w.lbuf, it.key.DeviceType, w.backslash)
		w.lbuf = append(w.lbuf, ',')
		w.lbuf = appendQuoted(w.lbuf, it.key.EventType, w.backslash)
		w.lbuf = append(w.lbuf, ",TIMESTAMP"...)
		w.lbuf = appendDateTime(w.lbuf, it.key.Timestamp)
		w.lbuf = append(w.lbuf, ')')
		n++
	}
	if n == 0 {
		return nil, 0, nil
	}
	w.lbuf = append(w.lbuf, w.lookupSuffix...)
	rows, err := tx.QueryContext(ctx, string(w.lbuf))
	if err != nil {
		return nil, 0, fmt.Errorf("look up the batch's %d keys in the target: %w", n, err)
	}
	defer rows.Close()
	w.skip = slices.Grow(w.skip[:0], len(items))[:len(items)]
	clear(w.skip)
	var (
		i                int
		date, ca, ua     sql.NullTime
		msg              sql.NullString
		sourceID, stored sql.Null[uint64]
	)
	for rows.Next() {
		if err := rows.Scan(&i, &date, &msg, &ca, &ua, &sourceID, &stored); err != nil {
			return nil, 0, fmt.Errorf("look up the batch's keys in the target: %w", err)
		}
		if i < 0 || i >= len(items) {
			return nil, 0, fmt.Errorf("look up the batch's keys in the target: row %d of %d", i, len(items))
		}
		it := &items[i]
		r := it.row
		if it.hasVer && stored.Valid && it.version < stored.V {
			w.skip[i] = true // older than the row
			continue
		}
		w.skip[i] = date.Valid && sameDay(date.Time, r.Date) && msg == r.Message &&
			sameSecond(ca, r.CreatedAt) && sameSecond(ua, r.UpdatedAt) &&
			sourceID.Valid && sourceID.V == r.ID
		if !w.skip[i] {
			existing++
		}
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("look up the batch's keys in the target: %w", err)
	}
	return w.skip, existing, nil
}

// sameDay tells whether a DATE read back (midnight UTC) is the calendar day
// appendDate writes for t.
func sameDay(stored, t time.Time) bool {
	y1, m1, d1 := stored.Date()
	y2, m2, d2 := t.Date()
	return y1 == y2 && m1 == m2 && d1 == d2
}

// sameSecond tells whether a TIMESTAMP read back is what writing t would
// store: both NULL, or equal instants with t in whole seconds.
func sameSecond(stored, t sql.NullTime) bool {
	if !stored.Valid || !t.Valid {
		return stored.Valid == t.Valid
	}
	return t.Time.Nanosecond() == 0 && stored.Time.Equal(t.Time)
}
