package producer

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// StateTopic names the topic that keeps Sluice's small durable state for a
// data topic: <topic>.progress.
func StateTopic(topic string) string { return topic + ".progress" }

// State is a small key-value store kept in a compacted, single-partition
// Kafka topic next to the data topic (StateTopic). Sluice keeps there what a
// new process must know of the previous one: a backfill's acknowledged id
// ranges, so an interrupted run resumes, and a job's last outcome, so the
// first success after a failure can be announced as a recovery. Kafka is
// the one system every Sluice process already writes to (the source user
// has only SELECT), and the nightly job is a new container each night, so
// a local file would not survive.
//
// A value is the last record of its key; an empty value (a tombstone)
// deletes the key. Compaction keeps the topic small, but Get does not rely
// on it: it reads the partition to its end and keeps the last value per
// key. Writes are synchronous, acks=all.
type State struct {
	cl      *kgo.Client
	topic   string
	brokers []string
	timeout time.Duration
	conn    []kgo.Opt // the connection's TLS and SASL, for the reader
}

// OpenState connects to the brokers of cfg and creates its state topic
// (cfg.StateTopic, or the state topic of cfg.Topic) when it is missing: one partition (one order for all keys),
// cleanup.policy=compact, the replication factor of cfg.
func OpenState(ctx context.Context, cfg Config, log *slog.Logger) (*State, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	topic := cfg.StateTopic
	if topic == "" {
		topic = StateTopic(cfg.Topic)
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ClientID(cfg.ClientID + "-state"),
		kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(0),
		kgo.RecordDeliveryTimeout(cfg.DeliveryTimeout),
		kgo.DialTimeout(cfg.DialTimeout),
	}, cfg.Conn...)...)
	if err != nil {
		return nil, fmt.Errorf("kafka client for %v: %w", cfg.Brokers, err)
	}
	s := &State{cl: cl, topic: topic, brokers: cfg.Brokers, timeout: cfg.DialTimeout, conn: cfg.Conn}
	compact := "compact"
	if err := createTopic(ctx, cl, cfg, topic, 1, map[string]*string{"cleanup.policy": &compact}, log); err != nil {
		cl.Close()
		return nil, err
	}
	return s, nil
}

// Topic is the state topic's name.
func (s *State) Topic() string { return s.topic }

// Put sets key to value, or deletes key when value is empty (a tombstone).
// It returns once Kafka has acknowledged the record, or with ctx's error
// when ctx ends first. kgo's ProduceSync does not return on ctx alone: an
// idempotent producer may not fail a record once its request was sent,
// whatever the record's context, so with the broker gone it waited for a
// response that never came (the final job-status write of a run whose
// broker was killed kept the process alive for minutes). A record left
// behind that way is failed by Close.
func (s *State) Put(ctx context.Context, key string, value []byte) error {
	if len(value) == 0 {
		value = nil
	}
	done := make(chan error, 1)
	s.cl.Produce(ctx, &kgo.Record{Key: []byte(key), Value: value}, func(_ *kgo.Record, err error) { done <- err })
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		return fmt.Errorf("kafka: write state %s key %s: %w", s.topic, key, err)
	}
	return nil
}

// Get returns the value of key and whether it is set. It reads the state
// topic from its start to its current end, within the dial timeout.
func (s *State) Get(ctx context.Context, key string) ([]byte, bool, error) {
	k := []byte(key)
	var value []byte
	err := s.scan(ctx, func(rk []byte) bool { return bytes.Equal(rk, k) }, func(_ string, v []byte) { value = v })
	if err != nil || len(value) == 0 {
		return nil, false, err
	}
	return value, true, nil
}

// GetPrefix returns the set keys that start with prefix, with their values,
// read as Get reads.
func (s *State) GetPrefix(ctx context.Context, prefix string) (map[string][]byte, error) {
	p := []byte(prefix)
	out := map[string][]byte{}
	err := s.scan(ctx, func(rk []byte) bool { return bytes.HasPrefix(rk, p) }, func(k string, v []byte) {
		if len(v) == 0 {
			delete(out, k)
			return
		}
		out[k] = v
	})
	return out, err
}

// scan reads the state topic from its start to its current end and hands
// each committed record whose key matches to found, in offset order.
func (s *State) scan(ctx context.Context, match func(key []byte) bool, found func(key string, value []byte)) error {
	ctx, cancel := context.WithTimeout(ctx, max(s.timeout, time.Second))
	defer cancel()
	adm := kadm.NewClient(s.cl)
	starts, err := adm.ListStartOffsets(ctx, s.topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return fmt.Errorf("kafka: start offset of %s: %w", s.topic, err)
	}
	// The tail writes its position in Kafka transactions: read committed
	// records only, up to the last stable offset, with the transaction
	// markers kept so that the offset before the end is always seen.
	ends, err := adm.ListCommittedOffsets(ctx, s.topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return fmt.Errorf("kafka: end offset of %s: %w", s.topic, err)
	}
	so, _ := starts.Lookup(s.topic, 0)
	eo, ok := ends.Lookup(s.topic, 0)
	if !ok {
		return fmt.Errorf("kafka: state topic %s has no partition 0", s.topic)
	}
	if eo.Offset <= so.Offset {
		return nil
	}
	rd, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(s.brokers...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{s.topic: {0: kgo.NewOffset().AtStart()}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
		kgo.DialTimeout(s.timeout),
	}, s.conn...)...)
	if err != nil {
		return fmt.Errorf("kafka client for %v: %w", s.brokers, err)
	}
	defer rd.Close()
	// Compaction never removes the last record of a partition (it is in the
	// active segment), so the offset before the end is always read.
	for last := int64(-1); last < eo.Offset-1; {
		fs := rd.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("kafka: read state %s up to offset %d (at %d): %w", s.topic, eo.Offset, last+1, err)
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) {
			if ferr == nil {
				ferr = fmt.Errorf("kafka: read state %s/%d: %w", t, p, err)
			}
		})
		if ferr != nil {
			return ferr
		}
		fs.EachRecord(func(r *kgo.Record) {
			last = max(last, r.Offset)
			if r.Attrs.IsControl() || r.Offset >= eo.Offset || !match(r.Key) {
				return
			}
			found(string(r.Key), slices.Clone(r.Value))
		})
	}
	return nil
}

// Close closes the client.
func (s *State) Close() { s.cl.Close() }
