package schema

import (
	"bytes"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"
)

// iotColumns are raw_records' columns as information_schema describes them
// for schema/sql/source.sql (TestIntegrationChangeIoTCompat checks them
// against a migrated server).
func iotColumns() []Column {
	vc := func(name string) Column {
		c := col(name, "varchar", "varchar(255)", 0, 0)
		c.Length = 255
		return c
	}
	id := col("id", "bigint", "bigint(20) unsigned", 20, 0, "unsigned")
	id.AutoIncrement = true
	msg := col("message", "text", "text", 0, 0, "null")
	msg.Length = 65535
	return []Column{
		id,
		col("date", "date", "date", 0, 0),
		col("timestamp", "datetime", "datetime", 0, 0),
		vc("device_type"),
		vc("event_type"),
		msg,
		col("created_at", "timestamp", "timestamp", 0, 0, "null"),
		col("updated_at", "timestamp", "timestamp", 0, 0, "null"),
	}
}

// iotTable is raw_records → records with every column travelling, as the
// fixed codec carries them.
func iotTable() *Table {
	t := &Table{Source: TableName{"source_db", "raw_records"}, Target: TableName{"target_db", "records"}, Topic: "sluice.raw_records"}
	for _, c := range iotColumns() {
		t.Columns = append(t.Columns, TableColumn{Source: c, Target: c})
	}
	t.ID = t.Columns[0].Source
	w := t.Columns[2].Source
	t.Window = &w
	t.Key = []int{3, 4, 2}
	return t
}

// iotExampleTable is deploy/sluice.example.yaml's first table: id does not
// travel, message is upper-cased, device_type and event_type are required.
func iotExampleTable(t *testing.T) *Table {
	tb := iotTable()
	tb.Dropped = []string{"id"}
	tb.Columns = tb.Columns[1:]
	tb.Key = []int{2, 3, 1}
	up, err := NewTransform(TransformSpec{Name: "upper"})
	if err != nil {
		t.Fatal(err)
	}
	tb.Columns[4].Transforms = []Transform{up}
	for _, i := range []int{2, 3} {
		r := requiredRule()
		r.Table, r.Column = tb.Source.String(), tb.Columns[i].Source.Name
		tb.Columns[i].Rules = []Rule{r}
	}
	return tb
}

// rowValues is r as the canonical texts of raw_records' columns.
func rowValues(r *Row, withID bool) []Value {
	txt := func(s string) Value { return Value{B: []byte(s)} }
	zoned := func(t sql.NullTime) Value {
		if !t.Valid {
			return Null
		}
		return txt(t.Time.UTC().Format(time.DateTime))
	}
	var out []Value
	if withID {
		out = append(out, txt(strconv.FormatUint(r.ID, 10)))
	}
	out = append(out, txt(r.Date.Format(time.DateOnly)), txt(r.Timestamp.UTC().Format(time.DateTime)),
		txt(r.DeviceType), txt(r.EventType))
	if r.Message.Valid {
		out = append(out, txt(r.Message.String))
	} else {
		out = append(out, Null)
	}
	return append(out, zoned(r.CreatedAt), zoned(r.UpdatedAt))
}

func valuesDiff(a, b []Value) string {
	if (a == nil) != (b == nil) || len(a) != len(b) {
		return fmt.Sprintf("%d values (nil %v) vs %d (nil %v)", len(a), a == nil, len(b), b == nil)
	}
	for i := range a {
		if a[i].Null != b[i].Null || !bytes.Equal(a[i].B, b[i].B) {
			return fmt.Sprintf("value %d: %q (null %v) vs %q (null %v)", i, a[i].B, a[i].Null, b[i].B, b[i].Null)
		}
	}
	return ""
}

