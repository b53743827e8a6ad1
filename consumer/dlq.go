package consumer

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// A record that cannot be applied goes to the dead-letter topic with its
// original key, value and headers, plus these headers saying why and where
// it came from. The batch goes on without it; its offset is committed with
// the batch, after the dead letter is acknowledged, so nothing is lost.
const (
	HeaderReason    = "sluice.dlq.reason" // decode, validation
	HeaderError     = "sluice.dlq.error"
	HeaderTopic     = "sluice.dlq.topic"
	HeaderPartition = "sluice.dlq.partition"
	HeaderOffset    = "sluice.dlq.offset"
	HeaderGroup     = "sluice.dlq.group"
	HeaderTime      = "sluice.dlq.time"
)

// Reasons a record is dead-lettered.
const (
	ReasonDecode     = "decode"     // not a change event (schema.ErrMalformed)
	ReasonValidation = "validation" // a change event the target cannot hold
)

// deadLetter builds the dead-letter record for r.
func deadLetter(dlqTopic, group string, r *kgo.Record, reason string, cause error, now time.Time) *kgo.Record {
	headers := make([]kgo.RecordHeader, 0, len(r.Headers)+7)
	headers = append(headers, r.Headers...)
	headers = append(headers,
		kgo.RecordHeader{Key: HeaderReason, Value: []byte(reason)},
		kgo.RecordHeader{Key: HeaderError, Value: []byte(cause.Error())},
		kgo.RecordHeader{Key: HeaderTopic, Value: []byte(r.Topic)},
		kgo.RecordHeader{Key: HeaderPartition, Value: strconv.AppendInt(nil, int64(r.Partition), 10)},
		kgo.RecordHeader{Key: HeaderOffset, Value: strconv.AppendInt(nil, r.Offset, 10)},
		kgo.RecordHeader{Key: HeaderGroup, Value: []byte(group)},
		kgo.RecordHeader{Key: HeaderTime, Value: now.UTC().AppendFormat(nil, time.RFC3339Nano)},
	)
	return &kgo.Record{Topic: dlqTopic, Key: r.Key, Value: r.Value, Headers: headers}
}

// Header returns the value of the last header named key, and whether it is
// there.
func Header(r *kgo.Record, key string) (string, bool) {
	for i := len(r.Headers) - 1; i >= 0; i-- {
		if r.Headers[i].Key == key {
			return string(r.Headers[i].Value), true
		}
	}
	return "", false
}

// ensureTopic creates topic with partitions when missing.
func ensureTopic(ctx context.Context, cl *kgo.Client, topic string, partitions int32) error {
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, partitions, -1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("kafka: create dead-letter topic %s: %w", topic, err)
	}
	return nil
}

// produceDeadLetters writes the batch's dead letters and waits for every
// acknowledgement: their offsets may only be committed once they are safe.
func (c *Consumer) produceDeadLetters(ctx context.Context, recs []*kgo.Record) error {
	if len(recs) == 0 {
		return nil
	}
	results := c.cl.ProduceSync(ctx, recs...)
	for _, res := range results {
		if res.Err != nil {
			orig, _ := Header(res.Record, HeaderTopic)
			part, _ := Header(res.Record, HeaderPartition)
			off, _ := Header(res.Record, HeaderOffset)
			return fmt.Errorf("dead-letter record %s/%s@%s to %s: %w", orig, part, off, res.Record.Topic, res.Err)
		}
	}
	return nil
}

// RedriveConfig says which dead-letter topic to re-drive and as which group.
type RedriveConfig struct {
	Brokers     []string
	DLQTopic    string
	Group       string        // the re-drive's own group: its commits make a re-drive resumable
	DialTimeout time.Duration // how long to wait for the brokers at start
}

// Redrive produces every dead letter present when it starts back to the
// topic it came from (its HeaderTopic), with its original key, value and
// headers, once the cause is fixed. The group's offsets on the dead-letter
// topic are committed only after the re-produced records are acknowledged,
// so an interrupted re-drive resumes where it stopped. Records that fail
// again come back to the dead-letter topic after it ends, not into this
// re-drive. It returns how many records it re-drove.
func Redrive(ctx context.Context, cfg RedriveConfig) (int, error) {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(cfg.DLQTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.DialTimeout(cfg.DialTimeout),
		kgo.RequiredAcks(kgo.AllISRAcks()),
	)
	if err != nil {
		return 0, fmt.Errorf("kafka client for %v: %w", cfg.Brokers, err)
	}
	defer cl.Close()
	pctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
	defer cancel()
	if err := cl.Ping(pctx); err != nil {
		return 0, fmt.Errorf("kafka brokers %v unreachable: %w", cfg.Brokers, err)
	}
	adm := kadm.NewClient(cl)
	ends, err := EndOffsets(ctx, adm, cfg.DLQTopic)
	if err != nil {
		return 0, err
	}
	n := 0
	for {
		behind, err := Behind(ctx, adm, cfg.Group, cfg.DLQTopic, ends)
		if err != nil {
			return n, err
		}
		if len(behind) == 0 {
			return n, nil
		}
		fctx, cancel := context.WithTimeout(ctx, time.Second)
		fetches := cl.PollFetches(fctx)
		cancel()
		if ctx.Err() != nil {
			return n, ctx.Err()
		}
		for _, fe := range fetches.Errors() {
			if !errors.Is(fe.Err, context.DeadlineExceeded) {
				return n, fmt.Errorf("fetch %s/%d: %w", fe.Topic, fe.Partition, fe.Err)
			}
		}
		var out, done []*kgo.Record
		fetches.EachRecord(func(r *kgo.Record) {
			if r.Offset >= ends[r.Partition] {
				return // dead-lettered after the re-drive began
			}
			done = append(done, r)
			to, ok := Header(r, HeaderTopic)
			if !ok {
				return // not a Sluice dead letter: nothing says where it belongs
			}
			headers := make([]kgo.RecordHeader, 0, len(r.Headers))
			for _, h := range r.Headers {
				if !strings.HasPrefix(h.Key, "sluice.dlq.") {
					headers = append(headers, h)
				}
			}
			out = append(out, &kgo.Record{Topic: to, Key: r.Key, Value: r.Value, Headers: headers})
		})
		if err := cl.ProduceSync(ctx, out...).FirstErr(); err != nil {
			return n, fmt.Errorf("re-drive to the original topic: %w", err)
		}
		if err := cl.CommitRecords(ctx, done...); err != nil {
			return n, fmt.Errorf("commit re-drive offsets of group %s: %w", cfg.Group, err)
		}
		n += len(out)
	}
}
