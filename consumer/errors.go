package consumer

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"

	"github.com/go-sql-driver/mysql"
)

// RecordError is a record the consumer could not apply. It names the record by
// its Kafka coordinates and key, so an operator can fetch it.
type RecordError struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       []byte
	Err       error
}

func (e *RecordError) Error() string {
	return fmt.Sprintf("record %s/%d@%d key %s: %v", e.Topic, e.Partition, e.Offset, e.Key, e.Err)
}

func (e *RecordError) Unwrap() error { return e.Err }

// retriableDB reports whether a database error is worth another attempt of
// the whole transaction: a deadlock or lock wait timeout rolled it back, or
// the connection broke before the commit was acknowledged (the upsert is
// idempotent, so repeating a batch that did commit is harmless). Context
// cancellation means shutdown and is never retried.
func retriableDB(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		switch me.Number {
		case 1213, // ER_LOCK_DEADLOCK
			1205, // ER_LOCK_WAIT_TIMEOUT
			1290, // ER_OPTION_PREVENTS_STATEMENT: read-only during a failover
			1836, // ER_READ_ONLY_MODE
			2006, // CR_SERVER_GONE_ERROR
			2013: // CR_SERVER_LOST
			return true
		}
		return false
	}
	return errors.Is(err, mysql.ErrInvalidConn) || errors.Is(err, driver.ErrBadConn)
}
