package consumer

import (
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"math"
	"strings"

	"github.com/sluice-dev/sluice/schema"
)

// The TableWriter's side of MariaDB's bulk insert (wire.go has the protocol,
// bulkinsert.go the commands and the savepoint): a batch's new rows as the binary parameter sets of one prepared
// INSERT of the upsert's columns. Each value travels as the prepared upsert
// sends it (schema.Arg): a FLOAT or DOUBLE as a binary DOUBLE, NULL as NULL,
// every other value as its canonical text in a string parameter, which the
// server converts to the column's type as it converts the upsert's; the
// version as an unsigned BIGINT, loaded_at as text. A row lands byte for
// byte as the upsert would have inserted it, without the server parsing a
// statement of 10,000 rows or evaluating its ON DUPLICATE KEY UPDATE.
//
// The rule: the bulk insert is kept only when the
// server inserted every row and warned about none; otherwise it is rolled
// back to a savepoint and the rows go to the upsert, which merges a key
// that existed and fails on a value the column cannot hold with the
// server's own error, as it always has.

// tableBulk is a TableWriter's bulk insert.
type tableBulk struct {
	wire      *Wire  // nil: off (no Wire, the server does not take it, or it warned too often)
	off       string // why it is off, for the log
	stmt      string // INSERT INTO t (columns, source_version, loaded_at) VALUES (?, …)
	head      []byte // the commands' head: the parameters' types
	double    []bool // the columns sent as DOUBLE (schema.Arg gives a float64)
	maxPacket int
	warned    int    // bulk inserts in a row that the server refused or warned about and the upsert took
	refused   string // why the server refused the batch's bulk insert, until the upsert takes the rows
	why       string // why the last connection could not take bulk inserts
	cmds      bulkCmds

	// gone is told when the writer stops trying (or a connection cannot
	// take it); done counts each bulk insert, kept or rolled back. Both may
	// be nil.
	gone func(why string)
	done func(kept bool)

	// The batch's connection, when it takes bulk inserts (Write).
	conn *sql.Conn
	bi   bulkInserter
}

func newTableBulk(w *TableWriter, qt string, names []string) tableBulk {
	b := tableBulk{off: "no Wire: the pool does not dial through one"}
	types := make([]byte, 0, 2*(len(w.cols)+2))
	for _, c := range w.cols {
		a, _ := schema.Arg(c, schema.Value{B: []byte("0")})
		_, double := a.(float64)
		b.double = append(b.double, double)
		if double {
			types = append(types, 0x05, 0) // MYSQL_TYPE_DOUBLE
		} else {
			types = append(types, 0xfe, 0) // MYSQL_TYPE_STRING
		}
	}
	types = append(types, 0x08, 0x80, 0xfe, 0) // source_version BIGINT UNSIGNED, loaded_at text
	b.head = bulkHeader(types)
	b.stmt = "INSERT INTO " + qt + " (" + strings.Join(names, ", ") + ", `source_version`, `loaded_at`) VALUES (" +
		placeholders(len(names)+2) + ")"
	return b
}

// UseBulkInsert lets the writer send a batch's new rows as MariaDB bulk
// inserts on the connections of its pool that wire dialed (the pool's
// mysql.Config.DialFunc is wire.Dial). It returns why it will not, or ""
// when it will: the server must take it (bulkSupported).
func (w *TableWriter) UseBulkInsert(ctx context.Context, wire *Wire) (string, error) {
	why, maxPacket, err := bulkSupported(ctx, w.db)
	if err != nil {
		return "", fmt.Errorf("table %s: %w", w.t.Target, err)
	}
	b := &w.bulk
	b.wire, b.off = nil, why
	if why != "" {
		return why, nil
	}
	b.wire, b.maxPacket = wire, maxPacket-bulkPacketSlack
	return "", nil
}

// bulkSupported tells whether the target takes MariaDB's bulk insert: the
// server's innodb_autoinc_lock_mode must be 2, "interleaved" (MySQL 8's
// default; MariaDB's is 1). Under modes 0 and 1 a bulk insert holds the
// table's AUTO-INC lock until it ends, so the bulk inserts of several
// members, and any insert beside them, run one at a time: measured on
// MariaDB 10.11 with two members (with LOAD DATA, which takes the lock the
// same way), that made a first load 6% slower than the upserts it replaced,
// where under mode 2 it is faster (README, Performance). It returns why it
// cannot be used, or "" when it can, and the server's max_allowed_packet.
func bulkSupported(ctx context.Context, db *sql.DB) (why string, maxPacket int, err error) {
	var autoinc sql.NullString
	if err := db.QueryRowContext(ctx, "SELECT @@GLOBAL.innodb_autoinc_lock_mode, @@GLOBAL.max_allowed_packet").Scan(&autoinc, &maxPacket); err != nil {
		return "", 0, fmt.Errorf("target: read innodb_autoinc_lock_mode and max_allowed_packet: %w", err)
	}
	if autoinc.String != "2" {
		why = fmt.Sprintf("the server's innodb_autoinc_lock_mode is %s: bulk inserts would hold the table's AUTO-INC lock and run one at a time (set it to 2, interleaved, at server start; safe with binlog_format=ROW)", autoinc.String)
	}
	return why, maxPacket, nil
}