// compatEvents are fixed-codec events of every op, with NULLs, a GTID and
// an epoch, whose values the IoT columns hold (whole seconds).
func compatEvents() []*Event {
	ts := time.Date(2025, 10, 1, 2, 57, 46, 0, time.UTC)
	full := func() *Row {
		return &Row{ID: 123458, Date: time.Date(2025, 10, 1, 0, 0, 0, 0, time.UTC), Timestamp: ts,
			DeviceType: "meter-00983", EventType: "status \"q\" \\ é\n\x01",
			Message:   sql.NullString{String: "failed signal 😀 passed", Valid: true},
			CreatedAt: sql.NullTime{Time: ts.Add(-time.Hour), Valid: true}, UpdatedAt: sql.NullTime{Time: ts, Valid: true}}
	}
	nulls := full()
	nulls.Message, nulls.CreatedAt, nulls.UpdatedAt = sql.NullString{}, sql.NullTime{}, sql.NullTime{}
	nulls.ID = 1<<63 - 1
	old := full()
	old.Date, old.Timestamp = time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(1969, 12, 31, 23, 59, 59, 0, time.UTC)
	src := func(snap string) Source {
		return Source{Connector: "sluice", Name: "sluice", TsMs: 1759371303000, Snapshot: snap, DB: "source_db", Table: "raw_records",
			ServerID: 1, File: "mysql-bin.000002", Pos: 48213, Row: 2}
	}
	gtid := src("false")
	gtid.GTID, gtid.Epoch = "0-1-42", 3
	return []*Event{
		{After: full(), Op: OpRead, TsMs: 1759371303001, Source: src("true")},
		{After: nulls, Op: OpCreate, TsMs: 1759371303002, Source: src("false")},
		{Before: nulls, After: full(), Op: OpUpdate, TsMs: 1759371303003, Source: gtid},
		{Before: old, Op: OpDelete, TsMs: 1759371303004, Source: gtid},
		{After: old, Op: OpCreate, TsMs: -1, Source: src("false")},
	}
}

func changeOf(e *Event, withID bool) *Change {
	c := &Change{Op: e.Op, Source: e.Source, TsMs: e.TsMs}
	if e.Before != nil {
		c.Before = rowValues(e.Before, withID)
	}
	if e.After != nil {
		c.After = rowValues(e.After, withID)
	}
	return c
}

// checkParsesAs reads b, a record of the IoT table (iotTable), with the
// generic decoder, and checks that it is e, as changeOf gives it.
func checkParsesAs(t *testing.T, b []byte, e *Event) {
	t.Helper()
	var pc Change
	if _, err := ParseChange(nil, iotTable(), b, &pc); err != nil {
		t.Fatalf("ParseChange(%s): %v", b, err)
	}
	c := changeOf(e, true)
	if pc.Op != c.Op || pc.TsMs != c.TsMs || pc.Source != c.Source {
		t.Fatalf("parsed %v %d %+v, want %v %d %+v", pc.Op, pc.TsMs, pc.Source, c.Op, c.TsMs, c.Source)
	}
	if d := valuesDiff(pc.Before, c.Before); d != "" {
		t.Fatalf("before: %s", d)
	}
	if d := valuesDiff(pc.After, c.After); d != "" {
		t.Fatalf("after: %s", d)
	}
}

// TestChangeMatchesFixedCodec is the compatibility that matters: for the
// IoT table, the generic codec writes the fixed codec's bytes, value and
// key, and each reads the other's.
func TestChangeMatchesFixedCodec(t *testing.T) {
	tb := iotTable()
	for i, e := range compatEvents() {
		t.Run(fmt.Sprintf("%d_%s", i, e.Op), func(t *testing.T) {
			c := changeOf(e, true)
			got, err := AppendChange(nil, tb, c)
			if err != nil {
				t.Fatal(err)
			}
			if want := AppendEvent(nil, e); !bytes.Equal(got, want) {
				t.Fatalf("value differs:\ngeneric %s\nfixed   %s", got, want)
			}
			key, err := AppendChangeKey(nil, tb, c)
			if err != nil {
				t.Fatal(err)
			}
			if want := AppendKey(nil, e.Key()); !bytes.Equal(key, want) {
				t.Fatalf("key differs:\ngeneric %s\nfixed   %s", key, want)
			}
			// the generic decoder reads the fixed record
			checkParsesAs(t, AppendEvent(nil, e), e)
		})
	}
}

