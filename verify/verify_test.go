package verify

import (
	"database/sql"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/schema"
)

var start = time.Date(2024, 3, 4, 0, 0, 0, 0, time.UTC)

func TestSlices(t *testing.T) {
	tests := []struct {
		name      string
		window    time.Duration
		rows, per int
		wantN     int
		wholeSecs bool // every boundary but the window's end is a whole second after start
	}{
		{name: "even split", window: time.Hour, rows: 100000, per: 10000, wantN: 10, wholeSecs: true},
		{name: "remainder rounds up", window: time.Hour, rows: 25000, per: 10000, wantN: 3, wholeSecs: true},
		{name: "fewer rows than a slice", window: time.Hour, rows: 5, per: 10000, wantN: 1, wholeSecs: true},
		{name: "no rows", window: time.Hour, rows: 0, per: 10000, wantN: 1, wholeSecs: true},
		{name: "capped by seconds", window: time.Hour, rows: 1_000_000_000, per: 1, wantN: 3600, wholeSecs: true},
		{name: "uneven seconds", window: 7 * time.Second, rows: 3, per: 1, wantN: 3, wholeSecs: true},
		{name: "a day", window: 24 * time.Hour, rows: 5_000_000, per: 10000, wantN: 500, wholeSecs: true},
		{name: "one second", window: time.Second, rows: 50000, per: 10, wantN: 1, wholeSecs: true},
		{name: "less than a second", window: 500 * time.Millisecond, rows: 50000, per: 10, wantN: 1},
		{name: "fractional window", window: 10*time.Second + 500*time.Millisecond, rows: 20, per: 1, wantN: 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			end := start.Add(tt.window)
			got := Slices(start, end, tt.rows, tt.per)
			if len(got) != tt.wantN {
				t.Errorf("%d slices, want %d", len(got), tt.wantN)
			}
			if len(got) == 0 {
				t.Fatal("no slices")
			}
			if !got[0].Start.Equal(start) {
				t.Errorf("first slice starts at %v, want %v", got[0].Start, start)
			}
			if !got[len(got)-1].End.Equal(end) {
				t.Errorf("last slice ends at %v, want %v", got[len(got)-1].End, end)
			}
			var longest, shortest time.Duration = 0, tt.window
			for i, s := range got {
				if !s.End.After(s.Start) {
					t.Errorf("slice %d [%v, %v) is empty", i, s.Start, s.End)
				}
				if i > 0 && !s.Start.Equal(got[i-1].End) {
					t.Errorf("slice %d starts at %v, slice %d ends at %v: gap or overlap", i, s.Start, i-1, got[i-1].End)
				}
				if s.Start.Sub(start)%time.Second != 0 {
					t.Errorf("slice %d starts %v after the window: not whole seconds", i, s.Start.Sub(start))
				}
				if (tt.wholeSecs || i < len(got)-1) && s.End.Sub(start)%time.Second != 0 {
					t.Errorf("slice %d ends %v after the window: not whole seconds", i, s.End.Sub(start))
				}
				if s.SourceRows != 0 || s.TargetRows != 0 || s.SourceSum != 0 || s.TargetSum != 0 {
					t.Errorf("slice %d is not blank: %+v", i, s)
				}
				d := s.End.Sub(s.Start)
				longest, shortest = max(longest, d), min(shortest, d)
			}
			// Slices are as even as whole seconds allow.
			if tt.wholeSecs && longest-shortest > time.Second {
				t.Errorf("slices range from %v to %v: more than a second apart", shortest, longest)
			}
		})
	}
}

func TestSliceMatch(t *testing.T) {
	tests := []struct {
		name string
		s    Slice
		want bool
	}{
		{name: "equal", s: Slice{SourceRows: 3, TargetRows: 3, SourceSum: 9, TargetSum: 9}, want: true},
		{name: "empty", s: Slice{}, want: true},
		{name: "row missing", s: Slice{SourceRows: 3, TargetRows: 2, SourceSum: 9, TargetSum: 9}},
		{name: "content differs", s: Slice{SourceRows: 3, TargetRows: 3, SourceSum: 9, TargetSum: 8}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.s.Match(); got != tt.want {
				t.Errorf("Match() = %v, want %v", got, tt.want)
			}
		})
	}
}

func hashRow() schema.Row {
	ts := time.Date(2024, 3, 4, 10, 11, 12, 0, time.UTC)
	return schema.Row{
		ID: 5, Date: time.Date(2024, 3, 4, 0, 0, 0, 0, time.UTC), Timestamp: ts,
		DeviceType: "sensor-00001", EventType: "reading",
		Message:   sql.NullString{String: "TEMPERATURE HIGH", Valid: true},
		CreatedAt: sql.NullTime{Time: ts, Valid: true},
	}
}