// bulkWarnLimit is how many bulk inserts in a row may be refused or end in
// a warning before a writer stops trying them: a server that warns on every
// one (a setting, a version's quirk) would otherwise cost each batch a bulk
// insert rolled back before its upsert.
const bulkWarnLimit = 3

// begin starts the batch's transaction: with a bulk insert, on a connection
// of the pool that the writer holds until release, with the socket under it
// found; else on the pool.
func (w *TableWriter) begin(ctx context.Context) (*sql.Tx, func(), error) {
	b := &w.bulk
	b.conn, b.bi, b.refused = nil, nil, ""
	if b.wire == nil {
		tx, err := w.db.BeginTx(ctx, w.txOpts)
		return tx, func() {}, err
	}
	conn, err := w.db.Conn(ctx)
	if err != nil {
		return nil, nil, err
	}
	release := func() {
		_ = conn.Close()
		b.conn, b.bi = nil, nil
	}
	wc, why, err := b.wire.bind(ctx, conn)
	if err != nil {
		release()
		return nil, nil, err
	}
	if why != b.why && why != "" && b.gone != nil {
		b.gone(why)
	}
	b.why = why
	if wc != nil {
		b.conn, b.bi = conn, wc
	}
	tx, err := conn.BeginTx(ctx, w.txOpts)
	if err != nil {
		release()
		return nil, nil, err
	}
	return tx, release, nil
}

// bulkInsert writes the rows of w.items at idx as bulk inserts inside a
// savepoint, and reports whether they are written; when not, the savepoint
// is rolled back and the rows go to the upsert.
func (w *TableWriter) bulkInsert(ctx context.Context, tx *sql.Tx, idx []int, loadedAt string) (bool, error) {
	b := &w.bulk
	b.refused = ""
	b.cmds.reset(b.head, b.maxPacket)
	for _, i := range idx {
		it := &w.items[i]
		mark := len(b.cmds.buf)
		var err error
		if b.cmds.buf, err = w.appendBulkRow(b.cmds.buf, it, loadedAt); err != nil {
			return false, fmt.Errorf("upsert key %s: %w", w.keyText(it.row), err)
		}
		if !b.cmds.endRow(mark) {
			return false, nil // a row bigger than the server takes in one packet: the upsert says so
		}
	}
	out, why, err := bulkWrite(ctx, tx, b.conn, b.bi, b.stmt, &b.cmds, len(idx))
	if err != nil {
		return false, err
	}
	if b.done != nil {
		b.done(out == bulkDone)
	}
	switch out {
	case bulkDone, bulkExisted:
		b.warned = 0 // a key existed: the look-up or the next batch's expectation deals with that
		return out == bulkDone, nil
	case bulkRefused:
		b.refused = why // counted once the upsert has taken the rows (refusedBy)
	}
	return false, nil
}

// refusedBy counts a bulk insert the server refused or warned about, once
// the upsert has taken its rows: a server that refuses bulk inserts the
// upsert gets past (a setting, a version's quirk) would otherwise cost each
// batch a bulk insert rolled back, so after bulkWarnLimit in a row the
// writer stops trying. A row the upsert refuses too is the row's fault,
// not the bulk insert's (its batch fails, and the member isolates the row),
// and is not counted.
func (b *tableBulk) refusedBy() {
	why := b.refused
	if why == "" {
		return
	}
	b.refused = ""
	if b.warned++; b.warned >= bulkWarnLimit {
		b.off = fmt.Sprintf("the server refused or warned on %d bulk inserts in a row that the upsert then took, the last: %s", b.warned, why)
		b.wire, b.bi = nil, nil
		if b.gone != nil {
			b.gone(b.off)
		}
	}
}

// appendBulkRow appends the parameter set of it's row: each value as
// schema.Arg gives it to the upsert, then the version and loaded_at.
func (w *TableWriter) appendBulkRow(dst []byte, it *titem, loadedAt string) ([]byte, error) {
	for c := range w.cols {
		v := it.row[c]
		switch {
		case v.Null || v.B == nil: // the driver sends a nil []byte as NULL too
			dst = append(dst, indicatorNull)
		case w.bulk.double[c]:
			a, err := schema.Arg(w.cols[c], v)
			if err != nil {
				return dst, err
			}
			f, ok := a.(float64)
			if !ok {
				return dst, fmt.Errorf("column %s: %T for a DOUBLE parameter", w.cols[c].Name, a)
			}
			dst = binary.LittleEndian.AppendUint64(append(dst, indicatorNone), math.Float64bits(f))
		default:
			dst = appendLenenc(append(dst, indicatorNone), v.B)
		}
	}
	if it.hasVer {
		dst = binary.LittleEndian.AppendUint64(append(dst, indicatorNone), it.version)
	} else {
		dst = append(dst, indicatorNull)
	}
	return appendLenenc(append(dst, indicatorNone), loadedAt), nil
}
