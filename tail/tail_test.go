package tail

import (
	"strings"
	"testing"
	"time"
)

func TestParseFrom(t *testing.T) {
	for _, tc := range []struct {
		in   string
		kind string
		pos  Position
		gtid string
	}{
		{"", "now", Position{}, ""},
		{"NOW", "now", Position{}, ""},
		{"earliest", "earliest", Position{}, ""},
		{"mysql-bin.000042:1234", "file", Position{File: "mysql-bin.000042", Pos: 1234}, ""},
		{"binlog.7:4", "file", Position{File: "binlog.7", Pos: 4}, ""},
		{"0-1-100", "gtid", Position{}, "0-1-100"},
		{"0-1-100,1-2-7", "gtid", Position{}, "0-1-100,1-2-7"},
		{"3e11fa47-71ca-11e1-9e33-c80aa9429562:1-100", "gtid", Position{}, "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-100"},
		{"3e11fa47-71ca-11e1-9e33-c80aa9429562:5", "gtid", Position{}, "3e11fa47-71ca-11e1-9e33-c80aa9429562:5"},
	} {
		got, err := ParseFrom(tc.in)
		if err != nil {
			t.Errorf("ParseFrom(%q): %v", tc.in, err)
			continue
		}
		if got.Kind != tc.kind || got.Pos != tc.pos || got.GTID != tc.gtid {
			t.Errorf("ParseFrom(%q) = %+v, want kind %s pos %+v gtid %q", tc.in, got, tc.kind, tc.pos, tc.gtid)
		}
	}
	for _, bad := range []string{"yesterday", "mysql-bin.000042:x", "mysql-bin.000042:2", "mysql-bin:12", "mysql-bin.abc:100", "0-1"} {
		if _, err := ParseFrom(bad); err == nil || !strings.Contains(err.Error(), "--from") {
			t.Errorf("ParseFrom(%q): error %v, want one naming --from", bad, err)
		}
	}
}

func TestPositionVersionOrdersAcrossFiles(t *testing.T) {
	a, ok1 := Position{File: "mysql-bin.000001", Pos: 4_000_000}.Version()
	b, ok2 := Position{File: "mysql-bin.000002", Pos: 4}.Version()
	if !ok1 || !ok2 || a >= b {
		t.Fatalf("versions %d (%v), %d (%v): a later file must be newer", a, ok1, b, ok2)
	}
	p := Position{File: "mysql-bin.000003", Pos: 99, GTID: "0-1-5", TsMs: 1700000000000}
	q, err := decodePosition(p.encode())
	if err != nil || q != p {
		t.Fatalf("round trip: %+v, %v; want %+v", q, err, p)
	}
	if _, err := decodePosition([]byte(`{"pos":5}`)); err == nil {
		t.Error("a stored position without a file must be refused")
	}
}

// rawRecordsShape is raw_records' shape as schema/sql creates it.
const rawRecordsShape = "id:int,date:date,timestamp:datetime,device_type:string,event_type:string,message:blob,created_at:timestamp,updated_at:timestamp"

