package schema

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// col builds a Column as ReadColumns would for columnType.
func col(name, dataType, columnType string, precision, scale int, opts ...string) Column {
	c := Column{Name: name, DataType: dataType, ColumnType: columnType, Precision: precision, Scale: scale, Charset: "utf8mb4"}
	for _, o := range opts {
		switch o {
		case "unsigned":
			c.Unsigned = true
		case "null":
			c.Nullable = true
		}
	}
	if dataType == "enum" || dataType == "set" {
		c.Elements = parseElements(columnType)
	}
	if dataType == "binary" {
		var n int64
		for _, r := range strings.TrimSuffix(strings.TrimPrefix(columnType, "binary("), ")") {
			n = n*10 + int64(r-'0')
		}
		c.Length = n
	}
	return c
}

// debeziumCases are each type's canonical text and the JSON value Debezium
// writes for it, by hand from the connector's documentation (see
// debezium.go): the documentation's own examples where it has one.
var debeziumCases = []struct {
	name string
	c    Column
	text string
	json string
}{
	// Integers: JSON numbers; BIGINT UNSIGNED as Java's long (mode=long).
	{"tinyint", col("c", "tinyint", "tinyint(4)", 3, 0), "-128", "-128"},
	{"tinyint unsigned", col("c", "tinyint", "tinyint(3) unsigned", 3, 0, "unsigned"), "255", "255"},
	{"smallint", col("c", "smallint", "smallint(6)", 5, 0), "-32768", "-32768"},
	{"mediumint unsigned", col("c", "mediumint", "mediumint(8) unsigned", 7, 0, "unsigned"), "16777215", "16777215"},
	{"int", col("c", "int", "int(11)", 10, 0), "-2147483648", "-2147483648"},
	{"int unsigned", col("c", "int", "int(10) unsigned", 10, 0, "unsigned"), "4294967295", "4294967295"},
	{"bigint", col("c", "bigint", "bigint(20)", 19, 0), "-9223372036854775808", "-9223372036854775808"},
	{"bigint unsigned small", col("c", "bigint", "bigint(20) unsigned", 20, 0, "unsigned"), "42", "42"},
	{"bigint unsigned 2^63", col("c", "bigint", "bigint(20) unsigned", 20, 0, "unsigned"), "9223372036854775808", "-9223372036854775808"},
	{"bigint unsigned max", col("c", "bigint", "bigint(20) unsigned", 20, 0, "unsigned"), "18446744073709551615", "-1"},
	// DECIMAL: base64 of the unscaled two's complement (Kafka Connect Decimal).
	{"decimal", col("c", "decimal", "decimal(5,2)", 5, 2), "123.45", `"MDk="`},
	{"decimal negative", col("c", "decimal", "decimal(5,2)", 5, 2), "-123.45", `"z8c="`},
	{"decimal zero", col("c", "decimal", "decimal(5,2)", 5, 2), "0.00", `"AA=="`},
	{"decimal 0.01", col("c", "decimal", "decimal(5,2)", 5, 2), "0.01", `"AQ=="`},
	{"decimal sign byte", col("c", "decimal", "decimal(3,0)", 3, 0), "128", `"AIA="`},
	{"decimal -128 one byte", col("c", "decimal", "decimal(3,0)", 3, 0), "-128", `"gA=="`},
	{"decimal -129", col("c", "decimal", "decimal(3,0)", 3, 0), "-129", `"/38="`},
	{"decimal(65,30) max", col("c", "decimal", "decimal(65,30)", 65, 30),
		"99999999999999999999999999999999999.999999999999999999999999999999", `"APMWJxx/w5CKi+9GTjlF73olNgn//////////w=="`},
	{"decimal(65,30) min", col("c", "decimal", "decimal(65,30)", 65, 30),
		"-99999999999999999999999999999999999.999999999999999999999999999999", `"/wzp2OOAPG91dBC5sca6EIXayfYAAAAAAAAAAQ=="`},
	{"decimal(30,0) big negative", col("c", "decimal", "decimal(30,0)", 30, 0), "-1000000000000000000000001", `"/yw95DEzEl7///8="`},
	// FLOAT32, FLOAT64: JSON numbers.
	{"float", col("c", "float", "float", 12, 0), "3.1415927", "3.1415927"},
	{"float big", col("c", "float", "float", 12, 0), "3.4028235e+38", "3.4028235e+38"},
	{"double", col("c", "double", "double", 22, 0), "0.1", "0.1"},
	{"double max", col("c", "double", "double", 22, 0), "1.7976931348623157e+308", "1.7976931348623157e+308"},
	{"double min subnormal", col("c", "double", "double", 22, 0), "5e-324", "5e-324"},
	// Strings, JSON, ENUM, SET: STRING.
	{"varchar utf8mb4", col("c", "varchar", "varchar(20)", 0, 0), "héllo 😀 \"q\"\n\\", `"héllo 😀 \"q\"\n\\"`},
	{"text control", col("c", "text", "text", 0, 0), "nul\x00 ctrl-z\x1a", `"nul\u0000 ctrl-z\u001a"`},
	{"char empty", col("c", "char", "char(3)", 0, 0), "", `""`},
	{"json", col("c", "longtext", "longtext", 0, 0), `{"a": [1, "x"]}`, `"{\"a\": [1, \"x\"]}"`},
	{"enum", col("c", "enum", "enum('a','b')", 0, 0), "b", `"b"`},
	{"set", col("c", "set", "set('x','y','z')", 0, 0), "x,z", `"x,z"`},
	{"set empty", col("c", "set", "set('x','y','z')", 0, 0), "", `""`},
	// BINARY, VARBINARY, BLOB: BYTES, base64.
	{"binary with NULs", col("c", "binary", "binary(4)", 0, 0), "a\x00\x00\x00", `"YQAAAA=="`},
	{"varbinary empty", col("c", "varbinary", "varbinary(8)", 0, 0), "", `""`},
	{"blob", col("c", "blob", "blob", 0, 0), "\x00\xff\xfe", `"AP/+"`},
	// BIT(1): BOOLEAN; BIT(n>1): BYTES, little-endian.
	{"bit(1) true", col("c", "bit", "bit(1)", 1, 0), "\x01", "true"},
	{"bit(1) false", col("c", "bit", "bit(1)", 1, 0), "\x00", "false"},
	{"bit(10)", col("c", "bit", "bit(10)", 10, 0), "\x02\x01", `"AQI="`},
	{"bit(64)", col("c", "bit", "bit(64)", 64, 0), "\xff\xff\xff\xff\xff\xff\xff\xff", `"//////////8="`},
	// YEAR: INT32.
	{"year", col("c", "year", "year(4)", 0, 0), "2024", "2024"},
	{"year zero", col("c", "year", "year(4)", 0, 0), "0000", "0"},
	{"year min", col("c", "year", "year(4)", 0, 0), "1901", "1901"},
	// DATE: days since the epoch.
	{"date", col("c", "date", "date", 0, 0), "2024-01-02", "19724"},
	{"date before epoch", col("c", "date", "date", 0, 0), "1969-12-31", "-1"},
	{"date 1000-01-01", col("c", "date", "date", 0, 0), "1000-01-01", "-354285"},
	{"date 9999-12-31", col("c", "date", "date", 0, 0), "9999-12-31", "2932896"},
	// DATETIME(0–3): epoch ms; DATETIME(4–6): epoch µs (the docs' example).
	{"datetime docs example", col("c", "datetime", "datetime", 0, 0), "2018-06-20 06:37:03", "1529476623000"},
	{"datetime(3)", col("c", "datetime", "datetime(3)", 3, 0), "2018-06-20 06:37:03.123", "1529476623123"},
	{"datetime(2) before epoch", col("c", "datetime", "datetime(2)", 2, 0), "1969-12-31 23:59:59.99", "-10"},
	{"datetime(4)", col("c", "datetime", "datetime(4)", 4, 0), "2018-06-20 06:37:03.1234", "1529476623123400"},
	{"datetime(6)", col("c", "datetime", "datetime(6)", 6, 0), "2018-06-20 06:37:03.123456", "1529476623123456"},
	{"datetime(6) before epoch", col("c", "datetime", "datetime(6)", 6, 0), "1969-12-31 23:59:59.999999", "-1"},
	{"datetime(6) max", col("c", "datetime", "datetime(6)", 6, 0), "9999-12-31 23:59:59.999999", "253402300799999999"},
	// TIMESTAMP: ISO 8601 in UTC, the column's fractional digits.
	{"timestamp docs example", col("c", "timestamp", "timestamp", 0, 0), "2018-06-20 13:37:03", `"2018-06-20T13:37:03Z"`},
	{"timestamp(3)", col("c", "timestamp", "timestamp(3)", 3, 0), "2018-06-20 13:37:03.120", `"2018-06-20T13:37:03.120Z"`},
	{"timestamp(6) max", col("c", "timestamp", "timestamp(6)", 6, 0), "2038-01-19 03:14:07.999999", `"2038-01-19T03:14:07.999999Z"`},
	// TIME: µs, signed, beyond 24 hours.
	{"time", col("c", "time", "time", 0, 0), "12:00:00", "43200000000"},
	{"time zero", col("c", "time", "time", 0, 0), "00:00:00", "0"},
	{"time negative max", col("c", "time", "time", 0, 0), "-838:59:59", "-3020399000000"},
	{"time(6) over a day", col("c", "time", "time(6)", 6, 0), "100:00:00.000001", "360000000001"},
	{"time(6) negative fraction", col("c", "time", "time(6)", 6, 0), "-00:00:00.500000", "-500000"},
	{"time(3)", col("c", "time", "time(3)", 3, 0), "838:59:59.999", "3020399999000"},
}

