package schema

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// A column value travels through Sluice as its canonical MySQL text: what
// the server prints for it in the text protocol (with the session time zone
// '+00:00' for TIMESTAMP), or the raw bytes for BINARY, VARBINARY, BLOB and
// BIT. Transforms work on that text; the writer binds it (Arg); the Debezium
// encoding is computed from it (debezium.go). The two ways a value enters,
// a backfill row read with a plain query (TextValue) and a binlog row image
// decoded by go-mysql (BinlogValue), both end in the same text, so an
// update from the tail and a snapshot read of the same row carry the same
// bytes.
//
// Where a type has more than one text for one value, the canonical text is:
//   - FLOAT: the shortest decimal that reads back as the same float32
//     (printed as DOUBLE is), because the server prints FLOAT with only six
//     significant digits (3.14159274 prints as 3.14159, 16777217 as
//     16777200), which does not read back; the backfill selects FLOAT
//     columns as DOUBLE (SelectExpr) to see every bit;
//   - DOUBLE: what the server prints, which is already exact (MariaDB prints
//     the shortest round-trip digits); values from the binlog are printed
//     the same way in the common range and in exponent form outside it;
//   - DATETIME, TIMESTAMP and TIME: exactly Column.Precision fractional
//     digits, as the server prints them (go-mysql drops the fraction of a
//     TIME when it is zero);
//   - TIMESTAMP: the UTC wall clock.

// Value is one column value: its canonical text in B, or NULL. A row is a
// []Value whose B slices share one backing buffer: the Append… functions
// append the text to dst and return a Value that aliases what they
// appended, which stays valid when a later append moves dst.
type Value struct {
	B    []byte
	Null bool
}

// Null is the NULL value.
var Null = Value{Null: true}

// kind is how a column's values are carried and encoded, from its DATA_TYPE.
type kind uint8

const (
	kUnsupported kind = iota
	kInt
	kDecimal
	kFloat
	kDouble
	kString // CHAR, VARCHAR, the TEXT types, and JSON (MariaDB's JSON is LONGTEXT)
	kBinary // BINARY, VARBINARY and the BLOB types
	kBit
	kEnum
	kSet
	kDate
	kDatetime
	kTimestamp
	kTime
	kYear
)

func kindOf(c *Column) kind {
	switch c.DataType {
	case "tinyint", "smallint", "mediumint", "int", "integer", "bigint":
		return kInt
	case "decimal", "numeric":
		return kDecimal
	case "float":
		return kFloat
	case "double", "real", "double precision":
		return kDouble
	case "char", "varchar", "tinytext", "text", "mediumtext", "longtext", "json":
		return kString
	case "binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob":
		return kBinary
	case "bit":
		return kBit
	case "enum":
		return kEnum
	case "set":
		return kSet
	case "date":
		return kDate
	case "datetime":
		return kDatetime
	case "timestamp":
		return kTimestamp
	case "time":
		return kTime
	case "year":
		return kYear
	}
	return kUnsupported
}

// CheckType returns an error naming the column when Sluice cannot carry its
// type exactly: a type it does not know (GEOMETRY, INET6, UUID, …), or a
// text column whose character set is not UTF-8 (the binlog carries the
// column's own bytes, the text protocol the connection's: only for UTF-8
// are they the same).
func CheckType(c Column) error {
	if kindOf(&c) == kUnsupported {
		return fmt.Errorf("column %s: type %s is not supported", c.Name, c.ColumnType)
	}
	if k := kindOf(&c); k == kString || k == kEnum || k == kSet {
		switch c.Charset {
		case "", "utf8mb4", "utf8mb3", "utf8", "ascii", "binary":
		default:
			return fmt.Errorf("column %s: character set %s is not supported (only utf8mb4, utf8mb3 and ascii travel byte for byte)", c.Name, c.Charset)
		}
	}
	return nil
}

// SelectExpr is the select-list expression the backfill reads column c
// with: the quoted name, but for FLOAT a cast to DOUBLE, which prints every
// bit of the float where FLOAT prints six digits.
func SelectExpr(c Column) (string, error) {
	q, err := QuoteIdent(c.Name)
	if err != nil {
		return "", err
	}
	if kindOf(&c) == kFloat {
		return "CAST(" + q + " AS DOUBLE) AS " + q, nil
	}
	return q, nil
}

