package tail

import (
	"database/sql"
	"fmt"
	"strconv"
	"time"

	"github.com/sluice-dev/sluice/schema"
)

// layout maps the source table's columns, by ordinal, to the row's fields.
type layout struct {
	n                                             int // columns in the table
	id, date, ts, device, event, msg, created, up int
}

// newLayout finds the columns Sluice needs among the table's columns.
func newLayout(cols []string, table string) (layout, error) {
	l := layout{n: len(cols)}
	idx := map[string]int{}
	for i, c := range cols {
		idx[c] = i
	}
	for _, f := range []struct {
		name string
		dst  *int
	}{
		{"id", &l.id}, {"date", &l.date}, {"timestamp", &l.ts}, {"device_type", &l.device}, {"event_type", &l.event},
		{"message", &l.msg}, {"created_at", &l.created}, {"updated_at", &l.up},
	} {
		i, ok := idx[f.name]
		if !ok {
			return l, fmt.Errorf("source table %s has no column %s", table, f.name)
		}
		*f.dst = i
	}
	return l, nil
}

// rowOf converts one binlog row image. Values arrive as go-mysql decodes them
// with ParseTime: integers as int64 (BIGINT UNSIGNED too, wrapped: the
// default binlog_row_metadata carries no signedness, so the bits are
// reinterpreted here), DATE as "2006-01-02", DATETIME as a time.Time labelled
// UTC, TIMESTAMP as a time.Time instant, TEXT as []byte.
func (l layout) rowOf(vals []any) (schema.Row, error) {
	var r schema.Row
	if len(vals) != l.n {
		return r, fmt.Errorf("row image has %d columns, the table has %d", len(vals), l.n)
	}
	var err error
	if r.ID, err = uintOf(vals[l.id]); err != nil {
		return r, fmt.Errorf("column id: %w", err)
	}
	if r.Date, err = dateOf(vals[l.date]); err != nil {
		return r, fmt.Errorf("id %d: column date: %w", r.ID, err)
	}
	ts, err := timeOf(vals[l.ts])
	if err != nil || !ts.Valid {
		if err == nil {
			err = fmt.Errorf("is NULL")
		}
		return r, fmt.Errorf("id %d: column timestamp: %w", r.ID, err)
	}
	r.Timestamp = ts.Time
	if r.DeviceType, err = stringOf(vals[l.device]); err != nil {
		return r, fmt.Errorf("id %d: column device_type: %w", r.ID, err)
	}
	if r.EventType, err = stringOf(vals[l.event]); err != nil {
		return r, fmt.Errorf("id %d: column event_type: %w", r.ID, err)
	}
	if vals[l.msg] != nil {
		s, err := stringOf(vals[l.msg])
		if err != nil {
			return r, fmt.Errorf("id %d: column message: %w", r.ID, err)
		}
		r.Message = sql.NullString{String: s, Valid: true}
	}
	if r.CreatedAt, err = timeOf(vals[l.created]); err != nil {
		return r, fmt.Errorf("id %d: column created_at: %w", r.ID, err)
	}
	if r.UpdatedAt, err = timeOf(vals[l.up]); err != nil {
		return r, fmt.Errorf("id %d: column updated_at: %w", r.ID, err)
	}
	return r, nil
}

func uintOf(v any) (uint64, error) {
	switch x := v.(type) {
	case int64:
		return uint64(x), nil // BIGINT UNSIGNED above 2^63 arrives negative
	case uint64:
		return x, nil
	case int32:
		return uint64(uint32(x)), nil
	case int:
		return uint64(x), nil
	case nil:
		return 0, fmt.Errorf("is NULL")
	}
	return 0, fmt.Errorf("unexpected %T %v", v, v)
}

func stringOf(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case []byte:
		return string(x), nil
	case nil:
		return "", fmt.Errorf("is NULL")
	}
	return "", fmt.Errorf("unexpected %T %v", v, v)
}

func dateOf(v any) (time.Time, error) {
	switch x := v.(type) {
	case string:
		t, err := time.ParseInLocation(time.DateOnly, x, time.UTC)
		if err != nil {
			return t, fmt.Errorf("%q is not a date Sluice can carry", x)
		}
		return t, nil
	case time.Time:
		return time.Date(x.Year(), x.Month(), x.Day(), 0, 0, 0, 0, time.UTC), nil
	case nil:
		return time.Time{}, fmt.Errorf("is NULL")
	}
	return time.Time{}, fmt.Errorf("unexpected %T %v", v, v)
}

// timeOf converts a DATETIME (wall clock, kept labelled UTC) or a TIMESTAMP
// (an instant) to UTC. A zero date arrives as a string and reads as NULL.
func timeOf(v any) (sql.NullTime, error) {
	switch x := v.(type) {
	case time.Time:
		return sql.NullTime{Time: x.UTC(), Valid: true}, nil
	case nil:
		return sql.NullTime{}, nil
	case string:
		if len(x) >= 10 && x[:10] == "0000-00-00" {
			return sql.NullTime{}, nil
		}
		for _, layout := range []string{"2006-01-02 15:04:05.999999", time.DateTime} {
			if t, err := time.ParseInLocation(layout, x, time.UTC); err == nil {
				return sql.NullTime{Time: t, Valid: true}, nil
			}
		}
		return sql.NullTime{}, fmt.Errorf("%q is not a time Sluice can carry", x)
	}
	return sql.NullTime{}, fmt.Errorf("unexpected %T %s", v, strconv.Quote(fmt.Sprint(v)))
}