func TestAppendDebezium(t *testing.T) {
	for _, tc := range debeziumCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := AppendDebezium(nil, tc.c, Value{B: []byte(tc.text)})
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.json {
				t.Errorf("AppendDebezium(%q) = %s, want %s", tc.text, got, tc.json)
			}
		})
	}
}

func TestParseDebezium(t *testing.T) {
	for _, tc := range debeziumCases {
		t.Run(tc.name, func(t *testing.T) {
			v, err := ParseDebezium(tc.c, []byte(tc.json))
			if err != nil {
				t.Fatal(err)
			}
			if v.Null || string(v.B) != tc.text {
				t.Errorf("ParseDebezium(%s) = %q (null %v), want %q", tc.json, v.B, v.Null, tc.text)
			}
		})
	}
}

// TestParseDebeziumHandWritten decodes values as other writers of
// Debezium's JSON may spell them: an offset other than Z, fewer digits
// than the column, escapes.
func TestParseDebeziumHandWritten(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    Column
		json string
		want string
	}{
		{"timestamp with offset", col("c", "timestamp", "timestamp", 0, 0), `"2018-06-20T06:37:03-07:00"`, "2018-06-20 13:37:03"},
		{"timestamp(3) without fraction", col("c", "timestamp", "timestamp(3)", 3, 0), `"2018-06-20T13:37:03Z"`, "2018-06-20 13:37:03.000"},
		{"timestamp(6) short fraction", col("c", "timestamp", "timestamp(6)", 6, 0), `"2018-06-20T13:37:03.5Z"`, "2018-06-20 13:37:03.500000"},
		{"unicode escapes", col("c", "varchar", "varchar(9)", 0, 0), `"\u00e9\ud83d\ude00\/"`, "é😀/"},
		{"null", col("c", "date", "date", 0, 0, "null"), "null", ""},
		{"spaces", col("c", "int", "int(11)", 10, 0), " 7 ", "7"},
		{"float as exponent", col("c", "float", "float", 12, 0), "1.0E10", "10000000000"},
		{"double from Java", col("c", "double", "double", 22, 0), "1.0E-7", "0.0000001"},
		{"bit(10) short bytes", col("c", "bit", "bit(10)", 10, 0), `"Bw=="`, "\x00\x07"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := ParseDebezium(tc.c, []byte(tc.json))
			if err != nil {
				t.Fatal(err)
			}
			if tc.json == "null" {
				if !v.Null {
					t.Errorf("null decoded as %q", v.B)
				}
				return
			}
			if string(v.B) != tc.want {
				t.Errorf("ParseDebezium(%s) = %q, want %q", tc.json, v.B, tc.want)
			}
		})
	}
}

