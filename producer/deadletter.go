package producer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/schema"
)

// DeadLetterConfig says where a consumer group member's dead letters go.
type DeadLetterConfig struct {
	Brokers     []string
	Conn        []kgo.Opt // the connection's TLS and SASL (see Config.Conn)
	Security    string    // what Conn is, for errors
	Topic       string    // the dead-letter topic, created with one partition when missing
	ClientID    string
	DialTimeout time.Duration // how long to wait for the brokers at start
}

// DeadLetterMetrics counts what the dead-letter writers of a process did.
// The name stays the consumer's: the dead letters are its records, and
// dashboards know it by that name.
type DeadLetterMetrics struct {
	references prometheus.Counter
}

// NewDeadLetterMetrics creates the metrics and registers them with reg, if
// not nil. Several writers of one process share one.
func NewDeadLetterMetrics(reg prometheus.Registerer) *DeadLetterMetrics {
	m := &DeadLetterMetrics{references: prometheus.NewCounter(prometheus.CounterOpts{
		Name: "sluice_consumer_dlq_references_total",
		Help: "Dead letters too large for the dead-letter topic, sent as references (size, SHA-256 and first bytes of the value) instead."})}
	if reg != nil {
		reg.MustRegister(m.references)
	}
	return m
}

// DeadLetterWriter writes one consumer group member's dead letters. The
// dead-letter topic never becomes the failure: a dead letter too large for
// it (over its max.message.bytes, which New reads and uses as the client's
// batch limit, or refused by the broker as MESSAGE_TOO_LARGE) is tried
// alone, and then sent as a reference (reference).
type DeadLetterWriter struct {
	cfg     DeadLetterConfig
	cl      *kgo.Client
	max     atomic.Int32 // the dead-letter topic's max.message.bytes; 0: franz-go's default batch limit
	metrics *DeadLetterMetrics
	log     *slog.Logger
}

// kgoBatchMaxBytes is franz-go's default limit of a produce batch.
const kgoBatchMaxBytes = 1_000_012

// NewDeadLetterWriter connects to the brokers, creates the dead-letter topic
// when it is missing and reads its max.message.bytes. m may be nil.
func NewDeadLetterWriter(ctx context.Context, cfg DeadLetterConfig, m *DeadLetterMetrics, log *slog.Logger) (*DeadLetterWriter, error) {
	switch {
	case len(cfg.Brokers) == 0:
		return nil, errors.New("dead letters: brokers: at least one is required")
	case cfg.Topic == "":
		return nil, errors.New("dead letters: topic: required")
	}
	if log == nil {
		log = slog.Default()
	}
	if m == nil {
		m = NewDeadLetterMetrics(nil)
	}
	w := &DeadLetterWriter{cfg: cfg, metrics: m, log: log}
	opts := append([]kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.DialTimeout(cfg.DialTimeout),
		// Dead letters are produced in batches no larger than the
		// dead-letter topic takes (read below, before the first produce:
		// franz-go asks once per partition, when it first produces to it).
		kgo.ProducerBatchMaxBytesFn(func(topic string) int32 {
			if n := w.max.Load(); topic == cfg.Topic && n > 0 {
				return n
			}
			return kgoBatchMaxBytes
		}),
	}, cfg.Conn...)
	if cfg.ClientID != "" {
		opts = append(opts, kgo.ClientID(cfg.ClientID))
	}
	var err error
	if w.cl, err = kgo.NewClient(opts...); err != nil {
		return nil, fmt.Errorf("kafka client for %v: %w", cfg.Brokers, err)
	}
	pctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
	defer cancel()
	tcfg := Config{Brokers: cfg.Brokers, Security: cfg.Security, DialTimeout: cfg.DialTimeout, ReplicationFactor: -1}
	if err := createTopic(pctx, w.cl, tcfg, cfg.Topic, 1, nil, log); err != nil {
		w.cl.Close()
		return nil, err
	}
	if n, err := dlqBatchLimit(pctx, w.cl, cfg.Topic); err != nil {
		// Not fatal: a dead letter the broker refuses is still tried alone
		// and then sent as a reference (Send).
		log.Warn("consumer: cannot read the dead-letter topic's max.message.bytes; dead letters are batched up to franz-go's default", "err", err)
	} else {
		w.max.Store(n)
	}
	return w, nil
}

// Close closes the client. Call it once no Send is running.
func (w *DeadLetterWriter) Close() { w.cl.Close() }

