package consumer

import (
	"database/sql"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/schema"
)

// TestIntegrationMergedBatchRaisesVersion is issue 19's stale row: the row
// is at "state a"; an update to "state b" (V1) and one back to "state a"
// (V2) arrive in one batch and merge into a row equal to the target's; a
// backfill read taken between them (P, V1 < P < V2, "state b") arrives
// late. The merged batch must leave the row at V2, so that the read loses.
func TestIntegrationMergedBatchRaisesVersion(t *testing.T) {
	db, brokers := servers(t)
	w := newWorld(t, db, brokers, "it_merged", 1)
	const V0, V1, P, V2 = 100, 400, 500, 600
	first := w.member(20*time.Millisecond, nil)
	stop := w.start(first)
	w.produceAll(change(schema.OpCreate, "m1", "state a", V0))
	w.caughtUp()
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	// Both updates are in the log before the member starts: one batch.
	w.produceAll(change(schema.OpUpdate, "m1", "state b", V1), change(schema.OpUpdate, "m1", "state a", V2))
	second := w.member(time.Second, nil)
	stop = w.start(second)
	w.caughtUp()
	if st := second.Stats(); st.Batches != 1 || st.Records != 2 {
		t.Fatalf("stats %+v: want the 2 updates in one batch", st)
	}
	if r := w.row("m1"); r.msg != "STATE A" || r.version.Int64 != int64(ver(V2)) {
		t.Errorf("after the merged updates: %+v, want STATE A at version %d (V2)", r, ver(V2))
	}
	// Raising the version changes no column of the row: records.updated_at
	// is ON UPDATE CURRENT_TIMESTAMP, and the source's value (NULL here)
	// must stay, as verify compares it.
	var updatedAt sql.NullString
	if err := w.db.QueryRowContext(w.ctx, "SELECT CAST(updated_at AS CHAR) FROM "+w.database+".records WHERE device_type = 'm1'").Scan(&updatedAt); err != nil {
		t.Fatal(err)
	}
	if updatedAt.Valid {
		t.Errorf("updated_at %q after the version raise: the ON UPDATE column fired, want the source's NULL", updatedAt.String)
	}
	w.produceAll(change(schema.OpRead, "m1", "state b", P))
	w.caughtUp()
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if r := w.row("m1"); r.msg != "STATE A" {
		t.Errorf("a late read at P (V1 < P < V2) overwrote the row: %+v, want STATE A", r)
	}
}

// TestIntegrationKeyChangingUpdate applies an update whose before image has
// another dedupe key than its after image, as Debezium emits when the
// primary key stays and the dedupe key's columns change: the old key is
// deleted, with a tombstone, and the new key upserted, in one transaction.
func TestIntegrationKeyChangingUpdate(t *testing.T) {
	db, brokers := servers(t)
	w := newWorld(t, db, brokers, "it_keychange", 1)
	c := w.member(20*time.Millisecond, nil)
	stop := w.start(c)
	const V0, V1, P = 100, 500, 300

	w.produceAll(change(schema.OpCreate, "old", "row", V0))
	w.caughtUp()
	before := testRow(0, "old")
	before.Message.String = "row"
	after := testRow(0, "new")
	after.Message.String = "row moved"
	u := schema.Event{Op: schema.OpUpdate, Before: before, After: after,
		Source: schema.Source{File: "mysql-bin.000003", Pos: V1}}
	w.produceAll(u)
	w.caughtUp()
	if r := w.row("old"); r.present {
		t.Errorf("old key still in the target after the key-changing update: %+v", r)
	}
	if v, ok := w.tombstone("old"); !ok || v != ver(V1) {
		t.Errorf("old key's tombstone %d (present %v), want version %d", v, ok, ver(V1))
	}
	if r := w.row("new"); !r.present || r.msg != "ROW MOVED" || r.version.Int64 != int64(ver(V1)) {
		t.Errorf("new key: %+v, want ROW MOVED at version %d", r, ver(V1))
	}
	// A backfill read of the old key taken before the update stays out.
	w.produceAll(change(schema.OpRead, "old", "row", P))
	w.caughtUp()
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if r := w.row("old"); r.present {
		t.Errorf("a read of the old key older than the update brought it back: %+v", r)
	}
}
