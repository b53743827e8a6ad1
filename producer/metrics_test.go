package producer

import (
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestMetrics(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := NewMetrics(reg)
	m.records.Add(2)
	m.bytes.Add(300)
	m.errors.Inc()
	NewDeadLetterMetrics(reg).references.Inc()

	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatalf("GatherAndLint: %v", err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, mf := range mfs {
		names = append(names, mf.GetName())
	}
	want := []string{"sluice_consumer_dlq_references_total", "sluice_producer_bytes_total", "sluice_producer_errors_total", "sluice_producer_records_total"}
	if !slices.Equal(names, want) {
		t.Errorf("gathered %v, want %v", names, want)
	}
	if got := testutil.ToFloat64(m.bytes); got != 300 {
		t.Errorf("bytes = %v, want 300", got)
	}
}