// Send writes recs, dead letters whose headers name their source record
// (schema.DLQHeaderTopic, …), and waits for every acknowledgement: their
// offsets may only be committed once they are safe. acked is called, before
// Send returns, for each dead letter the topic has acknowledged, whole or as
// a reference. A dead letter the topic refuses as too large is tried alone
// (its batch-mates may have made the produce batch too large), and if it is
// refused alone, it is sent as a reference. Any other failure returns,
// naming the record, after acked was called for those acknowledged.
func (w *DeadLetterWriter) Send(ctx context.Context, recs []*kgo.Record, acked func(dl *kgo.Record)) error {
	if len(recs) == 0 {
		return nil
	}
	var tooLarge []*kgo.Record
	var errTooLarge error
	for _, res := range w.cl.ProduceSync(ctx, recs...) {
		switch {
		case res.Err == nil:
			acked(res.Record)
		case isTooLarge(res.Err):
			tooLarge = append(tooLarge, res.Record)
			errTooLarge = res.Err
		default:
			return deadLetterError(res.Record, res.Err)
		}
	}
	for _, dl := range tooLarge {
		err := errTooLarge
		if len(recs) > 1 {
			err = w.cl.ProduceSync(ctx, dl).FirstErr()
		}
		if isTooLarge(err) {
			ref := reference(dl, err)
			if rerr := w.cl.ProduceSync(ctx, ref).FirstErr(); rerr != nil {
				return deadLetterError(dl, fmt.Errorf("%w; and its reference (%d bytes of headers and value): %w", err, recordBytes(ref), rerr))
			}
			w.metrics.references.Inc()
			why, _ := header(ref, schema.DLQHeaderReference)
			w.log.Warn("consumer: dead letter too large for the dead-letter topic, sent as a reference", "record", coordinates(dl), "topic", dl.Topic, "why", why)
			err = nil
		}
		if err != nil {
			return deadLetterError(dl, err)
		}
		acked(dl)
	}
	return nil
}

// isTooLarge reports whether a produce failed on the record's (or its
// batch's) size: the broker's MESSAGE_TOO_LARGE (over the topic's
// max.message.bytes) or RECORD_LIST_TOO_LARGE, or franz-go's own
// MESSAGE_TOO_LARGE for a record over its batch limit.
func isTooLarge(err error) bool {
	return errors.Is(err, kerr.MessageTooLarge) || errors.Is(err, kerr.RecordListTooLarge)
}

// deadLetterError names the dead letter that could not be written.
func deadLetterError(dl *kgo.Record, err error) error {
	return fmt.Errorf("dead-letter record %s to %s: %w", coordinates(dl), dl.Topic, err)
}

// coordinates is "topic/partition@offset" of the record a dead letter is for.
func coordinates(dl *kgo.Record) string {
	orig, _ := header(dl, schema.DLQHeaderTopic)
	part, _ := header(dl, schema.DLQHeaderPartition)
	off, _ := header(dl, schema.DLQHeaderOffset)
	return orig + "/" + part + "@" + off
}

// header returns the value of the last header of r named key, and whether
// it is there.
func header(r *kgo.Record, key string) (string, bool) {
	for i := len(r.Headers) - 1; i >= 0; i-- {
		if r.Headers[i].Key == key {
			return string(r.Headers[i].Value), true
		}
	}
	return "", false
}

// recordBytes is about what a record weighs in a produce batch: key, value
// and headers.
func recordBytes(r *kgo.Record) int {
	n := len(r.Key) + len(r.Value)
	for _, h := range r.Headers {
		n += len(h.Key) + len(h.Value)
	}
	return n
}

// ReferenceHeadBytes is how much of the value (and of an over-long key) a
// reference keeps: enough to recognise the record, small enough that a
// reference fits any dead-letter topic set up with a sane max.message.bytes.
const ReferenceHeadBytes = 1 << 10

// referenceHeaderBytes bounds the original headers a reference keeps, and
// referenceErrorBytes its sluice.dlq.error, so that a reference is at most
// about 24 KiB whatever the record carried.
const referenceHeaderBytes, referenceErrorBytes = 16 << 10, 4 << 10

