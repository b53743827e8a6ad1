package consumer

// A TRUNCATE of the source table reaches the consumer as a truncate event
// (op "t", no images, no key). The target is a copy of the source table, so
// the truncate removes every target row that is older than it: rows whose
// source_version is below the truncate's version, and rows with no version
// (written before versions, or from a source without a binlog; they cannot
// be newer than a truncate the consumer can order). Rows at or above its
// version were written after the truncate, in whatever partition, and stay.
//
// Older changes may still arrive after it: a backfill read in flight that
// was taken before the truncate, or another partition's change that its
// member applies later. Per-key tombstones cannot cover a whole table, so
// the truncate leaves one table-level marker in the tombstone table: a row
// with a reserved key (timestamp 1000-01-01 00:00:00, empty device_type and
// event_type: no real row has an empty device_type, such records go to the
// dead-letter topic) whose source_version is the newest truncate's. A batch
// drops its versioned upserts older than the marker (counted with the
// tombstoned ones). The marker needs no migration, and is pruned like any
// tombstone: it is needed only while older changes can still arrive.
//
// Members apply batches concurrently, so the marker is read with a locking
// read (LOCK IN SHARE MODE) at the start of each batch with versioned
// upserts, and written first in the truncate's transaction: either the
// batch commits first and the truncate then deletes its older rows, or the
// truncate commits first and the batch, reading the marker after it, drops
// them. A plain consistent read could see a snapshot from before the
// truncate's commit and write its rows after it. The marker row is created
// (version 0) when a member starts, so that the shared lock is a record lock
// on it, not a gap lock that would make members' tombstone inserts wait on
// each other.
//
// A truncate without a version (a Debezium topic without binlog positions)
// deletes every row of the target when it applies and leaves no marker:
// with nothing to compare, it is ordered only within its own partition.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/schema"
)

// truncateMarkerTS is the reserved timestamp of the truncate marker's key,
// the lowest DATETIME the target takes: the marker sorts first in the
// tombstone table.
var truncateMarkerTS = time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC)

// truncateStmts are the statements of the truncate marker and of a
// truncate, built once per writer.
type truncateStmts struct {
	ensure string // create the marker at version 0 unless it is there
	mark   string // raise the marker to a truncate's version
	read   string // the marker's version, under a shared lock
	delOld string // delete the rows older than a truncate
	delAll string // delete every row (a truncate without a version)
	tombs  string // the tombstone table, for errors
}

func newTruncateStmts(database, table string) (truncateStmts, error) {
	qdb, err := schema.QuoteIdent(database)
	if err != nil {
		return truncateStmts{}, fmt.Errorf("target database: %w", err)
	}
	qt, err := schema.QuoteIdent(table)
	if err != nil {
		return truncateStmts{}, fmt.Errorf("target table: %w", err)
	}
	qtt, err := schema.QuoteIdent(schema.TombstoneTable(table))
	if err != nil {
		return truncateStmts{}, fmt.Errorf("target tombstone table: %w", err)
	}
	tombs, rows := qdb+"."+qtt, qdb+"."+qt
	const marker = " WHERE timestamp = ? AND device_type = '' AND event_type = ''"
	return truncateStmts{
		ensure: "INSERT IGNORE INTO " + tombs + " (" + tombstoneCols + ") VALUES (?, '', '', 0, UTC_TIMESTAMP(6))",
		mark:   "INSERT INTO " + tombs + " (" + tombstoneCols + ") VALUES (?, '', '', ?, UTC_TIMESTAMP(6))" + tombstoneSuffix,
		read:   "SELECT source_version FROM " + tombs + marker + " LOCK IN SHARE MODE",
		delOld: "DELETE FROM " + rows + " WHERE source_version IS NULL OR source_version < ?",
		delAll: "DELETE FROM " + rows,
		tombs:  database + "." + schema.TombstoneTable(table),
	}, nil
}

// ensureTruncateMarker creates the marker row if it is missing.
func (w *writer) ensureTruncateMarker(ctx context.Context) error {
	if _, err := w.db.ExecContext(ctx, w.trunc.ensure, truncateMarkerTS); err != nil {
		return fmt.Errorf("target: create the truncate marker in %s: %w", w.trunc.tombs, err)
	}
	return nil
}

