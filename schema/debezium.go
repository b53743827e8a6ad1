package schema

import (
	"encoding/base64"
	"fmt"
	"math"
	"math/big"
	"strconv"
)

// The JSON value of each column type, exactly as Debezium's MySQL connector
// encodes it with its default settings through Kafka Connect's JSON
// converter (payload only). The source of truth is the connector's
// documentation, "Data type mappings"
// (https://debezium.io/documentation/reference/stable/connectors/mysql.html#mysql-data-types,
// documentation/modules/ROOT/pages/connectors/mysql.adoc in debezium/debezium):
//
//   - BOOLEAN/TINYINT…BIGINT: INT16/INT32/INT64, a JSON number. BIGINT
//     UNSIGNED with bigint.unsigned.handling.mode=long (the default) is
//     "Java's long, which might not offer the precision": a value above
//     2^63-1 travels as the long with the same bits, negative; the decoder
//     reads it back from Column.Unsigned.
//   - DECIMAL/NUMERIC with decimal.handling.mode=precise (the default):
//     BYTES, org.apache.kafka.connect.data.Decimal, the unscaled value as
//     big-endian two's complement in the fewest bytes (Java's
//     BigInteger.toByteArray), which the JSON converter writes as base64;
//     the scale is the column's.
//   - FLOAT: FLOAT32; FLOAT(M,D) and DOUBLE: FLOAT64; a JSON number.
//   - CHAR, VARCHAR, the TEXT types: STRING. JSON: STRING
//     (io.debezium.data.Json). ENUM: STRING (io.debezium.data.Enum). SET:
//     STRING (io.debezium.data.EnumSet), the members comma-separated.
//   - BINARY, VARBINARY, the BLOB types: BYTES with binary.handling.mode=bytes
//     (the default), base64 in JSON.
//   - BIT(1): BOOLEAN. BIT(n>1): BYTES (io.debezium.data.Bits), "the bits in
//     little-endian form", n/8 rounded up bytes: the reverse of the
//     server's big-endian bytes.
//   - YEAR: INT32 (io.debezium.time.Year).
//   - With time.precision.mode=adaptive_time_microseconds (the default):
//     DATE: INT32 days since the epoch (io.debezium.time.Date); TIME: INT64
//     microseconds (io.debezium.time.MicroTime); DATETIME(0–3): INT64
//     milliseconds past the epoch (io.debezium.time.Timestamp);
//     DATETIME(4–6): INT64 microseconds (io.debezium.time.MicroTimestamp).
//     The documentation says only TIME values from 00:00:00 to
//     23:59:59.999999 "can be captured correctly"; Sluice writes a negative
//     or longer TIME as its signed microseconds, which is what the
//     connector computes from the binlog's duration.
//   - TIMESTAMP(M): STRING (io.debezium.time.ZonedTimestamp), ISO 8601 in
//     UTC, e.g. "2018-06-20T13:37:03Z"; the connector
//     (io.debezium.time.ZonedTimestamp.toIsoString with the column length)
//     prints exactly M fractional digits for M>0.
//   - Zero dates: "The MySQL connector represents zero-values as null values
//     when the column definition allows null values, or as the epoch day
//     when the column does not allow null values" (DATE, DATETIME,
//     TIMESTAMP). Zero dates therefore do not survive the envelope.

// AppendDebezium appends the JSON value of v for column c, as Debezium
// encodes it. The error names the column and the value when v is not a
// value of c's type (a transform that broke it).
func AppendDebezium(dst []byte, c Column, v Value) ([]byte, error) {
	return appendDebezium(dst, &c, v)
}

