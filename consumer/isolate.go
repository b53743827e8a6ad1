package consumer

import (
	"context"
	"errors"
	"fmt"

	"github.com/go-sql-driver/mysql"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/schema"
)

// ReasonDatabase marks a record the target database refused: the row's own
// value or a rule of the target (data too long, out of range, an incorrect
// value, a constraint, a trigger's SIGNAL, a foreign key).
const ReasonDatabase = "database"

// rowRejected tells whether a failed write is the fault of a row rather
// than of the connection or the server: such an error fails the same way
// however often it is retried, and only for the batches that hold the row.
// Errors of the connection or the server (lost connection, read-only, a
// deadlock past its retries, disk full) are not: they are retried and then
// stop the member, since a batch without the row would fail as well.
func rowRejected(err error) bool {
	var me *mysql.MySQLError
	if !errors.As(err, &me) {
		return false
	}
	switch me.Number {
	case 1048, // ER_BAD_NULL_ERROR: column cannot be null
		1062,       // ER_DUP_ENTRY: another unique key of the target
		1216, 1217, // foreign key, older servers
		1264, // ER_WARN_DATA_OUT_OF_RANGE
		1265, // WARN_DATA_TRUNCATED
		1292, // ER_TRUNCATED_WRONG_VALUE: incorrect date or time value
		1366, // ER_TRUNCATED_WRONG_VALUE_FOR_FIELD: incorrect string value
		1367, // ER_ILLEGAL_VALUE_FOR_TYPE
		1406, // ER_DATA_TOO_LONG
		1411, // ER_WRONG_VALUE_FOR_TYPE
		1451, // ER_ROW_IS_REFERENCED_2: foreign key
		1452, // ER_NO_REFERENCED_ROW_2: foreign key
		1644, // ER_SIGNAL_EXCEPTION: a trigger's SIGNAL SQLSTATE '45000'
		1690, // ER_DATA_OUT_OF_RANGE
		3819, // ER_CHECK_CONSTRAINT_VIOLATED (MySQL)
		4025: // ER_CONSTRAINT_FAILED (MariaDB)
		return true
	}
	return false
}

// isolate writes the items lo..hi of a batch (indexes into the caller's
// slice) through write, one transaction per call, which retries transient
// errors itself. When a write fails with an error that belongs to a row
// (rowRejected), it splits the items in halves and writes each in its own
// transaction, down to the items that fail alone, which it hands to
// refuse with their errors: everything else commits. Any other error
// stops, as a write always has. A batch with one bad row among 10,000
// costs about fourteen failed transactions of shrinking size and two of
// the good rows. tablePath.apply isolates each table's records with it.
//
// The halves commit one by one, in the batch's order, before the batch's
// offsets: a crash in between delivers the whole batch again, whose rows
// apply as the same versioned upserts and whose refused rows are refused
// again.
func isolate(ctx context.Context, m *Metrics, lo, hi int, write func(lo, hi int) error, refuse func(i int, err error)) error {
	err := write(lo, hi)
	if err == nil || !rowRejected(err) || ctx.Err() != nil {
		return err
	}
	if hi-lo == 1 {
		refuse(lo, err)
		return nil
	}
	m.isolations.Inc()
	mid := lo + (hi-lo)/2
	if err := isolate(ctx, m, lo, mid, write, refuse); err != nil {
		return err
	}
	return isolate(ctx, m, mid, hi, write, refuse)
}

// refusedError says which row of which table (target, "db.table") the
// target refused, by its key, and the database's reason, which names the
// column when the server does ("Data too long for column 'x' at row 1").
func refusedError(target, key string, err error) error {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		err = me // without the write's "write batch of 1 rows (attempt …)"
	}
	return fmt.Errorf("target %s refused key %s: %w", target, key, err)
}

// sendLate sends the dead letters a batch's write found (rows the target
// or a table's rules refused), and waits for them, before the batch's
// offsets are committed.
func (c *Consumer) sendLate(ctx context.Context, b *batch, recs []*kgo.Record) error {
	if len(recs) == 0 {
		return nil
	}
	if err := c.sendDeadLetters(ctx, recs); err != nil {
		if ctx.Err() != nil {
			return nil // shutting down: the offsets stay uncommitted, the batch comes again
		}
		return fmt.Errorf("consumer: group %s, %s: %w (offsets not committed)", c.cfg.Group, b.span(), err)
	}
	first, _ := Header(recs[0], schema.DLQHeaderError)
	c.log.Warn("consumer: records the target or its rules refused sent to the dead-letter topic", "topic", c.cfg.DeadLetterTopic(), "records", len(recs), "first", first)
	b.dead = append(b.dead, recs...) // counted with the batch's other dead letters
	return nil
}
