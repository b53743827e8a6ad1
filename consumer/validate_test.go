package consumer

import (
	"database/sql"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/schema"
)

func testLimits() limits {
	return limits{
		deviceType: columnLimit{name: "device_type", dataType: "varchar", max: 10},
		eventType:  columnLimit{name: "event_type", dataType: "varchar", max: 5},
		message:    columnLimit{name: "message", dataType: "text", max: 8, bytes: true},
	}
}

func TestValidate(t *testing.T) {
	lim := testLimits()
	ok := func() *schema.Row {
		return &schema.Row{DeviceType: "dév-1", EventType: "read", Timestamp: time.Date(2025, 10, 1, 0, 0, 0, 0, time.UTC),
			Date: time.Date(2025, 10, 1, 0, 0, 0, 0, time.UTC), Message: sql.NullString{String: "12345678", Valid: true}}
	}
	for _, tc := range []struct {
		name string
		mut  func(*schema.Row)
		want string // "" for valid
	}{
		{"valid at every limit", func(r *schema.Row) { r.DeviceType = strings.Repeat("é", 10) }, ""},
		{"NULL message", func(r *schema.Row) { r.Message = sql.NullString{} }, ""},
		{"empty device_type", func(r *schema.Row) { r.DeviceType = "" }, "device_type is empty"},
		{"empty event_type", func(r *schema.Row) { r.EventType = "" }, "event_type is empty"},
		{"device_type over, counted in characters", func(r *schema.Row) { r.DeviceType = strings.Repeat("é", 11) }, "device_type is 11 characters, over the column's 10 characters (varchar)"},
		{"event_type over", func(r *schema.Row) { r.EventType = "123456" }, "event_type is 6 characters"},
		{"message over, counted in bytes", func(r *schema.Row) { r.Message.String = "1234567é" }, "message is 9 bytes upper-cased, over the column's 8 bytes (text)"},
		{"message at the limit in bytes", func(r *schema.Row) { r.Message.String = "123456é" }, ""},
		{"timestamp before year 1000", func(r *schema.Row) { r.Timestamp = time.Date(999, 12, 31, 0, 0, 0, 0, time.UTC) }, "timestamp 0999-12-31"},
		{"date after year 9999", func(r *schema.Row) { r.Date = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }, "date"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := ok()
			tc.mut(r)
			err := lim.validate(r)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("validate = %v, want valid", err)
			case tc.want != "" && (!errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("validate = %v, want ErrInvalid saying %q", err, tc.want)
			}
		})
	}
	del := &schema.Event{Op: schema.OpDelete, Before: &schema.Row{EventType: "x"}}
	if err := lim.validateEvent(del); err == nil || !strings.Contains(err.Error(), "device_type is empty") {
		t.Errorf("a delete is validated by its before image: %v", err)
	}
	// A delete writes only its key: a before image whose message the target
	// could not hold is still a delete to apply.
	longMsg := ok()
	longMsg.Message.String = strings.Repeat("x", 100)
	if err := lim.validateEvent(&schema.Event{Op: schema.OpDelete, Before: longMsg}); err != nil {
		t.Errorf("a delete with a long message in its before image: %v, want valid", err)
	}
}

// TestColumnLimitUnits: each column type is measured in the unit the server
// counts it in, read from the right information_schema column.
func TestColumnLimitUnits(t *testing.T) {
	n := func(v int64) sql.NullInt64 { return sql.NullInt64{Int64: v, Valid: true} }
	for _, tc := range []struct {
		name          string
		dataType      string
		chars, octets sql.NullInt64
		value         string
		wantOver      bool
		wantSize      int64
		wantErr       string // from columnLimitOf
	}{
		// VARCHAR(255) utf8mb4: 255 characters (1,020 bytes is only the widest case).
		{name: "varchar counts characters", dataType: "varchar", chars: n(255), octets: n(1020), value: strings.Repeat("Ɐ", 255)},
		{name: "varchar over in characters", dataType: "VARCHAR", chars: n(255), octets: n(1020), value: strings.Repeat("Ɐ", 256), wantOver: true, wantSize: 256},
		{name: "char counts characters", dataType: "char", chars: n(3), octets: n(12), value: "ééé"},
		// TEXT: 65,535 bytes, whatever the character set.
		{name: "text counts bytes", dataType: "text", chars: n(65535), octets: n(65535), value: strings.Repeat("a", 65535)},
		{name: "text over in bytes though under in characters", dataType: "text", chars: n(65535), octets: n(65535),
			value: strings.Repeat("Ɐ", 30000), wantOver: true, wantSize: 90000},
		{name: "tinytext", dataType: "tinytext", chars: n(255), octets: n(255), value: strings.Repeat("é", 128), wantOver: true, wantSize: 256},
		{name: "mediumtext", dataType: "mediumtext", chars: n(16777215), octets: n(16777215), value: strings.Repeat("Ɐ", 30000)},
		{name: "varbinary counts bytes", dataType: "varbinary", chars: n(10), octets: n(10), value: "ééééé" + "x", wantOver: true, wantSize: 11},
		{name: "blob", dataType: "blob", chars: n(65535), octets: n(65535), value: "x"},
		{name: "unsupported type", dataType: "int", wantErr: "column c is int"},
		{name: "no length", dataType: "varchar", wantErr: "no length"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := columnLimitOf("c", tc.dataType, tc.chars, tc.octets)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("columnLimitOf = %v, want an error saying %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			size, over := c.over(tc.value)
			if over != tc.wantOver || (over && size != tc.wantSize) {
				t.Errorf("over(%d bytes, %d characters) = %d, %v; want %d, %v (limit %d %s)",
					len(tc.value), len([]rune(tc.value)), size, over, tc.wantSize, tc.wantOver, c.max, c.unit())
			}
		})
	}
}

// TestValidateAfterTransform: a message that fits the source's TEXT column
// can outgrow it when upper-cased (ɐ U+0250 is two bytes, Ɐ U+2C6F three).
// The consumer validates the row as the target stores it.
func TestValidateAfterTransform(t *testing.T) {
	lim := testLimits()
	lim.message = columnLimit{name: "message", dataType: "text", max: 65535, bytes: true}
	r := &schema.Row{DeviceType: "d", EventType: "e", Timestamp: time.Date(2025, 10, 1, 0, 0, 0, 0, time.UTC),
		Date: time.Date(2025, 10, 1, 0, 0, 0, 0, time.UTC), Message: sql.NullString{String: strings.Repeat("ɐ", 30000), Valid: true}}
	if err := lim.validate(r); err != nil {
		t.Fatalf("the source value (60,000 bytes) is valid: %v", err)
	}
	schema.TransformRow(r)
	err := lim.validate(r)
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "message is 90000 bytes upper-cased, over the column's 65535 bytes (text)") {
		t.Errorf("validate after Transform = %v, want the message's 90000 bytes over the TEXT column's 65535", err)
	}
}
