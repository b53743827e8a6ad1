package backfill

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"time"

	"github.com/go-sql-driver/mysql"
)

// ChunkError is a chunk that failed for good: its read or its delivery
// failed ChunkAttempts times, or once with an error not worth another try.
// It names the chunk, so an operator knows which ids were not produced.
type ChunkError struct {
	Chunk    Chunk
	Attempts int
	Err      error
}

func (e *ChunkError) Error() string {
	return fmt.Sprintf("backfill: chunk %s failed after %d attempt(s): %v", e.Chunk, e.Attempts, e.Err)
}

func (e *ChunkError) Unwrap() error { return e.Err }

// transientRead reports whether a source error is worth reading again: a
// deadlock or lock wait timeout (a metadata lock held by DDL on the table),
// the source refusing statements while it fails over, or a connection that
// broke under the query (server gone away, lost during the query, a bad
// pooled connection). A read is idempotent, so any of them costs only the
// time of the read. Anything else, such as a syntax or privilege error,
// fails the same way every time. Context cancellation means shutdown and is
// never retried. The consumer classifies its target writes on its own side.
func transientRead(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if me := (*mysql.MySQLError)(nil); errors.As(err, &me) {
		return slices.Contains(transientReadErrors, me.Number)
	}
	// A refused or timed-out dial: the source is restarting or failing
	// over. The pool dials again on the next attempt.
	var ne *net.OpError
	return errors.Is(err, mysql.ErrInvalidConn) || errors.Is(err, driver.ErrBadConn) || errors.As(err, &ne)
}

// transientReadErrors are the server error numbers transientRead retries:
// ER_LOCK_DEADLOCK, ER_LOCK_WAIT_TIMEOUT, ER_OPTION_PREVENTS_STATEMENT and
// ER_READ_ONLY_MODE (a failover), CR_SERVER_GONE_ERROR, CR_SERVER_LOST.
var transientReadErrors = []uint16{1213, 1205, 1290, 1836, 2006, 2013}

// retriableDelivery reports whether a delivery failure is worth producing
// the chunk again. The Kafka client has already retried what it could within
// its delivery timeout, so what reaches the backfill is a record timeout or
// a broker that kept refusing; another try of the chunk, bounded by
// ChunkAttempts, costs only duplicates, which the consumer's upsert absorbs.
// Cancellation is never retried.
func retriableDelivery(err error) bool {
	return err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}

// backoff is the wait before attempt n+1 after n failed ones: ChunkBackoff
// doubled per attempt, with half of it jittered so that readers failing
// together (a server restart) do not come back together.
func (b *Backfill) backoff(n int) time.Duration {
	d := b.cfg.ChunkBackoff << min(max(n-1, 0), 16)
	if d <= 0 {
		return 0
	}
	half := d / 2
	return half + rand.N(half+1)
}

// sleep waits d or until ctx is done, whichever is first.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// withRetry runs fn until it succeeds, fails with an error transientRead
// rejects, or has run ChunkAttempts times; what names the query in logs.
// It is for the planning queries, which fail the whole run when they fail.
func (b *Backfill) withRetry(ctx context.Context, what string, fn func() error) error {
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || attempt >= b.cfg.ChunkAttempts || !transientRead(err) || ctx.Err() != nil {
			return err
		}
		b.metrics.chunkRetries.Inc()
		b.log.Warn("backfill: query failed; retrying", "query", what, "attempt", attempt, "of", b.cfg.ChunkAttempts, "err", err)
		if sleep(ctx, b.backoff(attempt)) != nil {
			return err
		}
	}
}