// TestZeroDates pins the documentation's zero-value rule, which is one way:
// null where the column allows it, else the epoch.
func TestZeroDates(t *testing.T) {
	for _, tc := range []struct {
		c          Column
		text, want string
	}{
		{col("c", "date", "date", 0, 0, "null"), "0000-00-00", "null"},
		{col("c", "date", "date", 0, 0), "0000-00-00", "0"},
		{col("c", "date", "date", 0, 0), "2024-00-10", "0"},
		{col("c", "datetime", "datetime", 0, 0), "0000-00-00 00:00:00", "0"},
		{col("c", "datetime", "datetime(3)", 3, 0, "null"), "0000-00-00 00:00:00.000", "null"},
		{col("c", "timestamp", "timestamp", 0, 0), "0000-00-00 00:00:00", `"1970-01-01T00:00:00Z"`},
		{col("c", "timestamp", "timestamp(3)", 3, 0), "0000-00-00 00:00:00.000", `"1970-01-01T00:00:00.000Z"`},
	} {
		got, err := AppendDebezium(nil, tc.c, Value{B: []byte(tc.text)})
		if err != nil || string(got) != tc.want {
			t.Errorf("%s %q: got %s, %v; want %s", tc.c.ColumnType, tc.text, got, err, tc.want)
		}
	}
}

