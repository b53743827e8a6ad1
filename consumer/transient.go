package consumer

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"time"

	"github.com/go-sql-driver/mysql"
)

// transientMySQL reports whether a target error is worth another attempt of
// the whole transaction: a deadlock or lock wait timeout rolled it back, the
// target is read-only during a failover, the connection broke (server gone
// away, lost during the query, a bad pooled connection), or a new one could
// not be made (the server restarting). The retry is
// idempotent: an upsert batch applied again, even after a commit whose
// acknowledgement was lost. Anything else (syntax, privileges, data too long)
// fails the same way every time. Context cancellation means shutdown and is
// never transient, even beside another error. This is the consumer's one
// classification at its boundary with the target; the backfill classifies
// its source reads in its own transientRead.
func transientMySQL(err error) bool {
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
	// A refused or timed-out dial: the target is restarting or failing
	// over. The pool dials again on the next attempt.
	var ne *net.OpError
	return errors.Is(err, mysql.ErrInvalidConn) || errors.Is(err, driver.ErrBadConn) || errors.As(err, &ne)
}

// retryTx runs attempt, one whole transaction, until it succeeds, fails
// with an error that is not transient, or has failed attempts times,
// waiting backoff before the second try and twice as long before each
// further one (at most 10 s), jittered; release is called after each
// failure. what names the transaction in errors.
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