// AppendText appends the value of column c as the backfill read it with a
// text-protocol query into a sql.RawBytes (nil for NULL), and returns the
// Value. Server text is kept as it is, but for FLOAT (read as DOUBLE by
// SelectExpr, made the shortest float32 text) and for DATE, DATETIME and
// TIMESTAMP read through a connection with parseTime=true (database/sql then
// hands RFC 3339 text to a RawBytes; it is turned back into the server's
// form: a zero date cannot come back that way, it arrives as 0001-01-01, so
// read with parseTime=false where zero dates occur).
func AppendText(dst []byte, c Column, raw []byte) ([]byte, Value, error) {
	if raw == nil {
		return dst, Null, nil
	}
	start := len(dst)
	switch kindOf(&c) {
	case kFloat:
		f, err := strconv.ParseFloat(string(raw), 64)
		if err != nil {
			return dst, Null, fmt.Errorf("column %s: FLOAT value %q: %w", c.Name, raw, err)
		}
		dst = appendFloatText(dst, float64(float32(f)), 32)
	case kYear:
		// The server sends YEAR 0 as "0", which a string parameter would
		// store as 2000: the canonical text is "0000".
		for n := len(raw); n < 4; n++ {
			dst = append(dst, '0')
		}
		dst = append(dst, raw...)
	case kDate, kDatetime, kTimestamp:
		if i := bytes.IndexByte(raw, 'T'); i < 0 {
			dst = append(dst, raw...)
			break
		}
		t, err := time.Parse(time.RFC3339Nano, string(raw))
		if err != nil {
			return dst, Null, fmt.Errorf("column %s: %s value %q: %w", c.Name, c.DataType, raw, err)
		}
		dst = appendWallText(dst, &c, t.UTC())
	default:
		dst = append(dst, raw...)
	}
	return dst, Value{B: dst[start:len(dst):len(dst)]}, nil
}

