package consumer

import (
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/schema"
)

// truncateAt is a truncate event at mysql-bin.000003:pos (pos 0: no version).
func truncateAt(pos uint64) schema.Event {
	ev := schema.Event{Op: schema.OpTruncate, Source: schema.Source{DB: "source_db", Table: "raw_records"}}
	if pos > 0 {
		ev.Source.File, ev.Source.Pos = "mysql-bin.000003", pos
	}
	return ev
}

// produceEvents produces changes in order, a truncate without a key (as the
// tail and Debezium produce it), the others keyed by their dedupe key.
func (w *world) produceEvents(evs ...schema.Event) {
	w.t.Helper()
	recs := make([]*kgo.Record, len(evs))
	for i := range evs {
		value, _ := schema.EncodeEvent(&evs[i])
		recs[i] = &kgo.Record{Value: value}
		if evs[i].Op != schema.OpTruncate {
			recs[i].Key, _ = schema.EncodeKey(evs[i].Key())
		}
	}
	if err := w.kcl.ProduceSync(w.ctx, recs...).FirstErr(); err != nil {
		w.t.Fatal(err)
	}
}

// marker returns the truncate marker's version, and whether it is there.
func (w *world) marker() (uint64, bool) {
	w.t.Helper()
	var v uint64
	err := w.db.QueryRowContext(w.ctx, "SELECT source_version FROM "+w.database+"."+schema.TombstoneTable(schema.TargetTable)+
		" WHERE device_type = '' AND event_type = ''").Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false
	}
	if err != nil {
		w.t.Fatal(err)
	}
	return v, true
}

func (w *world) rows() int {
	w.t.Helper()
	var n int
	if err := w.db.QueryRowContext(w.ctx, "SELECT COUNT(*) FROM "+w.database+".records").Scan(&n); err != nil {
		w.t.Fatal(err)
	}
	return n
}

