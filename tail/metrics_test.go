package tail

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluice-dev/sluice/schema"
)

// TestMetrics: the metrics lint clean, and the events of a committed
// transaction are counted by table and op: the fixed table's under its
// db.table, each configured table's under its source's.
func TestMetrics(t *testing.T) {
	tests := []struct {
		name   string
		tables []*schema.Table
		want   []string // the table labels, in Tail.tables order
	}{
		{name: "fixed table", want: []string{"source_db.raw_records"}},
		{name: "configured tables", tables: []*schema.Table{
			{Source: schema.TableName{DB: "shop", Table: "orders"}},
			{Source: schema.TableName{DB: "shop", Table: "customers"}},
		}, want: []string{"shop.orders", "shop.customers"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := prometheus.NewPedanticRegistry()
			m := NewMetrics(reg)
			cfg := DefaultConfig()
			cfg.Addr, cfg.Database, cfg.Tables = "127.0.0.1:3306", "source_db", tt.tables
			tl, err := New(cfg, nil, m, nil)
			if err != nil {
				t.Fatal(err)
			}
			// Every table's series exist at 0 before its first event.
			if got, want := testutil.CollectAndCount(m.events), 4*len(tt.want); got != want {
				t.Errorf("%d events series, want %d (4 ops of each table)", got, want)
			}
			s := &streamState{ops: make([][4]int64, len(tl.tables))}
			last := len(tt.want) - 1
			s.count(0, schema.OpCreate)
			s.count(0, schema.OpCreate)
			s.count(last, schema.OpDelete)
			s.count(last, schema.OpTruncate)
			tl.countEvents(s)
			tl.countEvents(&streamState{ops: make([][4]int64, len(tl.tables))}) // an empty transaction adds nothing
			if len(tt.want) > 1 {
				if got := testutil.ToFloat64(m.events.WithLabelValues(tt.want[0], "d")); got != 0 {
					t.Errorf("%s deletes = %v, want 0", tt.want[0], got)
				}
			}
			for _, c := range []struct {
				table, op string
				want      float64
			}{{tt.want[0], "c", 2}, {tt.want[last], "d", 1}, {tt.want[last], "t", 1}, {tt.want[0], "u", 0}} {
				if got := testutil.ToFloat64(m.events.WithLabelValues(c.table, c.op)); got != c.want {
					t.Errorf("sluice_tail_events_total{table=%q,op=%q} = %v, want %v", c.table, c.op, got, c.want)
				}
			}
			problems, err := testutil.GatherAndLint(reg)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range problems {
				t.Errorf("lint: %s: %s", p.Metric, p.Text)
			}
		})
	}
}
