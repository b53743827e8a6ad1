package consumer

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-sql-driver/mysql"
)

// The writer's side of MariaDB's bulk insert (wire.go has the protocol): the
// batch's new rows as binary parameter sets of one prepared INSERT, taken
// under the same rule as the LOAD DATA path (load.go) and checked the same
// way: kept only when the server inserted every row and warned about none,
// otherwise rolled back to a savepoint and handed to the upsert. Unlike a
// load, the INSERT fails on a duplicate key or a value the column cannot hold
// (strict mode) instead of skipping or converting it; the upsert then merges
// the row, or fails with the server's own error, as it always has.

// bulkTypes are the parameter types, in upsertCols order: DATE, DATETIME,
// three strings, two DATETIMEs, two unsigned BIGINTs, a DATETIME.
var bulkTypes = []byte{
	0x0a, 0, // date
	0x0c, 0, // timestamp
	0xfe, 0, // device_type
	0xfe, 0, // event_type
	0xfe, 0, // message
	0x0c, 0, // created_at
	0x0c, 0, // updated_at
	0x08, 0x80, // source_id
	0x08, 0x80, // source_version
	0x0c, 0, // loaded_at
}

// bulkHead starts every bulk command: room for the packet header, the
// command byte, the statement id (filled in when the command is sent), the
// flags and the types.
var bulkHead = bulkHeader(bulkTypes)

const (
	bulkSendTypes   = 128 // the command carries the parameter types
	indicatorNone   = 0   // a value follows
	indicatorNull   = 1
	erUnknownStmt   = 1243 // ER_UNKNOWN_STMT_HANDLER
	erDupEntry      = 1062
	bulkPacketSlack = 1024
)

// appendBulkRow appends one row's parameter set in upsertCols order.
func appendBulkRow(dst []byte, it *item, loadedAt time.Time) []byte {
	r := it.row
	y, m, d := r.Date.Date()
	dst = append(dst, indicatorNone, 4, byte(y), byte(y>>8), byte(m), byte(d))
	dst = appendBinaryTime(append(dst, indicatorNone), r.Timestamp)
	dst = appendLenenc(append(dst, indicatorNone), r.DeviceType)
	dst = appendLenenc(append(dst, indicatorNone), r.EventType)
	if r.Message.Valid {
		dst = appendLenenc(append(dst, indicatorNone), r.Message.String)
	} else {
		dst = append(dst, indicatorNull)
	}
	for _, t := range [2]sql.NullTime{r.CreatedAt, r.UpdatedAt} {
		if t.Valid {
			dst = appendBinaryTime(append(dst, indicatorNone), t.Time)
		} else {
			dst = append(dst, indicatorNull)
		}
	}
	dst = binary.LittleEndian.AppendUint64(append(dst, indicatorNone), r.ID)
	if it.hasVer {
		dst = binary.LittleEndian.AppendUint64(append(dst, indicatorNone), it.version)
	} else {
		dst = append(dst, indicatorNull)
	}
	return appendBinaryTime(append(dst, indicatorNone), loadedAt)
}

// appendBinaryTime appends t's UTC wall clock as a binary DATETIME, with
// microseconds when it has any (truncated, as the text paths write them).
func appendBinaryTime(dst []byte, t time.Time) []byte {
	t = t.UTC()
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	us := t.Nanosecond() / 1000
	if us == 0 {
		return append(dst, 7, byte(y), byte(y>>8), byte(mo), byte(d), byte(h), byte(mi), byte(s))
	}
	dst = append(dst, 11, byte(y), byte(y>>8), byte(mo), byte(d), byte(h), byte(mi), byte(s))
	return binary.LittleEndian.AppendUint32(dst, uint32(us))
}

// appendLenenc appends s as a length-encoded string.
func appendLenenc[T string | []byte](dst []byte, s T) []byte {
	return append(gomysql.AppendLengthEncodedInteger(dst, uint64(len(s))), s...)
}

