package seed

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/schema"
)

var start = time.Date(2024, 3, 4, 0, 0, 0, 0, time.UTC)

func config(rows int, window time.Duration) Config {
	c := DefaultConfig()
	c.Rows, c.Start, c.End = rows, start, start.Add(window)
	return c
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		c       Config
		wantErr []string // parts of the message; nil for no error
	}{
		{name: "defaults", c: config(200000, time.Minute)},
		{name: "no rows", c: config(0, time.Hour)},
		{name: "exactly the keys a second allows", c: config(30000*60, time.Minute)},
		{name: "one row too many for the window", c: config(30000*60+1, time.Minute),
			wantErr: []string{"rows", "1800001 rows in 60 seconds", "30001", "30000"}},
		{name: "few devices", c: func() Config { c := config(7, time.Second); c.Devices = 1; return c }(),
			wantErr: []string{"rows", "7 rows in 1 seconds", "6 device/event pairs"}},
		{name: "end before start", c: Config{Database: "d", Table: "t", Devices: 1, BatchRows: 1, Writers: 1, Start: start, End: start.Add(-time.Hour)},
			wantErr: []string{"window", "2024-03-03 23:00:00", "2024-03-04 00:00:00"}},
		{name: "end equal to start", c: config(1, 0), wantErr: []string{"window", "not after"}},
		{name: "shorter than a second", c: config(1, 500*time.Millisecond), wantErr: []string{"shorter than one second"}},
		{name: "negative rows", c: config(-1, time.Hour), wantErr: []string{"rows", "-1"}},
		{name: "no devices", c: func() Config { c := config(1, time.Hour); c.Devices = 0; return c }(), wantErr: []string{"devices"}},
		{name: "no writers", c: func() Config { c := config(1, time.Hour); c.Writers = 0; return c }(), wantErr: []string{"writers"}},
		{name: "no batch rows", c: func() Config { c := config(1, time.Hour); c.BatchRows = 0; return c }(), wantErr: []string{"batch rows"}},
		{name: "degenerate permutation", c: func() Config { c := config(1, time.Hour); c.Devices = 7919; return c }(), wantErr: []string{"devices", "7919"}},
		{name: "empty table", c: func() Config { c := config(1, time.Hour); c.Table = ""; return c }(), wantErr: []string{"identifier"}},
		{name: "empty database", c: func() Config { c := config(1, time.Hour); c.Database = ""; return c }(), wantErr: []string{"identifier"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.c.Validate()
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want an error containing %q", tt.wantErr)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q, want it to contain %q", err, w)
				}
			}
		})
	}
}

func rowsEqual(a, b schema.Row) bool {
	return a.ID == b.ID && a.Date.Equal(b.Date) && a.Timestamp.Equal(b.Timestamp) && a.DeviceType == b.DeviceType &&
		a.EventType == b.EventType && a.Message == b.Message &&
		a.CreatedAt.Valid == b.CreatedAt.Valid && a.CreatedAt.Time.Equal(b.CreatedAt.Time) &&
		a.UpdatedAt.Valid == b.UpdatedAt.Valid && a.UpdatedAt.Time.Equal(b.UpdatedAt.Time)
}

func TestRowDeterministic(t *testing.T) {
	c1 := config(1000, time.Hour)
	c2 := config(1000, time.Hour) // a separate but equal config
	for _, i := range []int{0, 1, 2, 499, 999} {
		a, b, again := c1.Row(i), c2.Row(i), c1.Row(i)
		if !rowsEqual(a, b) || !rowsEqual(a, again) {
			t.Errorf("Row(%d) differs between calls: %+v / %+v / %+v", i, a, b, again)
		}
	}
	// Different rows are not all alike.
	if c1.Row(0).Message == c1.Row(1).Message && c1.Row(1).Message == c1.Row(2).Message {
		t.Errorf("rows 0..2 share the message %q", c1.Row(0).Message.String)
	}
	// The message depends on i only, not on the window or N.
	if c1.Row(7).Message != config(5, time.Minute).Row(7).Message {
		t.Error("the message of row 7 depends on the window")
	}
}

func TestRowsUniqueKeys(t *testing.T) {
	const n = 200000
	c := config(n, time.Minute)
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	seen := make(map[schema.Key]int, n)
	for i := range n {
		r := c.Row(i)
		k := r.Key()
		k.Timestamp = time.Unix(k.Timestamp.Unix(), int64(k.Timestamp.Nanosecond())).UTC() // one form per instant
		if j, dup := seen[k]; dup {
			t.Fatalf("rows %d and %d share the dedupe key %v", j, i, k)
		}
		seen[k] = i
	}
}

