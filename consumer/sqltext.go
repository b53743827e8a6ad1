package consumer

import (
	"database/sql"
	"strconv"
	"time"

	"github.com/sluice-dev/sluice/schema"
)

// The upsert is built as SQL text straight into a reused buffer: a
// 10,000-row statement with 100,000 values would otherwise box every value
// into an interface and have the driver interpolate them in a second pass
// (about a tenth of the consumer's CPU in the profile). Values are quoted
// exactly as the driver's client-side interpolation quotes them.

// appendQuoted appends s as a MySQL string literal. With backslash escapes
// (the default sql_mode) the special bytes are backslash-escaped; under
// NO_BACKSLASH_ESCAPES only the quote is doubled.
func appendQuoted(dst []byte, s string, backslash bool) []byte {
	dst = append(dst, '\'')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		var esc byte
		if backslash {
			switch c {
			case 0:
				esc = '0'
			case '\n':
				esc = 'n'
			case '\r':
				esc = 'r'
			case 0x1a:
				esc = 'Z'
			case '\'', '"', '\\':
				esc = c
			default:
				continue
			}
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', esc)
		} else {
			if c != '\'' {
				continue
			}
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\'', '\'')
		}
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, '\'')
}

// appendDateTime appends t as a quoted DATETIME literal (see appendWall).
func appendDateTime(dst []byte, t time.Time) []byte {
	dst = append(dst, '\'')
	return append(appendWall(dst, t), '\'')
}

// appendWall appends t's UTC wall clock as DATETIME text, with microseconds
// only when it has them (truncated, as time.Format's .000000 does).
func appendWall(dst []byte, t time.Time) []byte {
	t = t.UTC()
	dst, ok := schema.AppendWall(dst, t, ' ')
	if !ok {
		if t.Nanosecond() == 0 {
			return t.AppendFormat(dst, time.DateTime)
		}
		return t.AppendFormat(dst, "2006-01-02 15:04:05.000000")
	}
	if ns := t.Nanosecond(); ns != 0 {
		us := ns / 1000
		dst = append(dst, '.',
			byte('0'+us/100000), byte('0'+us/10000%10), byte('0'+us/1000%10),
			byte('0'+us/100%10), byte('0'+us/10%10), byte('0'+us%10))
	}
	return dst
}

// appendDate appends the calendar day of t as a quoted DATE literal.
func appendDate(dst []byte, t time.Time) []byte {
	dst = append(dst, '\'')
	return append(appendDay(dst, t), '\'')
}

// appendDay appends the calendar day of t as DATE text.
func appendDay(dst []byte, t time.Time) []byte {
	dst, ok := schema.AppendYMD(dst, t)
	if !ok {
		dst = t.AppendFormat(dst, time.DateOnly)
	}
	return dst
}

func appendNullString(dst []byte, s sql.NullString, backslash bool) []byte {
	if !s.Valid {
		return append(dst, "NULL"...)
	}
	return appendQuoted(dst, s.String, backslash)
}

func appendNullTime(dst []byte, t sql.NullTime) []byte {
	if !t.Valid {
		return append(dst, "NULL"...)
	}
	return appendDateTime(dst, t.Time)
}

// appendTuple appends one row's value tuple in upsertCols order.
func appendTuple(dst []byte, it *item, loadedAt []byte, backslash bool) []byte {
	r := it.row
	dst = append(dst, '(')
	dst = appendDate(dst, r.Date)
	dst = append(dst, ',')
	dst = appendDateTime(dst, r.Timestamp)
	dst = append(dst, ',')
	dst = appendQuoted(dst, r.DeviceType, backslash)
	dst = append(dst, ',')
	dst = appendQuoted(dst, r.EventType, backslash)
	dst = append(dst, ',')
	dst = appendNullString(dst, r.Message, backslash)
	dst = append(dst, ',')
	dst = appendNullTime(dst, r.CreatedAt)
	dst = append(dst, ',')
	dst = appendNullTime(dst, r.UpdatedAt)
	dst = append(dst, ',')
	dst = strconv.AppendUint(dst, r.ID, 10)
	dst = append(dst, ',')
	if it.hasVer {
		dst = strconv.AppendUint(dst, it.version, 10)
	} else {
		dst = append(dst, "NULL"...)
	}
	dst = append(dst, ',')
	dst = append(dst, loadedAt...)
	return append(dst, ')')
}

// appendTombstone appends a delete's tombstone tuple in tombstoneCols order.
func appendTombstone(dst []byte, it *item, deletedAt []byte, backslash bool) []byte {
	dst = append(dst, '(')
	dst = appendDateTime(dst, it.key.Timestamp)
	dst = append(dst, ',')
	dst = appendQuoted(dst, it.key.DeviceType, backslash)
	dst = append(dst, ',')
	dst = appendQuoted(dst, it.key.EventType, backslash)
	dst = append(dst, ',')
	dst = strconv.AppendUint(dst, it.version, 10)
	dst = append(dst, ',')
	dst = append(dst, deletedAt...)
	return append(dst, ')')
}