// AppendBinlog appends the value of column c as go-mysql's replication
// package decodes it from a row image (with ParseTime=true and
// TimestampStringLocation=UTC; false and strings work too), and returns the
// Value. It copies: go-mysql's strings and byte slices point into the event
// buffer, which the next event reuses.
//
// What go-mysql v1.16.0 hands over (replication/row_event.go decodeValue):
// integers as int8…int64, or uint8…uint64 when the table map carries
// signedness (binlog_row_metadata=FULL), else negative above the signed
// range, fixed here from Column.Unsigned; DECIMAL as a string with Scale
// digits, or a shopspring decimal with UseDecimal; FLOAT as float32; DOUBLE
// as float64; BIT as int64; ENUM as the 1-based index (int64); SET as the
// member bitmask (int64); YEAR as int (0 or 1901–2155); DATE as a string;
// DATETIME as time.Time labelled UTC (a string for zero dates and years
// before 1970); TIMESTAMP as time.Time (a string for the zero value); TIME
// as a string without its fraction when the fraction is zero; CHAR and
// VARCHAR (and BINARY) as a string, the TEXT and BLOB types as []byte; a
// MySQL JSON column as its JSON text.
func AppendBinlog(dst []byte, c Column, v any) ([]byte, Value, error) {
	if v == nil {
		return dst, Null, nil
	}
	start := len(dst)
	var err error
	switch kindOf(&c) {
	case kInt:
		dst, err = appendBinlogInt(dst, &c, v)
	case kDecimal:
		switch x := v.(type) {
		case string:
			dst = append(dst, x...)
		case []byte:
			dst = append(dst, x...)
		case interface{ StringFixed(int32) string }: // shopspring decimal, UseDecimal=true
			dst = append(dst, x.StringFixed(int32(c.Scale))...)
		default:
			err = errBinlogType
		}
	case kFloat:
		switch x := v.(type) {
		case float32:
			dst = appendFloatText(dst, float64(x), 32)
		case float64:
			dst = appendFloatText(dst, float64(float32(x)), 32)
		default:
			err = errBinlogType
		}
	case kDouble:
		switch x := v.(type) {
		case float64:
			dst = appendDouble(dst, x)
		case float32:
			dst = appendDouble(dst, float64(x))
		default:
			err = errBinlogType
		}
	case kString, kBinary:
		switch x := v.(type) {
		case string:
			dst = append(dst, x...)
		case []byte:
			dst = append(dst, x...)
		default:
			err = errBinlogType
		}
		// The binlog drops the trailing zero bytes of a BINARY(n) value;
		// the column (and the text protocol) has them.
		if c.DataType == "binary" {
			for n := int64(len(dst) - start); n < c.Length; n++ {
				dst = append(dst, 0)
			}
		}
	case kBit:
		switch x := v.(type) {
		case int64:
			dst = appendBits(dst, &c, uint64(x))
		case []byte:
			dst = append(dst, x...)
		default:
			err = errBinlogType
		}
	case kEnum:
		switch x := v.(type) {
		case int64:
			switch {
			case x == 0: // the error value '' of a non-strict insert
			case x > 0 && int(x) <= len(c.Elements):
				dst = append(dst, c.Elements[x-1]...)
			default:
				err = fmt.Errorf("ENUM index %d outside the %d members", x, len(c.Elements))
			}
		case string:
			dst = append(dst, x...)
		default:
			err = errBinlogType
		}
	case kSet:
		switch x := v.(type) {
		case int64:
			if len(c.Elements) < 64 && uint64(x)>>len(c.Elements) != 0 {
				err = fmt.Errorf("SET bitmask %#x has bits beyond the %d members", x, len(c.Elements))
				break
			}
			first := true
			for i, e := range c.Elements {
				if uint64(x)&(1<<i) != 0 {
					if !first {
						dst = append(dst, ',')
					}
					dst, first = append(dst, e...), false
				}
			}
		case string:
			dst = append(dst, x...)
		default:
			err = errBinlogType
		}
	case kDate:
		switch x := v.(type) {
		case string:
			dst = append(dst, x...)
		case time.Time:
			dst, _ = AppendYMD(dst, x)
		default:
			err = errBinlogType
		}
	case kDatetime, kTimestamp:
		switch x := v.(type) {
		case time.Time:
			// DATETIME arrives labelled UTC with its wall clock; TIMESTAMP
			// as an instant in the process's zone: UTC is right for both.
			dst = appendWallText(dst, &c, x.UTC())
		case string:
			dst = appendFracText(dst, &c, x)
		default:
			err = errBinlogType
		}
	case kTime:
		if x, ok := v.(string); ok {
			dst = appendFracText(dst, &c, x)
		} else {
			err = errBinlogType
		}
	case kYear:
		var y int64
		switch x := v.(type) {
		case int:
			y = int64(x)
		case int64:
			y = x
		case uint16:
			y = int64(x)
		default:
			err = errBinlogType
		}
		if err == nil {
			dst = appendYear(dst, y)
		}
	default:
		err = fmt.Errorf("type %s is not supported", c.ColumnType)
	}
	if err != nil {
		if errors.Is(err, errBinlogType) {
			err = fmt.Errorf("unexpected %T %v for %s", v, v, c.ColumnType)
		}
		return dst[:start], Null, fmt.Errorf("column %s: binlog value: %w", c.Name, err)
	}
	return dst, Value{B: dst[start:len(dst):len(dst)]}, nil
}

var errBinlogType = errors.New("unexpected Go type")

// appendBinlogInt formats an integer, reading a negative value of an
// unsigned column (a binlog without signedness metadata) as the unsigned
// number of the column's width.
func appendBinlogInt(dst []byte, c *Column, v any) ([]byte, error) {
	var i int64
	switch x := v.(type) {
	case int8:
		i = int64(x)
	case int16:
		i = int64(x)
	case int32:
		i = int64(x)
	case int64:
		i = x
	case int:
		i = int64(x)
	case uint8:
		return strconv.AppendUint(dst, uint64(x), 10), nil
	case uint16:
		return strconv.AppendUint(dst, uint64(x), 10), nil
	case uint32:
		return strconv.AppendUint(dst, uint64(x), 10), nil
	case uint64:
		return strconv.AppendUint(dst, x, 10), nil
	default:
		return dst, errBinlogType
	}
	if i >= 0 || !c.Unsigned {
		return strconv.AppendInt(dst, i, 10), nil
	}
	bits := 64
	switch c.DataType {
	case "tinyint":
		bits = 8
	case "smallint":
		bits = 16
	case "mediumint":
		bits = 24
	case "int", "integer":
		bits = 32
	}
	u := uint64(i)
	if bits < 64 {
		u &= 1<<bits - 1
	}
	return strconv.AppendUint(dst, u, 10), nil
}