func TestDebeziumErrorsNameColumnAndValue(t *testing.T) {
	for _, tc := range []struct {
		c    Column
		text string
		json string
	}{
		{col("when", "date", "date", 0, 0), "2024-13-01", `"x"`},
		{col("n", "int", "int(11)", 10, 0), "12a", "1.5"},
		{col("d", "decimal", "decimal(5,2)", 5, 2), "1.234", `"!!"`},
		{col("b", "bit", "bit(10)", 10, 0), "\x01", "true"},
		{col("t", "time", "time", 0, 0), "1:2:3", `"12:00"`},
		{col("f", "float", "float", 12, 0), "abc", "1e99"},
		{col("u", "int", "int(10) unsigned", 10, 0, "unsigned"), "x", "-1"},
		{col("ts", "timestamp", "timestamp", 0, 0), "2024-01-01T00:00:00", "0"},
		{col("dt", "datetime", "datetime", 0, 0), "2024-01-01", "1"}, // 1 ms in a DATETIME(0)
	} {
		if _, err := AppendDebezium(nil, tc.c, Value{B: []byte(tc.text)}); err == nil ||
			!strings.Contains(err.Error(), "column "+tc.c.Name) || !strings.Contains(err.Error(), fmt.Sprintf("%q", tc.text)) {
			t.Errorf("AppendDebezium(%s, %q): error %v does not name the column and value", tc.c.ColumnType, tc.text, err)
		}
		if _, err := ParseDebezium(tc.c, []byte(tc.json)); err == nil ||
			!strings.Contains(err.Error(), "column "+tc.c.Name) || !strings.Contains(err.Error(), tc.json) {
			t.Errorf("ParseDebezium(%s, %s): error %v does not name the column and value", tc.c.ColumnType, tc.json, err)
		}
	}
}

// stringFixed stands in for shopspring's decimal.Decimal (UseDecimal=true).
type stringFixed string

func (s stringFixed) StringFixed(places int32) string {
	have := len(s) - strings.IndexByte(string(s), '.') - 1
	return string(s) + strings.Repeat("0", int(places)-have)
}

