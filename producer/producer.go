// Package producer writes change events to Kafka: it creates the topic when
// missing and produces each event keyed by its dedupe key, so every change of
// one logical event lands in the same partition, in order.
//
// The client is idempotent with acks=all: a retried batch is never written
// twice and never reordered. Produce blocks once MaxBufferedRecords are in
// flight, which is the backpressure that keeps the readers' memory bounded.
// A record that cannot be delivered within DeliveryTimeout fails its chunk.
//
// TableSink (changes.go) produces a configured table's generic change
// events (schema.Change) to the table's topic, keyed by its key columns,
// through the same client.
//
// State (state.go) is the small key-value store Sluice keeps in the compacted
// topic <topic>.progress: a backfill's acknowledged id ranges, so a restarted
// run resumes, and each job's last outcome, for recovery notifications.
//
// DeadLetterWriter (deadletter.go) writes a consumer group member's dead
// letters, acknowledged before the member commits their offsets; one too
// large for the dead-letter topic is sent as a reference (size, SHA-256 and
// first bytes of the value). Resender sends re-driven dead letters back to
// their topics.
//
// Metrics:
//
//	sluice_producer_records_total   records acknowledged by Kafka
//	sluice_producer_bytes_total     key and value bytes acknowledged
//	sluice_producer_errors_total    records that failed delivery
//	sluice_consumer_dlq_references_total  dead letters sent as references (named for the consumer, whose records they are)
//	sluice_kafka_*                  franz-go client metrics (kprom)
package producer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kprom"

	"github.com/sluice-dev/sluice/schema"
)

// Config says where and how to produce.
type Config struct {
	// Conn are the connection's options every client of this Config
	// takes: TLS and SASL (cmd/sluice builds them from its flags), and
	// Security says what they are, for errors ("SASL SCRAM-SHA-512 as
	// sluice, TLS"), never with a secret.
	Conn               []kgo.Opt
	Security           string
	Brokers            []string
	Topic              string
	StateTopic         string        // the state topic (OpenState); "" : StateTopic(Topic)
	Partitions         int32         // used when the topic is created
	ReplicationFactor  int16         // used when the topic is created; -1 is the broker default
	ClientID           string        // shows in broker logs and quotas
	MaxBufferedRecords int           // records in flight before Send blocks
	Linger             time.Duration // how long a partition batch waits to fill
	Compression        string        // none, snappy, lz4 or zstd
	DeliveryTimeout    time.Duration // give up on a record after this long
	DialTimeout        time.Duration // how long to wait for the brokers at start
}

// DefaultConfig returns the defaults: topic sluice.raw_records with 12
// partitions, 20,000 records in flight, 5 ms linger, snappy.
func DefaultConfig() Config {
	return Config{
		Brokers:            []string{"127.0.0.1:9092"},
		Topic:              "sluice.raw_records",
		Partitions:         12,
		ReplicationFactor:  -1,
		ClientID:           "sluice-producer",
		MaxBufferedRecords: 20000,
		Linger:             5 * time.Millisecond,
		Compression:        "snappy",
		DeliveryTimeout:    2 * time.Minute,
		DialTimeout:        10 * time.Second,
	}
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	switch {
	case len(c.Brokers) == 0:
		return errors.New("brokers: at least one is required")
	case c.Topic == "":
		return errors.New("topic: required")
	case c.Partitions < 1:
		return fmt.Errorf("partitions: must be at least 1, got %d", c.Partitions)
	case c.MaxBufferedRecords < 1:
		return fmt.Errorf("max buffered records: must be at least 1, got %d", c.MaxBufferedRecords)
	}
	if _, err := compression(c.Compression); err != nil {
		return err
	}
	return nil
}

func compression(name string) (kgo.CompressionCodec, error) {
	switch name {
	case "", "none":
		return kgo.NoCompression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	}
	return kgo.CompressionCodec{}, fmt.Errorf("compression: %q is not one of none, snappy, lz4, zstd", name)
}

// ClientOpts are the franz-go options of a client producing with cfg: its
// brokers, client id and topic, acks=all, the bounded buffer, linger,
// compression and timeouts. The tail adds its transactional id to them.
// Call it on a validated Config.
func (c Config) ClientOpts() []kgo.Opt {
	codec, _ := compression(c.Compression)
	return append([]kgo.Opt{
		kgo.SeedBrokers(c.Brokers...),
		kgo.ClientID(c.ClientID),
		kgo.DefaultProduceTopic(c.Topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.MaxBufferedRecords(c.MaxBufferedRecords),
		kgo.ProducerLinger(c.Linger),
		kgo.ProducerBatchCompression(codec),
		kgo.RecordDeliveryTimeout(c.DeliveryTimeout),
		kgo.DialTimeout(c.DialTimeout),
	}, c.Conn...)
}

// Producer produces change events to one topic.
type Producer struct {
	cfg     Config
	cl      *kgo.Client
	metrics *Metrics
	log     *slog.Logger
}

// New connects to the brokers and makes sure the topic exists. It fails,
// naming the brokers, when none answers within DialTimeout.
func New(ctx context.Context, cfg Config, reg prometheus.Registerer, log *slog.Logger) (*Producer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	opts := cfg.ClientOpts()
	if reg != nil {
		opts = append(opts, kgo.WithHooks(kprom.NewMetrics("sluice_kafka", kprom.Registerer(reg), kprom.Subsystem("producer"))))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka client for %v: %w", cfg.Brokers, err)
	}
	p := &Producer{cfg: cfg, cl: cl, metrics: NewMetrics(reg), log: log}
	if err := EnsureTopic(ctx, cl, cfg, log); err != nil {
		cl.Close()
		return nil, err
	}
	return p, nil
}

// EnsureTopic checks that the brokers answer and creates the topic with
// cfg.Partitions when it does not exist. An existing topic is used as it is.
func EnsureTopic(ctx context.Context, cl *kgo.Client, cfg Config, log *slog.Logger) error {
	return createTopic(ctx, cl, cfg, cfg.Topic, cfg.Partitions, nil, log)
}

// createTopic checks that the brokers of cfg answer, then creates topic with
// partitions and configs (and cfg's replication factor) unless it exists.
func createTopic(ctx context.Context, cl *kgo.Client, cfg Config, topic string, partitions int32, configs map[string]*string, log *slog.Logger) error {
	pctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
	defer cancel()
	if err := cl.Ping(pctx); err != nil {
		return fmt.Errorf("kafka brokers %v%s unreachable: %w", cfg.Brokers, security(cfg.Security), err)
	}
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, partitions, cfg.ReplicationFactor, configs, topic)
	if err == nil {
		err = resp.Err
	}
	switch {
	case err == nil:
		log.Info("kafka: created topic", "topic", topic, "partitions", partitions)
		return nil
	case errors.Is(err, kerr.TopicAlreadyExists):
		return nil
	}
	return fmt.Errorf("kafka: create topic %s: %w", topic, err)
}

