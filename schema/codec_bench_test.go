package schema

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"testing"

	"time"
)

// The benchmarks pair the codec with the encoding/json baseline it replaced,
// so the gain shows as a ratio from one run:
//
//	go test -run '^$' -bench 'Event' -benchmem ./schema/

func benchEvent() *Event {
	ts := time.Date(2025, 10, 1, 2, 57, 46, 0, time.UTC)
	r := &Row{ID: 123458, Date: time.Date(2025, 10, 1, 0, 0, 0, 0, time.UTC), Timestamp: ts,
		DeviceType: "meter-00983", EventType: "status",
		Message:   sql.NullString{String: "failed signal passed normal cleared garage temperature normal sensor restored level", Valid: true},
		CreatedAt: sql.NullTime{Time: ts, Valid: true}, UpdatedAt: sql.NullTime{Time: ts, Valid: true}}
	return &Event{After: r, Op: OpRead, TsMs: 1759371303000,
		Source: Source{Connector: "sluice", Name: "sluice", TsMs: 1759371303000, Snapshot: "true", DB: "source_db", Table: "raw_records", File: "mysql-bin.000002", Pos: 48213}}
}

// baseline: encoding/json with the same wire shape.

// v1Row is an IoT row as Debezium's JSON converter writes it.
type v1Row struct {
	ID         uint64  `json:"id"`
	Date       *int64  `json:"date"`
	Timestamp  *int64  `json:"timestamp"`
	DeviceType string  `json:"device_type"`
	EventType  string  `json:"event_type"`
	Message    *string `json:"message"`
	CreatedAt  *string `json:"created_at"`
	UpdatedAt  *string `json:"updated_at"`
}
type v1Source struct {
	Source
	Snapshot json.RawMessage `json:"snapshot"`
}

type v1Event struct {
	Before *v1Row   `json:"before"`
	After  *v1Row   `json:"after"`
	Source v1Source `json:"source"`
	Op     Op       `json:"op"`
	TsMs   int64    `json:"ts_ms"`
}

func v1Encode(e *Event) ([]byte, error) {
	toWire := func(r *Row) *v1Row {
		if r == nil {
			return nil
		}
		days := r.Date.UnixMilli() / msPerDay
		ts := r.Timestamp.UnixMilli()
		w := &v1Row{ID: r.ID, Date: &days, Timestamp: &ts, DeviceType: r.DeviceType, EventType: r.EventType, Message: &r.Message.String}
		c := r.CreatedAt.Time.UTC().Format(time.RFC3339Nano)
		w.CreatedAt, w.UpdatedAt = &c, &c
		return w
	}
	snap, _ := json.Marshal(e.Source.Snapshot)
	return json.Marshal(v1Event{Before: toWire(e.Before), After: toWire(e.After), Source: v1Source{Source: e.Source, Snapshot: snap}, Op: e.Op, TsMs: e.TsMs})
}

func BenchmarkEncodeEvent(b *testing.B) {
	e := benchEvent()
	b.Run("append", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 512)
		for b.Loop() {
			buf = AppendEvent(buf[:0], e)
		}
	})
	b.Run("encoding_json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := v1Encode(e); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestBaselineAgrees keeps the baseline honest: it must produce what the
// codec produces, or the benchmark compares different work.
func TestBaselineAgrees(t *testing.T) {
	e := benchEvent()
	a := AppendEvent(nil, e)
	b, _ := v1Encode(e)
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatal(err)
	}
	json.Unmarshal(b, &y)
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	if !bytes.Equal(xa, ya) {
		t.Fatalf("codec and baseline differ:\n%s\n%s", a, b)
	}
}