// TestChangeFixedCodecDifferences pins where the generic codec departs
// from the fixed one, all of it Debezium's default mapping or the table's
// configuration.
func TestChangeFixedCodecDifferences(t *testing.T) {
	e := compatEvents()[0]
	fixed := AppendEvent(nil, e)

	t.Run("id_not_travelling", func(t *testing.T) {
		// The shipped example excludes id: the record has no id member,
		// and is otherwise the fixed codec's.
		tb := iotExampleTable(t)
		got, err := AppendChange(nil, tb, changeOf(e, false))
		if err != nil {
			t.Fatal(err)
		}
		want := strings.Replace(string(fixed), `"id":123458,`, "", 1)
		if string(got) != want {
			t.Fatalf("\ngeneric %s\nwant    %s", got, want)
		}
		// and the fixed record, id and all, reads as this table's change
		var pc Change
		if _, err := ParseChange(nil, tb, fixed, &pc); err != nil {
			t.Fatal(err)
		}
		if d := valuesDiff(pc.After, rowValues(e.After, false)); d != "" {
			t.Fatal(d)
		}
	})
	t.Run("bigint_unsigned_above_int64", func(t *testing.T) {
		// Debezium's bigint.unsigned.handling.mode=long: the same 64 bits
		// as a signed long; the fixed codec writes the unsigned number.
		big := *e
		r := *e.After
		r.ID = 1<<63 + 5
		big.After = &r
		got, err := AppendChange(nil, iotTable(), changeOf(&big, true))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(got, []byte(`{"id":-9223372036854775803,`)) || !bytes.Contains(AppendEvent(nil, &big), []byte(`{"id":9223372036854775813,`)) {
			t.Fatalf("generic %s", got)
		}
		var pc Change
		if _, err := ParseChange(nil, iotTable(), got, &pc); err != nil || string(pc.After[0].B) != "9223372036854775813" {
			t.Fatalf("read back %q, %v", pc.After[0].B, err)
		}
	})
	t.Run("invalid_utf8", func(t *testing.T) {
		// Both replace it with U+FFFD, as the character itself (one JSON
		// string writer, codec.go's appendString): no difference any more.
		bad := *e
		r := *e.After
		r.EventType = "a\xffb"
		bad.After = &r
		got, err := AppendChange(nil, iotTable(), changeOf(&bad, true))
		if err != nil {
			t.Fatal(err)
		}
		if want := []byte(`"event_type":"a` + "\uFFFD" + `b"`); !bytes.Contains(got, want) || !bytes.Contains(AppendEvent(nil, &bad), want) {
			t.Fatalf("generic %s", got)
		}
	})
	t.Run("fractions_the_column_cannot_hold", func(t *testing.T) {
		// The fixed codec writes whatever a time.Time holds; the generic
		// one refuses text finer than the column (DATETIME and TIMESTAMP
		// here have no fraction), naming the column.
		c := changeOf(e, true)
		c.After[2] = Value{B: []byte("2025-10-01 02:57:46.5")}
		_, err := AppendChange(nil, iotTable(), c)
		if err == nil || !strings.Contains(err.Error(), "column timestamp") || !strings.Contains(err.Error(), "raw_records") {
			t.Fatalf("got %v", err)
		}
	})
}

// typesTable is one column of each kind (fuzzColumns) plus a NULL-able
// key, as a table.
func typesTable() *Table {
	t := &Table{Source: TableName{"db", "types"}, Target: TableName{"db2", "types"}}
	for _, c := range fuzzColumns {
		t.Columns = append(t.Columns, TableColumn{Source: c, Target: c})
	}
	t.Key = []int{2, 0} // bi, ti
	return t
}

