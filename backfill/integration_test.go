package backfill

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"

	"github.com/sluice-dev/sluice/schema"
)

// sourceDB returns a fresh source database on the project's MariaDB; with
// SLUICE_REQUIRE_INTEGRATION=1 or CI=true a missing server fails the test.
func sourceDB(t testing.TB) (*sql.DB, string) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: -short")
	}
	required := os.Getenv("SLUICE_REQUIRE_INTEGRATION") == "1" || os.Getenv("CI") == "true"
	dsn := os.Getenv("SLUICE_TEST_MYSQL_DSN")
	fail := func(err error) {
		t.Helper()
		if required {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	if dsn == "" {
		fail(errors.New("SLUICE_TEST_MYSQL_DSN is not set"))
	}
	db, err := sql.Open("mysql", dsn+"?parseTime=true&loc=UTC&time_zone=%27%2B00%3A00%27")
	if err == nil {
		err = db.Ping()
	}
	if err != nil {
		fail(err)
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := "it_backfill_" + hex.EncodeToString(b[:])
	if err := schema.MigrateSource(context.Background(), db, name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Exec("DROP DATABASE IF EXISTS " + name); db.Close() })
	return db, name
}

// iotConfig is the default Config of the IoT source table of database,
// resolved as the built-in configuration resolves it (id the keyset,
// timestamp the window, every column travelling), over [start, end).
func iotConfig(t testing.TB, db *sql.DB, database string, start, end time.Time) Config {
	t.Helper()
	tbl, err := schema.Resolve(context.Background(), schema.TableSpec{Source: database + ".raw_records", Target: database + ".raw_records", Window: "timestamp"},
		db, db, schema.ResolveConfig{SourceDB: database, TargetDB: database})
	if err != nil {
		t.Fatal(err)
	}
	if tbl.Columns[0].Source.Name != "id" || tbl.ID.Name != "id" {
		t.Fatalf("table %s: id is not its keyset and first column (changeID reads it there)", tbl.Source)
	}
	cfg := DefaultConfig()
	cfg.Resolved, cfg.Start, cfg.End = tbl, start, end
	return cfg
}

// fakeSink records the ids it is sent and acknowledges with the scripted
// error.
type fakeSink struct {
	mu     sync.Mutex
	ids    []uint64
	ackErr error
}

func (f *fakeSink) Send(_ context.Context, changes []schema.Change, acked func(error)) error {
	f.mu.Lock()
	for _, c := range changes {
		if c.Op != schema.OpRead || c.Source.Snapshot != "true" || c.Before != nil || c.After == nil {
			panic("backfill sent something other than a snapshot read")
		}
		f.ids = append(f.ids, changeID(c))
	}
	f.mu.Unlock()
	go acked(f.ackErr) // acknowledgements come from another goroutine, as kgo's do
	return nil
}

// TestIntegrationChunksCoverWindowExactly puts rows with id gaps, a row at id
// 0, rows exactly on both window edges and rows outside the window inside
// the planned id range, and checks that exactly the window's rows are sent.
func TestIntegrationChunksCoverWindowExactly(t *testing.T) {
	db, database := sourceDB(t)
	ctx := context.Background()
	start := time.Date(2025, 10, 1, 0, 0, 0, 0, time.UTC)
	end := start.AddDate(0, 0, 1)
	type seedRow struct {
		id uint64
		ts time.Time
	}
	rows := []seedRow{
		{0, start.Add(time.Hour)},               // id 0: the inclusive first chunk
		{1, start.Add(-time.Second)},            // just before the window
		{2, start},                              // on the start edge: in
		{3, start.Add(2 * time.Hour)},           //
		{7, end.Add(-time.Second)},              // last second: in
		{8, end},                                // on the end edge: out (exclusive)
		{9, start.Add(3 * time.Hour)},           //
		{20, start.Add(4 * time.Hour)},          // after a gap
		{21, end.Add(time.Hour)},                // out, inside the id range
		{22, start.Add(5 * time.Hour)},          //
		{1<<63 + 5, start.Add(6 * time.Hour)},   // beyond the signed range
		{1<<63 + 9, start.Add(-24 * time.Hour)}, // out, after the window's last id
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, "SET SESSION sql_mode = CONCAT(@@sql_mode, ',NO_AUTO_VALUE_ON_ZERO')"); err != nil {
		t.Fatal(err)
	}
	var want []uint64
	for i, r := range rows {
		_, err := conn.ExecContext(ctx, "INSERT INTO "+database+".raw_records (id, date, timestamp, device_type, event_type, message) VALUES (?, ?, ?, ?, 'reading', 'm')",
			r.id, r.ts.Truncate(24*time.Hour), r.ts, "sensor-"+string(rune('a'+i)))
		if err != nil {
			t.Fatalf("insert id %d: %v", r.id, err)
		}
		if !r.ts.Before(start) && r.ts.Before(end) {
			want = append(want, r.id)
		}
	}
	conn.Close()

	t.Run("a failed delivery fails the run and names the chunk", func(t *testing.T) {
		cfg := iotConfig(t, db, database, start, end)
		cfg.ChunkSize, cfg.ChunkAttempts, cfg.ChunkBackoff = 5, 2, time.Millisecond
		bf, err := NewTable(cfg, db, &fakeSink{ackErr: errors.New("broker said no")}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		err = bf.Run(ctx)
		if err == nil || !strings.Contains(err.Error(), "chunk id ") || !strings.Contains(err.Error(), "broker said no") ||
			!strings.Contains(err.Error(), "after 2 attempt(s)") {
			t.Fatalf("Run = %v, want the delivery error naming the chunk and its 2 attempts", err)
		}
	})
	t.Run("an empty window is a successful run", func(t *testing.T) {
		cfg := iotConfig(t, db, database, end.AddDate(1, 0, 0), end.AddDate(1, 0, 1))
		sink := &fakeSink{}
		bf, err := NewTable(cfg, db, sink, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := bf.Run(ctx); err != nil || len(sink.ids) != 0 {
			t.Fatalf("Run = %v, sent %d rows; want nil and none", err, len(sink.ids))
		}
	})

	// The id range is asked for in one time slice per reader and the
	// slices' answers combined: it must be the window's whole range for any
	// reader count, with slices that hold nothing, and when the smallest id
	// is in a later slice than the largest.
	t.Run("id range over time slices", func(t *testing.T) {
		for _, w := range []struct {
			from   time.Time
			lo, hi uint64
		}{
			{start, 0, 1<<63 + 5},
			{start.Add(3 * time.Hour), 7, 1<<63 + 5}, // 7 is the window's last second
		} {
			for readers := 1; readers <= 5; readers++ {
				cfg := iotConfig(t, db, database, w.from, end)
				cfg.Readers = readers
				bf, err := NewTable(cfg, db, &fakeSink{}, nil, nil)
				if err != nil {
					t.Fatal(err)
				}
				lo, hi, ok, err := bf.IDRange(ctx)
				if err != nil || !ok || lo != w.lo || hi != w.hi {
					t.Errorf("window from %s, %d readers: IDRange = %d, %d, %v, %v; want %d, %d, true, nil",
						w.from.Format(time.DateTime), readers, lo, hi, ok, err, w.lo, w.hi)
				}
			}
		}
		cfg := iotConfig(t, db, database, end.AddDate(1, 0, 0), end.AddDate(1, 0, 1))
		cfg.Readers = 3
		bf, err := NewTable(cfg, db, &fakeSink{}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if lo, hi, ok, err := bf.IDRange(ctx); err != nil || ok {
			t.Errorf("empty window: IDRange = %d, %d, %v, %v; want no range", lo, hi, ok, err)
		}
	})

	for _, tc := range []struct {
		name      string
		chunkSize uint64
		readers   int
	}{
		{name: "chunks of 1", chunkSize: 1, readers: 1},
		{name: "chunks of 2", chunkSize: 2, readers: 2},
		{name: "chunks of 3, 3 readers", chunkSize: 3, readers: 3},
		{name: "chunk larger than a signed int", chunkSize: 1 << 62, readers: 2},
		{name: "one chunk for everything", chunkSize: 1<<64 - 1, readers: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := iotConfig(t, db, database, start, end)
			cfg.ChunkSize, cfg.Readers = tc.chunkSize, tc.readers
			sink := &fakeSink{}
			bf, err := NewTable(cfg, db, sink, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := bf.Run(ctx); err != nil {
				t.Fatal(err)
			}
			slices.Sort(sink.ids)
			if !slices.Equal(sink.ids, want) {
				t.Errorf("sent ids %v, want %v", sink.ids, want)
			}
			p := bf.Progress()
			if p.RowsAcked != int64(len(want)) || p.ChunksDone != p.Chunks || p.IDsDone != p.IDs {
				t.Errorf("progress %+v: want %d rows acknowledged, every chunk done, the id range covered", p, len(want))
			}
			// Gaps are skipped: never more chunks than rows in the id range.
			if p.Chunks > len(rows) {
				t.Errorf("%d chunks planned for %d rows: id gaps were walked, not skipped", p.Chunks, len(rows))
			}
		})
	}
}
