package consumer

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sluice-dev/sluice/schema"
)

// limits are the sizes of the target's columns, read from
// information_schema when a member starts: validation follows the real
// table, so widening a column (and restarting) is a fix that a re-drive of
// the dead letters can then apply.
type limits struct {
	deviceType, eventType, message columnLimit
}

// columnLimit is how much one column holds, in the unit the server counts it
// in. CHAR and VARCHAR hold a number of characters of their character set
// (VARCHAR(255) holds 255 characters however many bytes each takes), while
// the TEXT and BLOB types and BINARY/VARBINARY hold a number of bytes:
// TEXT holds 65,535 bytes, which is 65,535 ASCII characters but only 21,845
// of three-byte ones. Counting in the wrong unit lets a row through that the
// server refuses (error 1406, Data too long) on every attempt, or dead-letters
// a row the column would have held.
type columnLimit struct {
	name     string
	dataType string // information_schema's DATA_TYPE: varchar, text, …
	max      int64
	bytes    bool // max counts bytes; otherwise characters
}

// unit names what max counts.
func (c columnLimit) unit() string {
	if c.bytes {
		return "bytes"
	}
	return "characters"
}

// size is v measured in the column's unit.
func (c columnLimit) size(v string) int64 {
	if c.bytes {
		return int64(len(v))
	}
	return int64(utf8.RuneCountInString(v))
}

// over reports whether v is longer than the column holds, and then its
// size in the column's unit.
func (c columnLimit) over(v string) (int64, bool) {
	if int64(len(v)) <= c.max {
		return 0, false // no character is shorter than a byte: no need to count
	}
	n := c.size(v)
	return n, n > c.max
}

// columnLimitOf reads a column's limit from information_schema's DATA_TYPE,
// CHARACTER_MAXIMUM_LENGTH (characters, for the character types) and
// CHARACTER_OCTET_LENGTH (bytes). For the TEXT types both are the same
// number of bytes (TEXT: 65,535), so the byte count is the one to use; for
// CHAR and VARCHAR the octet length is the characters times the character
// set's widest character, a bound the server does not enforce.
func columnLimitOf(name, dataType string, chars, octets sql.NullInt64) (columnLimit, error) {
	c := columnLimit{name: name, dataType: strings.ToLower(dataType)}
	switch c.dataType {
	case "char", "varchar":
		c.max = chars.Int64
	case "tinytext", "text", "mediumtext", "longtext",
		"binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob":
		c.max, c.bytes = octets.Int64, true
	default:
		return columnLimit{}, fmt.Errorf("column %s is %s: the consumer sizes only CHAR, VARCHAR, the TEXT and BLOB types and BINARY/VARBINARY", name, dataType)
	}
	if c.max <= 0 {
		return columnLimit{}, fmt.Errorf("column %s (%s) has no length in information_schema", name, dataType)
	}
	return c, nil
}

// DATE and DATETIME hold years 1000 to 9999.
const minYear, maxYear = 1000, 9999

func loadLimits(ctx context.Context, db *sql.DB, database, table string) (limits, error) {
	rows, err := db.QueryContext(ctx, `SELECT column_name, data_type, character_maximum_length, character_octet_length
		FROM information_schema.columns WHERE table_schema = ? AND table_name = ?
		AND column_name IN ('device_type', 'event_type', 'message')`, database, table)
	if err != nil {
		return limits{}, fmt.Errorf("target %s.%s: column sizes: %w", database, table, err)
	}
	defer rows.Close()
	var l limits
	for rows.Next() {
		var name, dataType string
		var chars, octets sql.NullInt64
		if err := rows.Scan(&name, &dataType, &chars, &octets); err != nil {
			return limits{}, fmt.Errorf("target %s.%s: column sizes: %w", database, table, err)
		}
		name = strings.ToLower(name)
		c, err := columnLimitOf(name, dataType, chars, octets)
		if err != nil {
			return limits{}, fmt.Errorf("target %s.%s: %w", database, table, err)
		}
		switch name {
		case "device_type":
			l.deviceType = c
		case "event_type":
			l.eventType = c
		case "message":
			l.message = c
		}
	}
	if err := rows.Err(); err != nil {
		return limits{}, fmt.Errorf("target %s.%s: column sizes: %w", database, table, err)
	}
	if l.deviceType.max == 0 || l.eventType.max == 0 || l.message.max == 0 {
		return limits{}, fmt.Errorf("target %s.%s: device_type, event_type or message missing (run sluice migrate)", database, table)
	}
	return l, nil
}

// ErrInvalid marks a change event that decodes but that the target cannot
// hold as it is.
var ErrInvalid = errors.New("invalid change event")

// tooLong says that column c cannot hold n of its units; how qualifies the
// value (e.g. "upper-cased") when the transform changed it.
func (c columnLimit) tooLong(n int64, how string) error {
	if how != "" {
		how = " " + how
	}
	return fmt.Errorf("%w: %s is %d %s%s, over the column's %d %s (%s)", ErrInvalid, c.name, n, c.unit(), how, c.max, c.unit(), c.dataType)
}

// validateKey checks the dedupe key, which is all a delete writes.
func (l limits) validateKey(r *schema.Row) error {
	switch {
	case r.DeviceType == "":
		return fmt.Errorf("%w: device_type is empty", ErrInvalid)
	case r.EventType == "":
		return fmt.Errorf("%w: event_type is empty", ErrInvalid)
	}
	if n, over := l.deviceType.over(r.DeviceType); over {
		return l.deviceType.tooLong(n, "")
	}
	if n, over := l.eventType.over(r.EventType); over {
		return l.eventType.tooLong(n, "")
	}
	if y := r.Timestamp.Year(); y < minYear || y > maxYear {
		return fmt.Errorf("%w: timestamp %s is outside years %d to %d", ErrInvalid, r.Timestamp.Format(time.DateTime), minYear, maxYear)
	}
	return nil
}

// validate checks a row as the target will store it, that is after
// Transform: MySQL would reject it, or worse, silently truncate it. The
// message is measured upper-cased, since upper-casing can make it longer
// (ɐ U+0250 is two bytes in UTF-8, Ɐ U+2C6F three): a message that fits the
// source's TEXT column may not fit the target's.
func (l limits) validate(r *schema.Row) error {
	if err := l.validateKey(r); err != nil {
		return err
	}
	if r.Message.Valid {
		if n, over := l.message.over(r.Message.String); over {
			return l.message.tooLong(n, "upper-cased")
		}
	}
	if y := r.Date.Year(); y < minYear || y > maxYear {
		return fmt.Errorf("%w: date %s is outside years %d to %d", ErrInvalid, r.Date.Format(time.DateOnly), minYear, maxYear)
	}
	return nil
}

// validateEvent checks what the consumer will write, after Transform: the
// after image, or for a delete the before image's key (a delete writes
// nothing else: its message and date are not stored).
func (l limits) validateEvent(e *schema.Event) error {
	if e.Op == schema.OpDelete {
		return l.validateKey(e.Before)
	}
	return l.validate(e.After)
}