func TestHash(t *testing.T) {
	base := hashRow()
	h := Hash(&base)
	differ := []struct {
		name   string
		mutate func(*schema.Row)
	}{
		{name: "device", mutate: func(r *schema.Row) { r.DeviceType = "sensor-00002" }},
		{name: "event", mutate: func(r *schema.Row) { r.EventType = "alert" }},
		{name: "timestamp", mutate: func(r *schema.Row) { r.Timestamp = r.Timestamp.Add(time.Second) }},
		{name: "date", mutate: func(r *schema.Row) { r.Date = r.Date.AddDate(0, 0, 1) }},
		{name: "message", mutate: func(r *schema.Row) { r.Message.String = "TEMPERATURE LOW" }},
		{name: "message case", mutate: func(r *schema.Row) { r.Message.String = "temperature high" }},
		{name: "NULL message", mutate: func(r *schema.Row) { r.Message = sql.NullString{} }},
		{name: "empty message", mutate: func(r *schema.Row) { r.Message = sql.NullString{Valid: true} }},
		{name: "field boundary moved", mutate: func(r *schema.Row) { r.DeviceType, r.EventType = "sensor-0000", "1reading" }},
	}
	for _, tt := range differ {
		t.Run(tt.name, func(t *testing.T) {
			r := hashRow()
			tt.mutate(&r)
			if Hash(&r) == h {
				t.Errorf("Hash unchanged when the %s differs", tt.name)
			}
		})
	}
	t.Run("NULL and empty message differ", func(t *testing.T) {
		a, b := hashRow(), hashRow()
		a.Message, b.Message = sql.NullString{}, sql.NullString{Valid: true}
		if Hash(&a) == Hash(&b) {
			t.Error("NULL and empty messages hash alike")
		}
	})

	same := []struct {
		name   string
		mutate func(*schema.Row)
	}{
		{name: "equal row", mutate: func(*schema.Row) {}},
		{name: "same instant in another zone", mutate: func(r *schema.Row) {
			r.Timestamp = r.Timestamp.In(time.FixedZone("x", 5*3600))
			r.Date = r.Date.In(time.FixedZone("y", -3600))
		}},
		// The target may hold rows with no source id (loaded by the earlier
		// job or Debezium): ids and audit times are not compared.
		{name: "other id", mutate: func(r *schema.Row) { r.ID = 99 }},
		{name: "other created_at", mutate: func(r *schema.Row) { r.CreatedAt = sql.NullTime{} }},
		{name: "other updated_at", mutate: func(r *schema.Row) { r.UpdatedAt = sql.NullTime{Time: time.Now(), Valid: true} }},
	}
	for _, tt := range same {
		t.Run(tt.name, func(t *testing.T) {
			r := hashRow()
			tt.mutate(&r)
			if Hash(&r) != h {
				t.Errorf("Hash changed for %s", tt.name)
			}
		})
	}
}

func TestHashSumOrderIndependent(t *testing.T) {
	// The slice checksum is a sum, so the order rows come back in is irrelevant.
	rows := make([]schema.Row, 3)
	for i := range rows {
		rows[i] = hashRow()
		rows[i].DeviceType = strings.Repeat("d", i+1)
	}
	var fwd, back uint64
	for i := range rows {
		fwd += Hash(&rows[i])
		back += Hash(&rows[len(rows)-1-i])
	}
	if fwd != back {
		t.Errorf("sums differ by order: %d vs %d", fwd, back)
	}
}

func TestConfigValidate(t *testing.T) {
	valid := func() Config {
		c := DefaultConfig()
		c.Start, c.End = start, start.Add(24*time.Hour)
		return c
	}
	tests := []struct {
		name    string
		mutate  func(*Config)
		wantErr string
	}{
		{name: "defaults with a window", mutate: func(*Config) {}},
		{name: "end before start", mutate: func(c *Config) { c.End = c.Start.Add(-time.Second) }, wantErr: "is not after start"},
		{name: "no window", mutate: func(c *Config) { c.Start, c.End = time.Time{}, time.Time{} }, wantErr: "window"},
		{name: "zero chunk rows", mutate: func(c *Config) { c.ChunkRows = 0 }, wantErr: "chunk rows"},
		{name: "zero workers", mutate: func(c *Config) { c.Workers = 0 }, wantErr: "workers"},
		{name: "empty target table", mutate: func(c *Config) { c.TargetTable = "" }, wantErr: "identifier"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid()
			tt.mutate(&c)
			err := c.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate() = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}
