package schema

import (
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// ParseDebezium reads the JSON value raw of column c, as Debezium encodes it
// (debezium.go), back into the column's canonical text: the inverse of
// AppendDebezium, so the consumer reads Debezium's own topics. The error
// names the column and the value.
func ParseDebezium(c Column, raw []byte) (Value, error) {
	_, v, err := AppendParseDebezium(nil, c, raw)
	return v, err
}

// AppendParseDebezium is ParseDebezium appending the text to dst, for a row
// whose values share one buffer.
func AppendParseDebezium(dst []byte, c Column, raw []byte) ([]byte, Value, error) {
	return appendParseDebezium(dst, &c, raw)
}

func appendParseDebezium(dst []byte, c *Column, raw []byte) ([]byte, Value, error) {
	raw = trimSpace(raw)
	if string(raw) == "null" {
		return dst, Null, nil
	}
	start := len(dst)
	out, err := parseDebeziumInto(dst, c, raw)
	if err != nil {
		if len(raw) > 80 {
			raw = append(raw[:77:77], "..."...)
		}
		return dst[:start], Null, fmt.Errorf("column %s (%s): Debezium value %s: %w", c.Name, c.ColumnType, raw, err)
	}
	return out, Value{B: out[start:len(out):len(out)]}, nil
}

var (
	errNotNumber = errors.New("not a JSON number of the column's type")
	errNotString = errors.New("not a JSON string")
)

func parseDebeziumInto(dst []byte, c *Column, raw []byte) ([]byte, error) {
	switch kindOf(c) {
	case kInt:
		if !isInteger(raw) {
			return dst, errNotNumber
		}
		if c.Unsigned && c.DataType == "bigint" {
			// bigint.unsigned.handling.mode=long: the long's bits.
			i, err := strconv.ParseInt(string(raw), 10, 64)
			if err != nil {
				return dst, err
			}
			return strconv.AppendUint(dst, uint64(i), 10), nil
		}
		if c.Unsigned {
			u, err := strconv.ParseUint(string(raw), 10, intBits(c))
			if err != nil {
				return dst, fmt.Errorf("not a %s: %w", c.ColumnType, err)
			}
			return strconv.AppendUint(dst, u, 10), nil
		}
		i, err := strconv.ParseInt(string(raw), 10, intBits(c))
		if err != nil {
			return dst, fmt.Errorf("not a %s: %w", c.ColumnType, err)
		}
		return strconv.AppendInt(dst, i, 10), nil
	case kDecimal:
		b, err := unquoted(raw)
		if err != nil {
			return dst, err
		}
		var small [48]byte // DECIMAL(65) needs 28 bytes
		mag, err := base64.StdEncoding.AppendDecode(small[:0], b)
		if err != nil {
			return dst, fmt.Errorf("decimal bytes: %w", err)
		}
		if len(mag) == 0 {
			return dst, errors.New("decimal bytes: empty")
		}
		return appendDecimalText(dst, mag, c.Scale), nil
	case kFloat, kDouble:
		if !isJSONNumber(raw) {
			return dst, errNotNumber
		}
		f, err := strconv.ParseFloat(string(raw), 64)
		if err != nil {
			return dst, err
		}
		if kindOf(c) == kFloat {
			if math.IsInf(float64(float32(f)), 0) {
				return dst, errors.New("outside FLOAT's range")
			}
			return appendFloatText(dst, float64(float32(f)), 32), nil
		}
		return appendDouble(dst, f), nil
	case kString, kEnum, kSet:
		return appendUnquote(dst, raw)
	case kBinary:
		b, err := unquoted(raw)
		if err != nil {
			return dst, err
		}
		return base64.StdEncoding.AppendDecode(dst, b)
	case kBit:
		w := (bitWidthOf(c) + 7) / 8
		if bitWidthOf(c) == 1 {
			switch string(raw) {
			case "true":
				return append(dst, 1), nil
			case "false":
				return append(dst, 0), nil
			}
			return dst, errors.New("not a JSON boolean")
		}
		b, err := unquoted(raw)
		if err != nil {
			return dst, err
		}
		var small [16]byte
		le, err := base64.StdEncoding.AppendDecode(small[:0], b)
		if err != nil {
			return dst, fmt.Errorf("bits: %w", err)
		}
		for i := w; i < len(le); i++ {
			if le[i] != 0 {
				return dst, fmt.Errorf("%d bytes of bits for BIT(%d)", len(le), bitWidthOf(c))
			}
		}
		if n := bitWidthOf(c); n%8 != 0 && w <= len(le) && le[w-1]>>(n%8) != 0 {
			return dst, fmt.Errorf("bits beyond BIT(%d)", n)
		}
		for i := w - 1; i >= 0; i-- { // little-endian to the server's big-endian
			if i < len(le) {
				dst = append(dst, le[i])
			} else {
				dst = append(dst, 0)
			}
		}
		return dst, nil
	case kDate:
		days, err := strconv.ParseInt(string(raw), 10, 32)
		if err != nil {
			return dst, errNotNumber
		}
		y, m, d := civilFromDays(days)
		return appendCivil(dst, y, m, d)
	case kDatetime:
		n, err := strconv.ParseInt(string(raw), 10, 64)
		if err != nil {
			return dst, errNotNumber
		}
		us := n
		if precisionOf(c) <= 3 {
			if n > math.MaxInt64/1000 || n < math.MinInt64/1000 {
				return dst, errors.New("out of range")
			}
			us = n * 1000
		}
		return appendMicrosText(dst, c, us)
	case kTimestamp:
		s, err := unquoted(raw)
		if err != nil {
			return dst, err
		}
		// The connector's own form, UTC with Z: the text is the wall clock.
		if n := len(s); n >= 20 && s[10] == 'T' && s[n-1] == 'Z' {
			text := make([]byte, 0, 32)
			text = append(append(append(text, s[:10]...), ' '), s[11:n-1]...)
			if _, zero, ok := parseDatetimeText(text); ok && !zero {
				if fracDigits(text) > precisionOf(c) {
					return dst, fmt.Errorf("fraction finer than the column's %d digits", precisionOf(c))
				}
				return appendFracText(dst, c, string(text)), nil
			}
		}
		t, err := time.Parse(time.RFC3339Nano, string(s))
		if err != nil {
			return dst, err
		}
		t = t.UTC()
		if t.Nanosecond()%1000 != 0 {
			return dst, errors.New("finer than microseconds")
		}
		y, mo, d := t.Date()
		h, mi, sec := t.Clock()
		us := ((daysFromCivil(int64(y), int64(mo), int64(d))*24+int64(h))*60+int64(mi))*60*1e6 + int64(sec)*1e6 + int64(t.Nanosecond()/1000)
		return appendMicrosText(dst, c, us)
	case kTime:
		us, err := strconv.ParseInt(string(raw), 10, 64)
		if err != nil {
			return dst, errNotNumber
		}
		return appendTimeText(dst, c, us)
	case kYear:
		y, err := strconv.ParseInt(string(raw), 10, 32)
		if err != nil || (y != 0 && (y < 1901 || y > 2155)) {
			return dst, errors.New("not a YEAR: 0 or 1901 to 2155")
		}
		return appendYear(dst, y), nil
	}
	return dst, fmt.Errorf("type %s is not supported", c.ColumnType)
}

func appendCivil(dst []byte, y, m, d int64) ([]byte, error) {
	if y < 0 || y > 9999 {
		return dst, fmt.Errorf("year %d outside 0000–9999", y)
	}
	return append(dst, byte('0'+y/1000), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10), '-',
		byte('0'+m/10), byte('0'+m%10), '-', byte('0'+d/10), byte('0'+d%10)), nil
}