// appendDouble prints a DOUBLE as MariaDB 10.11 does: the shortest digits
// that read back, positional for 1e-15 <= |f| < 1e15 and for any value with
// digits after the point below 1e17, else d.ddde+x or d.ddde-x without
// leading exponent zeros (what the text protocol carries, checked against
// the server in TestIntegrationTypesRoundTrip; the mariadb client shows
// 1e15 where the wire has 1e+15).
func appendDouble(dst []byte, f float64) []byte { return appendFloatText(dst, f, 64) }

// appendFloatText is appendDouble for the float32 (bits 32) or float64
// value f.
func appendFloatText(dst []byte, f float64, bits int) []byte {
	if f == 0 || math.IsInf(f, 0) || math.IsNaN(f) {
		return strconv.AppendFloat(dst, f, 'f', -1, bits)
	}
	var buf [32]byte
	e := strconv.AppendFloat(buf[:0], f, 'e', -1, bits) // -d.ddde±xx
	neg := e[0] == '-'
	if neg {
		e = e[1:]
	}
	ePos := bytes.IndexByte(e, 'e')
	mant, exp := e[:ePos], e[ePos+1:]
	x, _ := strconv.Atoi(string(exp))
	var digits [24]byte
	nd := 0
	for _, c := range mant {
		if c != '.' {
			digits[nd] = c
			nd++
		}
	}
	decpt := x + 1 // digits before the point
	positional := decpt >= -14 && (decpt <= 15 || decpt < nd)
	if neg {
		dst = append(dst, '-')
	}
	if !positional {
		dst = append(dst, digits[0])
		if nd > 1 {
			dst = append(dst, '.')
			dst = append(dst, digits[1:nd]...)
		}
		dst = append(dst, 'e')
		if x > 0 {
			dst = append(dst, '+')
		}
		return strconv.AppendInt(dst, int64(x), 10)
	}
	switch {
	case decpt <= 0:
		dst = append(dst, '0', '.')
		for range -decpt {
			dst = append(dst, '0')
		}
		return append(dst, digits[:nd]...)
	case decpt >= nd:
		dst = append(dst, digits[:nd]...)
		for range decpt - nd {
			dst = append(dst, '0')
		}
		return dst
	}
	dst = append(dst, digits[:decpt]...)
	dst = append(dst, '.')
	return append(dst, digits[decpt:nd]...)
}

// appendBits appends the BIT(n) value u as the server stores and prints it:
// (n+7)/8 bytes, big-endian.
func appendBits(dst []byte, c *Column, u uint64) []byte {
	w := (bitWidthOf(c) + 7) / 8
	for i := w - 1; i >= 0; i-- {
		if i >= 8 {
			dst = append(dst, 0)
			continue
		}
		dst = append(dst, byte(u>>(8*i)))
	}
	return dst
}

// bitWidthOf is n of BIT(n), at least 1.
func bitWidthOf(c *Column) int {
	if c.Precision < 1 {
		return 1
	}
	return c.Precision
}

func appendYear(dst []byte, y int64) []byte {
	if y < 0 || y > 9999 {
		return strconv.AppendInt(dst, y, 10)
	}
	return append(dst, byte('0'+y/1000), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10))
}

// precisionOf is the fractional digits of a DATETIME, TIMESTAMP or TIME
// column, 0–6.
func precisionOf(c *Column) int {
	return min(max(c.Precision, 0), 6)
}

