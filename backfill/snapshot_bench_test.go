package backfill

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// BenchmarkIntegrationReadChunk reads the same 10,000-id chunks of a
// 200,000-row window under each way of labelling them, in turns within every
// iteration (the first reader of a chunk rotates), so the ratios hold on a
// busy machine:
//
//	go test -run '^$' -bench IntegrationReadChunk -benchtime 100x ./backfill
//
// none is the read as it was before per-chunk labels; snapshot adds START
// TRANSACTION WITH CONSISTENT SNAPSHOT, SHOW STATUS and COMMIT on a
// dedicated connection (MariaDB); before adds one SHOW MASTER STATUS (MySQL).
func BenchmarkIntegrationReadChunk(b *testing.B) {
	db, database := sourceDB(b)
	const rows, chunk = 200000, 10000
	start := time.Date(2025, 10, 1, 0, 0, 0, 0, time.UTC)
	for lo := 0; lo < rows; lo += 5000 {
		var sb strings.Builder
		sb.WriteString("INSERT INTO " + database + ".raw_records (id, date, timestamp, device_type, event_type, message) VALUES ")
		for id := lo + 1; id <= lo+5000; id++ {
			if id > lo+1 {
				sb.WriteByte(',')
			}
			ts := start.Add(time.Duration(id) * 400 * time.Millisecond).Truncate(time.Second)
			fmt.Fprintf(&sb, "(%d,'2025-10-01','%s','meter-%05d','reading','temperature normal sensor reading value threshold ok')",
				id, ts.Format(time.DateTime), id%5000)
		}
		if _, err := db.Exec(sb.String()); err != nil {
			b.Fatal(err)
		}
	}
	query := detectStatusQuery(b, db)
	modes := []labelMode{labelNone, labelSnapshot, labelBefore}
	names := []string{"none", "snapshot", "before"}
	bfs := make([]*Backfill, len(modes))
	for i, mode := range modes {
		cfg := iotConfig(b, db, database, start, start.AddDate(0, 0, 1))
		cfg.ChunkSize = chunk
		bf, err := NewTable(cfg, db, nil, nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		bf.labels, bf.statusQuery = mode, query
		bfs[i] = bf
	}
	ctx := context.Background()
	spent := make([]time.Duration, len(modes))
	bts := make([]*tableBatch, len(bfs))
	for i, bf := range bfs {
		bts[i] = newTableBatch(bf)
	}
	b.ResetTimer()
	for n := range b.N {
		lo := uint64(n%(rows/chunk)) * chunk
		for j := range modes {
			i := (n + j) % len(modes) // rotate who reads a chunk first
			t0 := time.Now()
			var err error
			_, err = bfs[i].readChunk(ctx, Chunk{Lo: lo, Hi: lo + chunk}, bts[i])
			spent[i] += time.Since(t0)
			if err != nil {
				b.Fatal(err)
			}
			if n := bts[i].len(); n != chunk {
				b.Fatalf("read %d rows of chunk (%d,%d], want %d", n, lo, lo+chunk, chunk)
			}
		}
	}
	for i, name := range names {
		b.ReportMetric(float64(spent[i].Microseconds())/1000/float64(b.N), "ms/chunk-"+name)
	}
	b.ReportMetric(float64(spent[1])/float64(spent[0]), "snapshot/none")
	b.ReportMetric(float64(spent[2])/float64(spent[0]), "before/none")
}
