package backfill

import (
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestMetrics(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := NewMetrics(reg)
	iot, other := m.table("source_db.raw_records"), m.table("shop.orders")
	other.rowsRead.Add(7)
	iot.rowsRead.Add(3)
	iot.chunksPlanned.Set(4)
	iot.chunksDone.Inc()
	iot.progress.Set(0.25)
	iot.chunkRead.Observe(0.01)
	iot.chunkRetries.Inc()
	iot.chunkFailures.Inc()
	iot.checkpointErrors.Inc()
	iot.resumedIDs.Set(10)

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
	// The names the package doc lists.
	want := []string{
		"sluice_backfill_checkpoint_errors_total",
		"sluice_backfill_chunk_failures_total",
		"sluice_backfill_chunk_read_seconds",
		"sluice_backfill_chunk_retries_total",
		"sluice_backfill_chunks_done_total",
		"sluice_backfill_chunks_planned",
		"sluice_backfill_progress_ratio",
		"sluice_backfill_resumed_ids",
		"sluice_backfill_rows_read_total",
	}
	if !slices.Equal(names, want) {
		t.Errorf("gathered %v, want %v", names, want)
	}
	// Each table has its own series, labelled with its source db.table.
	if got := testutil.ToFloat64(m.rowsRead.WithLabelValues("source_db.raw_records")); got != 3 {
		t.Errorf("rows read of source_db.raw_records = %v, want 3", got)
	}
	if got := testutil.ToFloat64(m.rowsRead.WithLabelValues("shop.orders")); got != 7 {
		t.Errorf("rows read of shop.orders = %v, want 7", got)
	}
	if got := testutil.ToFloat64(m.progress.WithLabelValues("source_db.raw_records")); got != 0.25 {
		t.Errorf("progress = %v, want 0.25", got)
	}
	if got := testutil.ToFloat64(m.progress.WithLabelValues("shop.orders")); got != 0 {
		t.Errorf("progress of shop.orders = %v, want 0 (created with the table, untouched)", got)
	}
}

func TestMetricsWithoutRegistry(t *testing.T) {
	m := NewMetrics(nil) // New uses this when it gets no metrics
	m.table("source_db.raw_records").rowsRead.Inc()
	if got := testutil.ToFloat64(m.rowsRead.WithLabelValues("source_db.raw_records")); got != 1 {
		t.Errorf("rows read = %v, want 1", got)
	}
}
