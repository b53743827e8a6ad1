package backfill

import (
	"context"
	"database/sql"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/schema"
)

// labelSink records, for every id of the IoT table, the label and message
// it was sent with, and runs onChunk (once per chunk, before acknowledging
// it) with the chunk's ids.
type labelSink struct {
	mu      sync.Mutex
	message int               // the message column's index
	version map[uint64]uint64 // id -> the change's Source.Version(); 0 without one
	msg     map[uint64]string
	onChunk func(ids []uint64)
}

func newLabelSink(t testing.TB, tbl *schema.Table) *labelSink {
	t.Helper()
	s := &labelSink{message: -1, version: map[uint64]uint64{}, msg: map[uint64]string{}}
	for i, c := range tbl.Columns {
		if c.Source.Name == "message" {
			s.message = i
		}
	}
	if s.message < 0 {
		t.Fatalf("table %s: no message column travels", tbl.Source)
	}
	return s
}

func (s *labelSink) Send(_ context.Context, changes []schema.Change, acked func(error)) error {
	ids := make([]uint64, len(changes))
	s.mu.Lock()
	for i, c := range changes {
		v, _ := c.Source.Version()
		id := changeID(c)
		ids[i] = id
		s.version[id] = v
		s.msg[id] = string(c.After[s.message].B)
	}
	s.mu.Unlock()
	if s.onChunk != nil {
		s.onChunk(ids)
	}
	acked(nil)
	return nil
}

// binlogVersion is the source's current binlog position as a version.
func binlogVersion(t *testing.T, db *sql.DB) uint64 {
	t.Helper()
	for _, q := range schema.BinlogStatusQueries {
		file, pos, ok, err := schema.BinlogStatus(t.Context(), db, q)
		if err != nil {
			continue
		}
		if !ok {
			t.Fatal("the test server has no binlog")
		}
		v, ok := schema.Source{File: file, Pos: pos}.Version()
		if !ok {
			t.Fatalf("binlog position %s:%d gives no version", file, pos)
		}
		return v
	}
	t.Fatal("cannot read the binlog position (SHOW BINARY LOG STATUS, SHOW MASTER STATUS)")
	return 0
}

// seedIDs inserts rows 1..n into the window, message "m<id>".
func seedIDs(t *testing.T, db *sql.DB, database string, start time.Time, n int) {
	t.Helper()
	for id := 1; id <= n; id++ {
		ts := start.Add(time.Duration(id) * time.Minute)
		if _, err := db.Exec("INSERT INTO "+database+".raw_records (id, date, timestamp, device_type, event_type, message) VALUES (?, ?, ?, 'meter-1', 'reading', ?)",
			id, ts.Truncate(24*time.Hour), ts, "m"+string(rune('0'+id))); err != nil {
			t.Fatal(err)
		}
	}
}

func isMariaDB(t *testing.T, db *sql.DB) bool {
	t.Helper()
	var v string
	if err := db.QueryRow("SELECT VERSION()").Scan(&v); err != nil {
		t.Fatal(err)
	}
	return strings.Contains(strings.ToLower(v), "mariadb")
}

// labelModes are the labelling modes the server can be tested in: the
// status-before-read mode everywhere, the consistent snapshot on MariaDB.
func labelModes(t *testing.T, db *sql.DB) []labelMode {
	t.Helper()
	modes := []labelMode{labelBefore}
	if isMariaDB(t, db) {
		modes = append(modes, labelSnapshot)
	}
	return modes
}

// TestIntegrationChunkLabelsFollowTheBinlog reads a window one chunk at a
// time while an update of a later chunk's row commits between two chunk
// reads: chunks read before it are labelled older than the update, chunks
// read after it at least as new (and see it).
func TestIntegrationChunkLabelsFollowTheBinlog(t *testing.T) {
	db, database := sourceDB(t)
	start := time.Date(2025, 10, 1, 0, 0, 0, 0, time.UTC)
	seedIDs(t, db, database, start, 6)
	modes := labelModes(t, db)
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			if _, err := db.Exec("UPDATE " + database + ".raw_records SET message = 'm5' WHERE id = 5"); err != nil {
				t.Fatal(err)
			}
			runStart := binlogVersion(t, db)
			var before, after uint64 // the binlog around the update
			cfg := iotConfig(t, db, database, start, start.AddDate(0, 0, 1))
			cfg.ChunkSize, cfg.Readers = 2, 1
			sink := newLabelSink(t, cfg.Resolved)
			sink.onChunk = func(ids []uint64) {
				if ids[0] != 1 { // after the first chunk only
					return
				}
				before = binlogVersion(t, db)
				if _, err := db.Exec("UPDATE " + database + ".raw_records SET message = 'updated between chunks' WHERE id = 5"); err != nil {
					t.Error(err)
				}
				after = binlogVersion(t, db)
			}
			bf, err := NewTable(cfg, db, sink, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if mode == labelBefore { // as on MySQL, which has no snapshot position
				bf.labels, bf.statusQuery = labelBefore, detectStatusQuery(t, db)
			}
			if err := bf.Run(t.Context()); err != nil {
				t.Fatal(err)
			}
			if mode == labelSnapshot && bf.labels != labelSnapshot {
				t.Fatalf("MariaDB: labels %q, want %q", bf.labels, labelSnapshot)
			}
			if !(before < after) {
				t.Fatalf("the update did not move the binlog: %d then %d", before, after)
			}
			for id := uint64(1); id <= 6; id++ {
				v := sink.version[id]
				switch {
				case v == 0:
					t.Errorf("id %d has no label", id)
				case v < runStart:
					t.Errorf("id %d labelled %d, before the run started at %d", id, v, runStart)
				case id <= 2 && v > before:
					t.Errorf("id %d, read before the update, labelled %d: newer than the binlog before the update, %d", id, v, before)
				case id >= 3 && v < after:
					t.Errorf("id %d, read after the update, labelled %d: older than the binlog after the update, %d", id, v, after)
				}
			}
			if sink.version[1] != sink.version[2] || sink.version[5] != sink.version[6] {
				t.Errorf("the events of one chunk carry different labels: %v", sink.version)
			}
			if got := sink.msg[5]; got != "updated between chunks" {
				t.Errorf("id 5 read as %q, want the update", got)
			}
		})
	}
}