func TestAppendBinlog(t *testing.T) {
	local := time.FixedZone("UTC+2", 2*3600)
	for _, tc := range []struct {
		name string
		c    Column
		v    any
		want string
	}{
		{"tinyint unsigned without metadata", col("c", "tinyint", "tinyint(3) unsigned", 3, 0, "unsigned"), int8(-1), "255"},
		{"tinyint unsigned with metadata", col("c", "tinyint", "tinyint(3) unsigned", 3, 0, "unsigned"), uint8(255), "255"},
		{"smallint unsigned", col("c", "smallint", "smallint(5) unsigned", 5, 0, "unsigned"), int16(-2), "65534"},
		{"mediumint unsigned", col("c", "mediumint", "mediumint(8) unsigned", 7, 0, "unsigned"), int32(-1), "16777215"},
		{"int unsigned", col("c", "int", "int(10) unsigned", 10, 0, "unsigned"), int32(-1), "4294967295"},
		{"bigint unsigned", col("c", "bigint", "bigint(20) unsigned", 20, 0, "unsigned"), int64(-1), "18446744073709551615"},
		{"bigint unsigned uint64", col("c", "bigint", "bigint(20) unsigned", 20, 0, "unsigned"), uint64(1 << 63), "9223372036854775808"},
		{"signed stays negative", col("c", "int", "int(11)", 10, 0), int32(-5), "-5"},
		{"decimal string", col("c", "decimal", "decimal(5,2)", 5, 2), "-1.50", "-1.50"},
		{"decimal shopspring", col("c", "decimal", "decimal(5,3)", 5, 3), stringFixed("1.5"), "1.500"},
		{"float", col("c", "float", "float", 12, 0), float32(3.14159274), "3.1415927"},
		{"float 2^24+1 rounds in float32", col("c", "float", "float", 12, 0), float32(16777217), "16777216"},
		{"double", col("c", "double", "double", 22, 0), 0.1, "0.1"},
		{"double large", col("c", "double", "double", 22, 0), 1.7976931348623157e308, "1.7976931348623157e+308"},
		{"varchar string", col("c", "varchar", "varchar(9)", 0, 0), "😀", "😀"},
		{"text bytes", col("c", "text", "text", 0, 0), []byte("a\x00b"), "a\x00b"},
		{"binary padded", col("c", "binary", "binary(4)", 0, 0), "a", "a\x00\x00\x00"},
		{"bit(10)", col("c", "bit", "bit(10)", 10, 0), int64(0x201), "\x02\x01"},
		{"bit(1)", col("c", "bit", "bit(1)", 1, 0), int64(1), "\x01"},
		{"bit(64)", col("c", "bit", "bit(64)", 64, 0), int64(-1), "\xff\xff\xff\xff\xff\xff\xff\xff"},
		{"enum", col("c", "enum", "enum('a','b')", 0, 0), int64(2), "b"},
		{"enum error value", col("c", "enum", "enum('a','b')", 0, 0), int64(0), ""},
		{"set", col("c", "set", "set('x','y','z')", 0, 0), int64(5), "x,z"},
		{"year", col("c", "year", "year(4)", 0, 0), 2024, "2024"},
		{"year zero", col("c", "year", "year(4)", 0, 0), 0, "0000"},
		{"date", col("c", "date", "date", 0, 0), "2024-01-02", "2024-01-02"},
		{"datetime(6)", col("c", "datetime", "datetime(6)", 6, 0), time.Date(2024, 1, 2, 3, 4, 5, 100000, time.UTC), "2024-01-02 03:04:05.000100"},
		{"datetime(0) before 1970 as string", col("c", "datetime", "datetime", 0, 0), "1000-01-01 00:00:00", "1000-01-01 00:00:00"},
		{"datetime(3) zero", col("c", "datetime", "datetime(3)", 3, 0), "0000-00-00 00:00:00.000", "0000-00-00 00:00:00.000"},
		{"timestamp(3) in local zone", col("c", "timestamp", "timestamp(3)", 3, 0), time.Date(2024, 1, 2, 5, 4, 5, 120000000, local), "2024-01-02 03:04:05.120"},
		{"timestamp zero", col("c", "timestamp", "timestamp", 0, 0), "0000-00-00 00:00:00", "0000-00-00 00:00:00"},
		{"time(3) without fraction", col("c", "time", "time(3)", 3, 0), "-838:59:59", "-838:59:59.000"},
		{"time(6) fraction", col("c", "time", "time(6)", 6, 0), "12:00:00.000001", "12:00:00.000001"},
		{"time(0)", col("c", "time", "time", 0, 0), "100:00:00", "100:00:00"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, v, err := AppendBinlog([]byte("prefix"), tc.c, tc.v)
			if err != nil {
				t.Fatal(err)
			}
			if v.Null || string(v.B) != tc.want {
				t.Errorf("AppendBinlog(%T %v) = %q, want %q", tc.v, tc.v, v.B, tc.want)
			}
		})
	}
	if _, v, err := AppendBinlog(nil, col("c", "int", "int(11)", 10, 0), nil); err != nil || !v.Null {
		t.Errorf("nil: %v %v", v, err)
	}
	if _, _, err := AppendBinlog(nil, col("c", "date", "date", 0, 0), 3.5); err == nil || !strings.Contains(err.Error(), "column c") {
		t.Errorf("wrong Go type: error %v", err)
	}
	if _, _, err := AppendBinlog(nil, col("e", "enum", "enum('a')", 0, 0), int64(2)); err == nil || !strings.Contains(err.Error(), "column e") {
		t.Errorf("ENUM index out of range: error %v", err)
	}
}

