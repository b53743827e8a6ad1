package backfill

import (
	"testing"
	"time"
)

func TestProgressLine(t *testing.T) {
	tests := []struct {
		name string
		p    Progress
		want string
	}{
		{name: "a quarter done", p: Progress{IDs: 1000, IDsDone: 250, RowsAcked: 500}, want: "backfill  25.0% 500 rows 50 rows/s ETA 30s"},
		{name: "not started", p: Progress{IDs: 1000}, want: "backfill   0.0% 0 rows 0 rows/s ETA ?"},
		{name: "done", p: Progress{IDs: 1000, IDsDone: 1000, RowsAcked: 2000}, want: "backfill 100.0% 2000 rows 200 rows/s ETA 0s"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.p.Line(10 * time.Second); got != tc.want {
				t.Errorf("Line = %q, want %q", got, tc.want)
			}
		})
	}
	if got, want := (Progress{IDs: 200, IDsResumed: 50}).ResumedNote(), " (resumed: 25% of the id range was done by an earlier run)"; got != want {
		t.Errorf("ResumedNote = %q, want %q", got, want)
	}
	if got := (Progress{IDs: 200}).ResumedNote(); got != "" {
		t.Errorf("ResumedNote of a fresh run = %q, want none", got)
	}
}
