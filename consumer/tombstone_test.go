package consumer

import (
	"database/sql"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluice-dev/sluice/schema"
)

// ver is the version of binlog position mysql-bin.000003:pos.
func ver(pos uint64) uint64 { return 3<<32 | pos }

// change builds one change of the key (device, second 0); pos 0 means no
// binlog position (an unversioned change). msg is ignored for a delete.
func change(op schema.Op, device, msg string, pos uint64) schema.Event {
	r := testRow(0, device)
	r.Message.String = msg
	ev := schema.Event{Op: op}
	if op == schema.OpDelete {
		ev.Before = r
	} else {
		ev.After = r
	}
	if op == schema.OpRead {
		ev.Source.Snapshot = "true"
	}
	if pos > 0 {
		ev.Source.File, ev.Source.Pos = "mysql-bin.000003", pos
	}
	return ev
}

// produceAll produces the changes in order, each keyed by its dedupe key
// (as the backfill and the tail key them), in one flush.
func (w *world) produceAll(evs ...schema.Event) {
	w.t.Helper()
	w.produceEvents(evs...)
}

// targetRow is what the target holds for a key.
type targetRow struct {
	present bool
	msg     string
	version sql.NullInt64
}

func (w *world) row(device string) targetRow {
	w.t.Helper()
	var r targetRow
	err := w.db.QueryRowContext(w.ctx, "SELECT message, source_version FROM "+w.database+".records WHERE device_type = ?", device).Scan(&r.msg, &r.version)
	if errors.Is(err, sql.ErrNoRows) {
		return r
	}
	if err != nil {
		w.t.Fatal(err)
	}
	r.present = true
	return r
}

// tombstone returns the version of the key's tombstone, and whether it has one.
func (w *world) tombstone(device string) (uint64, bool) {
	w.t.Helper()
	var v uint64
	err := w.db.QueryRowContext(w.ctx, "SELECT source_version FROM "+w.database+"."+schema.TombstoneTable(schema.TargetTable)+" WHERE device_type = ?", device).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false
	}
	if err != nil {
		w.t.Fatal(err)
	}
	return v, true
}

func (w *world) member(linger time.Duration, m *Metrics) *Consumer {
	w.t.Helper()
	cfg := DefaultConfig()
	cfg.Brokers, cfg.Topic, cfg.Group, cfg.Database, cfg.Linger = []string{w.brokers}, w.topic, w.group, w.database, linger
	cfg.DeadLetters = newTestDeadLetters(w.t, w.brokers, cfg.DeadLetterTopic())
	c, err := New(w.ctx, cfg, w.db, m, nil)
	if err != nil {
		w.t.Fatal(err)
	}
	return c
}

