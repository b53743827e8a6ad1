// Package schema owns what every Sluice stage agrees on: the IoT event row,
// its dedupe key, the change event that carries a row through Kafka, the
// record codec, and the embedded DDL that `sluice migrate` applies.
//
// The change event is Debezium's payload-only envelope (before, after, source,
// op, ts_ms) with Debezium's default MySQL value mapping: DATE as days since
// the epoch, DATETIME as epoch milliseconds of the wall clock read as UTC,
// TIMESTAMP as an RFC 3339 string in UTC. A Debezium consumer can read a Sluice
// topic, and Sluice's consumer can read a Debezium topic of the same table,
// with or without the schema/payload wrapper of the JSON converter.
package schema

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Op is the Debezium operation code of a change event.
type Op string

// The operations Sluice produces and applies.
const (
	OpRead   Op = "r" // a row read by the backfill (snapshot read)
	OpCreate Op = "c" // an insert seen in the binlog
	OpUpdate Op = "u" // an update seen in the binlog
	OpDelete Op = "d" // a delete seen in the binlog
)

// Row is one IoT event log row, as stored in the source raw_records table and
// in the target records table.
type Row struct {
	ID         uint64
	Date       time.Time // a calendar day; only year, month and day count
	Timestamp  time.Time // DATETIME: a wall clock with no zone, kept labelled UTC
	DeviceType string
	EventType  string
	Message    sql.NullString
	CreatedAt  sql.NullTime
	UpdatedAt  sql.NullTime
}

// Key is the dedupe key (device_type, event_type, timestamp): the unique key of
// both tables and the Kafka record key, so that every change of one logical
// event lands in one partition, in order.
type Key struct {
	DeviceType string
	EventType  string
	Timestamp  time.Time
}

// Key returns the row's dedupe key.
func (r *Row) Key() Key {
	return Key{DeviceType: r.DeviceType, EventType: r.EventType, Timestamp: r.Timestamp}
}

// Compare orders keys the way the unique index does (device_type, event_type,
// timestamp), so writers that sort by it take row locks in the same order.
// Strings compare bytewise, which agrees with the index for the ASCII values
// the dedupe key holds; for other values it is still a total order, which is
// all lock ordering needs.
func (k Key) Compare(o Key) int {
	if c := strings.Compare(k.DeviceType, o.DeviceType); c != 0 {
		return c
	}
	if c := strings.Compare(k.EventType, o.EventType); c != 0 {
		return c
	}
	return k.Timestamp.Compare(o.Timestamp)
}

// String renders the key for error messages and logs.
func (k Key) String() string {
	return fmt.Sprintf("(%s, %s, %s)", k.DeviceType, k.EventType, k.Timestamp.UTC().Format(time.DateTime))
}

// Source says where a change event came from, with Debezium's field names.
type Source struct {
	Connector string `json:"connector"`
	Name      string `json:"name"`
	TsMs      int64  `json:"ts_ms"`
	Snapshot  string `json:"snapshot"` // "true" for backfill reads, "false" for binlog events
	DB        string `json:"db"`
	Table     string `json:"table"`
	ServerID  uint32 `json:"server_id"`
	GTID      string `json:"gtid,omitempty"`
	File      string `json:"file"`
	Pos       uint64 `json:"pos"`
	Row       int    `json:"row"`
}

// Version orders changes of the source: the binlog file's sequence number in
// the high 32 bits and the offset in the low 32. It reports false where the
// event carries no binlog position.
func (s Source) Version() (uint64, bool) {
	dot := strings.LastIndexByte(s.File, '.')
	if s.File == "" || dot < 0 {
		return 0, false
	}
	seq, err := strconv.ParseUint(s.File[dot+1:], 10, 32)
	if err != nil || s.Pos > 1<<32-1 {
		return 0, false
	}
	return seq<<32 | s.Pos, true
}

// Event is one change event: what the backfill and the tail produce and what
// the consumer applies.
type Event struct {
	Before *Row
	After  *Row
	Source Source
	Op     Op
	TsMs   int64 // when Sluice made the event, epoch milliseconds
}