// bulkPackets encodes the rows (w.upserts) into w.cmds as bulk commands of
// at most max bytes each (the statement id left 0). It returns false when
// one row alone is bigger than max.
func (w *writer) bulkPackets(items []item, loadedAt time.Time, max int) bool {
	w.cmds.reset(bulkHead, max)
	for _, i := range w.upserts {
		mark := len(w.cmds.buf)
		w.cmds.buf = appendBulkRow(w.cmds.buf, &items[i], loadedAt)
		if !w.cmds.endRow(mark) {
			return false
		}
	}
	return true
}

// bulkInsert writes the batch's rows (w.upserts) as MariaDB bulk inserts on
// the writer's own socket, inside a savepoint. It reports false, with the
// savepoint rolled back, when the server did not insert every row as given;
// the rows then go to the upsert.
func (w *writer) bulkInsert(ctx context.Context, tx *sql.Tx, items []item, loadedAt time.Time) (bool, error) {
	if !w.bulkPackets(items, loadedAt, w.maxPacket) {
		return false, nil // a row bigger than the server takes in one packet: the upsert says so
	}
	out, why, err := bulkWrite(ctx, tx, w.conn, w.wc, w.binStmt, &w.cmds, len(w.upserts))
	switch {
	case err != nil:
		return false, err
	case out == bulkDone:
		w.warned = 0
		w.metrics.bulkInserts.Inc()
		return true, nil
	}
	w.metrics.loadFallbacks.Inc()
	switch out {
	case bulkExisted:
		w.warned = 0 // a key existed: the look-up or the next batch's expectation deals with that
		return false, nil
	case bulkStale:
		return false, nil
	}
	if w.warned++; w.warned >= loadWarnLimit {
		w.binOK = false
		w.binOff = fmt.Sprintf("the server refused or warned on %d bulk inserts in a row, the last: %s", w.warned, why)
		w.wc = nil
		if w.binGone != nil {
			w.binGone(w.binOff)
		}
	}
	return false, nil
}

// bulkInserter runs MariaDB bulk inserts on one connection of the target:
// the socket under it (wire.go's wireConn, which Wire.bind finds), used
// only inside conn.Raw, while the driver waits for nothing. Both writers
// use it, for any table.
type bulkInserter interface {
	// bulkInsert prepares query (an INSERT of one row's placeholders) on
	// the connection, once, and executes it over every command of cmds,
	// returning the rows inserted and the warnings left.
	bulkInsert(ctx context.Context, conn *sql.Conn, query string, cmds *bulkCmds) (affected uint64, warnings int, err error)
	// forget drops query's statement, which the server no longer knows.
	forget(query string)
}

// bulkCmds is a batch's rows as bulk commands: each command is head (room
// for the packet header, the command, the statement id, the flags and the
// parameters' types) and then the parameter sets of as many rows as fit in
// max bytes.
type bulkCmds struct {
	head   []byte
	max    int
	buf    []byte
	starts []int // where each command starts in buf
}

func (b *bulkCmds) reset(head []byte, max int) {
	b.head, b.max = head, max
	b.buf, b.starts = b.buf[:0], b.starts[:0]
}

// endRow closes the row appended to buf from mark: it stays in the current
// command if that one still fits, else it starts the next one. It reports
// false when the row alone is bigger than a command may be.
func (b *bulkCmds) endRow(mark int) bool {
	if n := len(b.starts); n > 0 && len(b.buf)-b.starts[n-1]-4 <= b.max {
		return true
	}
	b.starts = append(b.starts, mark)
	b.buf = slices.Insert(b.buf, mark, b.head...)
	return len(b.buf)-mark-4 <= b.max
}

// command returns command n.
func (b *bulkCmds) command(n int) []byte {
	end := len(b.buf)
	if n+1 < len(b.starts) {
		end = b.starts[n+1]
	}
	return b.buf[b.starts[n]:end]
}

