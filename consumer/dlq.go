package consumer

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/schema"
)

// A record that cannot be applied goes to the dead-letter topic with its
// original key, value and headers, plus the schema.DLQHeader* headers saying
// why and where it came from. The batch goes on without it; its offset is
// committed with the batch, after the dead letter is acknowledged, so
// nothing is lost. The member decides and builds the dead letters; writing
// them (the dead-letter topic, its limit, references for letters too large
// for it) is the producer's, behind DeadLetters.

// DeadLetters writes a member's dead letters: cmd/sluice wires the
// producer's writer (producer.DeadLetterWriter), one per member.
type DeadLetters interface {
	// Send writes dead, waits for every acknowledgement and calls acked,
	// before it returns, for each dead letter the topic has (whole, or as a
	// reference when it is too large for the topic). An error names the
	// dead letter that could not be written; the ones acked before it are
	// safe.
	Send(ctx context.Context, dead []*kgo.Record, acked func(dl *kgo.Record)) error
}

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
		kgo.RecordHeader{Key: schema.DLQHeaderReason, Value: []byte(reason)},
		kgo.RecordHeader{Key: schema.DLQHeaderError, Value: []byte(cause.Error())},
		kgo.RecordHeader{Key: schema.DLQHeaderTopic, Value: []byte(r.Topic)},
		kgo.RecordHeader{Key: schema.DLQHeaderPartition, Value: strconv.AppendInt(nil, int64(r.Partition), 10)},
		kgo.RecordHeader{Key: schema.DLQHeaderOffset, Value: strconv.AppendInt(nil, r.Offset, 10)},
		kgo.RecordHeader{Key: schema.DLQHeaderGroup, Value: []byte(group)},
		kgo.RecordHeader{Key: schema.DLQHeaderTime, Value: now.UTC().AppendFormat(nil, time.RFC3339Nano)},
	)
	return &kgo.Record{Topic: dlqTopic, Key: r.Key, Value: r.Value, Headers: headers}
}

// letter builds the dead letter of record r for reason, its error naming
// r's coordinates and key, and counts it; nil when this member has had r's
// dead letter acknowledged already (r is back after an offset commit that
// failed, a lost session), which is not sent twice. Every dead letter a
// member makes is built here: those set aside as the batch is taken
// (setAside) and those its write finds, rows the target or a table's rule
// refuses (tablePath.apply).
func (c *Consumer) letter(r *kgo.Record, reason string, err error, now time.Time) *kgo.Record {
	if c.sent.has(r) {
		c.log.Info("consumer: record dead-lettered already by this member; not sent again", "record", fmt.Sprintf("%s/%d@%d", r.Topic, r.Partition, r.Offset))
		return nil
	}
	c.metrics.dlq.WithLabelValues(reason).Inc()
	err = &RecordError{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Key: r.Key, Err: err}
	return deadLetter(c.cfg.DeadLetterTopic(), c.cfg.Group, r, reason, err, now)
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

// sendDeadLetters writes the batch's dead letters through the producer's
// writer and waits for every acknowledgement: their offsets may only be
// committed once they are safe. Each acknowledged dead letter is remembered
// until the batch's offsets are committed, so this member never sends it
// again, even when the records come back to it after a failed commit. A
// failure stops the member, naming the record, with the acknowledged ones
// still remembered.
func (c *Consumer) sendDeadLetters(ctx context.Context, recs []*kgo.Record) error {
	if len(recs) == 0 {
		return nil
	}
	return c.cfg.DeadLetters.Send(ctx, recs, c.sent.add)
}

// coordinates is "topic/partition@offset" of the record a dead letter is for.
func coordinates(dl *kgo.Record) string {
	orig, _ := Header(dl, schema.DLQHeaderTopic)
	part, _ := Header(dl, schema.DLQHeaderPartition)
	off, _ := Header(dl, schema.DLQHeaderOffset)
	return orig + "/" + part + "@" + off
}

// IsReference reports whether dead letter r is a reference: its value is
// only the first bytes of the record's.
func IsReference(r *kgo.Record) bool {
	_, ok := Header(r, schema.DLQHeaderReference)
	return ok
}

// recordPos is a record's place in its topic.
type recordPos struct {
	topic     string
	partition int32
	offset    int64
}

// sentSet holds the source records whose dead letters this member has had
// acknowledged but whose offsets are not committed yet. It is used by the
// Run goroutine alone. An entry goes when a commit of this member covers it;
// entries of a partition lost between the two stay (the partition may come
// back), at most a batch of them for each lost session.
type sentSet map[recordPos]struct{}

// add remembers the record dead letter dl is for.
func (s sentSet) add(dl *kgo.Record) {
	if p, ok := sourcePos(dl); ok {
		s[p] = struct{}{}
	}
}

// hasFor reports whether the record dead letter dl is for is in the set.
func (s sentSet) hasFor(dl *kgo.Record) bool {
	p, ok := sourcePos(dl)
	_, in := s[p]
	return ok && in
}

// sourcePos is where the record dead letter dl is for came from, by its
// headers.
func sourcePos(dl *kgo.Record) (recordPos, bool) {
	topic, _ := Header(dl, schema.DLQHeaderTopic)
	part, _ := Header(dl, schema.DLQHeaderPartition)
	off, _ := Header(dl, schema.DLQHeaderOffset)
	p, err1 := strconv.ParseInt(part, 10, 32)
	o, err2 := strconv.ParseInt(off, 10, 64)
	return recordPos{topic, int32(p), o}, err1 == nil && err2 == nil
}

// has reports whether record r's dead letter was acknowledged already.
func (s sentSet) has(r *kgo.Record) bool {
	if len(s) == 0 {
		return false
	}
	_, ok := s[recordPos{r.Topic, r.Partition, r.Offset}]
	return ok
}

// committed forgets the records below the committed offsets.
func (s sentSet) committed(offsets map[string]map[int32]kgo.EpochOffset) {
	for p := range s {
		if o, ok := offsets[p.topic][p.partition]; ok && p.offset < o.Offset {
			delete(s, p)
		}
	}
}

// security renders a connection's Security for an error: " (…)", or "".
func security(s string) string {
	if s == "" {
		return ""
	}
	return " (" + s + ")"
}