func appendDebezium(dst []byte, c *Column, v Value) ([]byte, error) {
	if v.Null {
		return append(dst, "null"...), nil
	}
	b := v.B
	var ok bool
	switch kindOf(c) {
	case kInt:
		bits := intBits(c)
		if c.Unsigned {
			u, err := strconv.ParseUint(string(b), 10, bits)
			if ok = err == nil; ok {
				// bigint.unsigned.handling.mode=long: the same 64 bits.
				return strconv.AppendInt(dst, int64(u), 10), nil
			}
			break
		}
		i, err := strconv.ParseInt(string(b), 10, bits)
		if ok = err == nil; ok {
			return strconv.AppendInt(dst, i, 10), nil
		}
	case kDecimal:
		var out []byte
		if out, ok = appendDecimalBase64(dst, b, c.Scale); ok {
			return out, nil
		}
	case kFloat, kDouble:
		// Printed again from the number, so the JSON is the stored value's
		// (a FLOAT text with more digits than a float32 holds is rounded
		// as the server rounds it).
		f, err := strconv.ParseFloat(string(b), 64)
		if ok = err == nil; ok {
			if kindOf(c) == kFloat {
				if ok = !math.IsInf(float64(float32(f)), 0); ok {
					return appendFloatText(dst, float64(float32(f)), 32), nil
				}
				break
			}
			return appendDouble(dst, f), nil
		}
	case kString, kEnum, kSet:
		return appendJSONText(dst, b), nil
	case kBinary:
		dst = append(dst, '"')
		dst = base64.StdEncoding.AppendEncode(dst, b)
		return append(dst, '"'), nil
	case kBit:
		w := (bitWidthOf(c) + 7) / 8
		if ok = len(b) == w && (bitWidthOf(c)%8 == 0 || b[0]>>(bitWidthOf(c)%8) == 0); !ok {
			break
		}
		if bitWidthOf(c) == 1 {
			if b[0] != 0 {
				return append(dst, "true"...), nil
			}
			return append(dst, "false"...), nil
		}
		var le [8]byte
		var rev []byte
		if w <= len(le) {
			rev = le[:w]
		} else {
			rev = make([]byte, w)
		}
		for i := range w {
			rev[i] = b[w-1-i]
		}
		dst = append(dst, '"')
		dst = base64.StdEncoding.AppendEncode(dst, rev)
		return append(dst, '"'), nil
	case kDate:
		days, zero, good := parseDateText(b)
		if ok = good; ok {
			if zero {
				return appendZeroTemporal(dst, c, "0"), nil
			}
			return strconv.AppendInt(dst, days, 10), nil
		}
	case kDatetime:
		us, zero, good := parseDatetimeText(b)
		if ok = good && fracDigits(b) <= precisionOf(c); ok {
			if zero {
				return appendZeroTemporal(dst, c, "0"), nil
			}
			if precisionOf(c) <= 3 {
				return strconv.AppendInt(dst, floorDiv(us, 1000), 10), nil
			}
			return strconv.AppendInt(dst, us, 10), nil
		}
	case kTimestamp:
		_, zero, good := parseDatetimeText(b)
		if ok = good && fracDigits(b) <= precisionOf(c); ok {
			if zero {
				if c.Nullable {
					return append(dst, "null"...), nil
				}
				return appendZonedText(dst, c, []byte("1970-01-01 00:00:00")), nil
			}
			return appendZonedText(dst, c, b), nil
		}
	case kTime:
		us, good := parseTimeText(b)
		if ok = good && fracDigits(b) <= precisionOf(c) && us >= -maxTimeMicros && us <= maxTimeMicros; ok {
			return strconv.AppendInt(dst, us, 10), nil
		}
	case kYear:
		y, err := strconv.ParseInt(string(b), 10, 32)
		if ok = err == nil && len(b) == 4 && (y == 0 || (y >= 1901 && y <= 2155)); ok {
			return strconv.AppendInt(dst, y, 10), nil
		}
	default:
		return dst, fmt.Errorf("column %s: type %s is not supported", c.Name, c.ColumnType)
	}
	return dst, fmt.Errorf("column %s: %q is not a %s value", c.Name, b, c.ColumnType)
}

// maxTimeMicros is TIME's range, ±838:59:59.999999.
const maxTimeMicros = ((838*60+59)*60+59)*1e6 + 999999

// intBits is the width of an integer column (64 for BIGINT and anything
// else).
func intBits(c *Column) int {
	if n, ok := integerBits[c.DataType]; ok {
		return n
	}
	return 64
}

// fracDigits counts the digits after the last '.' of a temporal text.
func fracDigits(b []byte) int {
	for i := len(b) - 1; i >= 0; i-- {
		switch b[i] {
		case '.':
			return len(b) - 1 - i
		case ':', ' ', '-':
			return 0
		}
	}
	return 0
}

