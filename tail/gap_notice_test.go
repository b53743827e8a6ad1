package tail

import (
	"strings"
	"testing"
	"time"
)

func TestGapWriteNotice(t *testing.T) {
	until := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	known := &Gap{Lost: Position{File: "mysql-bin.000003", Pos: 400}, Resumed: Position{File: "mysql-bin.000009", Pos: 4}, Oldest: "mysql-bin.000007",
		Since: until.Add(-time.Hour), Until: until}
	unknown := *known
	unknown.Since = time.Time{}
	tests := []struct {
		name string
		gap  *Gap
		auto bool
		want []string
	}{
		{name: "this process backfills", gap: known, auto: true, want: []string{"after mysql-bin.000003:400 is purged (the source's oldest is mysql-bin.000007); streaming from mysql-bin.000009:4",
			"this process backfills their window now", "sluice backfill --start-at '2026-12-03T09:00:00Z' --end-at '2026-12-03T10:00:00Z'", "sluice verify"}},
		{name: "the operator backfills", gap: known, want: []string{"backfill their window now (safe beside this tail", "sluice backfill --start-at"}},
		{name: "no commit time", gap: &unknown, auto: true, want: []string{"the stored position has no commit time", "2026-12-03T10:00:00Z"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b strings.Builder
			tc.gap.WriteNotice(&b, tc.auto)
			for _, w := range tc.want {
				if !strings.Contains(b.String(), w) {
					t.Errorf("notice lacks %q:\n%s", w, b.String())
				}
			}
		})
	}
}

func TestStatsLine(t *testing.T) {
	st := Stats{Events: 500, SourceTxs: 20, Position: Position{File: "mysql-bin.000009", Pos: 1234}, BehindSecs: 3}
	if got, want := st.Line(10*time.Second), "tail at mysql-bin.000009:1234: 500 events (50/s), 20 source transactions, 3 s behind"; got != want {
		t.Errorf("Line = %q, want %q", got, want)
	}
	st.CaughtUp = true
	if got := st.Line(10 * time.Second); !strings.HasSuffix(got, ", caught up") {
		t.Errorf("caught up: Line = %q", got)
	}
}