// bulkHeader returns the head of a bulk command whose parameters have the
// given types (two bytes each: the type, and 0x80 for unsigned).
func bulkHeader(types []byte) []byte {
	return append([]byte{0, 0, 0, 0, 0xfa, 0, 0, 0, 0, bulkSendTypes, 0}, types...)
}

// bulkOutcome is what a bulk insert did.
type bulkOutcome int

const (
	bulkDone    bulkOutcome = iota // every row inserted, no warning: kept
	bulkExisted                    // a key existed: rolled back
	bulkRefused                    // the server refused a row, or warned: rolled back
	bulkStale                      // the server had dropped the prepared statement: rolled back
)

// bulkWrite writes cmds (rows rows) with bi on conn, tx's connection, as
// query's bulk inserts inside a savepoint. Unless every row was inserted
// and the server warned about none, the savepoint is rolled back and the
// caller hands the rows to its upsert; why says what the server refused.
// An error is one the upsert would not get past either (a broken
// connection, a transient error): the transaction is lost.
func bulkWrite(ctx context.Context, tx *sql.Tx, conn *sql.Conn, bi bulkInserter, query string, cmds *bulkCmds, rows int) (out bulkOutcome, why string, err error) {
	if _, err := tx.ExecContext(ctx, "SAVEPOINT sluice_load"); err != nil {
		return 0, "", fmt.Errorf("bulk insert: %w", err)
	}
	affected, warnings, err := bi.bulkInsert(ctx, conn, query, cmds)
	var me *mysql.MySQLError
	switch {
	case err == nil && int(affected) == rows && warnings == 0:
		return bulkDone, "", nil
	case err != nil && (!errors.As(err, &me) || transientMySQL(err)):
		return 0, "", fmt.Errorf("bulk insert of %d rows: %w", rows, err)
	}
	if _, rerr := tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT sluice_load"); rerr != nil {
		return 0, "", fmt.Errorf("bulk insert: roll back to the upsert: %w", rerr)
	}
	switch {
	case me != nil && me.Number == erDupEntry, err == nil && int(affected) != rows:
		return bulkExisted, "", nil
	case me != nil && me.Number == erUnknownStmt:
		bi.forget(query) // prepared again on the next batch
		return bulkStale, "", nil
	case me != nil:
		return bulkRefused, me.Error(), nil
	}
	return bulkRefused, fmt.Sprintf("%d warnings", warnings), nil
}

// bulkInsert implements bulkInserter on the socket under conn.
func (c *wireConn) bulkInsert(ctx context.Context, conn *sql.Conn, query string, cmds *bulkCmds) (affected uint64, warnings int, err error) {
	err = conn.Raw(func(any) error {
		return c.exchange(ctx, func() error {
			id, err := c.prepare(query)
			if err != nil {
				return err
			}
			for n := range cmds.starts {
				p := cmds.command(n)
				binary.LittleEndian.PutUint32(p[5:], id)
				a, warned, err := c.bulkExecute(p)
				if err != nil {
					return err
				}
				affected += a
				warnings += int(warned)
			}
			return nil
		})
	})
	return affected, warnings, err
}

// connect returns the writer's connection: when it holds none, one from the
// pool, with the socket under it found.
func (w *writer) connect(ctx context.Context) (*sql.Conn, error) {
	if w.conn != nil {
		return w.conn, nil
	}
	conn, err := w.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	w.conn, w.wc = conn, nil
	if !w.binOK {
		return conn, nil
	}
	wc, why, err := w.wire.bind(ctx, conn)
	if err != nil {
		w.release()
		return nil, err
	}
	w.wc = wc
	if why != w.binWhy && why != "" && w.binGone != nil {
		w.binGone(why)
	}
	w.binWhy = why
	return conn, nil
}

// release gives the writer's connection back to the pool (which drops it if
// it broke).
func (w *writer) release() {
	if w.conn != nil {
		_ = w.conn.Close()
		w.conn, w.wc = nil, nil
	}
}
