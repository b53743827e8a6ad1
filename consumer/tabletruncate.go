package consumer

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/sluice-dev/sluice/schema"
)

// Truncates of a configured table (op "t"). A truncate with version V
// deletes every target row older than V (or with no version), and records V
// in the target database's truncate markers (schema.TruncatesTable), one
// row per target table: a change older than the marker that arrives later
// (a backfill read taken before the truncate, a partition behind another)
// is dropped. Each batch reads its table's marker under a shared lock
// before it writes, and a truncate updates the marker first, so a batch
// and a truncate of one table are ordered: whichever commits first, the
// other sees it. The marker is in a table of its own, since a configured
// table's key has no value to reserve for it.

// tableTruncateStmts are one table's truncate statements.
type tableTruncateStmts struct {
	readMarker string // the marker's version, under a shared lock
	setMarker  string // the marker raised to a truncate's version
	older      string // the target rows older than a version
	all        string // every target row (a truncate without a version)
	tombs      string // the tombstones older than a version
}

func newTableTruncateStmts(t *schema.Table, qt, qtt string) (tableTruncateStmts, error) {
	qdb, err := schema.QuoteIdent(t.Target.DB)
	if err != nil {
		return tableTruncateStmts{}, err
	}
	markers := qdb + ".`" + schema.TruncatesTable + "`"
	return tableTruncateStmts{
		readMarker: "SELECT source_version FROM " + markers + " WHERE target_table = ? LOCK IN SHARE MODE",
		setMarker: "INSERT INTO " + markers + " (target_table, source_version, truncated_at) VALUES (?, ?, ?)" +
			" ON DUPLICATE KEY UPDATE truncated_at = IF(VALUES(source_version) > source_version, VALUES(truncated_at), truncated_at)," +
			" source_version = GREATEST(source_version, VALUES(source_version))",
		older: "DELETE FROM " + qt + " WHERE source_version IS NULL OR source_version < ?",
		all:   "DELETE FROM " + qt,
		tombs: "DELETE FROM " + qtt + " WHERE source_version < ?",
	}, nil
}

// marker reads the table's truncate version under a shared lock; 0 when it
// was never truncated.
func (w *TableWriter) marker(ctx context.Context, tx *sql.Tx) (uint64, error) {
	var v uint64
	err := tx.QueryRowContext(ctx, w.trunc.readMarker, w.t.Target.Table).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read the truncate marker of %s: %w", w.t.Target, err)
	}
	return v, nil
}

// truncate applies one truncate inside the batch's transaction.
func (w *TableWriter) truncate(ctx context.Context, tx *sql.Tx, c *schema.Change, res *TableResult) error {
	v, ok := c.Source.Version()
	var r sql.Result
	var err error
	if !ok {
		r, err = tx.ExecContext(ctx, w.trunc.all)
	} else {
		now := time.Now().UTC().Format("2006-01-02 15:04:05.000000")
		if _, err = tx.ExecContext(ctx, w.trunc.setMarker, w.t.Target.Table, v, now); err != nil {
			return fmt.Errorf("truncate of %s at version %d: set the marker: %w", w.t.Target, v, err)
		}
		if _, err = tx.ExecContext(ctx, w.trunc.tombs, v); err != nil {
			return fmt.Errorf("truncate of %s at version %d: tombstones: %w", w.t.Target, v, err)
		}
		r, err = tx.ExecContext(ctx, w.trunc.older, v)
	}
	if err != nil {
		return fmt.Errorf("truncate of %s: %w", w.t.Target, err)
	}
	n, _ := r.RowsAffected()
	res.Deleted += int(n)
	res.Truncates++
	return nil
}