// Key returns the dedupe key the event is about: the after image's, or for a
// delete the before image's.
func (e *Event) Key() Key {
	if e.After != nil {
		return e.After.Key()
	}
	if e.Before != nil {
		return e.Before.Key()
	}
	return Key{}
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

type wireEvent struct {
	Before *wireRow   `json:"before"`
	After  *wireRow   `json:"after"`
	Source wireSource `json:"source"`
	Op     Op         `json:"op"`
	TsMs   int64      `json:"ts_ms"`
}

// wireSource accepts snapshot as a string (Debezium 1.x and later) or a
// boolean (Debezium 0.x).
type wireSource struct {
	Source
	Snapshot json.RawMessage `json:"snapshot"`
}

// wireKey is the record key as JSON, like a Debezium key struct.
type wireKey struct {
	DeviceType string `json:"device_type"`
	EventType  string `json:"event_type"`
	Timestamp  int64  `json:"timestamp"`
}

const msPerDay = 24 * 60 * 60 * 1000

// The days since the epoch of 0000-01-01 and 9999-12-31.
const minDay, maxDay = -719528, 2932896

func toWire(r *Row) *wireRow {
	if r == nil {
		return nil
	}
	y, m, d := r.Date.Date() // the calendar day as labelled, whatever the zone
	days := time.Date(y, m, d, 0, 0, 0, 0, time.UTC).UnixMilli() / msPerDay
	ts := r.Timestamp.UnixMilli()
	w := &wireRow{ID: r.ID, Date: &days, Timestamp: &ts, DeviceType: r.DeviceType, EventType: r.EventType}
	if r.Message.Valid {
		w.Message = &r.Message.String
	}
	w.CreatedAt = zoned(r.CreatedAt)
	w.UpdatedAt = zoned(r.UpdatedAt)
	return w
}

func zoned(t sql.NullTime) *string {
	if !t.Valid {
		return nil
	}
	s := t.Time.UTC().Format(time.RFC3339Nano)
	return &s
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
	t, err := time.Parse(time.RFC3339Nano, *s)
	if err != nil {
		return sql.NullTime{}, err
	}
	if y := t.UTC().Year(); y < 0 || y > 9999 {
		return sql.NullTime{}, fmt.Errorf("%q is outside years 0 to 9999 in UTC", *s)
	}
	return sql.NullTime{Time: t.UTC(), Valid: true}, nil
}

// EncodeEvent renders e as the JSON value of a Kafka record.
func EncodeEvent(e *Event) ([]byte, error) {
	snap, _ := json.Marshal(e.Source.Snapshot)
	return json.Marshal(wireEvent{
		Before: toWire(e.Before),
		After:  toWire(e.After),
		Source: wireSource{Source: e.Source, Snapshot: snap},
		Op:     e.Op,
		TsMs:   e.TsMs,
	})
}

// EncodeKey renders k as the JSON key of a Kafka record.
func EncodeKey(k Key) ([]byte, error) {
	return json.Marshal(wireKey{DeviceType: k.DeviceType, EventType: k.EventType, Timestamp: k.Timestamp.UnixMilli()})
}

// ErrMalformed marks a record value that is not a change event Sluice can
// apply. The caller adds the record's coordinates.
var ErrMalformed = errors.New("malformed change event")

// DecodeEvent parses a record value written by Sluice or by Debezium's JSON
// converter (payload only, or wrapped in {"schema":…,"payload":…}).
func DecodeEvent(b []byte) (Event, error) {
	var probe struct {
		Payload json.RawMessage `json:"payload"`
		Op      Op              `json:"op"`
	}
	if err := json.Unmarshal(b, &probe); err != nil {
		return Event{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if probe.Op == "" && len(probe.Payload) > 0 && !bytes.Equal(probe.Payload, []byte("null")) {
		b = probe.Payload
	}
	var w wireEvent
	if err := json.Unmarshal(b, &w); err != nil {
		return Event{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	e := Event{Source: w.Source.Source, Op: w.Op, TsMs: w.TsMs}
	switch string(bytes.TrimSpace(w.Source.Snapshot)) {
	case "", "null", "false", `"false"`:
		e.Source.Snapshot = "false"
	case "true":
		e.Source.Snapshot = "true"
	default:
		if err := json.Unmarshal(w.Source.Snapshot, &e.Source.Snapshot); err != nil {
			return Event{}, fmt.Errorf("%w: source.snapshot: %w", ErrMalformed, err)
		}
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
	default:
		return Event{}, fmt.Errorf("%w: unknown op %q", ErrMalformed, e.Op)
	}
	return e, nil
}