// TestChangeRoundTripEveryType encodes random rows of every type, and
// NULLs, and reads them back to the same texts, for every op.
func TestChangeRoundTripEveryType(t *testing.T) {
	tb := typesTable()
	r := rand.New(rand.NewPCG(3, 4))
	row := func() []Value {
		out := make([]Value, len(tb.Columns))
		for i, c := range tb.Columns {
			if r.IntN(5) == 0 {
				out[i] = Null
				continue
			}
			text := randomText(r, c.Source)
			if text == "-00:00:00" || text == "-00:00:00.000000" {
				text = strings.TrimPrefix(text, "-") // the server prints no negative zero TIME
			}
			out[i] = Value{B: []byte(text)}
		}
		return out
	}
	var buf, val []byte
	var pc Change
	var dec ChangeDecoder
	for n := range 2000 {
		c := &Change{Op: []Op{OpRead, OpCreate, OpUpdate, OpDelete}[n%4], TsMs: int64(n),
			Source: Source{Connector: "sluice", Name: "sluice", DB: "db", Table: "types", Snapshot: "false", File: "b.000001", Pos: uint64(n / 2)}} // pairs share a source block
		switch c.Op {
		case OpUpdate:
			c.Before, c.After = row(), row()
		case OpDelete:
			c.Before = row()
		default:
			c.After = row()
		}
		var err error
		if val, err = AppendChange(val[:0], tb, c); err != nil {
			t.Fatal(err)
		}
		parse := ParseChange
		if n%3 != 0 {
			parse = dec.Parse
		}
		if buf, err = parse(buf[:0], tb, val, &pc); err != nil {
			t.Fatalf("%s: %v", val, err)
		}
		if pc.Op != c.Op || pc.TsMs != c.TsMs || pc.Source != c.Source {
			t.Fatalf("envelope: %+v vs %+v", pc, c)
		}
		for _, im := range []struct {
			name      string
			got, want []Value
		}{{"before", pc.Before, c.Before}, {"after", pc.After, c.After}} {
			if d := valuesDiff(im.got, im.want); d != "" {
				t.Fatalf("%s: %s\n%s", im.name, d, val)
			}
		}
	}
}

// TestParseChangeDebeziumRecord reads a record as Debezium's MySQL
// connector writes it through the JSON converter with schemas on: the
// schema, extra source fields, a boolean snapshot, a transaction block, a
// column the table does not carry, keys in another order.
func TestParseChangeDebeziumRecord(t *testing.T) {
	tb := iotExampleTable(t)
	rec := `{"schema":{"type":"struct","fields":[{"type":"struct","fields":[{"type":"int64","optional":false,"field":"id"}],"optional":true,"name":"x.Value","field":"before"}],"optional":false,"name":"x.Envelope"},
	 "payload":{
	  "before":null,
	  "after":{"id":7,"date":20362,"timestamp":1759287466000,"device_type":"meter","event_type":"open","message":null,"created_at":"2025-10-01T02:57:46Z","updated_at":null,"extra":{"x":[1,2]}},
	  "source":{"version":"2.7.0.Final","connector":"mysql","name":"dbserver1","ts_ms":1759287466000,"snapshot":true,"db":"source_db","sequence":null,"table":"raw_records","server_id":223344,"gtid":null,"file":"mysql-bin.000003","pos":154,"row":0,"thread":7,"query":null},
	  "transaction":null,
	  "ts_us":1759287466123456,
	  "op":"c","ts_ms":1759287466123}}`
	// (extra is nested: a member Sluice does not know, skipped)
	rec = strings.Replace(rec, `,"extra":{"x":[1,2]}`, `,"extra":"x"`, 1)
	var c Change
	buf, err := ParseChange(nil, tb, []byte(rec), &c)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"2025-10-01", "2025-10-01 02:57:46", "meter", "open", "NULL", "2025-10-01 02:57:46", "NULL"}
	for i, w := range want {
		v := c.After[i]
		if got := string(v.B); (w == "NULL") != v.Null || (!v.Null && got != w) {
			t.Fatalf("column %s: %q (null %v), want %s", tb.Columns[i].Source.Name, got, v.Null, w)
		}
	}
	if c.Op != OpCreate || c.TsMs != 1759287466123 || c.Before != nil || c.Source.Snapshot != "true" || c.Source.Connector != "mysql" ||
		c.Source.ServerID != 223344 || c.Source.File != "mysql-bin.000003" || c.Source.Pos != 154 || c.Source.GTID != "" {
		t.Fatalf("%+v", c)
	}
	if len(buf) == 0 {
		t.Fatal("no text appended")
	}
	// the target row: message NULL stays NULL through upper
	out := make([]Value, len(tb.Columns))
	if _, err := tb.TargetRow(nil, c.After, out); err != nil {
		t.Fatal(err)
	}
}

