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
var bulkHead = append([]byte{0, 0, 0, 0, 0xfa, 0, 0, 0, 0, bulkSendTypes, 0}, bulkTypes...)

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
func appendLenenc(dst []byte, s string) []byte {
	return append(gomysql.AppendLengthEncodedInteger(dst, uint64(len(s))), s...)
}

// bulkPackets encodes the rows (w.upserts) into w.fbuf as bulk commands of
// at most max bytes each (the statement id left 0), and returns where each
// starts. It returns nil when one row alone is bigger than max.
func (w *writer) bulkPackets(items []item, loadedAt time.Time, max int) []int {
	w.fbuf, w.packets = w.fbuf[:0], w.packets[:0]
	for _, i := range w.upserts {
		mark := len(w.fbuf)
		w.fbuf = appendBulkRow(w.fbuf, &items[i], loadedAt)
		if n := len(w.packets); n > 0 && len(w.fbuf)-w.packets[n-1]-4 <= max {
			continue
		}
		// The row starts the next command: its head goes in before it.
		w.packets = append(w.packets, mark)
		w.fbuf = slices.Insert(w.fbuf, mark, bulkHead...)
		if len(w.fbuf)-mark-4 > max {
			return nil
		}
	}
	return w.packets
}

// bulkInsert writes the batch's rows (w.upserts) as MariaDB bulk inserts on
// the writer's own socket, inside a savepoint. It reports false, with the
// savepoint rolled back, when the server did not insert every row as given;
// the rows then go to the upsert.
func (w *writer) bulkInsert(ctx context.Context, tx *sql.Tx, items []item, loadedAt time.Time) (bool, error) {
	rows := len(w.upserts)
	starts := w.bulkPackets(items, loadedAt, w.maxPacket)
	if starts == nil {
		return false, nil // a row bigger than the server takes in one packet: the upsert says so
	}
	if _, err := tx.ExecContext(ctx, "SAVEPOINT sluice_load"); err != nil {
		return false, fmt.Errorf("bulk insert: %w", err)
	}
	var affected uint64
	var warnings int
	wc := w.wc
	err := w.conn.Raw(func(any) error {
		return wc.exchange(ctx, func() error {
			id, err := wc.prepare(w.binStmt)
			if err != nil {
				return err
			}
			for n, start := range starts {
				end := len(w.fbuf)
				if n+1 < len(starts) {
					end = starts[n+1]
				}
				p := w.fbuf[start:end]
				binary.LittleEndian.PutUint32(p[5:], id)
				a, warned, err := wc.bulkExecute(p)
				if err != nil {
					return err
				}
				affected += a
				warnings += int(warned)
			}
			return nil
		})
	})
	var me *mysql.MySQLError
	switch {
	case err == nil && int(affected) == rows && warnings == 0:
		w.warned = 0
		w.metrics.bulkInserts.Inc()
		return true, nil
	case err != nil && (!errors.As(err, &me) || transientMySQL(err)):
		return false, fmt.Errorf("bulk insert of %d rows: %w", rows, err)
	}
	w.metrics.loadFallbacks.Inc()
	if _, rerr := tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT sluice_load"); rerr != nil {
		return false, fmt.Errorf("bulk insert: roll back to the upsert: %w", rerr)
	}
	switch {
	case me != nil && me.Number == erDupEntry, err == nil && int(affected) != rows:
		w.warned = 0 // a key existed: the look-up or the next batch's expectation deals with that
		return false, nil
	case me != nil && me.Number == erUnknownStmt:
		wc.forget(w.binStmt) // prepared again on the next batch
		return false, nil
	}
	if w.warned++; w.warned >= loadWarnLimit {
		why := fmt.Sprintf("%d warnings", warnings)
		if me != nil {
			why = me.Error()
		}
		w.binOK = false
		w.binOff = fmt.Sprintf("the server refused or warned on %d bulk inserts in a row, the last: %s", w.warned, why)
		w.wc = nil
		if w.binGone != nil {
			w.binGone(w.binOff)
		}
	}
	return false, nil
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
