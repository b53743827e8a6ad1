package schema

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
)

var (
	testDate = time.Date(2024, 3, 5, 0, 0, 0, 0, time.UTC)
	testTS   = time.Date(2024, 3, 5, 13, 14, 15, 678_000_000, time.UTC)
)

// testRow is a fully populated row; the variants change one thing each.
func testRow() *Row {
	return &Row{
		ID:         1<<63 + 5, // above MaxInt64
		Date:       testDate,
		Timestamp:  testTS,
		DeviceType: "sensor-00042",
		EventType:  "reading",
		Message:    sql.NullString{String: "temperature high", Valid: true},
		CreatedAt:  sql.NullTime{Time: time.Date(2024, 3, 5, 13, 14, 16, 123456789, time.UTC), Valid: true},
		UpdatedAt:  sql.NullTime{Time: time.Date(2024, 3, 5, 13, 20, 0, 0, time.UTC), Valid: true},
	}
}

func testSource(snapshot string) Source {
	return Source{Connector: "sluice", Name: "sluice", TsMs: 1709644500000, Snapshot: snapshot,
		DB: "source_db", Table: "raw_records", ServerID: 7, File: "mysql-bin.000003", Pos: 1234, Row: 2}
}

// rowDiff describes how two rows differ, "" if they are equal. Times compare
// as instants.
func rowDiff(a, b *Row) string {
	switch {
	case a == nil && b == nil:
		return ""
	case a == nil || b == nil:
		return fmt.Sprintf("one row is nil: %v vs %v", a, b)
	}
	var d []string
	add := func(field string, x, y any) { d = append(d, fmt.Sprintf("%s: %v != %v", field, x, y)) }
	if a.ID != b.ID {
		add("id", a.ID, b.ID)
	}
	if !a.Date.Equal(b.Date) {
		add("date", a.Date, b.Date)
	}
	if !a.Timestamp.Equal(b.Timestamp) {
		add("timestamp", a.Timestamp, b.Timestamp)
	}
	if a.DeviceType != b.DeviceType {
		add("device_type", a.DeviceType, b.DeviceType)
	}
	if a.EventType != b.EventType {
		add("event_type", a.EventType, b.EventType)
	}
	if a.Message != b.Message {
		add("message", a.Message, b.Message)
	}
	if a.CreatedAt.Valid != b.CreatedAt.Valid || !a.CreatedAt.Time.Equal(b.CreatedAt.Time) {
		add("created_at", a.CreatedAt, b.CreatedAt)
	}
	if a.UpdatedAt.Valid != b.UpdatedAt.Valid || !a.UpdatedAt.Time.Equal(b.UpdatedAt.Time) {
		add("updated_at", a.UpdatedAt, b.UpdatedAt)
	}
	return strings.Join(d, "; ")
}

// eventDiff describes how two events differ, "" if they are equal.
func eventDiff(a, b *Event) string {
	var d []string
	if s := rowDiff(a.Before, b.Before); s != "" {
		d = append(d, "before: "+s)
	}
	if s := rowDiff(a.After, b.After); s != "" {
		d = append(d, "after: "+s)
	}
	if a.Source != b.Source {
		d = append(d, fmt.Sprintf("source: %+v != %+v", a.Source, b.Source))
	}
	if a.Op != b.Op {
		d = append(d, fmt.Sprintf("op: %q != %q", a.Op, b.Op))
	}
	if a.TsMs != b.TsMs {
		d = append(d, fmt.Sprintf("ts_ms: %d != %d", a.TsMs, b.TsMs))
	}
	return strings.Join(d, "\n")
}

// checkUTC asserts that every time of a decoded row is labelled UTC.
func checkUTC(t *testing.T, which string, r *Row) {
	t.Helper()
	if r == nil {
		return
	}
	for name, tm := range map[string]time.Time{"date": r.Date, "timestamp": r.Timestamp,
		"created_at": r.CreatedAt.Time, "updated_at": r.UpdatedAt.Time} {
		if tm.Location() != time.UTC {
			t.Errorf("%s.%s = %v: location %v, want UTC", which, name, tm, tm.Location())
		}
	}
}

