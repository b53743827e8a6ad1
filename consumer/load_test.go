package consumer

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"

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
	// the earlier job's layout, whose second index repeats the unique key.
	writers, dbs, metrics := testWriters(t, db, "it_load", 3)
	if _, err := db.ExecContext(ctx, "ALTER TABLE "+dbs[2]+".records ADD KEY idx_dedupe (device_type, event_type, timestamp)"); err != nil {
		t.Fatal(err)
	}
	for _, w := range writers {
		if !w.loadOK {
			t.Fatalf("the target does not take the bulk load: %s", w.loadOff)
		}
	}
	writers[0].loadOK, writers[0].lookupOK = false, false
	writers[1].lookupOK, writers[1].expectRows = false, false

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
		wantLoads, wantFallbacks := []float64{0, 1, 1}, []float64{0, 0, 0}
		if round > 0 {
			wantFallbacks = []float64{0, 1, 1}
		}
		for i, m := range metrics {
			if l, f := testutil.ToFloat64(m.bulkLoads), testutil.ToFloat64(m.loadFallbacks); l != wantLoads[i] || f != wantFallbacks[i] {
				t.Errorf("round %d, writer %d: %v bulk loads and %v fallbacks, want %v and %v", round+1, i, l, f, wantLoads[i], wantFallbacks[i])
			}
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
