package consumer

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluice-dev/sluice/schema"
)

func TestAppendField(t *testing.T) {
	for in, want := range map[string]string{
		"":               "",
		"plain":          "plain",
		"a\tb\nc\rd\\e":  `a\tb\nc\rd\\e`,
		`\N`:             `\\N`,
		"nul\x00end":     `nul\0end`,
		"π ✓ 😀":          "π ✓ 😀",
		"trailing\\":     `trailing\\`,
		"NULL":           "NULL",
		"\t\t":           `\t\t`,
		"quote ' and \"": "quote ' and \"",
	} {
		if got := string(appendField(nil, in)); got != want {
			t.Errorf("appendField(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestIntegrationBulkLoadMatchesUpsert writes the same batches through the
// upsert alone and through writers that take the bulk load (with and without
// the look-up of existing rows), and checks that the tables come out the
// same, byte for byte, and the counts too: values LOAD DATA could misread
// (separators, escapes, \N, NUL, four-byte UTF-8, NULLs, microseconds), a
// re-run of the same rows, and a batch the load must hand back to the upsert
// because one of its keys exists; into a table of Sluice's layout and one of
// the earlier job's, which a fresh migrate no longer creates. A value the
// column cannot hold fails the batch as the upsert fails it, and leaves
// nothing of the batch behind.
func TestIntegrationBulkLoadMatchesUpsert(t *testing.T) {
	db, _ := servers(t)
	ctx := context.Background()
	// 0: the upsert alone; 1: the load, without the look-up; 2: both, into
	// the earlier job's layout, whose second index repeats the unique key;
	// 3: MariaDB's bulk insert instead of the load, without the look-up.
	writers, dbs, metrics := testWriters(t, db, "it_load", 4)
	if _, err := db.ExecContext(ctx, "ALTER TABLE "+dbs[2]+".records ADD KEY idx_dedupe (device_type, event_type, timestamp)"); err != nil {
		t.Fatal(err)
	}
	writers[3] = wiredWriter(t, dbs[3], metrics[3])
	for _, w := range writers {
		if !w.loadOK || !w.binOK {
			t.Fatalf("the target does not take the bulk load (%s) or the bulk insert (%s)", w.loadOff, w.binOff)
		}
	}
	writers[0].loadOK, writers[0].lookupOK = false, false
	writers[1].lookupOK, writers[1].expectRows = false, false
	writers[3].lookupOK, writers[3].expectRows = false, false

	base := time.Date(2025, 10, 1, 0, 0, 0, 0, time.UTC)
	messages := []sql.NullString{
		{String: "TAB\tNEWLINE\nCR\rBACKSLASH\\END", Valid: true},
		{String: `\N`, Valid: true},
		{String: "NULL", Valid: true},
		{String: "", Valid: true},
		{},
		{String: "NUL\x00BYTE", Valid: true},
		{String: "ÜBER 😀 ✓", Valid: true},
		{String: `ENDS WITH \`, Valid: true},
		{String: "'QUOTED' \"TWICE\"", Valid: true},
	}
	mk := func(i int, ver uint64) item {
		ts := base.Add(time.Duration(i) * time.Second)
		r := &schema.Row{ID: uint64(i + 1), Date: base, Timestamp: ts,
			DeviceType: fmt.Sprintf("meter\t%03d\\", i%7), EventType: "reading",
			Message:   messages[i%len(messages)],
			CreatedAt: sql.NullTime{Time: ts, Valid: i%5 != 0},
			UpdatedAt: sql.NullTime{Time: ts.Add(time.Duration(i%3) * 250 * time.Millisecond), Valid: true}}
		return item{key: r.Key(), row: r, op: schema.OpRead, version: ver, hasVer: ver > 0 && i%4 != 0}
	}
	const n = 90
	first := make([]item, n)
	for i := range first {
		first[i] = mk(i, 100)
	}
	// New keys but one, which exists and changes.
	third := []item{mk(5, 200)}
	third[0].row.Message = sql.NullString{String: "CHANGED", Valid: true}
	for i := n; i < 2*n; i++ {
		third = append(third, mk(i, 300))
	}

	for round, batch := range [][]item{first, first, third} {
		res := writeAlike(t, db, writers, dbs, round, batch)
		switch round {
		case 0:
			if res[0].inserted != n {
				t.Errorf("first round: %+v, want %d inserted", res[0], n)
			}
		case 1:
			if res[0].unchanged != n {
				t.Errorf("second round: %+v, want %d unchanged", res[0], n)
			}
		case 2:
			if res[0].inserted != n || res[0].updated != 1 {
				t.Errorf("third round: %+v, want %d inserted and 1 updated", res[0], n)
			}
		}
		// The loads and fallbacks so far, the same for writers 1 and 2: the
		// first batch loads (all new: writer 2's look-up found none); the
		// re-run, after a batch of new rows, is tried as a load, meets its
		// keys and goes to the upsert; after that, rows are expected, and the
		// third batch, with one existing key, goes straight to the upsert
		// (writer 2's look-up found it, writer 1 still expected rows).
		// Writer 3 does the same with bulk inserts.
		wantLoads, wantFallbacks := []float64{0, 1, 1, 1}, []float64{0, 0, 0, 0}
		if round > 0 {
			wantFallbacks = []float64{0, 1, 1, 1}
		}
		for i, m := range metrics {
			l, f := testutil.ToFloat64(m.bulkLoads)+testutil.ToFloat64(m.bulkInserts), testutil.ToFloat64(m.loadFallbacks)
			if l != wantLoads[i] || f != wantFallbacks[i] {
				t.Errorf("round %d, writer %d: %v bulk loads or inserts and %v fallbacks, want %v and %v", round+1, i, l, f, wantLoads[i], wantFallbacks[i])
			}
		}
		if n := testutil.ToFloat64(metrics[3].bulkInserts); n != 1 {
			t.Errorf("round %d: writer 3 made %v bulk inserts, want 1", round+1, n)
		}
	}

	// A value the column cannot hold: the load only warns, the upsert
	// fails; the batch fails and leaves nothing behind.
	bad := []item{mk(3*n, 400), mk(3*n+1, 400)}
	bad[1].row.DeviceType = strings.Repeat("d", 300)
	bad[1].key = bad[1].row.Key()
	w := writers[2]
	w.expectRows = false
	before := len(targetRows(t, db, dbs[2]))
	fallbacks := testutil.ToFloat64(metrics[2].loadFallbacks)
	_, err := w.write(ctx, bad)
	if err == nil || !strings.Contains(err.Error(), "device_type") {
		t.Errorf("a 300-character device_type: err = %v, want the upsert's error naming device_type", err)
	}
	if got := testutil.ToFloat64(metrics[2].loadFallbacks); got != fallbacks+1 {
		t.Errorf("fallbacks after the bad batch: %v, want %v", got, fallbacks+1)
	}
	if after := len(targetRows(t, db, dbs[2])); after != before {
		t.Errorf("the failed batch left %d rows behind", after-before)
	}
	// The bulk insert refuses the value (strict mode) where the load warns:
	// the same outcome.
	w3 := writers[3]
	w3.expectRows = false
	fallbacks = testutil.ToFloat64(metrics[3].loadFallbacks)
	before = len(targetRows(t, db, dbs[3]))
	if _, err := w3.write(ctx, bad); err == nil || !strings.Contains(err.Error(), "device_type") {
		t.Errorf("a 300-character device_type through the bulk insert: err = %v, want the upsert's error naming device_type", err)
	}
	if got := testutil.ToFloat64(metrics[3].loadFallbacks); got != fallbacks+1 {
		t.Errorf("bulk insert fallbacks after the bad batch: %v, want %v", got, fallbacks+1)
	}
	if after := len(targetRows(t, db, dbs[3])); after != before {
		t.Errorf("the failed batch left %d rows behind", after-before)
	}
	// Refused loadWarnLimit times in a row: the writer stops trying bulk
	// inserts (the load would take the next batch), and says why.
	var binGone string
	w3.binGone = func(why string) { binGone = why }
	for i := 1; i < loadWarnLimit; i++ {
		w3.expectRows = false
		if _, err := w3.write(ctx, bad); err == nil {
			t.Fatal("the bad batch went in")
		}
	}
	if w3.binOK || !strings.Contains(binGone, "device_type") || binGone != w3.binOff {
		t.Errorf("after %d refused bulk inserts: inserting %v, told %q", loadWarnLimit, w3.binOK, binGone)
	}
	// Loads that end in a warning, loadWarnLimit in a row: the writer stops
	// trying them, and says why.
	var gone string
	w.loadGone = func(why string) { gone = why }
	for i := 1; i < loadWarnLimit; i++ {
		w.expectRows = false
		if _, err := w.write(ctx, bad); err == nil {
			t.Fatal("the bad batch went in")
		}
		if i < loadWarnLimit-1 && (!w.loadOK || gone != "") {
			t.Fatalf("after %d loads with warnings the writer stopped loading: %q", i+1, gone)
		}
	}
	if w.loadOK || !strings.Contains(gone, "device_type") || gone != w.loadOff {
		t.Errorf("after %d loads with warnings: loading %v, told %q", loadWarnLimit, w.loadOK, gone)
	}
}

// TestIntegrationNoBulkLoad: Config.NoBulkLoad (--bulk-load=false) keeps a
// member on the upsert even where the server takes the load.
func TestIntegrationNoBulkLoad(t *testing.T) {
	db, brokers := servers(t)
	ctx := context.Background()
	_, dbs, _ := testWriters(t, db, "it_noload", 1)
	for _, off := range []bool{false, true} {
		cfg := DefaultConfig()
		cfg.Brokers, cfg.Topic, cfg.Group, cfg.Database = []string{brokers}, "it.noload", "it-noload", dbs[0]
		cfg.NoBulkLoad = off
		cfg.DeadLetters = newTestDeadLetters(t, brokers, cfg.DeadLetterTopic())
		c, err := New(ctx, cfg, db, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		c.cl.Close()
		if c.w.loadOK == off || (off && !strings.Contains(c.w.loadOff, "--bulk-load=false")) {
			t.Errorf("NoBulkLoad %v: the member loads %v (%q)", off, c.w.loadOK, c.w.loadOff)
		}
	}
}

// wiredWriter returns a writer of database whose pool dials through a Wire,
// as sluice consume's does.
func wiredWriter(t *testing.T, database string, m *Metrics) *writer {
	t.Helper()
	cfg, err := mysql.ParseDSN(os.Getenv("SLUICE_TEST_MYSQL_DSN") + testDSNParams)
	if err != nil {
		t.Fatal(err)
	}
	wire := NewWire()
	cfg.DialFunc = wire.Dial
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	wdb := sql.OpenDB(conn)
	t.Cleanup(func() { wdb.Close() })
	w, err := newWriter(context.Background(), wdb, database, schema.TargetTable, 3, time.Millisecond, m)
	if err != nil {
		t.Fatal(err)
	}
	w.wire = wire
	t.Cleanup(w.release)
	return w
}

// TestIntegrationBulkInsertSurvivesAKill: the server kills the writer's
// connection between batches. The next batch's first attempt fails on the
// dead socket, the retry takes a new connection, finds its socket and bulk
// inserts again; nothing is lost or written twice.
func TestIntegrationBulkInsertSurvivesAKill(t *testing.T) {
	db, _ := servers(t)
	ctx := context.Background()
	_, dbs, metrics := testWriters(t, db, "it_bulkkill", 1)
	w := wiredWriter(t, dbs[0], metrics[0])
	base := time.Date(2025, 10, 1, 0, 0, 0, 0, time.UTC)
	batch := func(from, n int) []item {
		var items []item
		for i := from; i < from+n; i++ {
			ts := base.Add(time.Duration(i) * time.Second)
			r := &schema.Row{ID: uint64(i + 1), Date: base, Timestamp: ts, DeviceType: fmt.Sprintf("meter-%03d", i%13), EventType: "reading",
				Message: sql.NullString{String: fmt.Sprint("READING ", i), Valid: true}, UpdatedAt: sql.NullTime{Time: ts, Valid: true}}
			items = append(items, item{key: r.Key(), row: r, op: schema.OpRead, version: uint64(i), hasVer: true})
		}
		return items
	}
	w.expectRows = false
	if res, err := w.write(ctx, batch(0, 500)); err != nil || res.inserted != 500 {
		t.Fatalf("first batch: %+v, %v", res, err)
	}
	if w.wc == nil {
		t.Fatalf("the writer holds no bulk-insert socket: %s", w.binWhy)
	}
	var id int64
	if err := w.conn.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&id); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, fmt.Sprintf("KILL CONNECTION %d", id)); err != nil {
		t.Fatal(err)
	}
	retries := testutil.ToFloat64(metrics[0].dbRetries)
	if res, err := w.write(ctx, batch(500, 500)); err != nil || res.inserted != 500 {
		t.Fatalf("the batch after the kill: %+v, %v", res, err)
	}
	if got := testutil.ToFloat64(metrics[0].dbRetries); got != retries+1 {
		t.Errorf("retries after the kill: %v, want %v", got, retries+1)
	}
	if got := testutil.ToFloat64(metrics[0].bulkInserts); got != 2 || w.wc == nil {
		t.Errorf("bulk inserts: %v (socket held: %v), want 2: the new connection takes them too", got, w.wc != nil)
	}
	rows := targetRows(t, db, dbs[0])
	if len(rows) != 1000 {
		t.Fatalf("%d rows, want 1000", len(rows))
	}
	for _, r := range rows {
		if !r.msg.Valid || !strings.HasPrefix(r.msg.String, "READING ") || !r.ver.Valid || !r.sid.Valid || r.ver.V != r.sid.V-1 {
			t.Fatalf("row %+v", r)
		}
	}
}