func TestEventRoundTrip(t *testing.T) {
	withRow := func(f func(*Row)) *Row { r := testRow(); f(r); return r }
	tests := []struct {
		name string
		ev   Event
	}{
		{name: "snapshot read", ev: Event{After: testRow(), Source: testSource("true"), Op: OpRead, TsMs: 1709644500123}},
		{name: "create", ev: Event{After: testRow(), Source: testSource("false"), Op: OpCreate, TsMs: 1}},
		{name: "update with before", ev: Event{
			Before: withRow(func(r *Row) { r.Message.String = "old" }),
			After:  testRow(), Source: testSource("false"), Op: OpUpdate, TsMs: 2}},
		{name: "delete", ev: Event{Before: testRow(), Source: testSource("false"), Op: OpDelete, TsMs: 3}},
		{name: "NULL message", ev: Event{After: withRow(func(r *Row) { r.Message = sql.NullString{} }), Source: testSource("true"), Op: OpRead}},
		{name: "empty message is not NULL", ev: Event{After: withRow(func(r *Row) { r.Message = sql.NullString{Valid: true} }), Source: testSource("true"), Op: OpRead}},
		{name: "NULL created_at and updated_at", ev: Event{After: withRow(func(r *Row) {
			r.CreatedAt, r.UpdatedAt = sql.NullTime{}, sql.NullTime{}
		}), Source: testSource("false"), Op: OpCreate}},
		{name: "non-ASCII message", ev: Event{After: withRow(func(r *Row) {
			r.Message.String = `straße ÿ 日本語 🚪 "quoted" \ back <tag> & 	tab`
		}), Source: testSource("false"), Op: OpCreate}},
		{name: "id MaxUint64", ev: Event{After: withRow(func(r *Row) { r.ID = math.MaxUint64 }), Source: testSource("false"), Op: OpCreate}},
		{name: "id 0", ev: Event{After: withRow(func(r *Row) { r.ID = 0 }), Source: testSource("false"), Op: OpCreate}},
		{name: "date before the epoch", ev: Event{After: withRow(func(r *Row) {
			r.Date = time.Date(1969, 7, 20, 0, 0, 0, 0, time.UTC)
			r.Timestamp = time.Date(1969, 7, 20, 20, 17, 40, 0, time.UTC)
		}), Source: testSource("false"), Op: OpCreate}},
		{name: "gtid", ev: Event{After: testRow(), Source: func() Source {
			s := testSource("false")
			s.GTID = "3E11FA47-71CA-11E1-9E33-C80AA9429562:23"
			return s
		}(), Op: OpCreate}},
		{name: "no binlog position", ev: Event{After: testRow(), Source: Source{Connector: "sluice", Name: "sluice", Snapshot: "true"}, Op: OpRead}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := EncodeEvent(&tt.ev)
			if err != nil {
				t.Fatalf("EncodeEvent: %v", err)
			}
			got, err := DecodeEvent(b)
			if err != nil {
				t.Fatalf("DecodeEvent(%s): %v", b, err)
			}
			if d := eventDiff(&tt.ev, &got); d != "" {
				t.Errorf("round trip of %s changed the event:\n%s", b, d)
			}
			checkUTC(t, "before", got.Before)
			checkUTC(t, "after", got.After)
			if got.Key().Compare(tt.ev.Key()) != 0 {
				t.Errorf("Key() = %v, want %v", got.Key(), tt.ev.Key())
			}
		})
	}
}

func TestEncodeEventTruncatesTimestampToMillis(t *testing.T) {
	r := testRow()
	r.Timestamp = time.Date(2024, 3, 5, 13, 14, 15, 678_999_999, time.UTC)
	b, err := EncodeEvent(&Event{After: r, Op: OpCreate})
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeEvent(b)
	if err != nil {
		t.Fatal(err)
	}
	if want := testTS; !got.After.Timestamp.Equal(want) {
		t.Errorf("timestamp = %v, want %v (epoch milliseconds)", got.After.Timestamp, want)
	}
}

// decodeJSON unmarshals b keeping numbers exact.
func decodeJSON(t *testing.T, b []byte) map[string]any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		t.Fatalf("encoded event is not a JSON object: %v\n%s", err, b)
	}
	return m
}

// TestEncodeEventShape checks the JSON against Debezium's default MySQL
// mapping, which a Debezium consumer of the topic relies on.
func TestEncodeEventShape(t *testing.T) {
	plus2 := time.FixedZone("+02:00", 2*60*60)
	r := testRow()
	r.CreatedAt = sql.NullTime{Time: time.Date(2024, 3, 5, 15, 14, 16, 0, plus2), Valid: true} // 13:14:16Z
	r.UpdatedAt = sql.NullTime{}
	r.Message = sql.NullString{}
	e := Event{After: r, Source: testSource("true"), Op: OpRead, TsMs: 1709644500123}
	b, err := EncodeEvent(&e)
	if err != nil {
		t.Fatal(err)
	}
	m := decodeJSON(t, b)

	if v, ok := m["before"]; !ok || v != nil {
		t.Errorf("before = %v (present %v), want null", v, ok)
	}
	if m["op"] != "r" {
		t.Errorf("op = %#v, want \"r\"", m["op"])
	}
	if m["ts_ms"] != json.Number("1709644500123") {
		t.Errorf("ts_ms = %#v, want 1709644500123", m["ts_ms"])
	}
	after, ok := m["after"].(map[string]any)
	if !ok {
		t.Fatalf("after = %#v, want an object", m["after"])
	}
	wantAfter := map[string]any{
		"id":          json.Number("9223372036854775813"),
		"date":        json.Number("19787"),         // days since 1970-01-01
		"timestamp":   json.Number("1709644455678"), // epoch ms of the wall clock
		"device_type": "sensor-00042",
		"event_type":  "reading",
		"message":     nil,
		"created_at":  "2024-03-05T13:14:16Z", // RFC 3339 in UTC
		"updated_at":  nil,
	}
	for k, want := range wantAfter {
		got, ok := after[k]
		if !ok {
			t.Errorf("after.%s missing", k)
			continue
		}
		if got != want {
			t.Errorf("after.%s = %#v, want %#v", k, got, want)
		}
	}
	if len(after) != len(wantAfter) {
		t.Errorf("after has %d fields, want %d: %v", len(after), len(wantAfter), after)
	}
	src, ok := m["source"].(map[string]any)
	if !ok {
		t.Fatalf("source = %#v, want an object", m["source"])
	}
	wantSrc := map[string]any{
		"connector": "sluice", "name": "sluice", "ts_ms": json.Number("1709644500000"),
		"snapshot": "true", // a string, as Debezium 1.x and later write it
		"db":       "source_db", "table": "raw_records", "server_id": json.Number("7"),
		"file": "mysql-bin.000003", "pos": json.Number("1234"), "row": json.Number("2"),
	}
	for k, want := range wantSrc {
		if got := src[k]; got != want {
			t.Errorf("source.%s = %#v, want %#v", k, got, want)
		}
	}
	if _, ok := src["gtid"]; ok {
		t.Errorf("source.gtid present without a GTID: %v", src)
	}
}