func TestRowsUniqueKeysAtTheLimit(t *testing.T) {
	// As many rows a second as there are pairs: still no duplicate.
	c := config(0, 3*time.Second)
	c.Devices = 50
	c.Rows = 3 * c.Devices * len(EventTypes)
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	seen := map[schema.Key]int{}
	for i := range c.Rows {
		r := c.Row(i)
		k := r.Key()
		if j, dup := seen[k]; dup {
			t.Fatalf("rows %d and %d share the dedupe key %v", j, i, k)
		}
		seen[k] = i
	}
}

var deviceRE = regexp.MustCompile(`^(thermostat|camera|doorlock|meter|sensor)-([0-9]{5})$`)

func TestRowContent(t *testing.T) {
	const n = 20000
	c := config(n, time.Minute)
	c.End = c.End.Add(-time.Nanosecond) // windows need not be whole seconds
	var prev time.Time
	lengths := map[int]bool{}
	for i := range n {
		r := c.Row(i)
		m := r.Message.String
		if !r.Message.Valid {
			t.Fatalf("row %d: NULL message", i)
		}
		if len(m) < 40 || len(m) > 120 {
			t.Errorf("row %d: message length %d, want 40..120: %q", i, len(m), m)
		}
		lengths[len(m)] = true
		if strings.TrimSpace(m) != m {
			t.Errorf("row %d: message has leading or trailing space: %q", i, m)
		}
		if strings.Trim(m, "abcdefghijklmnopqrstuvwxyz ") != "" {
			t.Errorf("row %d: message not lower-case words: %q", i, m)
		}
		if strings.Contains(m, "  ") {
			t.Errorf("row %d: message has a double space: %q", i, m)
		}

		ts := r.Timestamp
		if ts.Before(c.Start) || !ts.Before(c.End) {
			t.Errorf("row %d: timestamp %v outside [%v, %v)", i, ts, c.Start, c.End)
		}
		if ts.Before(prev) {
			t.Errorf("row %d: timestamp %v before row %d's %v", i, ts, i-1, prev)
		}
		prev = ts
		if ts.Location() != time.UTC || ts.Nanosecond() != 0 {
			t.Errorf("row %d: timestamp %v is not whole seconds in UTC", i, ts)
		}
		if want := time.Date(ts.Year(), ts.Month(), ts.Day(), 0, 0, 0, 0, time.UTC); !r.Date.Equal(want) {
			t.Errorf("row %d: date %v, want %v", i, r.Date, want)
		}
		if !r.CreatedAt.Valid || !r.CreatedAt.Time.Equal(ts) || !r.UpdatedAt.Valid || !r.UpdatedAt.Time.Equal(ts) {
			t.Errorf("row %d: created_at %v updated_at %v, want both %v", i, r.CreatedAt, r.UpdatedAt, ts)
		}

		sm := deviceRE.FindStringSubmatch(r.DeviceType)
		if sm == nil {
			t.Fatalf("row %d: device_type %q is not <kind>-<5-digit id>", i, r.DeviceType)
		}
		if id, _ := strconv.Atoi(sm[2]); id >= c.Devices {
			t.Errorf("row %d: device id %d, want < %d devices", i, id, c.Devices)
		}
		if !slices.Contains(EventTypes, r.EventType) {
			t.Errorf("row %d: event type %q not in %v", i, r.EventType, EventTypes)
		}
		if r.ID != 0 {
			t.Errorf("row %d: id %d, want 0 (the database assigns it)", i, r.ID)
		}
	}
	if first, last := c.Row(0).Timestamp, c.Row(n-1).Timestamp; !first.Equal(c.Start) || last.Before(c.Start.Add(58*time.Second)) {
		t.Errorf("rows span %v..%v, want them spread over the window from %v", first, last, c.Start)
	}
	if len(lengths) < 40 {
		t.Errorf("only %d distinct message lengths in %d rows", len(lengths), n)
	}
}

func TestRowsSpreadEvenly(t *testing.T) {
	// 120 rows over 60 seconds: two rows in every second.
	c := config(120, time.Minute)
	per := map[int64]int{}
	for i := range c.Rows {
		per[c.Row(i).Timestamp.Sub(c.Start).Milliseconds()/1000]++
	}
	for s := range int64(60) {
		if per[s] != 2 {
			t.Errorf("second %d holds %d rows, want 2", s, per[s])
		}
	}
}