// reference is the dead letter to send in place of dl, which the
// dead-letter topic refused with err: dl's headers (the record's own ones up
// to referenceHeaderBytes, and all of Sluice's, the error cut to
// referenceErrorBytes), the value's size and SHA-256, and as its value the
// value's first ReferenceHeadBytes bytes. A key over ReferenceHeadBytes is
// cut to them too, with schema.DLQHeaderKeySize. The result is bounded,
// whatever dl carried.
func reference(dl *kgo.Record, err error) *kgo.Record {
	sum := sha256.Sum256(dl.Value)
	head := dl.Value[:min(len(dl.Value), ReferenceHeadBytes)]
	ref := &kgo.Record{Topic: dl.Topic, Key: dl.Key, Value: head, Headers: make([]kgo.RecordHeader, 0, len(dl.Headers)+5)}
	kept, dropped := 0, 0
	for _, h := range dl.Headers {
		switch {
		case h.Key == schema.DLQHeaderError:
			h.Value = cutUTF8(h.Value, referenceErrorBytes)
		case strings.HasPrefix(h.Key, schema.DLQHeaderPrefix):
		case kept+len(h.Key)+len(h.Value) > referenceHeaderBytes:
			dropped++
			continue
		default:
			kept += len(h.Key) + len(h.Value)
		}
		ref.Headers = append(ref.Headers, h)
	}
	add := func(k, v string) { ref.Headers = append(ref.Headers, kgo.RecordHeader{Key: k, Value: []byte(v)}) }
	if len(dl.Key) > ReferenceHeadBytes {
		ref.Key = dl.Key[:ReferenceHeadBytes]
		add(schema.DLQHeaderKeySize, strconv.Itoa(len(dl.Key)))
	}
	if dropped > 0 {
		add(schema.DLQHeaderHeadersDropped, strconv.Itoa(dropped))
	}
	add(schema.DLQHeaderReference, fmt.Sprintf("the dead letter (%d bytes) is too large for %s: %v; the value here is the first %d of its %d bytes",
		recordBytes(dl), dl.Topic, err, len(head), len(dl.Value)))
	add(schema.DLQHeaderValueSize, strconv.Itoa(len(dl.Value)))
	add(schema.DLQHeaderValueHash, hex.EncodeToString(sum[:]))
	return ref
}

// cutUTF8 is b cut to at most n bytes, not inside a UTF-8 sequence.
func cutUTF8(b []byte, n int) []byte {
	if len(b) <= n {
		return b
	}
	for n > 0 && b[n]&0xC0 == 0x80 { // b[n] continues a sequence: cut before its start
		n--
	}
	return b[:n]
}

// dlqBatchLimit returns the dead-letter topic's max.message.bytes, for the
// client's batch limit, so that franz-go never builds a batch the broker
// refuses as a whole (then every dead letter in it would fail, not just the
// large one), and fails a single record over it at once. 0: unknown, keep
// franz-go's default.
func dlqBatchLimit(ctx context.Context, cl *kgo.Client, topic string) (int32, error) {
	rcs, err := kadm.NewClient(cl).DescribeTopicConfigs(ctx, topic)
	if err != nil {
		return 0, fmt.Errorf("describe dead-letter topic %s: %w", topic, err)
	}
	rc, err := rcs.On(topic, nil)
	if err == nil {
		err = rc.Err
	}
	if err != nil {
		return 0, fmt.Errorf("describe dead-letter topic %s: %w", topic, err)
	}
	for _, cfg := range rc.Configs {
		if cfg.Key == "max.message.bytes" && cfg.Value != nil {
			n, err := strconv.ParseInt(*cfg.Value, 10, 32)
			if err != nil || n < 512 {
				return 0, fmt.Errorf("dead-letter topic %s: max.message.bytes %q is not a usable limit", topic, *cfg.Value)
			}
			return int32(min(n, 1<<30)), nil
		}
	}
	return 0, nil
}

// Resender produces re-driven dead letters back to the topics they came
// from, for `sluice dlq redrive`.
type Resender struct {
	cl *kgo.Client
}

// NewResender connects to the brokers of cfg (its Topic is not used).
func NewResender(ctx context.Context, cfg DeadLetterConfig) (*Resender, error) {
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.DialTimeout(cfg.DialTimeout),
		kgo.RequiredAcks(kgo.AllISRAcks()),
	}, cfg.Conn...)...)
	if err != nil {
		return nil, fmt.Errorf("kafka client for %v: %w", cfg.Brokers, err)
	}
	pctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
	defer cancel()
	if err := cl.Ping(pctx); err != nil {
		cl.Close()
		return nil, fmt.Errorf("kafka brokers %v%s unreachable: %w", cfg.Brokers, security(cfg.Security), err)
	}
	return &Resender{cl: cl}, nil
}

// Resend produces recs, each to its own Topic, and waits for every
// acknowledgement, returning the first failure.
func (r *Resender) Resend(ctx context.Context, recs []*kgo.Record) error {
	return r.cl.ProduceSync(ctx, recs...).FirstErr()
}

// Close closes the client.
func (r *Resender) Close() { r.cl.Close() }