func TestAppendText(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    Column
		raw  string
		want string
	}{
		{"float read as double", col("c", "float", "float", 12, 0), "3.1415927410125732", "3.1415927"},
		{"float 2^24", col("c", "float", "float", 12, 0), "16777216", "16777216"},
		{"double kept", col("c", "double", "double", 22, 0), "1.7976931348623157e+308", "1.7976931348623157e+308"},
		{"datetime(3) via parseTime", col("c", "datetime", "datetime(3)", 3, 0), "2024-01-02T03:04:05.1Z", "2024-01-02 03:04:05.100"},
		{"date via parseTime", col("c", "date", "date", 0, 0), "2024-01-02T00:00:00Z", "2024-01-02"},
		{"datetime text kept", col("c", "datetime", "datetime(3)", 3, 0), "2024-01-02 03:04:05.100", "2024-01-02 03:04:05.100"},
		{"binary kept", col("c", "binary", "binary(2)", 0, 0), "\x00\x00", "\x00\x00"},
		{"year 0 as the server sends it", col("c", "year", "year(4)", 0, 0), "0", "0000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, v, err := AppendText(nil, tc.c, []byte(tc.raw))
			if err != nil {
				t.Fatal(err)
			}
			if string(v.B) != tc.want {
				t.Errorf("AppendText(%q) = %q, want %q", tc.raw, v.B, tc.want)
			}
		})
	}
	if _, v, _ := AppendText(nil, col("c", "int", "int", 10, 0), nil); !v.Null {
		t.Error("nil RawBytes is not NULL")
	}
	if _, v, _ := AppendText(nil, col("c", "varchar", "varchar(1)", 0, 0), []byte{}); v.Null || len(v.B) != 0 {
		t.Error("empty RawBytes is not the empty string")
	}
}

// TestRowSharesBuffer checks that values appended to one buffer stay intact
// when the buffer grows.
func TestRowSharesBuffer(t *testing.T) {
	cols := []Column{col("a", "varchar", "varchar(9)", 0, 0), col("b", "int", "int(11)", 10, 0), col("c", "date", "date", 0, 0, "null")}
	buf := make([]byte, 0, 2) // forces moves
	vals := make([]Value, 3)
	var err error
	buf, vals[0], _ = AppendText(buf, cols[0], []byte("héllo"))
	buf, vals[1], _ = AppendBinlog(buf, cols[1], int32(-7))
	buf, vals[2], _ = AppendText(buf, cols[2], nil)
	tb := rowTable(cols)
	tb.Key = []int{0, 1}
	rec, err := AppendChange(nil, tb, &Change{Op: OpCreate, After: vals, Source: rowSource(tb)})
	if err != nil {
		t.Fatal(err)
	}
	if want := `"after":{"a":"héllo","b":-7,"c":null}`; !strings.Contains(string(rec), want) {
		t.Fatalf("record %s, want %s in it", rec, want)
	}
	key, err := AppendChangeKey(nil, tb, &Change{Op: OpCreate, After: vals})
	if err != nil || string(key) != `{"a":"héllo","b":-7}` {
		t.Fatalf("key %s, %v", key, err)
	}
	var c Change
	if _, err := ParseChange(buf[:0:0], tb, afterRecord(tb, ` { "c" : null, "extra":"x", "a":"h\u00e9llo","b":-7} `), &c); err != nil {
		t.Fatal(err)
	}
	for i := range vals {
		if c.After[i].Null != vals[i].Null || string(c.After[i].B) != string(vals[i].B) {
			t.Errorf("column %s: %q, want %q", cols[i].Name, c.After[i].B, vals[i].B)
		}
	}
	if _, err := ParseChange(nil, tb, afterRecord(tb, `{"a":"x","c":null}`), &c); err == nil || !strings.Contains(err.Error(), "column b is missing") {
		t.Errorf("missing column: %v", err)
	}
}