// Client exposes the underlying client, for admin calls that share its
// connections (end offsets, group offsets).
func (p *Producer) Client() *kgo.Client { return p.cl }

// Send encodes and produces events. It returns once every event is handed to
// the client (blocking while the buffer is full) and does not keep events.
// acked is called once, after the last event is acknowledged, with the first
// delivery error if any, so Send itself always returns nil.
func (p *Producer) Send(ctx context.Context, events []schema.Event, acked func(error)) error {
	if len(events) == 0 {
		acked(nil)
		return nil
	}
	s := &sendState{acked: acked, p: p}
	s.remaining.Store(int64(len(events)))
	enc := encodeRecords(events)
	s.enc = enc
	for i := range enc.recs {
		p.cl.Produce(ctx, &enc.recs[i], s.promise)
	}
	return nil
}

// slabSize is the size of the buffers encodeRecords cuts keys and values
// from. A Send's slabs and records go back to their pools once the client
// has acknowledged all its records, and the next Send reuses them.
const slabSize = 1 << 20

var (
	slabs        = sync.Pool{New: func() any { b := make([]byte, 0, slabSize); return &b }}
	recordSlices sync.Pool // *[]kgo.Record
)

// encoded is a Send's records and the slabs their keys and values are cut
// from.
type encoded struct {
	recs  []kgo.Record
	slabs []*[]byte
}

// encodeRecords encodes events as Kafka records. Their keys and values are
// cut from shared slabs, and the records are one slice: a few allocations a
// Send instead of three a record, and no value outgrowing its first buffer
// (BenchmarkEncodeRecords).
func encodeRecords(events []schema.Event) encoded {
	var e encoded
	if v, ok := recordSlices.Get().(*[]kgo.Record); ok && cap(*v) >= len(events) {
		e.recs = (*v)[:len(events)]
	} else {
		e.recs = make([]kgo.Record, len(events))
	}
	now := time.Now() // the records' timestamp: the client would read the clock for each
	var slab []byte
	for i := range events {
		ev := &events[i]
		if cap(slab)-len(slab) < slabSize/64 {
			p := slabs.Get().(*[]byte)
			e.slabs = append(e.slabs, p)
			slab = (*p)[:0]
		}
		start := len(slab)
		slab = schema.AppendKey(slab, ev.Key())
		mid := len(slab)
		slab = schema.AppendEvent(slab, ev)
		// A value that outgrew the slab moved it; the records before
		// keep the old one (which goes back to the pool), the new one is
		// the collector's. Full slice expressions keep each record's
		// bytes its own.
		r := &e.recs[i]
		r.Key = slab[start:mid:mid]
		r.Value = slab[mid:len(slab):len(slab)]
		r.Timestamp = now
	}
	return e
}

// release puts the slabs and records back into their pools: call it only
// once the client is done with every record.
func (e *encoded) release() {
	for _, p := range e.slabs {
		slabs.Put(p)
	}
	recs := e.recs
	clear(recs)
	recordSlices.Put(&recs)
	*e = encoded{}
}

// sendState tracks one Send's records until the last is acknowledged.
type sendState struct {
	p         *Producer
	enc       encoded // the records, released after the last acknowledgement
	acked     func(error)
	remaining atomic.Int64
	errOnce   sync.Once
	err       error
}

func (s *sendState) promise(r *kgo.Record, err error) {
	if err != nil {
		s.p.metrics.errors.Inc()
		s.fail(fmt.Errorf("topic %s partition %d key %s: %w", r.Topic, r.Partition, r.Key, err))
	} else {
		s.p.metrics.records.Inc()
		s.p.metrics.bytes.Add(float64(len(r.Key) + len(r.Value)))
	}
	s.done(1)
}

func (s *sendState) fail(err error) { s.errOnce.Do(func() { s.err = err }) }

func (s *sendState) done(n int64) {
	if s.remaining.Add(-n) == 0 {
		s.acked(s.err)
		s.enc.release()
	}
}

// Flush waits until every buffered record is acknowledged or failed.
func (p *Producer) Flush(ctx context.Context) error {
	if err := p.cl.Flush(ctx); err != nil {
		return fmt.Errorf("kafka: flush topic %s: %w", p.cfg.Topic, err)
	}
	return nil
}

// Close closes the client; records not yet acknowledged fail. Call Flush
// first to wait for them.
func (p *Producer) Close() { p.cl.Close() }

// security renders a connection's Security for an error: " (…)", or "".
func security(s string) string {
	if s == "" {
		return ""
	}
	return " (" + s + ")"
}
