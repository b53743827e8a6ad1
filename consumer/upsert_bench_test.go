package consumer

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/schema"
)

// BenchmarkIntegrationWriteBatch writes 10,000-row batches of new keys into
// empty targets, as the consumer does during a backfill, three ways in turns
// within every iteration (the first one rotates), so the ratios hold on a
// busy machine:
//
//   - unversioned: the rows carry no binlog version, so no tombstone lookup
//     runs: the write as it was before tombstones;
//
//   - versioned: the same rows with a version, over an empty tombstone table;
//
//   - tombstones: the same, with about 280 tombstones of other keys inside
//     each batch's timestamp range (read and matched, none applies);
//
//   - load: the versioned rows through the bulk load (LOAD DATA LOCAL
//     INFILE) instead of the upsert, which the three above use.
//
//     go test -run '^$' -bench IntegrationWriteBatch -benchtime 30x ./consumer
func BenchmarkIntegrationWriteBatch(b *testing.B) {
	db, _ := servers(b)
	const size = 10000
	ctx := context.Background()
	base := time.Date(2025, 10, 1, 0, 0, 0, 0, time.UTC)
	names := []string{"unversioned", "versioned", "tombstones", "load"}
	writers, _, _ := testWriters(b, db, "bench_write", len(names))
	for i, w := range writers {
		w.loadOK = names[i] == "load" && w.loadOK
		if names[i] == "load" && !w.loadOK {
			b.Fatalf("the target does not take the bulk load: %s", w.loadOff)
		}
	}
	// Tombstones every 3 s over the first 30,000 s: the ranges of 36 batches.
	var tomb []item
	for i := range 10000 {
		k := schema.Key{DeviceType: fmt.Sprintf("gone-%05d", i), EventType: "reading", Timestamp: base.Add(time.Duration(3*i) * time.Second)}
		tomb = append(tomb, item{key: k, op: schema.OpDelete, version: 1 << 32, hasVer: true})
	}
	if _, err := writers[2].write(ctx, tomb); err != nil {
		b.Fatal(err)
	}
	batches := make([]*batch, len(names))
	spent := make([]time.Duration, len(names))
	b.ResetTimer()
	for n := range b.N {
		b.StopTimer()
		for i := range names {
			bt := newBatch(size, time.Hour)
			for r := range size {
				j := n*size + r
				ev := schema.Event{Op: schema.OpRead, After: &schema.Row{
					ID: uint64(j + 1), Date: base, Timestamp: base.Add(time.Duration(j/12) * time.Second),
					DeviceType: fmt.Sprintf("meter-%05d", (j*7919)%5000), EventType: []string{"reading", "status", "alert"}[j%3],
				}}
				ev.After.Message.String, ev.After.Message.Valid = "SOME MESSAGE OF A FEW WORDS", true
				if i > 0 {
					ev.Source.File, ev.Source.Pos = "mysql-bin.000001", 4
				}
				bt.add(rec("t", 0, int64(j)), &ev, base)
			}
			bt.final()
			batches[i] = bt
		}
		b.StartTimer()
		for k := range names {
			i := (n + k) % len(names)
			t0 := time.Now()
			res, err := writers[i].write(ctx, batches[i].items)
			spent[i] += time.Since(t0)
			if err != nil {
				b.Fatal(err)
			}
			if res.inserted != size {
				b.Fatalf("%s: inserted %d of %d", names[i], res.inserted, size)
			}
		}
	}
	for i, name := range names {
		b.ReportMetric(float64(spent[i].Microseconds())/1000/float64(b.N), "ms/batch-"+name)
	}
	b.ReportMetric(float64(spent[1])/float64(spent[0]), "versioned/unversioned")
	b.ReportMetric(float64(spent[2])/float64(spent[0]), "tombstones/unversioned")
	b.ReportMetric(float64(spent[3])/float64(spent[1]), "load/versioned")
}
