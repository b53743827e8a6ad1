package schema

import "time"

// AppendYMD appends t's calendar day, in t's location, as YYYY-MM-DD. It
// reports false and appends nothing for a year outside 0 to 9999, which
// needs time.AppendFormat's sign and width.
//
// The encoder and the consumer's upsert format several times per row; by
// hand it is about three times faster than the layout interpreter
// (BenchmarkAppendDateTime in package consumer).
func AppendYMD(dst []byte, t time.Time) ([]byte, bool) {
	y, mo, d := t.Date()
	if y < 0 || y > 9999 {
		return dst, false
	}
	m := int(mo)
	return append(dst, byte('0'+y/1000), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10), '-',
		byte('0'+m/10), byte('0'+m%10), '-', byte('0'+d/10), byte('0'+d%10)), true
}

// AppendWall appends t's wall clock, in t's location, as
// YYYY-MM-DD<sep>hh:mm:ss, without fractions; false as AppendYMD.
func AppendWall(dst []byte, t time.Time, sep byte) ([]byte, bool) {
	dst, ok := AppendYMD(dst, t)
	if !ok {
		return dst, false
	}
	h, mi, s := t.Clock()
	return append(dst, sep, byte('0'+h/10), byte('0'+h%10), ':', byte('0'+mi/10), byte('0'+mi%10), ':',
		byte('0'+s/10), byte('0'+s%10)), true
}

// appendRFC3339UTC appends t in UTC as time.RFC3339Nano does: fractions
// without trailing zeros, then Z.
func appendRFC3339UTC(dst []byte, t time.Time) []byte {
	t = t.UTC()
	dst, ok := AppendWall(dst, t, 'T')
	if !ok {
		return t.AppendFormat(dst, time.RFC3339Nano)
	}
	if ns := t.Nanosecond(); ns != 0 {
		var f [10]byte
		f[0] = '.'
		for i := 9; i >= 1; i-- {
			f[i] = byte('0' + ns%10)
			ns /= 10
		}
		n := 10
		for f[n-1] == '0' {
			n--
		}
		dst = append(dst, f[:n]...)
	}
	return append(dst, 'Z')
}
