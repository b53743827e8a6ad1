package tail

import (
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/sluice-dev/sluice/schema"
)

// column is one column of the source table as the tail knows it: its name
// and the family of its type, which the binlog's table map also carries.
type column struct {
	name   string
	family string // int, decimal, float, date, datetime, timestamp, time, year, string, blob, bit, json, other
}

// layout maps the source table's columns, by ordinal, to the row's fields.
type layout struct {
	n                                             int // columns in the table
	id, date, ts, device, event, msg, created, up int
	cols                                          []column
	shape                                         string // cols as "name:family,…", what the tail stores with its position
}

// The fields Sluice reads, by column name.
var layoutFields = []string{"id", "date", "timestamp", "device_type", "event_type", "message", "created_at", "updated_at"}

// newLayout finds the columns Sluice needs among the table's columns.
func newLayout(cols []column, table string) (layout, error) {
	l := layout{n: len(cols), cols: cols}
	idx := map[string]int{}
	var sb strings.Builder
	for i, c := range cols {
		idx[c.name] = i
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(c.name + ":" + c.family)
	}
	l.shape = sb.String()
	for i, dst := range []*int{&l.id, &l.date, &l.ts, &l.device, &l.event, &l.msg, &l.created, &l.up} {
		j, ok := idx[layoutFields[i]]
		if !ok {
			return l, fmt.Errorf("source table %s has no column %s", table, layoutFields[i])
		}
		*dst = j
	}
	return l, nil
}

// parseShape reads back a layout's shape string.
func parseShape(shape string) []column {
	var cols []column
	for _, f := range strings.Split(shape, ",") {
		name, fam, _ := strings.Cut(f, ":")
		cols = append(cols, column{name: name, family: fam})
	}
	return cols
}

// tableMapColumns are the columns a binlog table map names, with the
// families of their types; nil when it carries no names (the server's
// binlog_row_metadata is not FULL).
func tableMapColumns(tm *replication.TableMapEvent) []column {
	if len(tm.ColumnName) == 0 || len(tm.ColumnName) != len(tm.ColumnType) {
		return nil
	}
	cols := make([]column, len(tm.ColumnName))
	for i, name := range tm.ColumnName {
		cols[i] = column{name: strings.ToLower(string(name)), family: binlogFamily(tm.ColumnType[i])}
	}
	return cols
}

// binlogFamily is the family of a binlog column type (a table map's
// MYSQL_TYPE_* code); ENUM and SET arrive as STRING, every TEXT and BLOB as
// BLOB.
func binlogFamily(t byte) string {
	switch t {
	case mysql.MYSQL_TYPE_TINY, mysql.MYSQL_TYPE_SHORT, mysql.MYSQL_TYPE_INT24, mysql.MYSQL_TYPE_LONG, mysql.MYSQL_TYPE_LONGLONG:
		return "int"
	case mysql.MYSQL_TYPE_DECIMAL, mysql.MYSQL_TYPE_NEWDECIMAL:
		return "decimal"
	case mysql.MYSQL_TYPE_FLOAT, mysql.MYSQL_TYPE_DOUBLE:
		return "float"
	case mysql.MYSQL_TYPE_DATE, mysql.MYSQL_TYPE_NEWDATE:
		return "date"
	case mysql.MYSQL_TYPE_DATETIME, mysql.MYSQL_TYPE_DATETIME2:
		return "datetime"
	case mysql.MYSQL_TYPE_TIMESTAMP, mysql.MYSQL_TYPE_TIMESTAMP2:
		return "timestamp"
	case mysql.MYSQL_TYPE_TIME, mysql.MYSQL_TYPE_TIME2:
		return "time"
	case mysql.MYSQL_TYPE_YEAR:
		return "year"
	case mysql.MYSQL_TYPE_VARCHAR, mysql.MYSQL_TYPE_VAR_STRING, mysql.MYSQL_TYPE_STRING, mysql.MYSQL_TYPE_ENUM, mysql.MYSQL_TYPE_SET:
		return "string"
	case mysql.MYSQL_TYPE_TINY_BLOB, mysql.MYSQL_TYPE_MEDIUM_BLOB, mysql.MYSQL_TYPE_LONG_BLOB, mysql.MYSQL_TYPE_BLOB:
		return "blob"
	case mysql.MYSQL_TYPE_BIT:
		return "bit"
	case mysql.MYSQL_TYPE_JSON:
		return "json"
	}
	return "other"
}

// schemaFamily is the family of an information_schema DATA_TYPE, matching
// binlogFamily (MariaDB's JSON is a LONGTEXT, and logged as a BLOB).
func schemaFamily(dataType string) string {
	switch strings.ToLower(dataType) {
	case "tinyint", "smallint", "mediumint", "int", "integer", "bigint":
		return "int"
	case "decimal", "numeric":
		return "decimal"
	case "float", "double", "real":
		return "float"
	case "date":
		return "date"
	case "datetime":
		return "datetime"
	case "timestamp":
		return "timestamp"
	case "time":
		return "time"
	case "year":
		return "year"
	case "char", "varchar", "binary", "varbinary", "enum", "set":
		return "string"
	case "tinytext", "text", "mediumtext", "longtext", "tinyblob", "blob", "mediumblob", "longblob":
		return "blob"
	case "bit":
		return "bit"
	case "json":
		return "json"
	}
	return "other"
}

// matches tells why a table map without names does not fit the layout, or
// "" when its column count and the types of the columns Sluice reads agree:
// without names, that is all that can be checked.
func (l layout) matches(tm *replication.TableMapEvent) string {
	if int(tm.ColumnCount) != l.n || len(tm.ColumnType) != l.n {
		return fmt.Sprintf("the event has %d columns, the shape the tail knows has %d", tm.ColumnCount, l.n)
	}
	for _, i := range []int{l.id, l.date, l.ts, l.device, l.event, l.msg, l.created, l.up} {
		if got, want := binlogFamily(tm.ColumnType[i]), l.cols[i].family; got != want && want != "other" {
			return fmt.Sprintf("column %d is a %s in the event, but %s (%s) in the shape the tail knows", i+1, got, l.cols[i].name, want)
		}
	}
	return ""
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