// appendMicrosText writes microseconds since the epoch as DATETIME or
// TIMESTAMP text with the column's digits; digits beyond them must be zero.
func appendMicrosText(dst []byte, c *Column, us int64) ([]byte, error) {
	p := precisionOf(c)
	frac := us - floorDiv(us, 1e6)*1e6
	if unit := int64(math.Pow10(6 - p)); frac%unit != 0 {
		return dst, fmt.Errorf("fraction finer than the column's %d digits", p)
	}
	secs := floorDiv(us, 1e6)
	days := floorDiv(secs, 86400)
	rem := secs - days*86400
	y, m, d := civilFromDays(days)
	dst, err := appendCivil(dst, y, m, d)
	if err != nil {
		return dst, err
	}
	h, mi, s := rem/3600, rem/60%60, rem%60
	dst = append(dst, ' ', byte('0'+h/10), byte('0'+h%10), ':', byte('0'+mi/10), byte('0'+mi%10), ':',
		byte('0'+s/10), byte('0'+s%10))
	if p > 0 {
		dst = append(dst, '.')
		dst = appendFrac(dst, frac, p)
	}
	return dst, nil
}

// appendTimeText writes signed microseconds as TIME text,
// "[-]hh:mm:ss[.f]", hours as wide as they need (up to 838).
func appendTimeText(dst []byte, c *Column, us int64) ([]byte, error) {
	p := precisionOf(c)
	if us < 0 {
		dst = append(dst, '-')
		us = -us
	}
	if us < 0 || us > maxTimeMicros {
		return dst, errors.New("outside TIME's range")
	}
	frac := us % 1e6
	if unit := int64(math.Pow10(6 - p)); frac%unit != 0 {
		return dst, fmt.Errorf("fraction finer than the column's %d digits", p)
	}
	secs := us / 1e6
	h, mi, s := secs/3600, secs/60%60, secs%60
	if h < 10 {
		dst = append(dst, '0')
	}
	dst = strconv.AppendInt(dst, h, 10)
	dst = append(dst, ':', byte('0'+mi/10), byte('0'+mi%10), ':', byte('0'+s/10), byte('0'+s%10))
	if p > 0 {
		dst = append(dst, '.')
		dst = appendFrac(dst, frac, p)
	}
	return dst, nil
}