// truncatedBefore returns the version of the newest truncate applied (0:
// none), read under a shared lock, when the batch has versioned upserts
// that it could drop. A missing marker (pruned) reads as 0 and is made
// again by the next batch, first thing in its transaction, before it holds
// any lock another member could wait on.
func (w *writer) truncatedBefore(ctx context.Context, tx *sql.Tx, items []item) (uint64, error) {
	if w.markerGone {
		if _, err := tx.ExecContext(ctx, w.trunc.ensure, truncateMarkerTS); err != nil {
			return 0, fmt.Errorf("create the truncate marker in %s: %w", w.trunc.tombs, err)
		}
		w.markerGone = false
	}
	need := false
	for i := range items {
		if items[i].hasVer && items[i].op != schema.OpDelete {
			need = true
			break
		}
	}
	if !need {
		return 0, nil
	}
	var v uint64
	err := tx.QueryRowContext(ctx, w.trunc.read, truncateMarkerTS).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		w.markerGone = true
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read the truncate marker in %s: %w", w.trunc.tombs, err)
	}
	return v, nil
}

// truncate applies a truncate in a transaction of its own, retried like a
// batch, and returns the rows it deleted.
func (w *writer) truncate(ctx context.Context, version uint64, hasVer bool) (n int64, err error) {
	err = w.retry(ctx, "truncate", func() (err error) {
		n, err = w.truncateOnce(ctx, version, hasVer)
		return err
	})
	return n, err
}

func (w *writer) truncateOnce(ctx context.Context, version uint64, hasVer bool) (int64, error) {
	tx, err := w.begin(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	var r sql.Result
	if hasVer {
		// The marker first: its exclusive lock waits for the batches that
		// read it, so the delete below sees their rows.
		if _, err := tx.ExecContext(ctx, w.trunc.mark, truncateMarkerTS, version); err != nil {
			return 0, fmt.Errorf("write the truncate marker in %s: %w", w.trunc.tombs, err)
		}
		r, err = tx.ExecContext(ctx, w.trunc.delOld, version)
	} else {
		r, err = tx.ExecContext(ctx, w.trunc.delAll)
	}
	if err != nil {
		return 0, fmt.Errorf("delete the rows: %w", err)
	}
	n, _ := r.RowsAffected()
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("commit: %w", err)
	}
	return n, nil
}

// takeTruncate applies a truncate event. The batch taken so far is written
// first: a versioned truncate would not need it, but one without a version
// deletes whatever the target holds, so the changes before it in its
// partition must be there. Its offset then commits with the next batch; if
// the member dies before that, the truncate applies again, which deletes
// nothing new that is older than it.
func (c *Consumer) takeTruncate(ctx context.Context, b *batch, r *kgo.Record, ev *schema.Event, now time.Time) error {
	if b.records > 0 {
		if err := c.flush(ctx, b); err != nil {
			return err
		}
		if ctx.Err() != nil || b.records > 0 {
			return nil // shutting down: the batch and the truncate are delivered again
		}
	}
	version, hasVer := ev.Source.Version()
	n, err := c.w.truncate(ctx, version, hasVer)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("consumer: group %s, truncate of %s.%s at %s/%d@%d: %w (offset not committed)",
			c.cfg.Group, ev.Source.DB, ev.Source.Table, r.Topic, r.Partition, r.Offset, err)
	}
	c.log.Warn("consumer: applied a TRUNCATE of the source table: deleted the target's older rows",
		"target", c.cfg.Database+"."+c.cfg.Table, "rows_deleted", n, "binlog", fmt.Sprintf("%s:%d", ev.Source.File, ev.Source.Pos),
		"versioned", hasVer, "record", fmt.Sprintf("%s/%d@%d", r.Topic, r.Partition, r.Offset))
	c.stats.deleted.Add(n)
	c.metrics.deleted.Add(float64(n))
	c.metrics.truncates.Inc()
	b.add(r, nil, now)
	return nil
}