// rowTable is cols as a table's columns, the same on both sides, so that a
// row image of them travels through the record codec.
func rowTable(cols []Column) *Table {
	t := &Table{Source: TableName{"db", "t"}, Target: TableName{"db", "t"}}
	for _, c := range cols {
		t.Columns = append(t.Columns, TableColumn{Source: c, Target: c})
	}
	return t
}

// rowSource is a source block naming t's source table.
func rowSource(t *Table) Source {
	return Source{Connector: "mysql", Name: "sluice", DB: t.Source.DB, Table: t.Source.Table, Snapshot: "true"}
}

// afterRecord wraps row, a row image's JSON object, as the after image of
// a create record of table t.
func afterRecord(t *Table, row string) []byte {
	return []byte(`{"op":"c","ts_ms":0,"before":null,"after":` + row +
		`,"source":{"connector":"mysql","name":"sluice","db":"` + t.Source.DB + `","table":"` + t.Source.Table + `","snapshot":"true"}}`)
}

func TestArg(t *testing.T) {
	if a, _ := Arg(col("f", "float", "float", 12, 0), Value{B: []byte("3.1415927")}); a != float64(float32(3.1415927)) {
		t.Errorf("FLOAT arg %v", a)
	}
	if a, _ := Arg(col("d", "double", "double", 22, 0), Value{B: []byte("0.1")}); a != 0.1 {
		t.Errorf("DOUBLE arg %v", a)
	}
	if a, _ := Arg(col("b", "blob", "blob", 0, 0), Value{B: []byte{0}}); string(a.([]byte)) != "\x00" {
		t.Errorf("BLOB arg %v", a)
	}
	if a, _ := Arg(col("b", "blob", "blob", 0, 0), Null); a != nil {
		t.Errorf("NULL arg %v", a)
	}
	if _, err := Arg(col("f", "float", "float", 12, 0), Value{B: []byte("x")}); err == nil || !strings.Contains(err.Error(), "column f") {
		t.Errorf("bad FLOAT: %v", err)
	}
}

func TestCheckType(t *testing.T) {
	if err := CheckType(col("g", "geometry", "geometry", 0, 0)); err == nil || !strings.Contains(err.Error(), "column g") {
		t.Errorf("geometry: %v", err)
	}
	c := col("l", "varchar", "varchar(3)", 0, 0)
	c.Charset = "latin1"
	if err := CheckType(c); err == nil || !strings.Contains(err.Error(), "latin1") {
		t.Errorf("latin1: %v", err)
	}
	if err := CheckType(col("ok", "varchar", "varchar(3)", 0, 0)); err != nil {
		t.Error(err)
	}
}

// TestAppendDouble pins the DOUBLE text to what MariaDB 10.11 sent for
// these values (SELECT of a DOUBLE column, text protocol).
func TestAppendDouble(t *testing.T) {
	for f, want := range map[float64]string{
		1e14: "100000000000000", 1e15: "1e+15", 1e16: "1e+16", 123456789012345678: "1.2345678901234568e+17",
		1.5e-5: "0.000015", 0.0001: "0.0001", 1e21: "1e+21", 1e-7: "0.0000001", 100: "100", 0.1: "0.1",
		-2.5e-300: "-2.5e-300", 1.7976931348623157e308: "1.7976931348623157e+308", 5e-324: "5e-324",
		999999986991104: "999999986991104", 1.0000000272564224e16: "1.0000000272564224e+16",
		0.000014999999621068127: "0.000014999999621068127", 1e-14: "0.00000000000001", 1e-16: "1e-16",
		1.5e-16: "1.5e-16", 1.2345678901234567e-14: "0.000000000000012345678901234567",
		-1.2345678901234567e-15: "-0.0000000000000012345678901234568", 1234567890123456.7: "1234567890123456.8",
		123456789012345.6: "123456789012345.6", 0: "0",
	} {
		if got := string(appendDouble(nil, f)); got != want {
			t.Errorf("appendDouble(%v) = %s, want %s", f, got, want)
		}
	}
}