// appendZeroTemporal is Debezium's zero date: null where the column allows
// it, else the epoch.
func appendZeroTemporal(dst []byte, c *Column, epoch string) []byte {
	if c.Nullable {
		return append(dst, "null"...)
	}
	return append(dst, epoch...)
}

// appendZonedText turns TIMESTAMP text "YYYY-MM-DD hh:mm:ss[.f]" (UTC) into the
// ZonedTimestamp string "YYYY-MM-DDThh:mm:ss[.f]Z" with the column's digits.
func appendZonedText(dst []byte, c *Column, b []byte) []byte {
	dst = append(dst, '"')
	dst = append(dst, b[:10]...)
	dst = append(dst, 'T')
	dst = appendFracText(dst, c, string(b[11:]))
	return append(dst, 'Z', '"')
}

// appendJSONText appends b as a JSON string. Invalid UTF-8 becomes U+FFFD
// (text columns are UTF-8: CheckType).
func appendJSONText(dst []byte, s []byte) []byte { return appendString(dst, s) }

// isInteger reports whether b is an optionally negative run of digits.
func isInteger(b []byte) bool {
	if len(b) > 0 && b[0] == '-' {
		b = b[1:]
	}
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// isJSONNumber reports whether b is a number in JSON's grammar.
func isJSONNumber(b []byte) bool {
	i := 0
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		j := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == j {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == j {
			return false
		}
	}
	return i == len(b)
}

// appendDecimalBase64 appends the quoted base64 of the unscaled value of the
// DECIMAL text b at the given scale, as Java's BigInteger.toByteArray gives
// it: big-endian two's complement in the fewest bytes that keep the sign.
func appendDecimalBase64(dst []byte, b []byte, scale int) ([]byte, bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg || (len(b) > 0 && b[0] == '+') {
		b = b[1:]
	}
	var digits [96]byte
	n, frac, seenDot := 0, 0, false
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			if n == len(digits) {
				return dst, false
			}
			digits[n] = c
			n++
			if seenDot {
				frac++
			}
		case c == '.' && !seenDot:
			seenDot = true
		default:
			return dst, false
		}
	}
	if n == 0 || frac > scale {
		return dst, false
	}
	for ; frac < scale; frac++ {
		if n == len(digits) {
			return dst, false
		}
		digits[n] = '0'
		n++
	}
	var raw [40]byte
	var mag []byte
	if n <= 18 {
		var u uint64
		for _, c := range digits[:n] {
			u = u*10 + uint64(c-'0')
		}
		i := int64(u)
		if neg {
			i = -i
		}
		mag = appendTwosComplement64(raw[:0], i)
	} else {
		z, ok := new(big.Int).SetString(string(digits[:n]), 10)
		if !ok {
			return dst, false
		}
		if neg {
			z.Neg(z)
		}
		mag = bigToTwosComplement(z)
	}
	dst = append(dst, '"')
	dst = base64.StdEncoding.AppendEncode(dst, mag)
	return append(dst, '"'), true
}

// appendTwosComplement64 appends i in the fewest big-endian two's
// complement bytes.
func appendTwosComplement64(dst []byte, i int64) []byte {
	n := 8
	for n > 1 {
		top := byte(i >> (8 * (n - 1)))
		next := byte(i >> (8 * (n - 2)))
		if (top == 0 && next&0x80 == 0) || (top == 0xff && next&0x80 != 0) {
			n--
			continue
		}
		break
	}
	for k := n - 1; k >= 0; k-- {
		dst = append(dst, byte(i>>(8*k)))
	}
	return dst
}

// bigToTwosComplement is Java's BigInteger.toByteArray.
func bigToTwosComplement(z *big.Int) []byte {
	if z.Sign() >= 0 {
		b := z.Bytes()
		if len(b) == 0 || b[0]&0x80 != 0 {
			b = append([]byte{0}, b...)
		}
		return b
	}
	// -z = m: two's complement of m in k bytes is 2^(8k) - m, with k the
	// fewest bytes whose range reaches -m.
	m := new(big.Int).Neg(z)
	k := (m.BitLen() + 8) / 8
	t := new(big.Int).Lsh(big.NewInt(1), uint(8*k))
	t.Sub(t, m)
	b := t.FillBytes(make([]byte, k))
	for len(b) > 1 && b[0] == 0xff && b[1]&0x80 != 0 {
		b = b[1:]
	}
	return b
}

