package schema

import (
	"bytes"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	json "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// The record codec is on every record twice (produce and consume), so both
// directions avoid reflection where it costs: values are appended by hand in
// a fixed field order, and decoded by a byte-level fast path for the shape
// Sluice writes (fastdecode.go), falling back to one pass of
// go-json-experiment/json (the reference implementation of Go's
// encoding/json/v2) for everything else, such as Debezium's extra fields.
// BenchmarkDecodeEvent pairs them with the encoding/json baseline.

const msPerDay = 24 * 60 * 60 * 1000

// The days since the epoch of 0000-01-01 and 9999-12-31.
const minDay, maxDay = -719528, 2932896

// EncodeEvent renders e as the JSON value of a Kafka record. It never fails;
// the error is kept for callers that treat encoding as fallible.
func EncodeEvent(e *Event) ([]byte, error) {
	return AppendEvent(make([]byte, 0, 512), e), nil
}

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

// EncodeKey renders k as the JSON key of a Kafka record.
func EncodeKey(k Key) ([]byte, error) {
	return AppendKey(make([]byte, 0, 96), k), nil
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

// wireRow is a row as Debezium's JSON converter writes it.
type wireRow struct {
	ID         uint64  `json:"id"`
	Date       *int64  `json:"date"`
	Timestamp  *int64  `json:"timestamp"`
	DeviceType string  `json:"device_type"`
	EventType  string  `json:"event_type"`
	Message    *string `json:"message"`
	CreatedAt  *string `json:"created_at"`
	UpdatedAt  *string `json:"updated_at"`
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

type wireEvent struct {
	Before *wireRow   `json:"before"`
	After  *wireRow   `json:"after"`
	Source wireSource `json:"source"`
	Op     Op         `json:"op"`
	TsMs   int64      `json:"ts_ms"`
}

// wireEnvelope is a payload-only event, or one wrapped by the JSON
// converter with schemas enabled ({"schema":…,"payload":…}); unknown fields
// (schema, Debezium's transaction block) are ignored.
type wireEnvelope struct {
	wireEvent
	Payload *wireEvent `json:"payload"`
}

// ErrMalformed marks a record value that is not a change event Sluice can
// apply. The caller adds the record's coordinates.
var ErrMalformed = errors.New("malformed change event")

// DecodeEvent parses a record value written by Sluice or by Debezium's JSON
// converter (payload only, or wrapped in {"schema":…,"payload":…}).
func DecodeEvent(b []byte) (Event, error) { return decodeEvent(b, nil) }

// A Decoder decodes record values as DecodeEvent does, faster for a stream
// of them: it keeps the last source block it parsed and, when the next
// record's source block is the same bytes, takes that parse again instead of
// parsing them (the records of one backfill chunk, or of one binlog event,
// share their source block byte for byte). A Decoder is not safe for
// concurrent use; the zero value is ready.
type Decoder struct {
	src    []byte     // the last source object parsed, '{' to '}'
	parsed wireSource // what src parsed to, with a Snapshot of its own
}

// Decode parses a record value; see DecodeEvent.
func (dec *Decoder) Decode(b []byte) (Event, error) { return decodeEvent(b, dec) }

func decodeEvent(b []byte, dec *Decoder) (Event, error) {
	// Only the fallback's variables are handed to json/v2 (which makes them
	// escape to the heap); the fast path's stay on the stack.
	var env wireEnvelope
	w, payload := &env.wireEvent, (*wireEvent)(nil)
	if fastDecode(b, &env, dec) {
		payload = env.Payload
	} else {
		slow := new(wireEnvelope)
		if err := json.Unmarshal(b, slow); err != nil {
			return Event{}, fmt.Errorf("%w: %w", ErrMalformed, err)
		}
		w, payload = &slow.wireEvent, slow.Payload
	}
	if w.Op == "" && payload != nil {
		w = payload
	}
	ws := &w.Source
	e := Event{Op: w.Op, TsMs: w.TsMs, Source: Source{
		Connector: ws.Connector, Name: ws.Name, TsMs: ws.TsMs, DB: ws.DB, Table: ws.Table,
		ServerID: ws.ServerID, File: ws.File, Pos: ws.Pos, Row: ws.Row, Epoch: ws.Epoch,
	}}
	if ws.GTID != nil {
		e.Source.GTID = *ws.GTID
	}
	switch string(bytes.TrimSpace(ws.Snapshot)) {
	case "", "null", "false", `"false"`:
		e.Source.Snapshot = "false"
	case "true", `"true"`:
		e.Source.Snapshot = "true"
	default:
		snap := new(string)
		if err := json.Unmarshal(ws.Snapshot, snap); err != nil {
			return Event{}, fmt.Errorf("%w: source.snapshot: %w", ErrMalformed, err)
		}
		e.Source.Snapshot = *snap
	}
	var err error
	if e.Before, err = fromWire(w.Before, "before"); err != nil {
		return Event{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if e.After, err = fromWire(w.After, "after"); err != nil {
		return Event{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	switch e.Op {
	case OpRead, OpCreate, OpUpdate:
		if e.After == nil {
			return Event{}, fmt.Errorf("%w: op %q without an after image", ErrMalformed, e.Op)
		}
	case OpDelete:
		if e.Before == nil {
			return Event{}, fmt.Errorf("%w: op \"d\" without a before image", ErrMalformed)
		}
	case OpTruncate:
		// Debezium's truncate: the whole table, so no row image. One that
		// carries images is not one Sluice knows how to read.
		if e.Before != nil || e.After != nil {
			return Event{}, fmt.Errorf("%w: op \"t\" with a row image", ErrMalformed)
		}
	default:
		return Event{}, fmt.Errorf("%w: unknown op %q", ErrMalformed, e.Op)
	}
	return e, nil
}

func fromWire(w *wireRow, which string) (*Row, error) {
	if w == nil {
		return nil, nil
	}
	if w.Date == nil || w.Timestamp == nil {
		return nil, fmt.Errorf("%s: date and timestamp are required", which)
	}
	// MySQL's DATE and DATETIME hold years 1000 to 9999; years 0 to 9999 keep
	// every value representable and the arithmetic below far from overflow.
	if *w.Date < minDay || *w.Date > maxDay {
		return nil, fmt.Errorf("%s.date: %d days is outside years 0 to 9999", which, *w.Date)
	}
	if *w.Timestamp < minDay*msPerDay || *w.Timestamp >= (maxDay+1)*msPerDay {
		return nil, fmt.Errorf("%s.timestamp: %d ms is outside years 0 to 9999", which, *w.Timestamp)
	}
	r := &Row{
		ID:         w.ID,
		Date:       time.UnixMilli(*w.Date * msPerDay).UTC(),
		Timestamp:  time.UnixMilli(*w.Timestamp).UTC(),
		DeviceType: w.DeviceType,
		EventType:  w.EventType,
	}
	if w.Message != nil {
		r.Message = sql.NullString{String: *w.Message, Valid: true}
	}
	var err error
	if r.CreatedAt, err = parseZoned(w.CreatedAt); err != nil {
		return nil, fmt.Errorf("%s.created_at: %w", which, err)
	}
	if r.UpdatedAt, err = parseZoned(w.UpdatedAt); err != nil {
		return nil, fmt.Errorf("%s.updated_at: %w", which, err)
	}
	return r, nil
}

func parseZoned(s *string) (sql.NullTime, error) {
	if s == nil {
		return sql.NullTime{}, nil
	}
	t, ok := parseRFC3339UTC(*s)
	if !ok {
		// time.Parse's error keeps the text it was given, and the fast
		// decoder's is a view of the record (nullableView): give it a copy.
		var err error
		if t, err = time.Parse(time.RFC3339Nano, strings.Clone(*s)); err != nil {
			return sql.NullTime{}, err
		}
	}
	if y := t.UTC().Year(); y < 0 || y > 9999 {
		return sql.NullTime{}, fmt.Errorf("%q is outside years 0 to 9999 in UTC", *s)
	}
	return sql.NullTime{Time: t.UTC(), Valid: true}, nil
}