func TestParseChangeOpsAndSnapshots(t *testing.T) {
	tb := iotExampleTable(t)
	row := `{"date":0,"timestamp":0,"device_type":"d","event_type":"e","message":"m","created_at":null,"updated_at":null}`
	env := func(before, after, op, snap string) string {
		return `{"before":` + before + `,"after":` + after + `,"source":{"db":"source_db","table":"raw_records","snapshot":` + snap + `},"op":"` + op + `","ts_ms":1}`
	}
	for _, tc := range []struct {
		name, rec, snap string
		op              Op
	}{
		{"read_string_snapshot", env("null", row, "r", `"last"`), "last", OpRead},
		{"create_false", env("null", row, "c", "false"), "false", OpCreate},
		{"update", env(row, row, "u", `"false"`), "false", OpUpdate},
		{"delete", env(row, "null", "d", "null"), "false", OpDelete},
		{"truncate", env("null", "null", "t", `"true"`), "true", OpTruncate},
		{"no_snapshot", `{"after":` + row + `,"source":{"db":"source_db","table":"raw_records"},"op":"c"}`, "false", OpCreate},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c Change
			if _, err := ParseChange(nil, tb, []byte(tc.rec), &c); err != nil {
				t.Fatal(err)
			}
			if c.Op != tc.op || c.Source.Snapshot != tc.snap {
				t.Fatalf("op %q snapshot %q", c.Op, c.Source.Snapshot)
			}
			if _, err := AppendChangeKey(nil, tb, &c); (err != nil) != (tc.op == OpTruncate) || (err != nil && !errors.Is(err, ErrNoKey)) {
				t.Fatalf("key: %v", err)
			}
		})
	}
}

// TestParseChangeSourceNamesNoTable: a record whose source names no
// database or no table is a change of the topic's table, and says so once
// parsed; one naming another database or table is refused.
func TestParseChangeSourceNamesNoTable(t *testing.T) {
	tb := iotExampleTable(t)
	row := `{"date":0,"timestamp":0,"device_type":"d","event_type":"e","message":"m","created_at":null,"updated_at":null}`
	for _, src := range []string{`{}`, `{"db":"","table":""}`, `{"db":"source_db"}`, `{"table":"raw_records"}`} {
		var c Change
		if _, err := ParseChange(nil, tb, []byte(`{"after":`+row+`,"source":`+src+`,"op":"c"}`), &c); err != nil {
			t.Fatalf("source %s: %v", src, err)
		}
		if c.Source.DB != "source_db" || c.Source.Table != "raw_records" {
			t.Errorf("source %s: parsed as a change of %s.%s, want source_db.raw_records", src, c.Source.DB, c.Source.Table)
		}
	}
	for _, tc := range []struct{ src, want string }{
		{`{"db":"","table":"customers"}`, "change of table .customers, not of table source_db.raw_records"},
		{`{"db":"crm"}`, "change of table crm., not of table source_db.raw_records"},
	} {
		var c Change
		_, err := ParseChange(nil, tb, []byte(`{"after":`+row+`,"source":`+tc.src+`,"op":"c"}`), &c)
		if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("source %s: got %v, want ErrMalformed naming %q", tc.src, err, tc.want)
		}
	}
}

