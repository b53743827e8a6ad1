package consumer

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/schema"
)

// TestIntegrationLookupMatchesUpsert writes the same batches through two
// writers, one with the look-up of existing rows (unchanged) and one without,
// and checks that they give the same counts and the same table, row by row,
// while the look-up leaves out exactly the rows it can be sure of: a re-run's
// identical rows, older changes, and newer versions of the same content.
// Rows it cannot be sure of (fractions of a second the column rounds, a
// message that differs only in case, which the collation calls equal) go to
// the upsert, which decides as before. It also checks when the look-up runs:
// not after a batch of new rows, and again once a batch met existing ones.
func TestIntegrationLookupMatchesUpsert(t *testing.T) {
	db, _ := servers(t)
	writers, dbs, _ := testWriters(t, db, "it_lookup", 2) // 0: upsert alone, 1: with the look-up
	if !writers[1].lookupOK {
		t.Fatalf("the target does not take the look-up: %s", writers[1].lookupOff)
	}
	writers[0].lookupOK = false

	const n = 160
	base := time.Date(2025, 10, 1, 0, 0, 0, 0, time.UTC)
	mk := func(i int, msg string, ver uint64) item {
		ts := base.Add(time.Duration(i) * time.Second)
		r := &schema.Row{ID: uint64(i + 1), Date: base, Timestamp: ts, DeviceType: fmt.Sprintf("meter-%03d", i%37), EventType: "reading",
			Message:   sql.NullString{String: msg, Valid: true},
			CreatedAt: sql.NullTime{Time: ts, Valid: true}, UpdatedAt: sql.NullTime{Time: ts, Valid: true}}
		return item{key: r.Key(), row: r, op: schema.OpRead, version: ver, hasVer: ver > 0}
	}
	first := make([]item, n)
	for i := range first {
		first[i] = mk(i, fmt.Sprintf("MESSAGE %d", i), 100)
	}
	// The third batch: eight kinds of change, by i%8, and the number of
	// rows the look-up must leave out (kinds 0, 2 and 3).
	third := make([]item, 0, n+n/8)
	for i := range n {
		it := mk(i, fmt.Sprintf("MESSAGE %d", i), 100)
		switch i % 8 {
		case 1: // changed, newer: applies
			it.row.Message.String, it.version = "CHANGED", 200
		case 2: // changed, older: left as it is
			it.row.Message.String, it.version = "OLDER", 50
		case 3: // the same at a newer version: nothing to write
			it.version = 300
		case 4: // fractions the TIMESTAMP(0) column drops: the upsert decides
			it.row.CreatedAt.Time = it.row.CreatedAt.Time.Add(400 * time.Millisecond)
		case 5: // differs only in case: equal for the collation, the upsert decides
			it.row.Message.String = fmt.Sprintf("message %d", i)
		case 6: // no version, changed: applies
			it.row.Message.String, it.version, it.hasVer = "UNVERSIONED", 0, false
		case 7: // deleted by a newer change, in the same batch
			it.op, it.version = schema.OpDelete, 400
		}
		third = append(third, it)
	}
	for i := range n / 8 { // new keys
		third = append(third, mk(n+i, "NEW", 500))
	}
	wantSkipped := 3 * n / 8

	for round, batch := range [][]item{first, first, third} {
		res := writeAlike(t, db, writers, dbs, round, batch)
		skipped := 0
		for _, s := range writers[1].skip {
			if s {
				skipped++
			}
		}
		switch round {
		case 0:
			if res[1].inserted != n || writers[1].expectRows {
				t.Errorf("first load: %+v, look up the next batch %v; want %d inserted and no look-up next", res[1], writers[1].expectRows, n)
			}
		case 1:
			if res[1].unchanged != n || !writers[1].expectRows || skipped != 0 {
				t.Errorf("second round (the upsert alone): %+v, %d left out, look up next %v; want %d unchanged and a look-up next",
					res[1], skipped, writers[1].expectRows, n)
			}
		case 2:
			if skipped != wantSkipped {
				t.Errorf("third round: the look-up left out %d rows, want %d", skipped, wantSkipped)
			}
			if res[1].inserted != n/8 || res[1].deleted != n/8 || res[1].updated != 2*n/8 || res[1].unchanged != 5*n/8 {
				t.Errorf("third round: %+v; want %d inserted, %d deleted, %d updated, %d unchanged", res[1], n/8, n/8, 2*n/8, 5*n/8)
			}
		}
	}
}

