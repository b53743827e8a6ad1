package schema

import (
	"database/sql"
	"errors"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
)

// The IoT table's fixed record encoder (AppendEvent, AppendKey), which
// writes the bytes the generic one (AppendChange, AppendChangeKey) writes
// for the IoT table's values (TestChangeMatchesFixedCodec;
// TestChangeFixedCodecDifferences pins where the two part): values are
// appended by hand in a fixed field order, with no reflection.
// BenchmarkEncodeEvent pairs it with the encoding/json baseline. Records are
// read by ParseChange (change_parse.go) whoever wrote them.

const msPerDay = 24 * 60 * 60 * 1000

// AppendEvent appends the JSON value of e to dst: Debezium's payload-only
// envelope with its field order.
func AppendEvent(dst []byte, e *Event) []byte {
	dst = append(dst, `{"before":`...)
	dst = appendRow(dst, e.Before)
	dst = append(dst, `,"after":`...)
	dst = appendRow(dst, e.After)
	dst = append(dst, `,"source":`...)
	dst = appendSourceBlock(dst, &e.Source)
	dst = append(dst, `,"op":`...)
	dst = appendString(dst, string(e.Op))
	dst = append(dst, `,"ts_ms":`...)
	dst = strconv.AppendInt(dst, e.TsMs, 10)
	return append(dst, '}')
}

func appendRow(dst []byte, r *Row) []byte {
	if r == nil {
		return append(dst, "null"...)
	}
	y, m, d := r.Date.Date() // the calendar day as labelled, whatever the zone
	days := time.Date(y, m, d, 0, 0, 0, 0, time.UTC).UnixMilli() / msPerDay
	dst = append(dst, `{"id":`...)
	dst = strconv.AppendUint(dst, r.ID, 10)
	dst = append(dst, `,"date":`...)
	dst = strconv.AppendInt(dst, days, 10)
	dst = append(dst, `,"timestamp":`...)
	dst = strconv.AppendInt(dst, r.Timestamp.UnixMilli(), 10)
	dst = append(dst, `,"device_type":`...)
	dst = appendString(dst, r.DeviceType)
	dst = append(dst, `,"event_type":`...)
	dst = appendString(dst, r.EventType)
	dst = append(dst, `,"message":`...)
	if r.Message.Valid {
		dst = appendString(dst, r.Message.String)
	} else {
		dst = append(dst, "null"...)
	}
	dst = append(dst, `,"created_at":`...)
	dst = appendZoned(dst, r.CreatedAt)
	dst = append(dst, `,"updated_at":`...)
	dst = appendZoned(dst, r.UpdatedAt)
	return append(dst, '}')
}

func appendZoned(dst []byte, t sql.NullTime) []byte {
	if !t.Valid {
		return append(dst, "null"...)
	}
	dst = append(dst, '"')
	dst = appendRFC3339UTC(dst, t.Time)
	return append(dst, '"')
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD,
// written as the character, so the output is always valid JSON text and
// encoding what was decoded gives the same bytes. It serves the fixed IoT
// codec and the per-type one (appendJSONText).
func appendString[T string | []byte](dst []byte, s T) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if i = PlainASCII(s, i); i == len(s) {
			break
		}
		c := s[i]
		if c < utf8.RuneSelf {
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := decodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, "\uFFFD"...) // as the character
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// decodeRune is utf8.DecodeRune for either a string or a byte slice.
func decodeRune[T string | []byte](s T) (rune, int) {
	switch v := any(s).(type) {
	case string:
		return utf8.DecodeRuneInString(v)
	case []byte:
		return utf8.DecodeRune(v)
	}
	return utf8.RuneError, 0
}

// AppendKey appends the JSON key of k to dst, like a Debezium key struct.
func AppendKey(dst []byte, k Key) []byte {
	dst = append(dst, `{"device_type":`...)
	dst = appendString(dst, k.DeviceType)
	dst = append(dst, `,"event_type":`...)
	dst = appendString(dst, k.EventType)
	dst = append(dst, `,"timestamp":`...)
	dst = strconv.AppendInt(dst, k.Timestamp.UnixMilli(), 10)
	return append(dst, '}')
}

// wireSource accepts snapshot as a string (Debezium 1.x and later) or a
// boolean (Debezium 0.x); other fields are Source's.
type wireSource struct {
	Connector string         `json:"connector"`
	Name      string         `json:"name"`
	TsMs      int64          `json:"ts_ms"`
	Snapshot  jsontext.Value `json:"snapshot"`
	DB        string         `json:"db"`
	Table     string         `json:"table"`
	ServerID  uint32         `json:"server_id"`
	GTID      *string        `json:"gtid"`
	File      string         `json:"file"`
	Pos       uint64         `json:"pos"`
	Row       int            `json:"row"`
	Epoch     uint16         `json:"sluice_epoch"`
}

// ErrMalformed marks a record value that is not a change event Sluice can
// apply. The caller adds the record's coordinates.
var ErrMalformed = errors.New("malformed change event")
