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
	m.rowsRead.Add(3)
	m.chunksPlanned.Set(4)
	m.chunksDone.Inc()
	m.progress.Set(0.25)
	m.chunkRead.Observe(0.01)
	m.chunkRetries.Inc()
	m.chunkFailures.Inc()
	m.checkpointErrors.Inc()
	m.resumedIDs.Set(10)

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
	if got := testutil.ToFloat64(m.rowsRead); got != 3 {
		t.Errorf("rows read = %v, want 3", got)
	}
	if got := testutil.ToFloat64(m.progress); got != 0.25 {
		t.Errorf("progress = %v, want 0.25", got)
	}
}

func TestMetricsWithoutRegistry(t *testing.T) {
	m := NewMetrics(nil) // New uses this when it gets no metrics
	m.rowsRead.Inc()
	if got := testutil.ToFloat64(m.rowsRead); got != 1 {
		t.Errorf("rows read = %v, want 1", got)
	}
}