func testLayout(t *testing.T) layout {
	t.Helper()
	l, err := newLayout(parseShape(rawRecordsShape), "db.raw_records")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestRowOfConvertsBinlogValues(t *testing.T) {
	l := testLayout(t)
	ts := time.Date(2025, 10, 1, 12, 30, 45, 0, time.UTC)
	created := time.Date(2025, 10, 1, 14, 30, 45, 0, time.FixedZone("CEST", 2*3600)) // an instant in the process's zone
	r, err := l.rowOf([]any{int64(-1), "2025-10-01", ts, []byte("dev"), "evt", []byte("héllo"), created, "0000-00-00 00:00:00"})
	if err != nil {
		t.Fatal(err)
	}
	if r.ID != 1<<64-1 {
		t.Errorf("BIGINT UNSIGNED max arrives as -1 without signedness metadata: got id %d", r.ID)
	}
	if !r.Date.Equal(time.Date(2025, 10, 1, 0, 0, 0, 0, time.UTC)) || !r.Timestamp.Equal(ts) || r.Timestamp.Location() != time.UTC {
		t.Errorf("date %v timestamp %v", r.Date, r.Timestamp)
	}
	if r.DeviceType != "dev" || r.EventType != "evt" || r.Message.String != "héllo" || !r.Message.Valid {
		t.Errorf("strings: %+v", r)
	}
	if !r.CreatedAt.Valid || !r.CreatedAt.Time.Equal(created) || r.CreatedAt.Time.Location() != time.UTC {
		t.Errorf("created_at %v: want the same instant in UTC", r.CreatedAt)
	}
	if r.UpdatedAt.Valid {
		t.Errorf("a zero TIMESTAMP must read as NULL, got %v", r.UpdatedAt)
	}
	r, err = l.rowOf([]any{int64(7), "2025-10-01", ts, "d", "e", nil, nil, nil})
	if err != nil || r.Message.Valid || r.CreatedAt.Valid {
		t.Errorf("NULLs: %+v, %v", r, err)
	}
}

func TestRowOfNamesTheFault(t *testing.T) {
	l := testLayout(t)
	ts := time.Date(2025, 10, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		vals []any
		want string
	}{
		{[]any{int64(1), "2025-10-01", ts}, "has 3 columns, the table has 8"},
		{[]any{nil, "2025-10-01", ts, "d", "e", nil, nil, nil}, "column id: is NULL"},
		{[]any{int64(5), "2025-13-45", ts, "d", "e", nil, nil, nil}, "id 5: column date"},
		{[]any{int64(6), "2025-10-01", nil, "d", "e", nil, nil, nil}, "id 6: column timestamp: is NULL"},
		{[]any{int64(8), "2025-10-01", ts, 3.5, "e", nil, nil, nil}, "id 8: column device_type: unexpected float64"},
	} {
		_, err := l.rowOf(tc.vals)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("rowOf(%v): error %v, want %q", tc.vals, err, tc.want)
		}
	}
	if _, err := newLayout(parseShape("id:int,date:date"), "db.t"); err == nil || !strings.Contains(err.Error(), "db.t has no column timestamp") {
		t.Errorf("newLayout without columns: %v", err)
	}
}

func TestConfigDefaultsAndServerID(t *testing.T) {
	c := DefaultConfig()
	c.Addr, c.Database = "127.0.0.1:3307", "src"
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Name != "src.raw_records" {
		t.Errorf("default name %q", c.Name)
	}
	d := DefaultConfig()
	d.Addr, d.Database, d.Name = "127.0.0.1:3307", "src", "other"
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.ServerID == 0 || c.ServerID == d.ServerID || c.ServerID < 1<<30 {
		t.Errorf("server ids %d and %d: want distinct per name, away from small ids", c.ServerID, d.ServerID)
	}
	e := DefaultConfig()
	e.Addr, e.Database, e.FlushEvents = "x:1", "src", 0
	if err := e.Validate(); err == nil {
		t.Error("flush events 0 must be refused")
	}
}

func TestGapHintNamesTheWindow(t *testing.T) {
	h := gapHint(Position{File: "mysql-bin.000001", Pos: 4, TsMs: time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC).UnixMilli()}, 5*time.Minute)
	// The start is an instant (UTC, RFC 3339), so that a backfill with any
	// --tz reads it right, the margin before the last commit carried.
	for _, want := range []string{"--start-at '2026-11-20T07:55:00Z'", "--reset --from now", "sluice verify"} {
		if !strings.Contains(h, want) {
			t.Errorf("hint %q does not say %q", h, want)
		}
	}
	// The tail first, then the backfill: the other order loses the changes
	// made in between (issue 19).
	if i, j := strings.Index(h, "--recover-purged"), strings.Index(h, "sluice backfill"); i < 0 || j < 0 || i > j {
		t.Errorf("hint %q does not put the restart (--recover-purged) before the backfill", h)
	}
}

func TestGapBackfillCommand(t *testing.T) {
	g := Gap{Since: time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC), Until: time.Date(2026, 11, 20, 9, 30, 1, 0, time.UTC)}
	if got, want := g.BackfillCommand(), "sluice backfill --start-at '2026-11-20T08:00:00Z' --end-at '2026-11-20T09:30:01Z'"; got != want {
		t.Errorf("BackfillCommand() = %q, want %q", got, want)
	}
	if got := (Gap{Until: g.Until}).BackfillCommand(); got != "" {
		t.Errorf("BackfillCommand() without a start = %q, want none", got)
	}
}
