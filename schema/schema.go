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
	"database/sql"
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
	// OpTruncate is a TRUNCATE TABLE seen in the binlog: Debezium's "t",
	// with neither before nor after image and no key. It removes every row
	// of the table whose version is older than its own.
	OpTruncate Op = "t"
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
	// Epoch is the version epoch of File and Pos (Sluice's own field,
	// absent when 0): it advances whenever the binlog's numbering stops
	// following on from what came before (a new primary, a binlog reset,
	// a restored server, a tail reset), so that versions only grow.
	Epoch uint16 `json:"sluice_epoch,omitempty"`
}

// The version's layout: epoch, binlog file sequence number, offset.
const (
	EpochBits = 12
	seqBits   = 20
	MaxEpoch  = 1<<EpochBits - 1
)

// Version orders changes of the source: the epoch in the high 12 bits, the
// binlog file's sequence number in the next 20 and the offset in the low 32.
// Within an epoch that is the binlog's own order; a later epoch is newer
// than everything before it. It reports false where the event carries no
// binlog position, or one that does not fit (a file sequence number of 2^20
// or more, an epoch past MaxEpoch).
func (s Source) Version() (uint64, bool) {
	dot := strings.LastIndexByte(s.File, '.')
	if s.File == "" || dot < 0 || s.Epoch > MaxEpoch {
		return 0, false
	}
	seq, err := strconv.ParseUint(s.File[dot+1:], 10, seqBits)
	if err != nil || s.Pos > 1<<32-1 {
		return 0, false
	}
	return uint64(s.Epoch)<<(seqBits+32) | seq<<32 | s.Pos, true
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
// delete the before image's; a truncate has none (the zero Key).
func (e *Event) Key() Key {
	if e.After != nil {
		return e.After.Key()
	}
	if e.Before != nil {
		return e.Before.Key()
	}
	return Key{}
}