// appendDecimalText writes the big-endian two's complement unscaled value
// mag at scale as DECIMAL text, as the server prints it: exactly scale
// fractional digits and a zero before the point.
func appendDecimalText(dst []byte, mag []byte, scale int) []byte {
	var digits []byte
	var buf [24]byte
	neg := mag[0]&0x80 != 0
	if len(mag) <= 8 {
		i := int64(0)
		if neg {
			i = -1
		}
		for _, b := range mag {
			i = i<<8 | int64(b)
		}
		if neg {
			// |MinInt64| does not fit; the magnitude as unsigned does.
			digits = strconv.AppendUint(buf[:0], uint64(-(i+1))+1, 10)
		} else {
			digits = strconv.AppendUint(buf[:0], uint64(i), 10)
		}
	} else {
		z := new(big.Int).SetBytes(mag)
		if neg {
			z.Sub(z, new(big.Int).Lsh(big.NewInt(1), uint(8*len(mag))))
			z.Neg(z)
		}
		digits = z.Append(nil, 10)
	}
	if neg && !(len(digits) == 1 && digits[0] == '0') {
		dst = append(dst, '-')
	}
	if scale <= 0 {
		return append(dst, digits...)
	}
	if len(digits) <= scale {
		dst = append(dst, '0', '.')
		for range scale - len(digits) {
			dst = append(dst, '0')
		}
		return append(dst, digits...)
	}
	dst = append(dst, digits[:len(digits)-scale]...)
	dst = append(dst, '.')
	return append(dst, digits[len(digits)-scale:]...)
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// unquoted returns the contents of the JSON string raw: a view of raw when it
// has no escapes (base64 and ISO dates never do), else unescaped into a new
// slice.
func unquoted(raw []byte) ([]byte, error) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return nil, errNotString
	}
	s := raw[1 : len(raw)-1]
	if PlainASCII(s, 0) == len(s) {
		return s, nil
	}
	return appendUnquote(nil, raw)
}

// appendUnquote appends the contents of the JSON string raw, unescaped.
func appendUnquote(dst []byte, raw []byte) ([]byte, error) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return dst, errNotString
	}
	s := raw[1 : len(raw)-1]
	for i := 0; i < len(s); {
		j := i
		for j < len(s) && s[j] != '\\' && s[j] != '"' && s[j] >= 0x20 {
			j++
		}
		if run := s[i:j]; utf8.Valid(run) {
			dst = append(dst, run...)
		} else {
			// Invalid UTF-8 in a JSON text: U+FFFD, as JSON decoders read it.
			for _, r := range string(run) {
				dst = utf8.AppendRune(dst, r)
			}
		}
		if j == len(s) {
			break
		}
		if s[j] != '\\' || j+1 == len(s) {
			return dst, errNotString
		}
		switch e := s[j+1]; e {
		case '"', '\\', '/':
			dst = append(dst, e)
			i = j + 2
		case 'b':
			dst, i = append(dst, '\b'), j+2
		case 'f':
			dst, i = append(dst, '\f'), j+2
		case 'n':
			dst, i = append(dst, '\n'), j+2
		case 'r':
			dst, i = append(dst, '\r'), j+2
		case 't':
			dst, i = append(dst, '\t'), j+2
		case 'u':
			r, ok := hex4At(s, j+2)
			if !ok {
				return dst, errNotString
			}
			i = j + 6
			if utf16.IsSurrogate(r) {
				if r2, ok := hex4At(s, i+2); ok && i+1 < len(s) && s[i] == '\\' && s[i+1] == 'u' {
					if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
						r, i = d, i+6
					}
				}
			}
			dst = utf8.AppendRune(dst, r)
		default:
			return dst, errNotString
		}
	}
	return dst, nil
}

func hex4At(s []byte, i int) (rune, bool) {
	if i+4 > len(s) {
		return 0, false
	}
	var r rune
	for _, c := range s[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}