// storedRow is what a test compares of one target row: all but the id and
// loaded_at, which differ between two writers of the same changes.
type storedRow struct {
	key                   string
	date, created, update time.Time
	msg                   sql.NullString
	sid, ver              sql.Null[uint64]
}

// targetRows reads a target table's rows in key order.
func targetRows(t *testing.T, db *sql.DB, database string) []storedRow {
	t.Helper()
	rows, err := db.QueryContext(context.Background(), "SELECT device_type, event_type, timestamp, date, message, created_at, updated_at, source_id, source_version FROM "+
		database+".records ORDER BY device_type, event_type, timestamp")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []storedRow
	for rows.Next() {
		var s storedRow
		var dt, et string
		var ts time.Time
		var ca, ua sql.NullTime
		if err := rows.Scan(&dt, &et, &ts, &s.date, &s.msg, &ca, &ua, &s.sid, &s.ver); err != nil {
			t.Fatal(err)
		}
		s.key, s.created, s.update = dt+"/"+et+"/"+ts.Format(time.DateTime), ca.Time, ua.Time
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// testWriters migrates n fresh target databases, dropped at the end, and
// returns a writer and its metrics for each.
func testWriters(tb testing.TB, db *sql.DB, prefix string, n int) ([]*writer, []string, []*Metrics) {
	tb.Helper()
	ctx := context.Background()
	writers, dbs, metrics := make([]*writer, n), make([]string, n), make([]*Metrics, n)
	for i := range n {
		var rb [4]byte
		_, _ = rand.Read(rb[:])
		dbs[i] = prefix + "_" + hex.EncodeToString(rb[:])
		if err := schema.MigrateTarget(ctx, db, dbs[i]); err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { db.Exec("DROP DATABASE IF EXISTS " + dbs[i]) })
		metrics[i] = NewMetrics(nil)
		w, err := newWriter(ctx, db, dbs[i], schema.TargetTable, 1, time.Millisecond, metrics[i])
		if err != nil {
			tb.Fatal(err)
		}
		writers[i] = w
	}
	return writers, dbs, metrics
}

// writeAlike writes batch through every writer, each into its own database,
// and checks that each counted and left its table as writers[0] did. It
// returns the counts.
func writeAlike(t *testing.T, db *sql.DB, writers []*writer, dbs []string, round int, batch []item) []writeResult {
	t.Helper()
	res := make([]writeResult, len(writers))
	for i, w := range writers {
		var err error
		if res[i], err = w.write(context.Background(), batch); err != nil {
			t.Fatalf("round %d, writer %d: %v", round+1, i, err)
		}
	}
	want := targetRows(t, db, dbs[0])
	for i := 1; i < len(writers); i++ {
		if res[i] != res[0] {
			t.Errorf("round %d: writer %d counted %+v, writer 0 %+v", round+1, i, res[i], res[0])
		}
		got := targetRows(t, db, dbs[i])
		if reflect.DeepEqual(got, want) {
			continue
		}
		t.Errorf("round %d: writer %d's table differs from writer 0's (%d and %d rows)", round+1, i, len(got), len(want))
		for j := range min(len(got), len(want)) {
			if got[j] != want[j] {
				t.Errorf("first difference: writer 0 %+v, writer %d %+v", want[j], i, got[j])
				break
			}
		}
	}
	return res
}