func TestEncodeEventSnapshotFalse(t *testing.T) {
	b, err := EncodeEvent(&Event{After: testRow(), Source: testSource("false"), Op: OpCreate})
	if err != nil {
		t.Fatal(err)
	}
	src := decodeJSON(t, b)["source"].(map[string]any)
	if src["snapshot"] != "false" {
		t.Errorf("source.snapshot = %#v, want \"false\"", src["snapshot"])
	}
}

func TestEncodeEventDelete(t *testing.T) {
	b, err := EncodeEvent(&Event{Before: testRow(), Source: testSource("false"), Op: OpDelete})
	if err != nil {
		t.Fatal(err)
	}
	m := decodeJSON(t, b)
	if v, ok := m["after"]; !ok || v != nil {
		t.Errorf("after = %v (present %v), want null", v, ok)
	}
	if before, ok := m["before"].(map[string]any); !ok || before["device_type"] != "sensor-00042" {
		t.Errorf("before = %#v, want the row", m["before"])
	}
}

// debeziumSchema is the schema half of a Debezium MySQL connector record
// written by the JSON converter with schemas.enable=true.
const debeziumSchema = `{
	"type": "struct",
	"fields": [
		{"type": "struct", "fields": [
			{"type": "int64", "optional": false, "field": "id"},
			{"type": "int32", "optional": false, "name": "io.debezium.time.Date", "version": 1, "field": "date"},
			{"type": "int64", "optional": false, "name": "io.debezium.time.Timestamp", "version": 1, "field": "timestamp"},
			{"type": "string", "optional": false, "field": "device_type"},
			{"type": "string", "optional": false, "field": "event_type"},
			{"type": "string", "optional": true, "field": "message"},
			{"type": "string", "optional": true, "name": "io.debezium.time.ZonedTimestamp", "version": 1, "field": "created_at"},
			{"type": "string", "optional": true, "name": "io.debezium.time.ZonedTimestamp", "version": 1, "field": "updated_at"}
		], "optional": true, "name": "dbserver1.source_db.raw_records.Value", "field": "before"},
		{"type": "struct", "fields": [
			{"type": "int64", "optional": false, "field": "id"},
			{"type": "int32", "optional": false, "name": "io.debezium.time.Date", "version": 1, "field": "date"},
			{"type": "int64", "optional": false, "name": "io.debezium.time.Timestamp", "version": 1, "field": "timestamp"},
			{"type": "string", "optional": false, "field": "device_type"},
			{"type": "string", "optional": false, "field": "event_type"},
			{"type": "string", "optional": true, "field": "message"},
			{"type": "string", "optional": true, "name": "io.debezium.time.ZonedTimestamp", "version": 1, "field": "created_at"},
			{"type": "string", "optional": true, "name": "io.debezium.time.ZonedTimestamp", "version": 1, "field": "updated_at"}
		], "optional": true, "name": "dbserver1.source_db.raw_records.Value", "field": "after"},
		{"type": "struct", "fields": [
			{"type": "string", "optional": false, "field": "version"},
			{"type": "string", "optional": false, "field": "connector"},
			{"type": "string", "optional": false, "field": "name"},
			{"type": "int64", "optional": false, "field": "ts_ms"},
			{"type": "string", "optional": true, "name": "io.debezium.data.Enum", "version": 1,
			 "parameters": {"allowed": "true,last,false,incremental"}, "default": "false", "field": "snapshot"},
			{"type": "string", "optional": false, "field": "db"},
			{"type": "string", "optional": true, "field": "sequence"},
			{"type": "string", "optional": true, "field": "table"},
			{"type": "int64", "optional": false, "field": "server_id"},
			{"type": "string", "optional": true, "field": "gtid"},
			{"type": "string", "optional": false, "field": "file"},
			{"type": "int64", "optional": false, "field": "pos"},
			{"type": "int32", "optional": false, "field": "row"},
			{"type": "int64", "optional": true, "field": "thread"},
			{"type": "string", "optional": true, "field": "query"}
		], "optional": false, "name": "io.debezium.connector.mysql.Source", "field": "source"},
		{"type": "string", "optional": false, "field": "op"},
		{"type": "int64", "optional": true, "field": "ts_ms"},
		{"type": "struct", "fields": [
			{"type": "string", "optional": false, "field": "id"},
			{"type": "int64", "optional": false, "field": "total_order"},
			{"type": "int64", "optional": false, "field": "data_collection_order"}
		], "optional": true, "name": "event.block", "version": 1, "field": "transaction"}
	],
	"optional": false,
	"name": "dbserver1.source_db.raw_records.Envelope",
	"version": 1
}`

