package tail

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the tail's Prometheus metrics, listed in the package doc.
type Metrics struct {
	behind       prometheus.Gauge
	events       *prometheus.CounterVec
	position     *prometheus.GaugeVec
	sourceTxs    prometheus.Counter
	kafkaTxs     prometheus.Counter
	commit       prometheus.Histogram
	reconnects   prometheus.Counter
	lastPosition string // the file label set on position, to drop it on rotation
}

// NewMetrics creates the metrics and registers them with reg, if not nil.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		behind: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sluice_tail_seconds_behind_source",
			Help: "Seconds between the source commit of the last binlog event read and now; 0 while caught up (heartbeats arrive, nothing to read)."}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_tail_events_total",
			Help: "Change events produced from the binlog, by source table (db.table) and Debezium op (c, u, d, t), counted when their Kafka transaction commits."}, []string{"table", "op"}),
		position: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sluice_tail_binlog_position",
			Help: "The binlog offset, within the file named by the label, up to which changes are committed to Kafka."}, []string{"file"}),
		sourceTxs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_tail_source_transactions_total", Help: "Source transactions read from the binlog (any table)."}),
		kafkaTxs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_tail_kafka_transactions_total", Help: "Kafka transactions committed: events plus the position they reach."}),
		commit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "sluice_tail_commit_seconds", Help: "Time to flush and commit one Kafka transaction.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}),
		reconnects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_tail_reconnects_total",
			Help: "Restarts of the binlog stream after a lost connection or a failed Kafka transaction, from the last committed position."}),
	}
	if reg != nil {
		reg.MustRegister(m.behind, m.events, m.position, m.sourceTxs, m.kafkaTxs, m.commit, m.reconnects)
	}
	return m
}

func (m *Metrics) setPosition(p Position) {
	if m.lastPosition != p.File && m.lastPosition != "" {
		m.position.DeleteLabelValues(m.lastPosition)
	}
	m.lastPosition = p.File
	m.position.WithLabelValues(p.File).Set(float64(p.Pos))
}
