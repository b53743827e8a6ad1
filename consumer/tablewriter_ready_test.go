package consumer

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluice-dev/sluice/schema"
)

// TestIntegrationTableWriterNeedsItsTables: a target without its tombstone
// table or the database's truncate markers is refused at start, naming the
// table, since deletes and truncates could not keep older changes out;
// nothing is created behind the operator's back.
func TestIntegrationTableWriterNeedsItsTables(t *testing.T) {
	e := newGWEnv(t)
	for _, c := range []struct{ table, says string }{
		{e.dst + ".mixed_tombstones", "deletes leave tombstones there"},
		{e.dst + "." + schema.TruncatesTable, "a truncate's version is kept there"},
	} {
		e.exec("DROP TABLE " + c.table)
		_, err := NewTableWriter(e.ctx, e.db, e.table)
		if err == nil || !strings.Contains(err.Error(), c.table+" is missing") || !strings.Contains(err.Error(), c.says) {
			t.Errorf("without %s: %v, want an error naming it and why", c.table, err)
		}
		if _, err := schema.MigrateTable(e.ctx, e.db, e.table); err != nil {
			t.Fatal(err)
		}
		if _, err := NewTableWriter(e.ctx, e.db, e.table); err != nil {
			t.Errorf("after the migration: %v", err)
		}
	}
}

// TestIntegrationTableNoBulkLoad: Config.NoBulkLoad (--bulk-load=false)
// keeps a member on the upsert even where the pool dials through a Wire
// and the server takes bulk inserts.
func TestIntegrationTableNoBulkLoad(t *testing.T) {
	e, brokers := newTableEnv(t)
	tm := newTableMember(t, e, brokers, 1)
	db, wire := wiredDB(t)
	tm.wire = wire
	for _, off := range []bool{false, true} {
		cfg := DefaultConfig()
		cfg.Brokers, cfg.Group, cfg.Tables, cfg.Wire, cfg.NoBulkLoad = []string{brokers}, tm.group, []*schema.Table{e.table}, wire, off
		cfg.DeadLetters = newTestDeadLetters(t, brokers, cfg.DeadLetterTopic())
		c, err := New(e.ctx, cfg, db, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		c.cl.Close()
		if on := c.path.tables[0].w.bulk.wire != nil; on == off {
			t.Errorf("NoBulkLoad %v: the member bulk inserts: %v (%q)", off, on, c.path.tables[0].w.bulk.off)
		}
	}
}

// TestIntegrationTableBulkInsertSurvivesAKill: the server kills the
// pool's connection between batches. The next batch's first attempt fails
// on the dead socket (or the pool drops it first), the retry takes a new
// connection, finds its socket and bulk inserts again; nothing is lost or
// written twice.
func TestIntegrationTableBulkInsertSurvivesAKill(t *testing.T) {
	e := newGWEnv(t)
	var values []string
	for i := range 1000 {
		values = append(values, fmt.Sprintf("(%d, 's%d', '2024-01-15', %d, 'ok')", i+1, i%3, i))
	}
	e.exec("INSERT INTO " + e.src + ".mixed (id, site, day, seq, name) VALUES " + strings.Join(values, ","))
	rows := e.read(e.src+".mixed", true, "TRUE")
	db, wire := wiredDB(t)
	db.SetMaxIdleConns(1)
	db.SetMaxOpenConns(1)
	w, err := NewTableWriter(e.ctx, db, e.table)
	if err != nil {
		t.Fatal(err)
	}
	if why, err := w.UseBulkInsert(e.ctx, wire); err != nil || why != "" {
		t.Fatalf("the target takes no bulk insert: %q, %v", why, err)
	}
	kept := 0
	w.bulk.done = func(k bool) {
		if k {
			kept++
		}
	}
	m := NewMetrics(prometheus.NewRegistry())
	write := func(from, to int) TableResult {
		t.Helper()
		var recs []TableRecord
		for i := from; i < to; i++ {
			recs = append(recs, e.change(schema.OpRead, nil, rows[i].vals, uint64(100+i)))
		}
		var res TableResult
		err := retryTx(e.ctx, 3, 0, m, "write", func() {}, func() (err error) {
			res, err = w.Write(e.ctx, recs)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	if res := write(0, 500); res.Inserted != 500 || kept != 1 {
		t.Fatalf("first batch: %s, %d bulk inserts kept; want 500 inserted by one", countsOf(res), kept)
	}
	conn, err := db.Conn(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	var id int64
	if err := conn.QueryRowContext(e.ctx, "SELECT CONNECTION_ID()").Scan(&id); err != nil {
		t.Fatal(err)
	}
	conn.Close() // back to the pool, its only connection
	if _, err := e.db.ExecContext(context.WithoutCancel(e.ctx), fmt.Sprintf("KILL CONNECTION %d", id)); err != nil {
		t.Fatal(err)
	}
	if res := write(500, 1000); res.Inserted != 500 || kept != 2 {
		t.Fatalf("the batch after the kill: %s, %d bulk inserts kept; want 500 inserted by the second", countsOf(res), kept)
	}
	if got := testutil.ToFloat64(m.dbErrors); got > 1 {
		t.Errorf("%v failed attempts after the kill, want at most the one on the dead socket", got)
	}
	if got := e.seqs(); len(got) != 1000 || got[0] != 0 || got[999] != 999 {
		t.Fatalf("target holds %d rows, want seq 0 to 999 once each", len(got))
	}
}
