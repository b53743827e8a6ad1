package backfill

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/schema"
)

func TestTableConfig(t *testing.T) {
	win := schema.Column{Name: "ts", DataType: "timestamp"}
	table := func(window *schema.Column) *schema.Table {
		return &schema.Table{Source: schema.TableName{DB: "db", Table: "t"}, ID: schema.Column{Name: "id", DataType: "int"},
			Window: window, Columns: []schema.TableColumn{{Source: schema.Column{Name: "id", DataType: "int"}}}}
	}
	start := time.Date(2025, 10, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name       string
		resolved   *schema.Table
		start, end time.Time
		want       string // "" : no error
	}{
		{name: "windowed", resolved: table(&win), start: start, end: start.AddDate(0, 0, 1)},
		{name: "whole", resolved: table(nil)},
		{name: "whole with a window", resolved: table(nil), start: start, end: start.AddDate(0, 0, 1),
			want: "table db.t has no window column and is read whole"},
		{name: "windowed without one", resolved: table(&win), want: "window: start and end are required"},
		{name: "no table", want: "needs Config.Resolved"},
		{name: "no column", resolved: &schema.Table{Source: schema.TableName{DB: "db", Table: "t"}, ID: schema.Column{Name: "id"}}, want: "no column travels"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Resolved, cfg.Start, cfg.End = tc.resolved, tc.start, tc.end
			b, err := NewTable(cfg, nil, nil, nil, nil)
			switch {
			case tc.want == "" && err != nil:
				t.Fatal(err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("NewTable: %v, want an error with %q", err, tc.want)
			case err == nil && (b.cfg.Database != "db" || b.cfg.Table != "t" || b.position.DB != "db" || b.position.Table != "t"):
				t.Fatalf("source %s.%s, labels %s.%s: want db.t", b.cfg.Database, b.cfg.Table, b.position.DB, b.position.Table)
			}
		})
	}
	cfg := DefaultConfig()
	cfg.Resolved, cfg.Start, cfg.End = table(&win), start, start.AddDate(0, 0, 1)
	b, err := NewTable(cfg, nil, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := "SELECT `id` FROM `db`.`t` WHERE `id` > ? AND `id` <= ? AND `ts` >= ? AND `ts` < ? ORDER BY `id`"
	if b.query[0] != want {
		t.Errorf("chunk query:\n%s\nwant\n%s", b.query[0], want)
	}
}

// changeSink records the changes it is sent, as text, and acknowledges them.
type changeSink struct {
	mu      sync.Mutex
	sources []schema.Source
	rows    map[string]int // the After values joined, and how often
}

func (s *changeSink) Send(_ context.Context, changes []schema.Change, acked func(error)) error {
	s.mu.Lock()
	for _, c := range changes {
		if c.Op != schema.OpRead || c.Before != nil || c.After == nil {
			panic("backfill sent something other than a snapshot read")
		}
		var parts []string
		for _, v := range c.After {
			parts = append(parts, fmt.Sprintf("%q/%v", v.B, v.Null))
		}
		s.rows[strings.Join(parts, ",")]++
		s.sources = append(s.sources, c.Source)
	}
	s.mu.Unlock()
	go acked(nil)
	return nil
}

type fixedEpoch uint16

func (e fixedEpoch) Epoch(context.Context, schema.Server) (uint16, string, error) {
	return uint16(e), "test", nil
}

// TestIntegrationTableRun reads a configured table through Run: every row
// once, labelled with its chunk's snapshot position and the epoch, and
// without an allocation per row.
func TestIntegrationTableRun(t *testing.T) {
	db, database := sourceDB(t)
	ctx := context.Background()
	const rows = 2000
	stmts := []string{"CREATE TABLE " + database + ".wide (id INT UNSIGNED NOT NULL PRIMARY KEY, n BIGINT, f FLOAT, s VARCHAR(40), at DATETIME(3), amount DECIMAL(20,4))"}
	var sb strings.Builder
	for i := 1; i <= rows; i++ {
		if i > 1 {
			sb.WriteByte(',')
		}
		if i%100 == 0 {
			fmt.Fprintf(&sb, "(%d, NULL, NULL, NULL, NULL, NULL)", i)
			continue
		}
		fmt.Fprintf(&sb, "(%d, %d, %g, 'row %d ✓', '2025-10-01 00:00:%02d.%03d', %d.%04d)", i, -i*1000003, 1.1*float64(i), i, i%60, i%1000, i, i)
	}
	stmts = append(stmts, "INSERT INTO "+database+".wide VALUES "+sb.String())
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatal(err)
		}
	}
	tbl, err := schema.Resolve(ctx, schema.TableSpec{Source: database + ".wide", Target: database + ".wide"}, db, db, schema.ResolveConfig{SourceDB: database, TargetDB: database})
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Resolved, cfg.ChunkSize, cfg.Readers = tbl, 300, 2
	sink := &changeSink{rows: map[string]int{}}
	bf, err := NewTable(cfg, db, sink, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	bf.SetEpochs(fixedEpoch(7))
	if err := bf.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if p := bf.Progress(); p.RowsRead != rows || p.RowsAcked != rows || p.Chunks != 7 {
		t.Errorf("progress %+v, want %d rows in 7 chunks", p, rows)
	}
	if len(sink.rows) != rows {
		t.Errorf("%d distinct rows sent, want %d", len(sink.rows), rows)
	}
	for r, n := range sink.rows {
		if n != 1 {
			t.Errorf("row %s sent %d times", r, n)
		}
	}
	if !strings.Contains(strings.Join(mapKeys(sink.rows), "\n"), `"1.1"/false,"row 1 ✓"/false,"2025-10-01 00:00:01.001"/false,"1.0001"/false`) {
		t.Errorf("row 1 not sent in its canonical text")
	}
	for _, src := range sink.sources {
		if src.DB != database || src.Table != "wide" || src.Snapshot != "true" || src.Epoch != 7 || (bf.labels == labelSnapshot && (src.File == "" || src.Pos == 0)) {
			t.Fatalf("label %+v (labels: %s), want %s.wide in epoch 7", src, bf.labels, database)
		}
	}

	// A chunk's read allocates per chunk, not per row, once the batch's
	// buffers have grown to a chunk: beyond what database/sql and the
	// driver allocate for a bare RawBytes scan of the same query (they box
	// each value of each row), nothing a row.
	bt := newTableBatch(bf)
	whole := Chunk{Lo: 0, Hi: rows, IncludeLo: true}
	if err := bt.read(ctx, db, whole); err != nil || bt.len() != rows {
		t.Fatalf("read %d rows, %v", bt.len(), err)
	}
	allocs := testing.AllocsPerRun(3, func() {
		if err := bt.read(ctx, db, whole); err != nil {
			t.Fatal(err)
		}
	})
	bare := testing.AllocsPerRun(3, func() {
		res, err := db.QueryContext(ctx, bf.query[1], whole.Lo, whole.Hi)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Close()
		for res.Next() {
			if err := res.Scan(bt.dest...); err != nil {
				t.Fatal(err)
			}
		}
	})
	if allocs-bare > rows/20 {
		t.Errorf("%.0f allocations to read %d rows, %.0f for a bare scan of them", allocs, rows, bare)
	}
	t.Logf("%.0f allocations to read %d rows, %.0f for a bare scan of them", allocs, rows, bare)
}

func mapKeys(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