const debeziumAfter = `{"id": 1001, "date": 19787, "timestamp": 1709644455678, "device_type": "sensor-00042",
	"event_type": "reading", "message": "temperature high", "created_at": "2024-03-05T13:14:16Z", "updated_at": null}`

func debeziumRecord(payload string) string {
	return `{"schema": ` + debeziumSchema + `, "payload": ` + payload + `}`
}

func TestDecodeDebezium(t *testing.T) {
	wantAfter := &Row{
		ID: 1001, Date: testDate, Timestamp: testTS, DeviceType: "sensor-00042", EventType: "reading",
		Message:   sql.NullString{String: "temperature high", Valid: true},
		CreatedAt: sql.NullTime{Time: time.Date(2024, 3, 5, 13, 14, 16, 0, time.UTC), Valid: true},
	}
	snapshotLast := `{"before": null, "after": ` + debeziumAfter + `,
		"source": {"version": "2.5.0.Final", "connector": "mysql", "name": "dbserver1", "ts_ms": 1709644500000,
			"snapshot": "last", "db": "source_db", "sequence": null, "table": "raw_records", "server_id": 0,
			"gtid": null, "file": "mysql-bin.000003", "pos": 157, "row": 0, "thread": null, "query": null},
		"op": "r", "ts_ms": 1709644500123, "transaction": null}`
	create := `{"before": null, "after": ` + debeziumAfter + `,
		"source": {"version": "2.5.0.Final", "connector": "mysql", "name": "dbserver1", "ts_ms": 1709644501000,
			"snapshot": "false", "db": "source_db", "sequence": null, "table": "raw_records", "server_id": 223344,
			"gtid": "3E11FA47-71CA-11E1-9E33-C80AA9429562:23", "file": "mysql-bin.000004", "pos": 1543, "row": 1,
			"thread": 7, "query": null},
		"op": "c", "ts_ms": 1709644501234, "transaction": {"id": "file=mysql-bin.000004,pos=1400", "total_order": 1, "data_collection_order": 1}}`
	deleted := `{"before": ` + debeziumAfter + `, "after": null,
		"source": {"version": "2.5.0.Final", "connector": "mysql", "name": "dbserver1", "ts_ms": 1709644502000,
			"snapshot": "false", "db": "source_db", "sequence": null, "table": "raw_records", "server_id": 223344,
			"gtid": null, "file": "mysql-bin.000004", "pos": 2000, "row": 0, "thread": 7, "query": null},
		"op": "d", "ts_ms": 1709644502345, "transaction": null}`
	// Debezium 0.x wrote snapshot as a boolean.
	boolSnapshot := `{"before": null, "after": ` + debeziumAfter + `,
		"source": {"version": "0.9.5.Final", "name": "dbserver1", "server_id": 0, "ts_sec": 0, "gtid": null,
			"file": "mysql-bin.000003", "pos": 154, "row": 0, "snapshot": true, "thread": null,
			"db": "source_db", "table": "raw_records", "query": null},
		"op": "r", "ts_ms": 1709644500123}`
	boolSnapshotFalse := strings.Replace(boolSnapshot, `"snapshot": true`, `"snapshot": false`, 1)
	noSnapshot := strings.Replace(boolSnapshot, `"snapshot": true,`, ``, 1)

	tests := []struct {
		name     string
		in       string
		op       Op
		snapshot string
		file     string
		pos      uint64
		gtid     string
		before   bool // the row is the before image
	}{
		{name: "wrapped snapshot last", in: debeziumRecord(snapshotLast), op: OpRead, snapshot: "last", file: "mysql-bin.000003", pos: 157},
		{name: "payload only snapshot last", in: snapshotLast, op: OpRead, snapshot: "last", file: "mysql-bin.000003", pos: 157},
		{name: "wrapped create", in: debeziumRecord(create), op: OpCreate, snapshot: "false", file: "mysql-bin.000004", pos: 1543,
			gtid: "3E11FA47-71CA-11E1-9E33-C80AA9429562:23"},
		{name: "wrapped delete", in: debeziumRecord(deleted), op: OpDelete, snapshot: "false", file: "mysql-bin.000004", pos: 2000, before: true},
		{name: "wrapped boolean snapshot true", in: debeziumRecord(boolSnapshot), op: OpRead, snapshot: "true", file: "mysql-bin.000003", pos: 154},
		{name: "payload only boolean snapshot true", in: boolSnapshot, op: OpRead, snapshot: "true", file: "mysql-bin.000003", pos: 154},
		{name: "boolean snapshot false", in: boolSnapshotFalse, op: OpRead, snapshot: "false", file: "mysql-bin.000003", pos: 154},
		{name: "no snapshot field", in: noSnapshot, op: OpRead, snapshot: "false", file: "mysql-bin.000003", pos: 154},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !json.Valid([]byte(tt.in)) {
				t.Fatalf("test input is not JSON")
			}
			e, err := DecodeEvent([]byte(tt.in))
			if err != nil {
				t.Fatalf("DecodeEvent: %v", err)
			}
			if e.Op != tt.op {
				t.Errorf("op = %q, want %q", e.Op, tt.op)
			}
			if e.Source.Snapshot != tt.snapshot {
				t.Errorf("source.snapshot = %q, want %q", e.Source.Snapshot, tt.snapshot)
			}
			if e.Source.File != tt.file || e.Source.Pos != tt.pos || e.Source.GTID != tt.gtid {
				t.Errorf("source position = %s:%d gtid %q, want %s:%d gtid %q", e.Source.File, e.Source.Pos, e.Source.GTID, tt.file, tt.pos, tt.gtid)
			}
			if e.Source.DB != "source_db" || e.Source.Table != "raw_records" || e.Source.Name != "dbserver1" {
				t.Errorf("source = %+v, want db source_db, table raw_records, name dbserver1", e.Source)
			}
			row, other := e.After, e.Before
			if tt.before {
				row, other = e.Before, e.After
			}
			if other != nil {
				t.Errorf("unexpected second image %+v", other)
			}
			if d := rowDiff(row, wantAfter); d != "" {
				t.Errorf("row differs: %s", d)
			}
			checkUTC(t, "row", row)
			if e.Key() != wantAfter.Key() {
				t.Errorf("Key() = %v, want %v", e.Key(), wantAfter.Key())
			}
		})
	}
}

