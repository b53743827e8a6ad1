package consumer

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/sluice-dev/sluice/schema"
)

// The bulk load: a batch whose rows are all new to the target is sent as
// LOAD DATA LOCAL INFILE, tab-separated text streamed from memory, instead of
// a 10,000-row INSERT … ON DUPLICATE KEY UPDATE. The server then reads plain
// fields instead of parsing 100,000 SQL literals into expressions: 12% less
// MariaDB CPU for a first load in the measurements (README, Performance).
//
// It is an optimistic path with an exact check. A local load never fails on
// a duplicate key or a value that does not fit: it skips or converts the row
// and leaves a warning (the server cannot stop the client's stream). So the
// load is kept only when every row was inserted and the server left no
// warning; otherwise it is rolled back to a savepoint and the batch goes
// through the upsert, which merges existing rows as it always has and fails
// on bad values with the server's own error. Which path a batch takes is
// decided by what the writer knows: the look-up of existing rows when it ran
// (every existing row must be one the batch leaves out), or else the last
// batch (no row met an existing one).

// loadSeq names each writer's reader for LOAD DATA LOCAL INFILE 'Reader::…'.
var loadSeq atomic.Int64

// loadSupported tells whether the target takes the bulk load: the server's
// local_infile must be on (MariaDB's default; MySQL 8's is off), and its
// innodb_autoinc_lock_mode 2, "interleaved" (MySQL 8's default; MariaDB's is
// 1). Under modes 0 and 1 a LOAD DATA holds the table's AUTO-INC lock until
// it ends, so the loads of several members, and any insert beside them, run
// one at a time: measured on MariaDB 10.11 with two members, that made a
// first load 6% slower than the upserts it replaced, where under mode 2 it
// is faster (README, Performance). The same holds for MariaDB's bulk insert
// (bulkinsert.go), which needs the lock mode but not local_infile. It
// returns why each cannot be used, or "" when it can, and the server's
// max_allowed_packet.
func loadSupported(ctx context.Context, db *sql.DB) (load, bulk string, maxPacket int, err error) {
	var infile, autoinc sql.NullString
	if err := db.QueryRowContext(ctx, "SELECT @@GLOBAL.local_infile, @@GLOBAL.innodb_autoinc_lock_mode, @@GLOBAL.max_allowed_packet").Scan(&infile, &autoinc, &maxPacket); err != nil {
		return "", "", 0, fmt.Errorf("target: read local_infile, innodb_autoinc_lock_mode and max_allowed_packet: %w", err)
	}
	if autoinc.String != "2" {
		bulk = fmt.Sprintf("the server's innodb_autoinc_lock_mode is %s: loads would hold the table's AUTO-INC lock and run one at a time (set it to 2, interleaved, at server start; safe with binlog_format=ROW)", autoinc.String)
		load = bulk
	}
	if infile.String != "1" && infile.String != "ON" {
		load = "the server's local_infile is off (SET GLOBAL local_infile = 1 turns it on)"
	}
	return load, bulk, maxPacket, nil
}

// loadStatement is the LOAD DATA statement of a writer's reader: tab-separated
// fields, backslash escapes, \N for NULL (the statement's defaults), the text
// in UTF-8 whatever the connection's character set.
func loadStatement(reader, qualifiedTable string) string {
	return "LOAD DATA LOCAL INFILE 'Reader::" + reader + "' IGNORE INTO TABLE " + qualifiedTable +
		" CHARACTER SET utf8mb4 (" + upsertCols + ")"
}

// loadWarnLimit is how many loads in a row may end in a warning before a
// writer stops trying them: a server that warns on every load (a setting,
// a version's quirk) would otherwise cost each batch a load rolled back
// before its upsert.
const loadWarnLimit = 3

// bulkLoad writes the batch's rows (w.upserts) with LOAD DATA, inside a
// savepoint. It reports false, with the savepoint rolled back, when the
// server did not insert every row as given (a key existed, or it warned):
// the rows then go to the upsert.
func (w *writer) bulkLoad(ctx context.Context, tx *sql.Tx, items []item, loadedAt []byte) (bool, error) {
	rows := len(w.upserts)
	w.fbuf = w.fbuf[:0]
	for _, i := range w.upserts {
		w.fbuf = appendLine(w.fbuf, &items[i], loadedAt)
	}
	if _, err := tx.ExecContext(ctx, "SAVEPOINT sluice_load"); err != nil {
		return false, fmt.Errorf("bulk load: %w", err)
	}
	mysql.RegisterReaderHandler(w.reader, func() io.Reader { return bytes.NewReader(w.fbuf) })
	r, err := tx.ExecContext(ctx, w.loadStmt)
	mysql.DeregisterReaderHandler(w.reader)
	if err != nil {
		return false, fmt.Errorf("bulk load of %d rows: %w", rows, err)
	}
	affected, _ := r.RowsAffected()
	// SHOW WARNINGS does not clear the list it shows; a row means the load
	// skipped or changed something.
	var level, message string
	var code int
	err = tx.QueryRowContext(ctx, "SHOW WARNINGS LIMIT 1").Scan(&level, &code, &message)
	warned := err == nil
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return false, fmt.Errorf("bulk load of %d rows: read its warnings: %w", rows, err)
	}
	if int(affected) == rows && !warned {
		w.warned = 0
		w.metrics.bulkLoads.Inc()
		return true, nil
	}
	w.metrics.loadFallbacks.Inc()
	if _, err := tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT sluice_load"); err != nil {
		return false, fmt.Errorf("bulk load: roll back to the upsert: %w", err)
	}
	if int(affected) != rows {
		w.warned = 0 // a key existed: the look-up or the next batch's expectation deals with that
		return false, nil
	}
	if w.warned++; w.warned >= loadWarnLimit {
		w.loadOK = false
		w.loadOff = fmt.Sprintf("the server warned on %d loads in a row, the last: %s %d: %s", w.warned, level, code, message)
		if w.loadGone != nil {
			w.loadGone(w.loadOff)
		}
	}
	return false, nil
}

// appendField appends s as one LOAD DATA field: the separators and the
// escape character backslash-escaped, and NUL and CR too, so that no byte
// of the value is read as anything but itself.
func appendField(dst []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); i++ {
		// Quotes and non-ASCII bytes stop the scan too, and stand for
		// themselves.
		if i = schema.PlainASCII(s, i); i == len(s) {
			break
		}
		esc := fieldEscapes[s[i]]
		if esc == 0 {
			continue
		}
		dst = append(dst, s[start:i]...)
		dst = append(dst, '\\', esc)
		start = i + 1
	}
	return append(dst, s[start:]...)
}

// fieldEscapes maps a byte to the letter of its escape, or 0 for a byte that
// stands for itself. A table look-up per byte, instead of a switch, took
// BenchmarkAppendRowText/line from about 220 to 200 ns a row.
var fieldEscapes = [256]byte{'\\': '\\', '\t': 't', '\n': 'n', '\r': 'r', 0: '0'}

// appendLine appends one row as a LOAD DATA line in upsertCols order; loadedAt
// is the batch's bare DATETIME text.
func appendLine(dst []byte, it *item, loadedAt []byte) []byte {
	return appendRowText(dst, it, loadedAt, true, false)
}

// loadedAtText is the batch's loaded_at as LOAD DATA and SQL text.
func loadedAtText(now time.Time) (field, literal []byte) {
	field = appendWall(nil, now.UTC().Truncate(time.Microsecond))
	literal = make([]byte, 0, len(field)+2)
	literal = append(append(append(literal, '\''), field...), '\'')
	return field, literal
}
