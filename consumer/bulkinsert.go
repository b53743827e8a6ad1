package consumer

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-sql-driver/mysql"
)

// The writer's side of MariaDB's bulk insert (wire.go has the protocol; the
// TableWriter's rows are tablebulk.go's): the batch's new rows as binary
// parameter sets of one prepared INSERT, kept only when the server inserted
// every row and warned about none, otherwise rolled back to a savepoint and
// handed to the upsert. The INSERT fails on a duplicate key or a value the
// column cannot hold (strict mode); the upsert then merges the row, or
// fails with the server's own error.

const (
	bulkSendTypes   = 128 // the command carries the parameter types
	indicatorNone   = 0   // a value follows
	indicatorNull   = 1
	erUnknownStmt   = 1243 // ER_UNKNOWN_STMT_HANDLER
	erDupEntry      = 1062
	bulkPacketSlack = 1024
)

// appendLenenc appends s as a length-encoded string.
func appendLenenc[T string | []byte](dst []byte, s T) []byte {
	return append(gomysql.AppendLengthEncodedInteger(dst, uint64(len(s))), s...)
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