// appendWallText appends t's wall clock as the server prints a DATE,
// DATETIME or TIMESTAMP of column c.
func appendWallText(dst []byte, c *Column, t time.Time) []byte {
	if kindOf(c) == kDate {
		if out, ok := AppendYMD(dst, t); ok {
			return out
		}
		return t.AppendFormat(dst, "2006-01-02")
	}
	out, ok := AppendWall(dst, t, ' ')
	if !ok {
		out = t.AppendFormat(dst, "2006-01-02 15:04:05")
	}
	if p := precisionOf(c); p > 0 {
		out = append(out, '.')
		out = appendFrac(out, int64(t.Nanosecond()/1000), p)
	}
	return out
}

// appendFrac appends the first p digits of the six-digit microseconds us.
func appendFrac(dst []byte, us int64, p int) []byte {
	div := int64(100000)
	for range p {
		dst = append(dst, byte('0'+us/div%10))
		div /= 10
	}
	return dst
}

// appendFracText appends a temporal text with exactly the column's
// fractional digits: go-mysql prints a TIME without its fraction when the
// fraction is zero, and its zero DATETIME with the binlog's digits.
func appendFracText(dst []byte, c *Column, s string) []byte {
	p := precisionOf(c)
	dot := -1
	for i := len(s) - 1; i >= 0 && s[i] != ':' && s[i] != ' ' && s[i] != '-'; i-- {
		if s[i] == '.' {
			dot = i
			break
		}
	}
	if dot < 0 {
		dst = append(dst, s...)
		if p > 0 && kindOf(c) != kDate {
			dst = append(dst, '.')
			for range p {
				dst = append(dst, '0')
			}
		}
		return dst
	}
	have := len(s) - dot - 1
	switch {
	case p == 0:
		return append(dst, s[:dot]...)
	case have >= p:
		return append(dst, s[:dot+1+p]...)
	}
	dst = append(dst, s...)
	for ; have < p; have++ {
		dst = append(dst, '0')
	}
	return dst
}

// ElementsFromBinlog replaces the members of the ENUM and SET columns of
// cols with those a binlog table map carries (go-mysql's
// TableMapEvent.EnumStrValueMap and SetStrValueMap, by column index; only
// with binlog_row_metadata=FULL). MariaDB's information_schema and SHOW
// CREATE TABLE print member names in utf8mb3, so a member with a 4-byte
// character (an emoji) reads as '?' there; the table map has its bytes. A
// column whose member count differs is an error naming it (the table
// changed).
func ElementsFromBinlog(cols []Column, enums, sets map[int][]string) error {
	for _, m := range []map[int][]string{enums, sets} {
		for i, members := range m {
			if i < 0 || i >= len(cols) {
				return fmt.Errorf("binlog table map: ENUM or SET column %d of %d", i+1, len(cols))
			}
			c := &cols[i]
			if k := kindOf(c); k != kEnum && k != kSet {
				return fmt.Errorf("column %s: the binlog has ENUM or SET members for a %s", c.Name, c.ColumnType)
			}
			if len(members) != len(c.Elements) {
				return fmt.Errorf("column %s: the binlog has %d members, information_schema %d", c.Name, len(members), len(c.Elements))
			}
			els := make([]string, len(members))
			for j, e := range members {
				els[j] = strings.Clone(e)
			}
			c.Elements = els
		}
	}
	return nil
}

// Arg is what the writer passes to database/sql for v in column c so that
// the target stores exactly the source's value: nil for NULL; a float64 for
// FLOAT and DOUBLE (the float32 of a FLOAT widens exactly and the server
// narrows it back exactly, where a decimal text would be rounded twice);
// the bytes for everything else, which the server converts from text as it
// does for a literal (go-sql-driver sends []byte as _binary'…' with
// interpolateParams=true, and as a string parameter in a prepared
// statement). TIMESTAMP text is UTC: the writer's session must run with
// time_zone '+00:00'.
func Arg(c Column, v Value) (any, error) {
	if v.Null {
		return nil, nil
	}
	switch kindOf(&c) {
	case kFloat, kDouble:
		f, err := strconv.ParseFloat(string(v.B), 64)
		if err != nil {
			return nil, fmt.Errorf("column %s: %s value %q: %w", c.Name, c.DataType, v.B, err)
		}
		if kindOf(&c) == kFloat {
			f = float64(float32(f))
		}
		return f, nil
	}
	return v.B, nil
}
