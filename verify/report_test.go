package verify

import (
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/schema"
)

func TestReportWriteText(t *testing.T) {
	day := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	match := Report{FirstDiff: -1, SourceRows: 4, TargetRows: 4, Slices: []Slice{
		{Start: day, End: day.Add(12 * time.Hour), SourceRows: 2, TargetRows: 2, SourceSum: 7, TargetSum: 7},
		{Start: day.Add(12 * time.Hour), End: day.AddDate(0, 0, 1), SourceRows: 2, TargetRows: 2, SourceSum: 9, TargetSum: 9},
	}}
	differs := match
	differs.Slices = []Slice{match.Slices[0], match.Slices[1]}
	differs.Slices[1].TargetRows, differs.TargetRows, differs.FirstDiff = 1, 3, 1
	differs.DiffKeys = []Diff{{Key: schema.Key{DeviceType: "d", EventType: "e", Timestamp: day.Add(13 * time.Hour)}, How: "missing in target"}}
	tests := []struct {
		name    string
		r       Report
		want    []string
		differs int
	}{
		{name: "match", r: match, want: []string{"verify [2026-12-02 00:00:00, 2026-12-03 00:00:00): 2 slices, 4 source rows, 4 target rows, 1.5 s",
			"verify: source and target match"}},
		{name: "differs", r: differs, differs: 1, want: []string{"DIFFERS", "verify: first differing slice 2 [2026-12-02 12:00:00, 2026-12-03 00:00:00): source 2 rows, target 1 rows",
			"  key (d, e, 2026-12-02 13:00:00): missing in target"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b strings.Builder
			tc.r.WriteText(&b, day, day.AddDate(0, 0, 1), 1500*time.Millisecond)
			for _, w := range tc.want {
				if !strings.Contains(b.String(), w) {
					t.Errorf("report lacks %q:\n%s", w, b.String())
				}
			}
			if got := tc.r.Differing(); got != tc.differs {
				t.Errorf("Differing = %d, want %d", got, tc.differs)
			}
		})
	}
}

func TestTableReportWriteText(t *testing.T) {
	tbl := &schema.Table{Source: schema.TableName{DB: "crm", Table: "customers"}, Target: schema.TableName{DB: "analytics", Table: "customers"}}
	r := &TableReport{Table: tbl, Whole: true, FirstDiff: 0, SourceRows: 3, TargetRows: 2, Refused: 1,
		Slices:   []Slice{{SourceRows: 3, TargetRows: 2}},
		DiffKeys: []TableDiff{{Key: "42", How: "missing in target"}}}
	var b strings.Builder
	r.WriteText(&b, time.Time{}, time.Time{}, time.Second)
	for _, w := range []string{"verify crm.customers -> analytics.customers, the whole table (no traveling window column): 3 source rows, 2 target rows, 1 refused by rules, 1.0 s",
		"verify crm.customers: first differing slice", "  key 42: missing in target"} {
		if !strings.Contains(b.String(), w) {
			t.Errorf("report lacks %q:\n%s", w, b.String())
		}
	}
}