// TestDecodeTruncate reads Debezium's MySQL truncate event (op "t", no
// images, the source block of the TRUNCATE statement) and Sluice's own, and
// keeps the version of the statement's binlog position.
func TestDecodeTruncate(t *testing.T) {
	debezium := `{"before": null, "after": null,
		"source": {"version": "2.5.0.Final", "connector": "mysql", "name": "dbserver1", "ts_ms": 1709644503000,
			"snapshot": "false", "db": "source_db", "sequence": null, "table": "raw_records", "server_id": 223344,
			"gtid": null, "file": "mysql-bin.000004", "pos": 2600, "row": 0, "thread": 7, "query": null},
		"op": "t", "ts_ms": 1709644503456, "transaction": null}`
	own := AppendEvent(nil, &Event{Op: OpTruncate, TsMs: 5, Source: Source{Connector: "mysql", Name: "sluice",
		DB: "source_db", Table: "raw_records", File: "mysql-bin.000004", Pos: 2600, Snapshot: "false"}})
	for _, tc := range []struct {
		name string
		in   []byte
	}{{"debezium", []byte(debezium)}, {"sluice", own}} {
		var dec Decoder
		for _, decode := range []func([]byte) (Event, error){DecodeEvent, dec.Decode} {
			e, err := decode(tc.in)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			if e.Op != OpTruncate || e.Before != nil || e.After != nil || e.Source.Table != "raw_records" {
				t.Errorf("%s: decoded %+v, want a truncate of raw_records without images", tc.name, e)
			}
			if v, ok := e.Source.Version(); !ok || v != 4<<32|2600 {
				t.Errorf("%s: version %d (%v), want mysql-bin.000004:2600", tc.name, v, ok)
			}
			if k := e.Key(); k != (Key{}) {
				t.Errorf("%s: key %v, want none", tc.name, k)
			}
		}
	}
}

func TestDecodeDebeziumTsMs(t *testing.T) {
	e, err := DecodeEvent([]byte(debeziumRecord(`{"before": null, "after": ` + debeziumAfter +
		`, "source": {"connector": "mysql", "snapshot": "false", "ts_ms": 5}, "op": "u", "ts_ms": 1709644501234}`)))
	if err != nil {
		t.Fatal(err)
	}
	if e.TsMs != 1709644501234 || e.Source.TsMs != 5 || e.Source.Connector != "mysql" {
		t.Errorf("ts_ms %d, source.ts_ms %d, connector %q; want 1709644501234, 5, mysql", e.TsMs, e.Source.TsMs, e.Source.Connector)
	}
}

