package backfill

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the backfill's Prometheus metrics, listed in the package doc,
// each labelled with the source table it reads (db.table): one set serves
// the configured tables' backfills of a process, one after the other, and
// each table keeps its own progress.
type Metrics struct {
	rowsRead         *prometheus.CounterVec
	chunksPlanned    *prometheus.GaugeVec
	chunksDone       *prometheus.CounterVec
	progress         *prometheus.GaugeVec
	chunkRead        *prometheus.HistogramVec
	chunkRetries     *prometheus.CounterVec
	chunkFailures    *prometheus.CounterVec
	checkpointErrors *prometheus.CounterVec
	resumedIDs       *prometheus.GaugeVec
}

// tableMetrics are one table's series of Metrics: what a Backfill updates.
type tableMetrics struct {
	rowsRead         prometheus.Counter
	chunksPlanned    prometheus.Gauge
	chunksDone       prometheus.Counter
	progress         prometheus.Gauge
	chunkRead        prometheus.Observer
	chunkRetries     prometheus.Counter
	chunkFailures    prometheus.Counter
	checkpointErrors prometheus.Counter
	resumedIDs       prometheus.Gauge
}

// NewMetrics creates the metrics and registers them with reg, if not nil.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	table := []string{"table"}
	m := &Metrics{
		rowsRead: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_backfill_rows_read_total", Help: "Rows read from the source table by the backfill, by source table."}, table),
		chunksPlanned: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sluice_backfill_chunks_planned", Help: "Keyset chunks planned so far, by source table; the plan is walked lazily, skipping id gaps."}, table),
		chunksDone: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_backfill_chunks_done_total", Help: "Chunks read and acknowledged by Kafka, by source table."}, table),
		progress: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sluice_backfill_progress_ratio", Help: "Share of the table's planned id range read and acknowledged, 0 to 1; ranges done by an earlier run of the window count as done."}, table),
		chunkRead: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "sluice_backfill_chunk_read_seconds", Help: "Time to read one chunk from the source, by source table.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 12)}, table),
		chunkRetries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_backfill_chunk_retries_total", Help: "Chunk reads, chunk deliveries and planning queries tried again after a transient failure, by source table."}, table),
		chunkFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_backfill_chunk_failures_total", Help: "Chunks that failed for good, after their attempts or with an error not worth retrying, by source table; each fails the run."}, table),
		checkpointErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_backfill_checkpoint_errors_total", Help: "Progress saves that failed, by source table; the run goes on, a restart redoes more chunks."}, table),
		resumedIDs: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sluice_backfill_resumed_ids", Help: "Ids of the planned range skipped because an earlier run of the window had produced them, by source table."}, table),
	}
	if reg != nil {
		reg.MustRegister(m.rowsRead, m.chunksPlanned, m.chunksDone, m.progress, m.chunkRead,
			m.chunkRetries, m.chunkFailures, m.checkpointErrors, m.resumedIDs)
	}
	return m
}

// table returns the series of the source table name (db.table), created
// at zero so that a scrape shows the table before its first chunk.
func (m *Metrics) table(name string) *tableMetrics {
	return &tableMetrics{
		rowsRead:         m.rowsRead.WithLabelValues(name),
		chunksPlanned:    m.chunksPlanned.WithLabelValues(name),
		chunksDone:       m.chunksDone.WithLabelValues(name),
		progress:         m.progress.WithLabelValues(name),
		chunkRead:        m.chunkRead.WithLabelValues(name),
		chunkRetries:     m.chunkRetries.WithLabelValues(name),
		chunkFailures:    m.chunkFailures.WithLabelValues(name),
		checkpointErrors: m.checkpointErrors.WithLabelValues(name),
		resumedIDs:       m.resumedIDs.WithLabelValues(name),
	}
}
