package consumer

import (
	"database/sql"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/schema"
)

func TestValidate(t *testing.T) {
	lim := limits{deviceType: 10, eventType: 5, message: 8}
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
		{"device_type over, counted in characters", func(r *schema.Row) { r.DeviceType = strings.Repeat("é", 11) }, "device_type is 11 characters"},
		{"event_type over", func(r *schema.Row) { r.EventType = "123456" }, "event_type is 6 characters"},
		{"message over, counted in bytes", func(r *schema.Row) { r.Message.String = "1234567é" }, "message is 9 bytes"},
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
}
