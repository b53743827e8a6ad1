package consumer

import (
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestMetrics(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := NewMetrics(reg)
	for _, c := range []prometheus.Counter{m.records, m.upserted, m.inserted, m.merged, m.deleted, m.tombstoned, m.batches, m.bulkInserts, m.loadFallbacks, m.dbErrors, m.dbRetries, m.commitErrors} {
		c.Inc()
	}
	m.batchRecords.Observe(10000)
	m.commitSeconds.Observe(0.2)
	m.lag.WithLabelValues("g", "t", "0").Set(1)

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
	for _, want := range []string{
		"sluice_consumer_records_total", "sluice_consumer_rows_upserted_total", "sluice_consumer_rows_inserted_total",
		"sluice_consumer_duplicates_merged_total", "sluice_consumer_rows_deleted_total", "sluice_consumer_skipped_tombstoned_total",
		"sluice_consumer_batches_total", "sluice_consumer_bulk_inserts_total", "sluice_consumer_bulk_load_fallbacks_total",
		"sluice_consumer_db_errors_total", "sluice_consumer_db_retries_total", "sluice_consumer_offset_commit_errors_total",
		"sluice_consumer_batch_records", "sluice_consumer_db_commit_seconds", "sluice_consumer_lag_records",
	} {
		if !slices.Contains(names, want) {
			t.Errorf("%s not gathered (got %v)", want, names)
		}
	}
	if got := testutil.ToFloat64(m.lag.WithLabelValues("g", "t", "0")); got != 1 {
		t.Errorf("lag = %v, want 1", got)
	}
}

func TestMetricsWithoutRegistry(t *testing.T) {
	m := NewMetrics(nil)
	m.records.Inc()
	if got := testutil.ToFloat64(m.records); got != 1 {
		t.Errorf("records = %v, want 1", got)
	}
}