// TestIntegrationChunkLabelMatchesItsRead commits an update of a chunk's
// row between taking the chunk's label and reading it. The label is older
// than the update either way; in a consistent snapshot (MariaDB) the read
// does not see the update either, so label and content agree exactly, and
// when the label is taken before the read (MySQL) the read may be newer
// than its label, never older.
func TestIntegrationChunkLabelMatchesItsRead(t *testing.T) {
	db, database := sourceDB(t)
	start := time.Date(2025, 10, 1, 0, 0, 0, 0, time.UTC)
	seedIDs(t, db, database, start, 4)
	modes := labelModes(t, db)
	for i, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			msg := "changed after the label " + string(rune('a'+i))
			var after uint64
			cfg := iotConfig(t, db, database, start, start.AddDate(0, 0, 1))
			cfg.ChunkSize, cfg.Readers = 2, 1
			sink := newLabelSink(t, cfg.Resolved)
			bf, err := NewTable(cfg, db, sink, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			bf.labels, bf.statusQuery = mode, detectStatusQuery(t, db)
			var old string
			bf.afterLabel = func(c Chunk) {
				if c.Hi < 3 || c.Lo >= 3 || after != 0 { // the chunk of id 3, once
					return
				}
				if err := db.QueryRow("SELECT message FROM " + database + ".raw_records WHERE id = 3").Scan(&old); err != nil {
					t.Error(err)
				}
				if _, err := db.Exec("UPDATE "+database+".raw_records SET message = ? WHERE id = 3", msg); err != nil {
					t.Error(err)
				}
				after = binlogVersion(t, db)
			}
			if err := bf.Run(t.Context()); err != nil {
				t.Fatal(err)
			}
			if after == 0 {
				t.Fatal("the hook never ran for the chunk of id 3")
			}
			if v := sink.version[3]; v == 0 || v >= after {
				t.Errorf("id 3 labelled %d, want a label older than the update committed after it was taken (%d)", v, after)
			}
			want := old
			if mode == labelBefore {
				want = msg
			}
			if got := sink.msg[3]; got != want {
				t.Errorf("id 3 read as %q, want %q", got, want)
			}
		})
	}
}

// detectStatusQuery returns the statement that reads the binlog position on
// the test server.
func detectStatusQuery(t testing.TB, db *sql.DB) string {
	t.Helper()
	for _, q := range schema.BinlogStatusQueries {
		if _, _, _, err := schema.BinlogStatus(t.Context(), db, q); err == nil {
			return q
		}
	}
	t.Fatal("cannot read the binlog position")
	return ""
}

// TestRunWithoutBinlogLabelsNothing: a source whose binlog position cannot
// be read (the fake has none) gives changes without a version, as before.
func TestRunWithoutBinlogLabelsNothing(t *testing.T) {
	src := newFakeSource(idRange(1, 25)...)
	sink := newLabelSink(t, testTable())
	bf, _ := newTestBackfill(t, testConfig(), src, sink)
	if err := bf.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	if bf.labels != labelNone {
		t.Errorf("labels %q, want %q", bf.labels, labelNone)
	}
	if len(sink.version) != 25 {
		t.Fatalf("%d ids sent, want 25", len(sink.version))
	}
	for id, v := range sink.version {
		if v != 0 {
			t.Errorf("id %d carries version %d without a binlog", id, v)
		}
	}
}

// TestIntegrationFailedSnapshotReadRollsBack: a chunk read that fails inside
// its snapshot transaction (the table is dropped between the label and the
// query) must not hand its connection back to the pool inside that
// transaction.
func TestIntegrationFailedSnapshotReadRollsBack(t *testing.T) {
	db, database := sourceDB(t)
	if !isMariaDB(t, db) {
		t.Skip("consistent snapshot positions are MariaDB's")
	}
	start := time.Date(2025, 10, 1, 0, 0, 0, 0, time.UTC)
	seedIDs(t, db, database, start, 4)
	cfg := iotConfig(t, db, database, start, start.AddDate(0, 0, 1))
	cfg.ChunkSize, cfg.Readers = 2, 1
	db.SetMaxOpenConns(1) // the chunk's connection is the one checked afterwards
	bf, err := NewTable(cfg, db, newLabelSink(t, cfg.Resolved), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	bf.labels = labelSnapshot
	admin, _ := sourceDB(t) // another pool: db's one connection is the chunk's
	bf.afterLabel = func(Chunk) {
		if _, err := admin.Exec("DROP TABLE " + database + ".raw_records"); err != nil {
			t.Error(err)
		}
	}
	err = bf.Run(t.Context())
	if err == nil || !strings.Contains(err.Error(), "doesn't exist") {
		t.Fatalf("Run = %v, want the chunk's read to fail on the dropped table", err)
	}
	var inTx int
	if err := db.QueryRow("SELECT @@in_transaction").Scan(&inTx); err != nil {
		t.Fatal(err)
	}
	if inTx != 0 {
		t.Error("the pooled connection was left inside the chunk's snapshot transaction")
	}
}
