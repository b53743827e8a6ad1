package consumer

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/plugin/kprom"
)

// Metrics are the consumer's Prometheus metrics, listed in the package doc.
type Metrics struct {
	records, upserted, inserted, merged, deleted, batches prometheus.Counter
	unchanged, tombstoned, truncates                      prometheus.Counter
	bulkInserts, loadFallbacks                            prometheus.Counter
	dbErrors, dbRetries, commitErrors                     prometheus.Counter
	isolations                                            prometheus.Counter
	batchRecords, commitSeconds                           prometheus.Histogram
	lag                                                   *prometheus.GaugeVec
	dlq                                                   *prometheus.CounterVec
	// The table-driven path's, by target table (tables.go).
	tableRecords, tableUpserted, tableDeleted, tableDLQ *prometheus.CounterVec
	reg                                                 prometheus.Registerer // for each member's own kprom hook
}

// kafkaHook returns franz-go client metrics for one member, labelled by its
// client id, or nil without a registry. kprom keeps one client's series per
// hook, so every member needs its own.
func (m *Metrics) kafkaHook() *kprom.Metrics {
	if m.reg == nil {
		return nil
	}
	return kprom.NewMetrics("sluice_kafka", kprom.Registerer(m.reg), kprom.Subsystem("consumer"), kprom.WithClientLabel())
}

// NewMetrics creates the metrics and registers them with reg, if not nil.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_consumer_" + name, Help: help})
	}
	m := &Metrics{
		records:       counter("records_total", "Kafka records polled by the consumer."),
		upserted:      counter("rows_upserted_total", "Rows written to the target by upserts."),
		inserted:      counter("rows_inserted_total", "Rows new to the target."),
		merged:        counter("duplicates_merged_total", "Records merged into a row the target already had or into a later record of the same key in the batch."),
		deleted:       counter("rows_deleted_total", "Target rows deleted by delete events."),
		unchanged:     counter("rows_unchanged_total", "Rows the target already had as the record says (or newer): nothing was written."),
		tombstoned:    counter("skipped_tombstoned_total", "Upserts dropped because a newer delete of their key left a tombstone (backfill reads taken before the delete)."),
		truncates:     counter("truncates_total", "Truncate events (a TRUNCATE of the source table) applied: the target's rows older than each were deleted."),
		batches:       counter("batches_total", "Batches committed to the target and then to Kafka."),
		bulkInserts:   counter("bulk_inserts_total", "Batches whose rows were all new, written as MariaDB binary bulk inserts (COM_STMT_BULK_EXECUTE)."),
		loadFallbacks: counter("bulk_load_fallbacks_total", "Bulk inserts rolled back because they met an existing row, an error or a warning; their rows went to the upsert."),
		dbErrors:      counter("db_errors_total", "Failed attempts of a batch transaction."),
		dbRetries:     counter("db_retries_total", "Batch transactions retried after a transient error."),
		commitErrors:  counter("offset_commit_errors_total", "Offset commits that failed after the database commit."),
		isolations:    counter("db_isolations_total", "Failed writes split in halves to find the rows the target refused."),
		batchRecords: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "sluice_consumer_batch_records", Help: "Records per committed batch.",
			Buckets: []float64{1, 10, 100, 1000, 2500, 5000, 7500, 10000}}),
		commitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "sluice_consumer_db_commit_seconds", Help: "Time of one batch transaction, begin to commit.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 12)}),
		dlq: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_consumer_dlq_records_total", Help: "Records sent to the dead-letter topic, by reason (decode, validation, database)."},
			[]string{"reason"}),
		tableRecords: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_consumer_table_records_total", Help: "Records polled by a table-driven member, by target table."},
			[]string{"table"}),
		tableUpserted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_consumer_table_rows_upserted_total", Help: "Rows written to the target table by upserts (new, or changed by a newer change), by target table."},
			[]string{"table"}),
		tableDeleted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_consumer_table_rows_deleted_total", Help: "Target rows deleted by delete events, by target table."},
			[]string{"table"}),
		tableDLQ: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_consumer_table_dlq_records_total", Help: "Records of a table sent to the dead-letter topic, by target table and reason (decode, validation, database)."},
			[]string{"table", "reason"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sluice_consumer_lag_records", Help: "Records of the partition the group has not committed yet: its end offset minus the group's committed offset."},
			[]string{"group", "topic", "partition"}),
	}
	if reg != nil {
		m.reg = reg
		reg.MustRegister(m.unchanged, m.tombstoned, m.truncates, m.records, m.upserted, m.inserted, m.merged, m.deleted, m.batches,
			m.bulkInserts, m.loadFallbacks, m.dbErrors, m.dbRetries, m.commitErrors, m.batchRecords, m.commitSeconds, m.lag, m.dlq)
		reg.MustRegister(m.isolations, m.tableRecords, m.tableUpserted, m.tableDeleted, m.tableDLQ)
	}
	return m
}
