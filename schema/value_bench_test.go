package schema

import (
	"fmt"
	"testing"
	"time"

	json "github.com/go-json-experiment/json"
)

// benchColumns is a 20-column row of mixed types, the shape issue 20's bench
// table has.
var benchColumns = []Column{
	col("id", "bigint", "bigint(20) unsigned", 20, 0, "unsigned"),
	col("account", "int", "int(11)", 10, 0),
	col("kind", "tinyint", "tinyint(4)", 3, 0),
	col("amount", "decimal", "decimal(12,2)", 12, 2),
	col("rate", "double", "double", 22, 0),
	col("score", "float", "float", 12, 0),
	col("name", "varchar", "varchar(64)", 0, 0),
	col("email", "varchar", "varchar(128)", 0, 0),
	col("note", "text", "text", 0, 0, "null"),
	col("payload", "longtext", "longtext", 0, 0, "null"),
	col("token", "binary", "binary(16)", 0, 0),
	col("blob", "blob", "blob", 0, 0, "null"),
	col("day", "date", "date", 0, 0),
	col("created", "datetime", "datetime(6)", 6, 0),
	col("updated", "timestamp", "timestamp(3)", 3, 0),
	col("dur", "time", "time", 0, 0),
	col("year", "year", "year(4)", 0, 0),
	col("state", "enum", "enum('new','open','closed')", 0, 0),
	col("tags", "set", "set('a','b','c')", 0, 0),
	col("flag", "bit", "bit(1)", 1, 0),
}

var benchText = []string{
	"18446744073709551000", "-1234567", "7", "12345.67", "0.1", "3.1415927",
	"Jürgen Ströbel", "jurgen@example.com", "a note with \"quotes\" and a line\nbreak", `{"k": [1, 2, 3]}`,
	"\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f", "\x00\xff\x10\x20",
	"2024-01-02", "2024-01-02 03:04:05.123456", "2024-01-02 03:04:05.123", "-12:34:56", "2024",
	"open", "a,c", "\x01",
}

var benchBinlog = []any{
	int64(-646), int32(-1234567), int8(7), "12345.67", 0.1, float32(3.1415927),
	"Jürgen Ströbel", "jurgen@example.com", []byte("a note with \"quotes\" and a line\nbreak"), []byte(`{"k": [1, 2, 3]}`),
	"\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f", []byte("\x00\xff\x10\x20"),
	"2024-01-02", time.Date(2024, 1, 2, 3, 4, 5, 123456000, time.UTC), time.Date(2024, 1, 2, 3, 4, 5, 123000000, time.UTC),
	"-12:34:56", 2024, int64(2), int64(5), int64(1),
}

func benchRow(b *testing.B) []Value {
	var buf []byte
	vals := make([]Value, len(benchColumns))
	for i, c := range benchColumns {
		var err error
		if buf, vals[i], err = AppendText(buf, c, []byte(benchText[i])); err != nil {
			b.Fatal(err)
		}
	}
	return vals
}

// BenchmarkDebeziumRow pairs the hand-written record codec with
// go-json-experiment on the same record as a map (the reflection
// baseline): encode a 20-column row as a create record in Debezium's JSON,
// and decode it back.
func BenchmarkDebeziumRow(b *testing.B) {
	vals := benchRow(b)
	tb := rowTable(benchColumns)
	ch := &Change{Op: OpCreate, After: vals, Source: rowSource(tb)}
	obj, err := AppendChange(nil, tb, ch)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(obj)))
		dst := make([]byte, 0, 2048)
		for b.Loop() {
			if dst, err = AppendChange(dst[:0], tb, ch); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(obj)))
		buf := make([]byte, 0, 1024)
		var c Change
		for b.Loop() {
			if buf, err = ParseChange(buf[:0], tb, obj, &c); err != nil {
				b.Fatal(err)
			}
		}
	})
	var m map[string]any
	if err := json.Unmarshal(obj, &m); err != nil {
		b.Fatal(err)
	}
	b.Run("encode-jsonv2-map", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(obj)))
		for b.Loop() {
			if _, err := json.Marshal(m); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode-jsonv2-map", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(obj)))
		for b.Loop() {
			var m map[string]any
			if err := json.Unmarshal(obj, &m); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkRowEntrance is the cost of taking a 20-column row in: from the
// backfill's RawBytes, and from go-mysql's decoded binlog values.
func BenchmarkRowEntrance(b *testing.B) {
	raw := make([][]byte, len(benchText))
	for i, s := range benchText {
		raw[i] = []byte(s)
	}
	vals := make([]Value, len(benchColumns))
	b.Run("text", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 1024)
		for b.Loop() {
			buf = buf[:0]
			for i, c := range benchColumns {
				var err error
				if buf, vals[i], err = AppendText(buf, c, raw[i]); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("binlog", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 1024)
		for b.Loop() {
			buf = buf[:0]
			for i, c := range benchColumns {
				var err error
				if buf, vals[i], err = AppendBinlog(buf, c, benchBinlog[i]); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}

// The DATE 2024-01-02 travels as its text and reaches Kafka as Debezium's
// days since the epoch; the consumer reads it back to the same text.
func ExampleAppendDebezium() {
	day := Column{Name: "day", DataType: "date", ColumnType: "date"}
	js, _ := AppendDebezium(nil, day, Value{B: []byte("2024-01-02")})
	v, _ := ParseDebezium(day, js)
	fmt.Println(string(js), string(v.B))
	// Output: 19724 2024-01-02
}
