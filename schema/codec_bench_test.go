package schema

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"testing"

	jsonv2 "github.com/go-json-experiment/json"
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
type v1Source struct {
	Source
	Snapshot json.RawMessage `json:"snapshot"`
}

type v1Event struct {
	Before *wireRow `json:"before"`
	After  *wireRow `json:"after"`
	Source v1Source `json:"source"`
	Op     Op       `json:"op"`
	TsMs   int64    `json:"ts_ms"`
}

func v1Encode(e *Event) ([]byte, error) {
	toWire := func(r *Row) *wireRow {
		if r == nil {
			return nil
		}
		days := r.Date.UnixMilli() / msPerDay
		ts := r.Timestamp.UnixMilli()
		w := &wireRow{ID: r.ID, Date: &days, Timestamp: &ts, DeviceType: r.DeviceType, EventType: r.EventType, Message: &r.Message.String}
		c := r.CreatedAt.Time.UTC().Format(time.RFC3339Nano)
		w.CreatedAt, w.UpdatedAt = &c, &c
		return w
	}
	snap, _ := json.Marshal(e.Source.Snapshot)
	return json.Marshal(v1Event{Before: toWire(e.Before), After: toWire(e.After), Source: v1Source{Source: e.Source, Snapshot: snap}, Op: e.Op, TsMs: e.TsMs})
}

func v1Decode(b []byte) (Event, error) {
	var probe struct {
		Payload json.RawMessage `json:"payload"`
		Op      Op              `json:"op"`
	}
	if err := json.Unmarshal(b, &probe); err != nil {
		return Event{}, err
	}
	if probe.Op == "" && len(probe.Payload) > 0 && !bytes.Equal(probe.Payload, []byte("null")) {
		b = probe.Payload
	}
	var w v1Event
	if err := json.Unmarshal(b, &w); err != nil {
		return Event{}, err
	}
	e := Event{Source: w.Source.Source, Op: w.Op, TsMs: w.TsMs}
	var err error
	if e.After, err = fromWire(w.After, "after"); err != nil {
		return Event{}, err
	}
	return e, nil
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

func BenchmarkDecodeEvent(b *testing.B) {
	v, _ := EncodeEvent(benchEvent())
	b.Run("fast_path", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(v)))
		for b.Loop() {
			if _, err := DecodeEvent(v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decoder", func(b *testing.B) { // a stream whose records share their source block
		b.ReportAllocs()
		b.SetBytes(int64(len(v)))
		var dec Decoder
		for b.Loop() {
			if _, err := dec.Decode(v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("jsonv2_one_pass", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(v)))
		for b.Loop() {
			var env wireEnvelope
			if err := jsonv2.Unmarshal(v, &env); err != nil {
				b.Fatal(err)
			}
			if _, err := fromWire(env.After, "after"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding_json_two_pass", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(v)))
		for b.Loop() {
			if _, err := v1Decode(v); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestBaselineAgrees keeps the baseline honest: it must produce what the
// codec produces, or the benchmark compares different work.
func TestBaselineAgrees(t *testing.T) {
	e := benchEvent()
	a, _ := EncodeEvent(e)
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
	d1, err := DecodeEvent(a)
	if err != nil {
		t.Fatal(err)
	}
	d2, err := v1Decode(a)
	if err != nil {
		t.Fatal(err)
	}
	if *d1.After != *d2.After || d1.Op != d2.Op {
		t.Fatalf("decoders differ: %+v vs %+v", d1.After, d2.After)
	}
}