func TestDecodeMalformed(t *testing.T) {
	after := debeziumAfter
	tests := []struct {
		name string
		in   string
		want string // part of the message
	}{
		{name: "empty", in: ``},
		{name: "not JSON", in: `not json`},
		{name: "truncated", in: `{"op":"c","after":{"id":1`},
		{name: "JSON null (a tombstone)", in: `null`, want: "unknown op"},
		{name: "JSON array", in: `[1,2]`},
		{name: "JSON string", in: `"c"`},
		{name: "empty object", in: `{}`, want: "unknown op"},
		{name: "unknown op", in: `{"op":"x","after":` + after + `}`, want: `unknown op "x"`},
		{name: "truncate op with an image", in: `{"op":"t","before":` + after + `}`, want: `op "t" with a row image`},
		{name: "op c without after", in: `{"op":"c","before":` + after + `}`, want: `op "c" without an after image`},
		{name: "op u without after", in: `{"op":"u","after":null}`, want: `op "u" without an after image`},
		{name: "op r without after", in: `{"op":"r"}`, want: `op "r" without an after image`},
		{name: "op d without before", in: `{"op":"d","after":` + after + `}`, want: `without a before image`},
		{name: "after without timestamp", in: `{"op":"c","after":{"id":1,"date":19787,"device_type":"a","event_type":"b"}}`, want: "after: date and timestamp are required"},
		{name: "after with null timestamp", in: `{"op":"c","after":{"id":1,"date":19787,"timestamp":null,"device_type":"a","event_type":"b"}}`, want: "timestamp"},
		{name: "after without date", in: `{"op":"c","after":{"id":1,"timestamp":1,"device_type":"a","event_type":"b"}}`, want: "date"},
		{name: "before without timestamp", in: `{"op":"d","before":{"id":1,"date":19787}}`, want: "before: date and timestamp"},
		{name: "bad created_at", in: `{"op":"c","after":{"id":1,"date":1,"timestamp":1,"created_at":"yesterday"}}`, want: "after.created_at"},
		{name: "bad updated_at", in: `{"op":"c","after":{"id":1,"date":1,"timestamp":1,"updated_at":"2024-03-05 13:14:16"}}`, want: "after.updated_at"},
		{name: "negative id", in: `{"op":"c","after":{"id":-1,"date":1,"timestamp":1}}`},
		{name: "id beyond uint64", in: `{"op":"c","after":{"id":18446744073709551616,"date":1,"timestamp":1}}`},
		{name: "timestamp as string", in: `{"op":"c","after":{"id":1,"date":1,"timestamp":"2024-03-05"}}`},
		{name: "snapshot as number", in: `{"op":"c","after":{"id":1,"date":1,"timestamp":1},"source":{"snapshot":1}}`, want: "source.snapshot"},
		{name: "wrapped payload not an event", in: `{"schema":{},"payload":"c"}`},
		{name: "wrapped payload without op", in: `{"schema":{},"payload":{"after":` + after + `}}`, want: "unknown op"},
		{name: "wrapped null payload", in: `{"schema":{},"payload":null}`, want: "unknown op"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := DecodeEvent([]byte(tt.in))
			if err == nil {
				t.Fatalf("DecodeEvent(%s) = %+v, want an error", tt.in, e)
			}
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("error %q does not wrap ErrMalformed", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestEncodeKey(t *testing.T) {
	tests := []struct {
		name string
		k    Key
		want string
	}{
		{name: "plain", k: Key{DeviceType: "sensor-00042", EventType: "reading", Timestamp: testTS},
			want: `{"device_type":"sensor-00042","event_type":"reading","timestamp":1709644455678}`},
		{name: "epoch", k: Key{DeviceType: "a", EventType: "b", Timestamp: time.Unix(0, 0).UTC()},
			want: `{"device_type":"a","event_type":"b","timestamp":0}`},
		{name: "needs escaping", k: Key{DeviceType: `d"q`, EventType: "é", Timestamp: time.UnixMilli(-1).UTC()},
			want: `{"device_type":"d\"q","event_type":"é","timestamp":-1}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := EncodeKey(tt.k)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tt.want {
				t.Errorf("EncodeKey = %s, want %s", b, tt.want)
			}
		})
	}
}

func TestEncodeKeySameForSameKey(t *testing.T) {
	// One logical key must always give the same record key (one partition),
	// whatever zone its time is labelled with.
	a := Key{DeviceType: "d", EventType: "e", Timestamp: testTS}
	b := Key{DeviceType: "d", EventType: "e", Timestamp: testTS.In(time.FixedZone("x", 3600))}
	ka, _ := EncodeKey(a)
	kb, _ := EncodeKey(b)
	if !bytes.Equal(ka, kb) {
		t.Errorf("EncodeKey differs for the same instant: %s vs %s", ka, kb)
	}
	r := testRow()
	ev := Event{After: r}
	kr, _ := EncodeKey(ev.Key())
	if want := `{"device_type":"sensor-00042","event_type":"reading","timestamp":1709644455678}`; string(kr) != want {
		t.Errorf("EncodeKey(event key) = %s, want %s", kr, want)
	}
}

func TestKeyCompare(t *testing.T) {
	t0 := testTS
	k := func(d, e string, ts time.Time) Key { return Key{DeviceType: d, EventType: e, Timestamp: ts} }
	tests := []struct {
		name string
		a, b Key
		want int
	}{
		{name: "equal", a: k("a", "x", t0), b: k("a", "x", t0), want: 0},
		{name: "same instant, other zone", a: k("a", "x", t0), b: k("a", "x", t0.In(time.FixedZone("x", -3600))), want: 0},
		{name: "device first", a: k("a", "z", t0.Add(time.Hour)), b: k("b", "a", t0), want: -1},
		{name: "event second", a: k("a", "x", t0.Add(time.Hour)), b: k("a", "y", t0), want: -1},
		{name: "timestamp last", a: k("a", "x", t0), b: k("a", "x", t0.Add(time.Millisecond)), want: -1},
		{name: "prefix sorts first", a: k("sensor", "x", t0), b: k("sensor-1", "x", t0), want: -1},
		{name: "bytewise", a: k("Z", "x", t0), b: k("a", "x", t0), want: -1},
		{name: "empty key first", a: Key{}, b: k("", "", t0), want: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.a.Compare(tt.b); got != tt.want {
				t.Errorf("%v.Compare(%v) = %d, want %d", tt.a, tt.b, got, tt.want)
			}
			if got := tt.b.Compare(tt.a); got != -tt.want {
				t.Errorf("%v.Compare(%v) = %d, want %d", tt.b, tt.a, got, -tt.want)
			}
		})
	}
}

func TestEventKey(t *testing.T) {
	r := testRow()
	other := testRow()
	other.DeviceType = "other"
	if got := (&Event{After: r, Before: other}).Key(); got != r.Key() {
		t.Errorf("Key() with after = %v, want the after image's %v", got, r.Key())
	}
	if got := (&Event{Before: other, Op: OpDelete}).Key(); got != other.Key() {
		t.Errorf("Key() of a delete = %v, want the before image's %v", got, other.Key())
	}
	if got := (&Event{}).Key(); got != (Key{}) {
		t.Errorf("Key() of an empty event = %v, want the zero key", got)
	}
}

func TestSourceVersion(t *testing.T) {
	tests := []struct {
		name string
		src  Source
		want uint64
		ok   bool
	}{
		{name: "file 3 pos 4", src: Source{File: "mysql-bin.000003", Pos: 4}, want: 3<<32 | 4, ok: true},
		{name: "MariaDB name", src: Source{File: "mariadb-bin.000123", Pos: 0}, want: 123 << 32, ok: true},
		{name: "dotted base name", src: Source{File: "host.example.com-bin.000002", Pos: 9}, want: 2<<32 | 9, ok: true},
		{name: "largest pos", src: Source{File: "b.1", Pos: 1<<32 - 1}, want: 1<<32 | (1<<32 - 1), ok: true},
		{name: "empty file", src: Source{Pos: 4}},
		{name: "no dot", src: Source{File: "mysql-bin", Pos: 4}},
		{name: "not a number", src: Source{File: "mysql-bin.abc", Pos: 4}},
		{name: "empty sequence", src: Source{File: "mysql-bin.", Pos: 4}},
		{name: "largest sequence", src: Source{File: "mysql-bin.1048575", Pos: 4}, want: (1<<20-1)<<32 | 4, ok: true},
		{name: "sequence beyond 20 bits", src: Source{File: "mysql-bin.1048576", Pos: 4}},
		{name: "epoch 1", src: Source{File: "mysql-bin.000001", Pos: 4, Epoch: 1}, want: 1<<52 | 1<<32 | 4, ok: true},
		{name: "largest epoch", src: Source{File: "b.1", Pos: 4, Epoch: MaxEpoch}, want: MaxEpoch<<52 | 1<<32 | 4, ok: true},
		{name: "epoch beyond 12 bits", src: Source{File: "b.1", Pos: 4, Epoch: MaxEpoch + 1}},
		{name: "pos beyond 32 bits", src: Source{File: "mysql-bin.000003", Pos: 1 << 32}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := tt.src.Version()
			if got != tt.want || ok != tt.ok {
				t.Errorf("Version() = %d, %v; want %d, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestSourceVersionOrdersBinlog(t *testing.T) {
	a, _ := Source{File: "mysql-bin.000003", Pos: 1<<32 - 1}.Version()
	b, _ := Source{File: "mysql-bin.000004", Pos: 4}.Version()
	c, _ := Source{File: "mysql-bin.000004", Pos: 5}.Version()
	if !(a < b && b < c) {
		t.Errorf("versions %d, %d, %d are not in binlog order", a, b, c)
	}
	// A binlog reset starts the numbering again: the next epoch's first
	// position is newer than the last epoch's last one.
	last, _ := Source{File: "mysql-bin.1048575", Pos: 1<<32 - 1}.Version()
	first, _ := Source{File: "mysql-bin.000001", Pos: 4, Epoch: 1}.Version()
	if first <= last {
		t.Errorf("epoch 1's first version %d is not newer than epoch 0's last %d", first, last)
	}
}

func TestEpochTravels(t *testing.T) {
	for _, epoch := range []uint16{0, 1, MaxEpoch} {
		ev := Event{Op: OpDelete, Before: &Row{ID: 1, DeviceType: "d", EventType: "e"},
			Source: Source{Connector: "mysql", File: "mysql-bin.000002", Pos: 77, Epoch: epoch}}
		b := AppendEvent(nil, &ev)
		if got := bytes.Contains(b, []byte(`"sluice_epoch"`)); got != (epoch != 0) {
			t.Errorf("epoch %d: sluice_epoch written = %v in %s", epoch, got, b)
		}
		for name, decode := range map[string]func([]byte) (Event, error){"fast": new(Decoder).Decode, "json": func(b []byte) (Event, error) {
			// The slow path: an unknown member sends the fast decoder to json/v2.
			return DecodeEvent(append(bytes.Clone(bytes.TrimSuffix(b, []byte("}"))), `,"transaction":null}`...))
		}} {
			got, err := decode(b)
			if err != nil || got.Source.Epoch != epoch {
				t.Errorf("%s decode of epoch %d: %d, %v", name, epoch, got.Source.Epoch, err)
			}
		}
	}
}

func TestQuoteIdent(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    string
		wantErr bool
	}{
		{name: "plain", in: "source_db", want: "`source_db`"},
		{name: "backtick doubled", in: "a`b", want: "`a``b`"},
		{name: "only backticks", in: "``", want: "``````"},
		{name: "injection attempt", in: "x`; DROP TABLE t; --", want: "`x``; DROP TABLE t; --`"},
		{name: "space and dot", in: "my db.t", want: "`my db.t`"},
		{name: "64 chars", in: strings.Repeat("a", 64), want: "`" + strings.Repeat("a", 64) + "`"},
		{name: "empty", in: "", wantErr: true},
		{name: "65 chars", in: strings.Repeat("a", 65), wantErr: true},
		{name: "NUL byte", in: "a\x00b", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := QuoteIdent(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("QuoteIdent(%q) = %q, want an error", tt.in, got)
				}
				if got != "" {
					t.Errorf("QuoteIdent(%q) returned %q with its error", tt.in, got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("QuoteIdent(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestLineageColumns(t *testing.T) {
	cols := lineageColumns()
	var names []string
	for _, c := range cols {
		if c.def == "" {
			t.Errorf("column %s has no definition", c.name)
		}
		names = append(names, c.name)
	}
	if got, want := strings.Join(names, ","), "source_id,source_version,loaded_at"; got != want {
		t.Errorf("lineage columns = %s, want %s", got, want)
	}
}

// TestDecodeRejectsValuesOutOfRange covers values the fuzzer and review
// found: they used to decode to garbage or to rows that cannot re-encode.
func TestDecodeRejectsValuesOutOfRange(t *testing.T) {
	for _, tc := range []struct{ name, value string }{
		{"date overflowing milliseconds", `{"op":"c","after":{"id":1,"date":200000000000,"timestamp":0}}`},
		{"timestamp beyond year 9999", `{"op":"c","after":{"id":1,"date":0,"timestamp":253402300800000}}`},
		{"created_at before year 0 in UTC", `{"op":"c","after":{"id":1,"date":0,"timestamp":0,"created_at":"0000-01-01T00:00:00+01:00"}}`},
		{"updated_at after year 9999 in UTC", `{"op":"c","after":{"id":1,"date":0,"timestamp":0,"updated_at":"9999-12-31T23:00:00-01:00"}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := DecodeEvent([]byte(tc.value)); !errors.Is(err, ErrMalformed) {
				t.Errorf("DecodeEvent = %v, want ErrMalformed", err)
			}
		})
	}
}

// TestEncodeKeepsCalendarDayOfZonedDate: Date is a calendar day; its zone
// label must not shift it.
func TestEncodeKeepsCalendarDayOfZonedDate(t *testing.T) {
	zone := time.FixedZone("UTC+2", 2*3600)
	r := &Row{ID: 1, Date: time.Date(2024, 3, 5, 0, 0, 0, 0, zone), Timestamp: time.Date(2024, 3, 5, 1, 0, 0, 0, time.UTC), DeviceType: "d", EventType: "e"}
	b, err := EncodeEvent(&Event{After: r, Op: OpRead})
	if err != nil {
		t.Fatal(err)
	}
	ev, err := DecodeEvent(b)
	if err != nil {
		t.Fatal(err)
	}
	if got := ev.After.Date.Format(time.DateOnly); got != "2024-03-05" {
		t.Errorf("date round-tripped to %s, want 2024-03-05", got)
	}
}
