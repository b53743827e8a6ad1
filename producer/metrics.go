package producer

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the producer's Prometheus metrics, listed in the package doc.
type Metrics struct {
	records prometheus.Counter
	bytes   prometheus.Counter
	errors  prometheus.Counter
}

// NewMetrics creates the metrics and registers them with reg, if not nil.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		records: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_producer_records_total", Help: "Change events acknowledged by Kafka."}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_producer_bytes_total", Help: "Key and value bytes of the change events acknowledged by Kafka."}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_producer_errors_total", Help: "Change events that failed delivery to Kafka."}),
	}
	if reg != nil {
		reg.MustRegister(m.records, m.bytes, m.errors)
	}
	return m
}