// TestIntegrationTombstonesAcrossBatches applies every change in a batch of
// its own, as a tail and a backfill of the same window interleave them: a
// backfill read taken before a delete or an update (an older version,
// arriving later) must not bring the row back or overwrite the update.
func TestIntegrationTombstonesAcrossBatches(t *testing.T) {
	db, brokers := servers(t)
	w := newWorld(t, db, brokers, "it_tomb", 1)
	m := NewMetrics(prometheus.NewRegistry())
	c := w.member(20*time.Millisecond, m)
	stop := w.start(c)
	step := func(ev schema.Event) { w.t.Helper(); w.produceAll(ev); w.caughtUp() }
	const P, Q, R = 400, 500, 600

	t.Run("delete Q then older read P: stays deleted, tombstone Q", func(t *testing.T) {
		step(change(schema.OpCreate, "k1", "created", 100))
		step(change(schema.OpDelete, "k1", "", Q))
		if r := w.row("k1"); r.present {
			t.Fatalf("row after delete Q: %+v", r)
		}
		step(change(schema.OpRead, "k1", "read before the delete", P))
		if r := w.row("k1"); r.present {
			t.Errorf("read P < Q brought the deleted row back: %+v", r)
		}
		if v, ok := w.tombstone("k1"); !ok || v != ver(Q) {
			t.Errorf("tombstone %d (present %v), want version %d", v, ok, ver(Q))
		}
		// An older delete arriving late leaves the newer tombstone alone.
		step(change(schema.OpDelete, "k1", "", Q-50))
		if v, ok := w.tombstone("k1"); !ok || v != ver(Q) {
			t.Errorf("tombstone %d (present %v) after an older delete, want version %d", v, ok, ver(Q))
		}
	})
	t.Run("read P then delete Q: deleted", func(t *testing.T) {
		step(change(schema.OpRead, "k2", "read", P))
		if r := w.row("k2"); !r.present {
			t.Fatal("read P not applied")
		}
		step(change(schema.OpDelete, "k2", "", Q))
		if r := w.row("k2"); r.present {
			t.Errorf("delete Q after read P left %+v", r)
		}
		if v, ok := w.tombstone("k2"); !ok || v != ver(Q) {
			t.Errorf("tombstone %d (present %v), want version %d", v, ok, ver(Q))
		}
	})
	t.Run("delete Q then newer create R: present, tombstone gone", func(t *testing.T) {
		step(change(schema.OpCreate, "k3", "first", 100))
		step(change(schema.OpDelete, "k3", "", Q))
		step(change(schema.OpCreate, "k3", "again", R))
		if r := w.row("k3"); !r.present || r.msg != "AGAIN" || r.version.Int64 != int64(ver(R)) {
			t.Errorf("after create R: %+v, want AGAIN at version %d", r, ver(R))
		}
		if v, ok := w.tombstone("k3"); ok {
			t.Errorf("tombstone %d left after a newer create", v)
		}
		// With the tombstone gone, the row's own version still refuses P.
		step(change(schema.OpRead, "k3", "stale", P))
		if r := w.row("k3"); r.msg != "AGAIN" {
			t.Errorf("read P overwrote create R: %+v", r)
		}
	})
	t.Run("delete Q then create at Q, later in the partition: present", func(t *testing.T) {
		// Two changes of one key in one binlog event share its position (a
		// multi-row statement): the later one in the partition wins.
		step(change(schema.OpDelete, "k7", "", Q))
		step(change(schema.OpCreate, "k7", "same event", Q))
		if r := w.row("k7"); !r.present || r.msg != "SAME EVENT" {
			t.Errorf("create at the delete's version: %+v, want it applied", r)
		}
		if v, ok := w.tombstone("k7"); ok {
			t.Errorf("tombstone %d left", v)
		}
	})
	t.Run("update Q then older read P: Q stays", func(t *testing.T) {
		step(change(schema.OpCreate, "k4", "first", 100))
		step(change(schema.OpUpdate, "k4", "updated", Q))
		step(change(schema.OpRead, "k4", "read before the update", P))
		if r := w.row("k4"); r.msg != "UPDATED" || r.version.Int64 != int64(ver(Q)) {
			t.Errorf("after read P: %+v, want UPDATED at version %d", r, ver(Q))
		}
	})
	t.Run("a delete older than the row leaves it", func(t *testing.T) {
		step(change(schema.OpCreate, "k5", "newer", R))
		step(change(schema.OpDelete, "k5", "", Q))
		if r := w.row("k5"); !r.present || r.msg != "NEWER" {
			t.Errorf("delete Q removed the row at R: %+v", r)
		}
	})
	t.Run("unversioned changes behave as before", func(t *testing.T) {
		step(change(schema.OpCreate, "k6", "plain", 0))
		step(change(schema.OpDelete, "k6", "", 0))
		if r := w.row("k6"); r.present {
			t.Errorf("unversioned delete left %+v", r)
		}
		if v, ok := w.tombstone("k6"); ok {
			t.Errorf("unversioned delete left a tombstone %d", v)
		}
		// A versioned delete's tombstone does not stop an unversioned upsert.
		step(change(schema.OpDelete, "k6", "", Q))
		step(change(schema.OpCreate, "k6", "plain again", 0))
		if r := w.row("k6"); !r.present || r.msg != "PLAIN AGAIN" {
			t.Errorf("unversioned create after a tombstone: %+v, want it applied", r)
		}
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if st := c.Stats(); st.Tombstoned != 1 {
		t.Errorf("stats count %d upserts skipped for a tombstone, want 1 (k1's read P)", st.Tombstoned)
	}
	if got := testutil.ToFloat64(m.tombstoned); got != 1 {
		t.Errorf("sluice_consumer_skipped_tombstoned_total = %v, want 1", got)
	}
}

// TestIntegrationTombstonesInOneBatch puts a tail change and a backfill
// read of the same key into one batch, in both orders: the batch keeps the
// newer one, whatever its offset.
func TestIntegrationTombstonesInOneBatch(t *testing.T) {
	db, brokers := servers(t)
	w := newWorld(t, db, brokers, "it_tomb1", 1)
	const P, Q = 400, 500
	// The rows exist first, at an old version.
	first := w.member(20*time.Millisecond, nil)
	stop := w.start(first)
	w.produceAll(change(schema.OpCreate, "s1", "first", 100), change(schema.OpCreate, "s2", "first", 100),
		change(schema.OpCreate, "s3", "first", 100))
	w.caughtUp()
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	w.produceAll(
		change(schema.OpDelete, "s1", "", Q), change(schema.OpRead, "s1", "read before the delete", P),
		change(schema.OpUpdate, "s2", "updated", Q), change(schema.OpRead, "s2", "read before the update", P),
		change(schema.OpRead, "s3", "read", P), change(schema.OpDelete, "s3", "", Q),
		change(schema.OpRead, "s4", "read before the delete", P), change(schema.OpDelete, "s4", "", Q), // a key new to the target
	)
	// The 8 records are in the log before the member starts: its first fetch
	// takes them all, into one batch.
	second := w.member(time.Second, nil)
	stop = w.start(second)
	w.caughtUp()
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if st := second.Stats(); st.Batches != 1 || st.Records != 8 {
		t.Fatalf("stats %+v: want the 8 records in one batch", st)
	}
	for _, device := range []string{"s1", "s3", "s4"} {
		if r := w.row(device); r.present {
			t.Errorf("%s: the delete Q lost to a read P < Q in the same batch: %+v", device, r)
		}
		if v, ok := w.tombstone(device); !ok || v != ver(Q) {
			t.Errorf("%s: tombstone %d (present %v), want version %d", device, v, ok, ver(Q))
		}
	}
	if r := w.row("s2"); r.msg != "UPDATED" || r.version.Int64 != int64(ver(Q)) {
		t.Errorf("s2: %+v, want UPDATED at version %d", r, ver(Q))
	}
}

// TestIntegrationTombstoneTableRequired: a member refuses to start on a
// target without the tombstone table and says to migrate; migrating adds it
// to the existing target, and migrating again changes nothing.
func TestIntegrationTombstoneTableRequired(t *testing.T) {
	db, brokers := servers(t)
	w := newWorld(t, db, brokers, "it_tombreq", 1)
	tombs := w.database + "." + schema.TombstoneTable(schema.TargetTable)
	if ready, err := schema.TargetReady(w.ctx, db, w.database); err != nil || !ready {
		t.Fatalf("TargetReady after MigrateTarget = %v, %v; want true", ready, err)
	}
	if _, err := db.ExecContext(w.ctx, "DROP TABLE "+tombs); err != nil {
		t.Fatal(err)
	}
	if ready, err := schema.TargetReady(w.ctx, db, w.database); err != nil || ready {
		t.Errorf("TargetReady without %s = %v, %v; want false", tombs, ready, err)
	}
	cfg := DefaultConfig()
	cfg.Brokers, cfg.Topic, cfg.Group, cfg.Database = []string{brokers}, w.topic, w.group, w.database
	cfg.DeadLetters = newTestDeadLetters(t, brokers, cfg.DeadLetterTopic())
	if c, err := New(w.ctx, cfg, db, nil, nil); err == nil || !strings.Contains(err.Error(), tombs) || !strings.Contains(err.Error(), "sluice migrate") {
		if c != nil {
			c.cl.Close()
		}
		t.Fatalf("New without %s = %v; want an error naming it and saying to run sluice migrate", tombs, err)
	}
	for range 2 {
		if err := schema.MigrateTarget(w.ctx, db, w.database); err != nil {
			t.Fatal(err)
		}
	}
	if ready, err := schema.TargetReady(w.ctx, db, w.database); err != nil || !ready {
		t.Errorf("TargetReady after migrating again = %v, %v; want true", ready, err)
	}
	c := w.member(20*time.Millisecond, nil)
	stop := w.start(c)
	w.produceAll(change(schema.OpDelete, "m1", "", 500))
	w.caughtUp()
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if v, ok := w.tombstone("m1"); !ok || v != ver(500) {
		t.Errorf("tombstone %d (present %v) in the migrated table, want %d", v, ok, ver(500))
	}
}