// Days since 1970-01-01 of a proleptic Gregorian date, and back (Howard
// Hinnant's civil-date algorithms), without time.Time: the encoder runs per
// value.
func daysFromCivil(y, m, d int64) int64 {
	if m <= 2 {
		y--
	}
	era := y
	if era < 0 {
		era -= 399
	}
	era /= 400
	yoe := y - era*400
	mp := m + 9
	if m > 2 {
		mp = m - 3
	}
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}

func civilFromDays(z int64) (y, m, d int64) {
	z += 719468
	era := z
	if era < 0 {
		era -= 146096
	}
	era /= 146097
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	y = yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d = doy - (153*mp+2)/5 + 1
	if mp < 10 {
		m = mp + 3
	} else {
		m = mp - 9
	}
	if m <= 2 {
		y++
	}
	return y, m, d
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// digitsAt reads n decimal digits of b at i.
func digitsAt(b []byte, i, n int) (int64, bool) {
	if i+n > len(b) {
		return 0, false
	}
	var v int64
	for _, c := range b[i : i+n] {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	return v, true
}

// parseDateText reads "YYYY-MM-DD" as days since the epoch; zero reports a
// zero date or a date with a zero month or day (Debezium's zero-value).
func parseDateText(b []byte) (days int64, zero, ok bool) {
	if len(b) != 10 || b[4] != '-' || b[7] != '-' {
		return 0, false, false
	}
	y, ok1 := digitsAt(b, 0, 4)
	m, ok2 := digitsAt(b, 5, 2)
	d, ok3 := digitsAt(b, 8, 2)
	if !ok1 || !ok2 || !ok3 || m > 12 || d > 31 {
		return 0, false, false
	}
	if m == 0 || d == 0 {
		return 0, true, true
	}
	if d > 28 {
		if _, m2, _ := civilFromDays(daysFromCivil(y, m, d)); m2 != m {
			return 0, false, false // 2023-02-29, 2024-04-31
		}
	}
	return daysFromCivil(y, m, d), false, true
}

// parseDatetimeText reads "YYYY-MM-DD hh:mm:ss[.ffffff]" as microseconds
// since the epoch.
func parseDatetimeText(b []byte) (us int64, zero, ok bool) {
	if len(b) < 19 || b[10] != ' ' || b[13] != ':' || b[16] != ':' {
		return 0, false, false
	}
	days, zero, ok := parseDateText(b[:10])
	h, ok1 := digitsAt(b, 11, 2)
	mi, ok2 := digitsAt(b, 14, 2)
	s, ok3 := digitsAt(b, 17, 2)
	if !ok || !ok1 || !ok2 || !ok3 || h > 23 || mi > 59 || s > 59 {
		return 0, false, false
	}
	frac, ok := parseFrac(b[19:])
	if !ok || zero {
		return 0, zero, ok
	}
	return ((days*24+h)*60+mi)*60*1e6 + s*1e6 + frac, false, true
}

// parseFrac reads "" or ".d…" (1–6 digits) as microseconds.
func parseFrac(b []byte) (int64, bool) {
	if len(b) == 0 {
		return 0, true
	}
	if b[0] != '.' || len(b) < 2 || len(b) > 7 {
		return 0, false
	}
	v, ok := digitsAt(b, 1, len(b)-1)
	for range 7 - len(b) {
		v *= 10
	}
	return v, ok
}

// parseTimeText reads "[-]h…h:mm:ss[.ffffff]" as signed microseconds.
func parseTimeText(b []byte) (int64, bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	colon := 0
	for colon < len(b) && b[colon] != ':' {
		colon++
	}
	if colon == 0 || colon > 4 || len(b) < colon+6 || b[colon+3] != ':' {
		return 0, false
	}
	h, ok1 := digitsAt(b, 0, colon)
	m, ok2 := digitsAt(b, colon+1, 2)
	s, ok3 := digitsAt(b, colon+4, 2)
	frac, ok4 := parseFrac(b[colon+6:])
	if !ok1 || !ok2 || !ok3 || !ok4 || m > 59 || s > 59 {
		return 0, false
	}
	us := ((h*60+m)*60+s)*1e6 + frac
	if neg {
		us = -us
	}
	return us, true
}
