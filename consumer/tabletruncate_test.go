package consumer

import (
	"database/sql"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/schema"
)

// waitBlocked waits until another session of the server runs a statement
// whose text contains stmt (the writer's, behind the test's transaction),
// failing if the write ends first: it did not wait.
func (e *gwEnv) waitBlocked(t *testing.T, done <-chan struct{}, stmt string) {
	t.Helper()
	for {
		var n int
		if err := e.db.QueryRowContext(e.ctx, "SELECT COUNT(*) FROM information_schema.processlist WHERE id <> CONNECTION_ID() AND LOCATE(?, info) > 0",
			stmt).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
		select {
		case <-done:
			t.Fatal("the write ended without waiting for the transaction in flight")
		case <-e.ctx.Done():
			t.Fatal(e.ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// TestIntegrationTableTruncateOrdersConcurrentBatches stages the race
// between a truncate and another member's batch with an older change, each
// in a transaction in flight: whichever takes the table's truncate marker
// first, the older row must not survive.
func TestIntegrationTableTruncateOrdersConcurrentBatches(t *testing.T) {
	e := newGWEnv(t)
	e.exec("INSERT INTO " + e.src + ".mixed (id, site, day, seq, name) VALUES (1, 'x', '2024-01-15', 1, 'ok')")
	img := e.image(1)
	markers := e.dst + "." + schema.TruncatesTable
	const T = 500
	// race runs rec's write while tx, a transaction in flight that
	// inFlight began, holds it back at blockedOn, then commits tx and
	// returns what the write did.
	race := func(t *testing.T, inFlight func(tx *sql.Tx) error, rec TableRecord, blockedOn string) TableResult {
		t.Helper()
		tx, err := e.db.BeginTx(e.ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback() //nolint:errcheck // committed below; a no-op then
		if err := inFlight(tx); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		var res TableResult
		go func() {
			defer close(done)
			res, err = e.w.Write(e.ctx, []TableRecord{rec})
		}()
		e.waitBlocked(t, done, blockedOn)
		if cerr := tx.Commit(); cerr != nil {
			t.Fatal(cerr)
		}
		<-done
		if err != nil {
			t.Fatal(err)
		}
		return res
	}

	t.Run("truncate in flight, then an older batch", func(t *testing.T) {
		// A truncate's transaction has raised the marker, not yet
		// committed; the batch waits for the marker.
		res := race(t, func(tx *sql.Tx) error {
			_, err := tx.ExecContext(e.ctx, "INSERT INTO "+markers+" (target_table, source_version, truncated_at) VALUES ('mixed', ?, NOW(6))", gwVer(T))
			return err
		}, e.change(schema.OpCreate, nil, img, T-100), "LOCK IN SHARE MODE")
		if got := e.seqs(); len(got) != 0 || res.Truncated != 1 {
			t.Errorf("target seqs %v, %d dropped by the truncate: a change older than the truncate committed after it", got, res.Truncated)
		}
	})
	t.Run("batch in flight, then the truncate", func(t *testing.T) {
		// A batch has read the marker under its lock and written an older
		// row, not yet committed; the truncate waits for the batch.
		res := race(t, func(tx *sql.Tx) error {
			var v uint64
			if err := tx.QueryRowContext(e.ctx, "SELECT source_version FROM "+markers+" WHERE target_table = 'mixed' LOCK IN SHARE MODE").Scan(&v); err != nil {
				return err
			}
			_, err := tx.ExecContext(e.ctx, "INSERT INTO "+e.dst+".mixed (site, day, seq, source_version) VALUES ('Y', '2024-01-15', 9, ?)", gwVer(T+50))
			return err
		}, e.change(schema.OpTruncate, nil, nil, T+100), "INSERT INTO `"+e.dst+"`.`"+schema.TruncatesTable+"`")
		if got := e.seqs(); len(got) != 0 || res.Truncates != 1 {
			t.Errorf("target seqs %v after %d truncates: a row older than the truncate, committed while it waited, survived it", got, res.Truncates)
		}
	})
}
