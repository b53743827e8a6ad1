package consumer

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/schema"
)

// upsertCols are the target columns the consumer writes, in argument order.
const upsertCols = "date, timestamp, device_type, event_type, message, created_at, updated_at, source_id, source_version, loaded_at"

// writer applies batches to the target table, each in one transaction.
type writer struct {
	db        *sql.DB
	prefix    string // INSERT … VALUES
	suffix    string // ON DUPLICATE KEY UPDATE …
	delete    string
	backslash bool   // the session's sql_mode lets backslashes escape
	buf       []byte // the statement, reused between batches
	attempts  int
	backoff   time.Duration
	metrics   *Metrics
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
	var mode string
	if err := db.QueryRowContext(ctx, "SELECT @@SESSION.sql_mode").Scan(&mode); err != nil {
		return nil, fmt.Errorf("target sql_mode: %w", err)
	}
	return &writer{
		db:        db,
		prefix:    "INSERT INTO " + qdb + "." + qt + " (" + upsertCols + ") VALUES ",
		suffix:    upsertSuffix,
		delete:    "DELETE FROM " + qdb + "." + qt + " WHERE device_type = ? AND event_type = ? AND timestamp = ?",
		backslash: !strings.Contains(mode, "NO_BACKSLASH_ESCAPES"),
		attempts:  attempts,
		backoff:   backoff,
		metrics:   m,
	}, nil
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

// writeResult counts what one batch did to the target.
type writeResult struct {
	inserted  int // keys new to the target
	updated   int // keys the target had, changed by a newer change
	unchanged int // keys the target had, already as the change says (or newer)
	deleted   int
}

// write applies the batch's final items in one transaction, retrying the
// whole transaction on transient errors with exponential backoff and jitter.
func (w *writer) write(ctx context.Context, items []item) (writeResult, error) {
	var err error
	delay := w.backoff
	for attempt := 1; ; attempt++ {
		var res writeResult
		res, err = w.writeOnce(ctx, items)
		if err == nil {
			return res, nil
		}
		w.metrics.dbErrors.Inc()
		if !schema.TransientMySQL(err) || attempt >= w.attempts {
			return writeResult{}, fmt.Errorf("write batch of %d rows (attempt %d of %d): %w", len(items), attempt, w.attempts, err)
		}
		w.metrics.dbRetries.Inc()
		sleep := delay/2 + rand.N(delay/2+1)
		select {
		case <-ctx.Done():
			return writeResult{}, fmt.Errorf("write batch of %d rows: interrupted while retrying %v: %w", len(items), err, ctx.Err())
		case <-time.After(sleep):
		}
		delay = min(2*delay, 10*time.Second)
	}
}

func (w *writer) writeOnce(ctx context.Context, items []item) (res writeResult, err error) {
	t0 := time.Now()
	tx, err := w.db.BeginTx(ctx, nil)
	if err != nil {
		return res, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit

	loadedAt := appendDateTime(nil, time.Now().UTC().Truncate(time.Microsecond))
	w.buf = append(w.buf[:0], w.prefix...)
	rows := 0
	for i := range items {
		it := &items[i]
		if it.op == schema.OpDelete {
			r, err := tx.ExecContext(ctx, w.delete, it.key.DeviceType, it.key.EventType, it.key.Timestamp)
			if err != nil {
				return res, fmt.Errorf("delete key %s: %w", it.key, err)
			}
			n, _ := r.RowsAffected()
			res.deleted += int(n)
			continue
		}
		if rows > 0 {
			w.buf = append(w.buf, ',')
		}
		w.buf = appendTuple(w.buf, it, loadedAt, w.backslash)
		rows++
	}
	w.buf = append(w.buf, w.suffix...)
	if rows > 0 {
		if _, err := tx.ExecContext(ctx, "SET @sluice_dups = 0, @sluice_apply = 0"); err != nil {
			return res, fmt.Errorf("upsert: %w", err)
		}
		r, err := tx.ExecContext(ctx, string(w.buf))
		if err != nil {
			return res, fmt.Errorf("upsert: %w", err)
		}
		var dups int
		if err := tx.QueryRowContext(ctx, "SELECT @sluice_dups").Scan(&dups); err != nil {
			return res, fmt.Errorf("upsert: count duplicate keys: %w", err)
		}
		// Affected rows count 1 for a new row, 2 for a changed one and 0 for
		// an unchanged one (the session does not set CLIENT_FOUND_ROWS).
		affected, _ := r.RowsAffected()
		res.inserted = rows - dups
		res.updated = (int(affected) - res.inserted) / 2
		res.unchanged = dups - res.updated
	}
	if err := tx.Commit(); err != nil {
		return res, fmt.Errorf("commit: %w", err)
	}
	w.metrics.commitSeconds.Observe(time.Since(t0).Seconds())
	return res, nil
}