func TestParseChangeMalformed(t *testing.T) {
	tb := iotExampleTable(t)
	row := `{"date":0,"timestamp":0,"device_type":"d","event_type":"e","message":"m","created_at":null,"updated_at":null}`
	src := `{"db":"source_db","table":"raw_records","snapshot":"false"}`
	for _, tc := range []struct{ name, rec, want string }{
		{"not_json", `nope`, "not a JSON object"},
		{"truncated", `{"after":` + row[:20], "field after"},
		{"trailing", `{"op":"c"} x`, "data after the object"},
		{"no_op", `{"after":` + row + `,"source":` + src + `}`, "field op is missing"},
		{"op_number", `{"after":` + row + `,"source":` + src + `,"op":1}`, "field op"},
		{"unknown_op", `{"after":` + row + `,"source":` + src + `,"op":"m"}`, `unknown op "m"`},
		{"create_without_after", `{"before":` + row + `,"source":` + src + `,"op":"c"}`, "without an after image"},
		{"delete_without_before", `{"after":` + row + `,"source":` + src + `,"op":"d"}`, "without a before image"},
		{"truncate_with_row", `{"after":` + row + `,"source":` + src + `,"op":"t"}`, "with a row image"},
		{"ts_ms", `{"after":` + row + `,"source":` + src + `,"op":"c","ts_ms":1.5}`, "field ts_ms"},
		{"repeated_op", `{"op":"c","op":"d"}`, "field op is repeated"},
		{"no_source", `{"after":` + row + `,"op":"c"}`, "field source is missing"},
		{"bad_source", `{"after":` + row + `,"source":{"db":1},"op":"c"}`, "field source"},
		{"bad_snapshot", `{"after":` + row + `,"source":{"db":"source_db","table":"raw_records","snapshot":1},"op":"c"}`, "source.snapshot"},
		{"other_table", `{"after":` + row + `,"source":{"db":"crm","table":"customers"},"op":"c"}`, "change of table crm.customers, not of table source_db.raw_records"},
		{"missing_column", `{"after":{"date":0},"source":` + src + `,"op":"c"}`, "field after: column timestamp is missing"},
		{"bad_value", `{"after":` + strings.Replace(row, `"timestamp":0`, `"timestamp":"x"`, 1) + `,"source":` + src + `,"op":"c"}`, "field after: column timestamp"},
		{"repeated_column", `{"after":` + strings.Replace(row, `"date":0`, `"date":0,"date":1`, 1) + `,"source":` + src + `,"op":"c"}`, "column date is repeated"},
		{"row_not_object", `{"after":[1],"source":` + src + `,"op":"c"}`, "field after: not a JSON object"},
		{"deep", strings.Repeat("[", 100) + strings.Repeat("]", 100), "not a JSON object"},
		{"deep_field", `{"schema":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`, "field schema: nested more than 64 deep"},
		{"bad_payload", `{"schema":{},"payload":{"op" "c"}}`, "payload: expected : after"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c Change
			buf := []byte("keep")
			out, err := ParseChange(buf, tb, []byte(tc.rec), &c)
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want ErrMalformed naming %q", err, tc.want)
			}
			if string(out) != "keep" {
				t.Fatalf("dst grew to %q on error", out)
			}
		})
	}
}

