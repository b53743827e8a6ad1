package backfill

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the backfill's Prometheus metrics, listed in the package doc.
type Metrics struct {
	rowsRead         prometheus.Counter
	chunksPlanned    prometheus.Gauge
	chunksDone       prometheus.Counter
	progress         prometheus.Gauge
	chunkRead        prometheus.Histogram
	chunkRetries     prometheus.Counter
	chunkFailures    prometheus.Counter
	checkpointErrors prometheus.Counter
	resumedIDs       prometheus.Gauge
}

// NewMetrics creates the metrics and registers them with reg, if not nil.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		rowsRead: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_backfill_rows_read_total", Help: "Rows read from the source table by the backfill."}),
		chunksPlanned: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sluice_backfill_chunks_planned", Help: "Keyset chunks planned so far; the plan is walked lazily, skipping id gaps."}),
		chunksDone: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_backfill_chunks_done_total", Help: "Chunks read and acknowledged by Kafka."}),
		progress: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sluice_backfill_progress_ratio", Help: "Share of the planned id range read and acknowledged, 0 to 1; ranges done by an earlier run of the window count as done."}),
		chunkRead: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "sluice_backfill_chunk_read_seconds", Help: "Time to read one chunk from the source.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 12)}),
		chunkRetries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_backfill_chunk_retries_total", Help: "Chunk reads, chunk deliveries and planning queries tried again after a transient failure."}),
		chunkFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_backfill_chunk_failures_total", Help: "Chunks that failed for good, after their attempts or with an error not worth retrying; each fails the run."}),
		checkpointErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_backfill_checkpoint_errors_total", Help: "Progress saves that failed; the run goes on, a restart redoes more chunks."}),
		resumedIDs: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sluice_backfill_resumed_ids", Help: "Ids of the planned range skipped because an earlier run of the window had produced them."}),
	}
	if reg != nil {
		reg.MustRegister(m.rowsRead, m.chunksPlanned, m.chunksDone, m.progress, m.chunkRead,
			m.chunkRetries, m.chunkFailures, m.checkpointErrors, m.resumedIDs)
	}
	return m
}
