package producer

import (
	"bytes"
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/schema"
)

func testEvents(n int, message func(i int) string) []schema.Event {
	ts := time.Date(2025, 10, 1, 2, 57, 46, 0, time.UTC)
	events := make([]schema.Event, n)
	for i := range events {
		r := &schema.Row{ID: uint64(i + 1), Date: ts.Truncate(24 * time.Hour), Timestamp: ts.Add(time.Duration(i) * time.Second),
			DeviceType: fmt.Sprintf("meter-%05d", i%1000), EventType: "status",
			Message:   sql.NullString{String: message(i), Valid: true},
			CreatedAt: sql.NullTime{Time: ts, Valid: true}, UpdatedAt: sql.NullTime{Time: ts, Valid: true}}
		events[i] = schema.Event{After: r, Op: schema.OpRead, TsMs: 1759371303000,
			Source: schema.Source{Connector: "sluice", Name: "sluice", TsMs: 1759371303000, Snapshot: "true",
				DB: "source_db", Table: "raw_records", File: "mysql-bin.000002", Pos: uint64(i)}}
	}
	return events
}

// TestEncodeRecords checks that the records cut from shared slabs hold
// exactly what AppendKey and AppendEvent give each event, and that no
// record's key or value can grow into another's bytes, across slab
// boundaries and with values larger than a slab.
func TestEncodeRecords(t *testing.T) {
	events := testEvents(5000, func(i int) string {
		switch i {
		case 100, 4000:
			return strings.Repeat("big ", slabSize/3) // a value beyond a slab's free room
		case 101:
			return strings.Repeat("x", slabSize+7) // beyond a whole slab
		}
		return fmt.Sprintf("failed signal passed normal cleared garage temperature %d", i)
	})
	// The second round reuses the first's slabs and records, as a Send
	// after an acknowledged one does: nothing of the first may show.
	first := encodeRecords(events)
	first.recs[0].Partition, first.recs[0].Offset = 5, 42 // as the client sets them
	first.release()
	enc := encodeRecords(events)
	recs := enc.recs
	if len(recs) != len(events) {
		t.Fatalf("%d records for %d events", len(recs), len(events))
	}
	if r := recs[0]; r.Partition != 0 || r.Offset != 0 {
		t.Fatalf("a reused record kept partition %d offset %d from its last Send", r.Partition, r.Offset)
	}
	for i := range recs {
		key := schema.AppendKey(nil, events[i].Key())
		value := schema.AppendEvent(nil, &events[i])
		r := &recs[i]
		if !bytes.Equal(r.Key, key) || !bytes.Equal(r.Value, value) {
			t.Fatalf("record %d: key %.60q value %.60q, want %.60q and %.60q", i, r.Key, r.Value, key, value)
		}
		if cap(r.Key) != len(r.Key) || cap(r.Value) != len(r.Value) {
			t.Fatalf("record %d: key cap %d len %d, value cap %d len %d: an append would write into the next record",
				i, cap(r.Key), len(r.Key), cap(r.Value), len(r.Value))
		}
	}
}

// BenchmarkEncodeRecords encodes a 10,000-event chunk: cut from slabs, as
// Send does, against a key and a value allocated for each record.
//
//	go test -run '^$' -bench EncodeRecords -benchmem -count 6 ./producer
func BenchmarkEncodeRecords(b *testing.B) {
	events := testEvents(10000, func(i int) string {
		return fmt.Sprintf("failed signal passed normal cleared garage temperature normal sensor restored level voltage meter %d", i)
	})
	b.Run("slabs", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			enc := encodeRecords(events)
			enc.release()
		}
	})
	b.Run("per_record", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for i := range events {
				key := schema.AppendKey(nil, events[i].Key())
				value := schema.AppendEvent(nil, &events[i])
				_ = &kgo.Record{Key: key, Value: value}
			}
		}
	})
}