// TestIntegrationTruncate applies truncate events: every row older than the
// truncate goes (rows without a version too), newer rows stay, and older
// changes arriving after it are dropped, in later batches and in its own.
func TestIntegrationTruncate(t *testing.T) {
	db, brokers := servers(t)
	w := newWorld(t, db, brokers, "it_trunc", 2)
	m := NewMetrics(prometheus.NewRegistry())
	c := w.member(20*time.Millisecond, m)
	if v, ok := w.marker(); !ok || v != 0 {
		t.Fatalf("marker %d (present %v) after a member started, want version 0", v, ok)
	}
	stop := w.start(c)
	step := func(evs ...schema.Event) { t.Helper(); w.produceEvents(evs...); w.caughtUp() }
	const T = 500

	step(change(schema.OpCreate, "a", "old", 100), change(schema.OpRead, "b", "old read", 200),
		change(schema.OpCreate, "c", "after the truncate", T+200), change(schema.OpCreate, "d", "unversioned", 0))
	if n := w.rows(); n != 4 {
		t.Fatalf("%d rows before the truncate, want 4", n)
	}
	step(truncateAt(T))
	for _, dev := range []string{"a", "b", "d"} {
		if r := w.row(dev); r.present {
			t.Errorf("%s: %+v left by the truncate", dev, r)
		}
	}
	if r := w.row("c"); !r.present {
		t.Error("c, newer than the truncate, was deleted")
	}
	if v, _ := w.marker(); v != ver(T) {
		t.Errorf("marker %d, want the truncate's version %d", v, ver(T))
	}

	// Older changes arriving later: a backfill read taken before the
	// truncate, an insert from before it. Newer ones apply.
	step(change(schema.OpRead, "a", "read before the truncate", 400), change(schema.OpCreate, "e", "before", T-1),
		change(schema.OpCreate, "f", "after", T+1), change(schema.OpUpdate, "c", "updated", T+300))
	if r := w.row("a"); r.present {
		t.Errorf("a read older than the truncate brought a back: %+v", r)
	}
	if r := w.row("e"); r.present {
		t.Errorf("an insert older than the truncate was applied after it: %+v", r)
	}
	if r := w.row("f"); !r.present {
		t.Error("f, newer than the truncate, was dropped")
	}
	if r := w.row("c"); r.msg != "UPDATED" {
		t.Errorf("c: %+v, want UPDATED", r)
	}
	// An older truncate arriving late leaves the marker and the newer rows.
	step(truncateAt(T - 100))
	if v, _ := w.marker(); v != ver(T) {
		t.Errorf("marker %d after an older truncate, want %d", v, ver(T))
	}
	if n := w.rows(); n != 2 {
		t.Errorf("%d rows after an older truncate, want c and f", n)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	// A truncate in the middle of one poll: the changes before it in the
	// log, the truncate, and the changes after it.
	const T2 = 900
	w.produceEvents(change(schema.OpCreate, "g", "before T2", T2-10), truncateAt(T2),
		change(schema.OpCreate, "h", "after T2", T2+10), change(schema.OpRead, "i", "read before T2", T2-5))
	c2 := w.member(time.Second, m)
	stop = w.start(c2)
	w.caughtUp()
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	for dev, want := range map[string]bool{"c": false, "f": false, "g": false, "h": true, "i": false} {
		if r := w.row(dev); r.present != want {
			t.Errorf("after the truncate at %d in one poll: %s present %v, want %v", T2, dev, r.present, want)
		}
	}

	// Without a version, a truncate deletes every row, and leaves no marker.
	c3 := w.member(20*time.Millisecond, m)
	stop = w.start(c3)
	step(change(schema.OpCreate, "j", "newest", T2+500))
	step(truncateAt(0))
	if n := w.rows(); n != 0 {
		t.Errorf("%d rows after a truncate without a version, want 0", n)
	}
	if v, _ := w.marker(); v != ver(T2) {
		t.Errorf("marker %d after a truncate without a version, want %d", v, ver(T2))
	}

	// A pruned marker is made again by the next batch.
	if _, err := db.ExecContext(w.ctx, "DELETE FROM "+w.database+"."+schema.TombstoneTable(schema.TargetTable)+" WHERE device_type = ''"); err != nil {
		t.Fatal(err)
	}
	step(change(schema.OpCreate, "k", "after the prune", T2+600))
	step(change(schema.OpCreate, "l", "after the prune", T2+700))
	if v, ok := w.marker(); !ok || v != 0 {
		t.Errorf("marker %d (present %v) after a prune and two batches, want version 0", v, ok)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(m.truncates); got != 4 {
		t.Errorf("sluice_consumer_truncates_total = %v, want 4", got)
	}
}

// TestIntegrationTruncateOrdersConcurrentBatches stages the race between a
// truncate and another member's batch with an older change: whichever takes
// the marker first, the older row must not survive.
func TestIntegrationTruncateOrdersConcurrentBatches(t *testing.T) {
	db, brokers := servers(t)
	w := newWorld(t, db, brokers, "it_truncrace", 1)
	tombs := w.database + "." + schema.TombstoneTable(schema.TargetTable)
	const T = 500

	t.Run("truncate in flight, then an older batch", func(t *testing.T) {
		c := w.member(20*time.Millisecond, nil)
		// A truncate's transaction has raised the marker, not yet committed.
		tx, err := db.BeginTx(w.ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		if _, err := tx.ExecContext(w.ctx, "UPDATE "+tombs+" SET source_version = ? WHERE device_type = '' AND event_type = ''", ver(T)); err != nil {
			t.Fatal(err)
		}
		stop := w.start(c)
		w.produceEvents(change(schema.OpCreate, "x", "older than the truncate", T-100))
		time.Sleep(500 * time.Millisecond) // the member's batch is waiting for the marker
		if r := w.row("x"); r.present {
			t.Fatalf("the batch did not wait for the truncate in flight: %+v", r)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		w.caughtUp()
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		if r := w.row("x"); r.present {
			t.Errorf("a change older than the truncate committed after it: %+v", r)
		}
	})
	t.Run("batch in flight, then the truncate", func(t *testing.T) {
		c := w.member(20*time.Millisecond, nil)
		// A batch has read the marker under its lock and written an older
		// row, not yet committed.
		tx, err := db.BeginTx(w.ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		var v uint64
		if err := tx.QueryRowContext(w.ctx, "SELECT source_version FROM "+tombs+" WHERE timestamp = ? AND device_type = '' AND event_type = '' LOCK IN SHARE MODE",
			truncateMarkerTS).Scan(&v); err != nil {
			t.Fatal(err)
		}
		if _, err := tx.ExecContext(w.ctx, "INSERT INTO "+w.database+".records (date, timestamp, device_type, event_type, source_version) VALUES ('2025-10-01', '2025-10-01 00:00:00', 'y', 'reading', ?)",
			ver(T+50)); err != nil {
			t.Fatal(err)
		}
		stop := w.start(c)
		w.produceEvents(truncateAt(T + 100))
		time.Sleep(500 * time.Millisecond) // the truncate waits for the batch
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		w.caughtUp()
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		if r := w.row("y"); r.present {
			t.Errorf("a row older than the truncate, committed while it waited, survived it: %+v", r)
		}
	})
}