func TestAppendChangeErrors(t *testing.T) {
	tb := iotExampleTable(t)
	good := rowValues(compatEvents()[0].After, false)
	for _, tc := range []struct {
		name string
		c    Change
		want string
	}{
		{"short_row", Change{Op: OpCreate, After: good[:3]}, "table source_db.raw_records: after: 3 values for 7 columns"},
		{"bad_value", Change{Op: OpDelete, Before: append([]Value{{B: []byte("2025-13-01")}}, good[1:]...)}, "before: column date"},
		{"op_without_image", Change{Op: OpUpdate}, `op "u" without an after image`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := AppendChange(nil, tb, &tc.c); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
	if _, err := AppendChangeKey(nil, tb, &Change{Op: OpTruncate}); !errors.Is(err, ErrNoKey) {
		t.Fatalf("truncate key: %v", err)
	}
}

func TestTargetRow(t *testing.T) {
	tb := iotExampleTable(t)
	src := rowValues(compatEvents()[0].After, false)
	out := make([]Value, len(src))
	buf, err := tb.TargetRow(nil, src, out)
	if err != nil {
		t.Fatal(err)
	}
	for i := range src {
		want := string(src[i].B)
		if tb.Columns[i].Source.Name == "message" {
			want = strings.ToUpper(want)
		}
		if string(out[i].B) != want || out[i].Null != src[i].Null {
			t.Fatalf("column %s: %q, want %q", tb.Columns[i].Target.Name, out[i].B, want)
		}
	}
	if !bytes.Equal(buf, out[4].B) {
		t.Fatalf("only the transformed value is appended to dst: %q", buf)
	}

	t.Run("rule", func(t *testing.T) {
		bad := append([]Value(nil), src...)
		bad[3] = Value{B: []byte{}}
		_, err := tb.TargetRow(nil, bad, out)
		var re *RuleError
		if !errors.As(err, &re) || !errors.Is(err, ErrRule) || re.Table != "source_db.raw_records" || re.Column != "event_type" || re.Rule != RuleRequired {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("hand_built_rule_learns_its_table", func(t *testing.T) {
		tb := iotExampleTable(t)
		tb.Columns[2].Rules = []Rule{requiredRule()}
		bad := append([]Value(nil), src...)
		bad[2] = Null
		_, err := tb.TargetRow(nil, bad, out)
		var re *RuleError
		if !errors.As(err, &re) || re.Table != "source_db.raw_records" || re.Column != "device_type" {
			t.Fatalf("got %v", err)
		}
	})

	t.Run("dedupe_key", func(t *testing.T) {
		k1 := tb.AppendDedupeKey(nil, out)
		other := append([]Value(nil), out...)
		other[4] = Value{B: []byte("another message")} // not a key column
		if k2 := tb.AppendDedupeKey(nil, other); string(k1) != string(k2) {
			t.Fatalf("%q vs %q", k1, k2)
		}
		// no two key tuples collide: ("a:b","c") vs ("a","b:c"), "" vs NULL
		a := append([]Value(nil), out...)
		b := append([]Value(nil), out...)
		a[2], a[3] = Value{B: []byte("a:b")}, Value{B: []byte("c")}
		b[2], b[3] = Value{B: []byte("a")}, Value{B: []byte("b:c")}
		if string(tb.AppendDedupeKey(nil, a)) == string(tb.AppendDedupeKey(nil, b)) {
			t.Fatal("collision")
		}
		a[2], b[2] = Value{B: []byte{}}, Null
		if string(tb.AppendDedupeKey(nil, a)) == string(tb.AppendDedupeKey(nil, b)) {
			t.Fatal("empty and NULL collide")
		}
		kv := tb.KeyValues(out, nil)
		if len(kv) != 3 || string(kv[0].B) != "meter-00983" || string(kv[2].B) != "2025-10-01 02:57:46" {
			t.Fatalf("%v", kv)
		}
	})
}

// TestChangeWideTable covers tables of more than 64 columns (the parser's
// seen bitmask gives way to a slice).
func TestChangeWideTable(t *testing.T) {
	tb := &Table{Source: TableName{"db", "wide"}}
	row := make([]Value, 70)
	for i := range row {
		c := col("c"+strconv.Itoa(i), "int", "int(11)", 10, 0, "null")
		tb.Columns = append(tb.Columns, TableColumn{Source: c, Target: c})
		row[i] = Value{B: []byte(strconv.Itoa(i * 1000))}
	}
	row[68] = Null
	tb.Key = []int{69}
	c := &Change{Op: OpCreate, After: row, Source: Source{DB: "db", Table: "wide"}}
	v, err := AppendChange(nil, tb, c)
	if err != nil {
		t.Fatal(err)
	}
	var pc Change
	if _, err := ParseChange(nil, tb, v, &pc); err != nil {
		t.Fatal(err)
	}
	if d := valuesDiff(pc.After, row); d != "" {
		t.Fatal(d)
	}
	missing := bytes.Replace(v, []byte(`"c66":66000,`), nil, 1)
	if _, err := ParseChange(nil, tb, missing, &pc); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "column c66 is missing") {
		t.Fatalf("got %v", err)
	}
	repeated := bytes.Replace(v, []byte(`"c66":66000,`), []byte(`"c66":66000,"c66":1,`), 1)
	if _, err := ParseChange(nil, tb, repeated, &pc); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "column c66 is repeated") {
		t.Fatalf("got %v", err)
	}
}
