package verify

import (
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/schema"
)

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
