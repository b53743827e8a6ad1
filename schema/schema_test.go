package schema

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
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

func TestAppendEventTruncatesTimestampToMillis(t *testing.T) {
	r := testRow()
	r.Timestamp = time.Date(2024, 3, 5, 13, 14, 15, 678_999_999, time.UTC)
	b := AppendEvent(nil, &Event{After: r, Op: OpCreate})
	if want := fmt.Sprintf(`"timestamp":%d,`, r.Timestamp.UnixMilli()); !bytes.Contains(b, []byte(want)) {
		t.Errorf("%s, want %s in it (epoch milliseconds)", b, want)
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

// TestAppendEventShape checks the JSON against Debezium's default MySQL
// mapping, which a Debezium consumer of the topic relies on.
func TestAppendEventShape(t *testing.T) {
	plus2 := time.FixedZone("+02:00", 2*60*60)
	r := testRow()
	r.CreatedAt = sql.NullTime{Time: time.Date(2024, 3, 5, 15, 14, 16, 0, plus2), Valid: true} // 13:14:16Z
	r.UpdatedAt = sql.NullTime{}
	r.Message = sql.NullString{}
	e := Event{After: r, Source: testSource("true"), Op: OpRead, TsMs: 1709644500123}
	b := AppendEvent(nil, &e)
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

func TestAppendEventSnapshotFalse(t *testing.T) {
	b := AppendEvent(nil, &Event{After: testRow(), Source: testSource("false"), Op: OpCreate})
	src := decodeJSON(t, b)["source"].(map[string]any)
	if src["snapshot"] != "false" {
		t.Errorf("source.snapshot = %#v, want \"false\"", src["snapshot"])
	}
}

func TestAppendEventDelete(t *testing.T) {
	b := AppendEvent(nil, &Event{Before: testRow(), Source: testSource("false"), Op: OpDelete})
	m := decodeJSON(t, b)
	if v, ok := m["after"]; !ok || v != nil {
		t.Errorf("after = %v (present %v), want null", v, ok)
	}
	if before, ok := m["before"].(map[string]any); !ok || before["device_type"] != "sensor-00042" {
		t.Errorf("before = %#v, want the row", m["before"])
	}
}

func TestAppendKey(t *testing.T) {
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
			b := AppendKey(nil, tt.k)
			if string(b) != tt.want {
				t.Errorf("AppendKey = %s, want %s", b, tt.want)
			}
		})
	}
}

func TestAppendKeySameForSameKey(t *testing.T) {
	// One logical key must always give the same record key (one partition),
	// whatever zone its time is labelled with.
	a := Key{DeviceType: "d", EventType: "e", Timestamp: testTS}
	b := Key{DeviceType: "d", EventType: "e", Timestamp: testTS.In(time.FixedZone("x", 3600))}
	ka := AppendKey(nil, a)
	kb := AppendKey(nil, b)
	if !bytes.Equal(ka, kb) {
		t.Errorf("AppendKey differs for the same instant: %s vs %s", ka, kb)
	}
	r := testRow()
	ev := Event{After: r}
	kr := AppendKey(nil, ev.Key())
	if want := `{"device_type":"sensor-00042","event_type":"reading","timestamp":1709644455678}`; string(kr) != want {
		t.Errorf("AppendKey(event key) = %s, want %s", kr, want)
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
		// As written, and with an unknown member, as Debezium adds.
		for _, rec := range [][]byte{b, append(bytes.Clone(bytes.TrimSuffix(b, []byte("}"))), `,"transaction":null}`...)} {
			var c Change
			if _, err := ParseChange(nil, iotTable(), rec, &c); err != nil || c.Source.Epoch != epoch {
				t.Errorf("decode of epoch %d: %d, %v\n%s", epoch, c.Source.Epoch, err, rec)
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

// TestEncodeKeepsCalendarDayOfZonedDate: Date is a calendar day; its zone
// label must not shift it.
func TestEncodeKeepsCalendarDayOfZonedDate(t *testing.T) {
	zone := time.FixedZone("UTC+2", 2*3600)
	r := &Row{ID: 1, Date: time.Date(2024, 3, 5, 0, 0, 0, 0, zone), Timestamp: time.Date(2024, 3, 5, 1, 0, 0, 0, time.UTC), DeviceType: "d", EventType: "e"}
	b := AppendEvent(nil, &Event{After: r, Op: OpRead})
	var c Change
	if _, err := ParseChange(nil, iotTable(), b, &c); err != nil {
		t.Fatal(err)
	}
	if got := string(c.After[1].B); got != "2024-03-05" {
		t.Errorf("date round-tripped to %s, want 2024-03-05", got)
	}
}

// TestParseTruncate reads Debezium's MySQL truncate event (op "t", no
// images, the source block of the TRUNCATE statement) and the one the tail
// writes (AppendEvent), and keeps the version of the statement's binlog
// position.
func TestParseTruncate(t *testing.T) {
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
		var dec ChangeDecoder
		for _, parse := range []func([]byte, *Table, []byte, *Change) ([]byte, error){ParseChange, dec.Parse} {
			var c Change
			if _, err := parse(nil, iotTable(), tc.in, &c); err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			if c.Op != OpTruncate || c.Before != nil || c.After != nil || c.Source.Table != "raw_records" {
				t.Errorf("%s: parsed %+v, want a truncate of raw_records without images", tc.name, c)
			}
			if v, ok := c.Source.Version(); !ok || v != 4<<32|2600 {
				t.Errorf("%s: version %d (%v), want mysql-bin.000004:2600", tc.name, v, ok)
			}
		}
	}
}

// TestParseRejectsValuesOutOfRange covers values the fuzzer and review
// found against the fixed decoder: read with the IoT table, each is
// malformed, not garbage or a row that cannot re-encode.
func TestParseRejectsValuesOutOfRange(t *testing.T) {
	src := `,"source":{"connector":"mysql","name":"sluice","db":"source_db","table":"raw_records","snapshot":"false"}`
	row := `"id":1,"device_type":"d","event_type":"e","message":null`
	for _, tc := range []struct{ name, value string }{
		{"date overflowing milliseconds", `{"op":"c","after":{` + row + `,"date":200000000000,"timestamp":0,"created_at":null,"updated_at":null}` + src + `}`},
		{"timestamp beyond year 9999", `{"op":"c","after":{` + row + `,"date":0,"timestamp":253402300800000,"created_at":null,"updated_at":null}` + src + `}`},
		{"created_at before year 0 in UTC", `{"op":"c","after":{` + row + `,"date":0,"timestamp":0,"created_at":"0000-01-01T00:00:00+01:00","updated_at":null}` + src + `}`},
		{"updated_at after year 9999 in UTC", `{"op":"c","after":{` + row + `,"date":0,"timestamp":0,"created_at":null,"updated_at":"9999-12-31T23:00:00-01:00"}` + src + `}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c Change
			if _, err := ParseChange(nil, iotTable(), []byte(tc.value), &c); !errors.Is(err, ErrMalformed) {
				t.Errorf("ParseChange = %v (%v), want ErrMalformed", err, c.After)
			}
		})
	}
}
