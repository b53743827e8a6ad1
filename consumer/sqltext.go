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

// appendTuple appends one row's value tuple in upsertCols order.
func appendTuple(dst []byte, it *item, loadedAt []byte, backslash bool) []byte {
	return appendRowText(dst, it, loadedAt, false, backslash)
}

// appendRowText appends one row in upsertCols order, as an upsert's value
// tuple, or, with load, as a LOAD DATA line (load.go). loadedAt is written
// as it is: a quoted literal for a tuple, bare text for a line.
func appendRowText(dst []byte, it *item, loadedAt []byte, load, backslash bool) []byte {
	r := it.row
	sep := byte(',')
	if load {
		sep = '\t'
		dst = appendDay(dst, r.Date)
	} else {
		dst = appendDate(append(dst, '('), r.Date)
	}
	dst = appendTimeText(append(dst, sep), sql.NullTime{Time: r.Timestamp, Valid: true}, load)
	dst = appendStringText(append(dst, sep), sql.NullString{String: r.DeviceType, Valid: true}, load, backslash)
	dst = appendStringText(append(dst, sep), sql.NullString{String: r.EventType, Valid: true}, load, backslash)
	dst = appendStringText(append(dst, sep), r.Message, load, backslash)
	dst = appendTimeText(append(dst, sep), r.CreatedAt, load)
	dst = appendTimeText(append(dst, sep), r.UpdatedAt, load)
	dst = strconv.AppendUint(append(dst, sep), r.ID, 10)
	dst = append(dst, sep)
	switch {
	case it.hasVer:
		dst = strconv.AppendUint(dst, it.version, 10)
	case load:
		dst = append(dst, `\N`...)
	default:
		dst = append(dst, "NULL"...)
	}
	dst = append(append(dst, sep), loadedAt...)
	if load {
		return append(dst, '\n')
	}
	return append(dst, ')')
}

// appendStringText appends s as a LOAD DATA field (load) or a quoted
// literal, NULL as \N or NULL.
func appendStringText(dst []byte, s sql.NullString, load, backslash bool) []byte {
	switch {
	case load && s.Valid:
		return appendField(dst, s.String)
	case load:
		return append(dst, `\N`...)
	case s.Valid:
		return appendQuoted(dst, s.String, backslash)
	}
	return append(dst, "NULL"...)
}

// appendTimeText appends t as bare DATETIME text (load) or a quoted literal,
// NULL as \N or NULL.
func appendTimeText(dst []byte, t sql.NullTime, load bool) []byte {
	switch {
	case load && t.Valid:
		return appendWall(dst, t.Time)
	case load:
		return append(dst, `\N`...)
	case t.Valid:
		return appendDateTime(dst, t.Time)
	}
	return append(dst, "NULL"...)
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
