package consumer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
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

// A dead letter too large for the dead-letter topic (the broker answers
// MESSAGE_TOO_LARGE, or it is over the producer's batch limit) is sent as a
// reference instead, so that the dead-letter topic never stops the member:
// the same headers, and these, with the value's first ReferenceHeadBytes
// bytes as its value. A reference cannot be re-driven (there is no value to
// send back); the record itself is still at its coordinates in the source
// topic, within retention.
const (
	// HeaderReference marks a reference and says why the value is not kept.
	HeaderReference = "sluice.dlq.reference"
	HeaderValueSize = "sluice.dlq.value.size"   // the value's length in bytes
	HeaderValueHash = "sluice.dlq.value.sha256" // the value's SHA-256, hex
	// HeaderKeySize is set when the key, too, was cut to its first
	// ReferenceHeadBytes bytes.
	HeaderKeySize = "sluice.dlq.key.size"
	// HeaderHeadersDropped counts original headers left out of a reference
	// because together they were over referenceHeaderBytes.
	HeaderHeadersDropped = "sluice.dlq.headers.dropped"
)

// ReferenceHeadBytes is how much of the value (and of an over-long key) a
// reference keeps: enough to recognise the record, small enough that a
// reference fits any dead-letter topic set up with a sane max.message.bytes.
const ReferenceHeadBytes = 1 << 10

// referenceHeaderBytes bounds the original headers a reference keeps, and
// referenceErrorBytes its sluice.dlq.error, so that a reference is at most
// about 24 KiB whatever the record carried.
const referenceHeaderBytes, referenceErrorBytes = 16 << 10, 4 << 10

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
// A dead letter the dead-letter topic refuses as too large is tried alone
// (its batch-mates may have made the produce batch too large), and if it is
// refused alone, it is sent as a reference (reference). Each acknowledged
// dead letter is remembered until the batch's offsets are committed, so
// this member never sends it again, even when the records come back to it
// after a failed commit. Any other failure stops the member, naming the
// record, with the acknowledged ones still remembered.
func (c *Consumer) produceDeadLetters(ctx context.Context, recs []*kgo.Record) error {
	if len(recs) == 0 {
		return nil
	}
	var tooLarge []*kgo.Record
	var errTooLarge error
	for _, res := range c.cl.ProduceSync(ctx, recs...) {
		switch {
		case res.Err == nil:
			c.sent.add(res.Record)
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
			err = c.cl.ProduceSync(ctx, dl).FirstErr()
		}
		if isTooLarge(err) {
			ref := reference(dl, err)
			if rerr := c.cl.ProduceSync(ctx, ref).FirstErr(); rerr != nil {
				return deadLetterError(dl, fmt.Errorf("%w; and its reference (%d bytes of headers and value): %w", err, recordBytes(ref), rerr))
			}
			c.metrics.dlqReferences.Inc()
			why, _ := Header(ref, HeaderReference)
			c.log.Warn("consumer: dead letter too large for the dead-letter topic, sent as a reference", "record", coordinates(dl), "topic", dl.Topic, "why", why)
			err = nil
		}
		if err != nil {
			return deadLetterError(dl, err)
		}
		c.sent.add(dl)
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
	orig, _ := Header(dl, HeaderTopic)
	part, _ := Header(dl, HeaderPartition)
	off, _ := Header(dl, HeaderOffset)
	return orig + "/" + part + "@" + off
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

// reference is the dead letter to send in place of dl, which the
// dead-letter topic refused with err: dl's headers (the record's own ones up
// to referenceHeaderBytes, and all of Sluice's, the error cut to
// referenceErrorBytes), the value's size and SHA-256, and as its value the
// value's first ReferenceHeadBytes bytes. A key over ReferenceHeadBytes is
// cut to them too, with HeaderKeySize. The result is bounded, whatever dl
// carried.
func reference(dl *kgo.Record, err error) *kgo.Record {
	sum := sha256.Sum256(dl.Value)
	head := dl.Value[:min(len(dl.Value), ReferenceHeadBytes)]
	ref := &kgo.Record{Topic: dl.Topic, Key: dl.Key, Value: head, Headers: make([]kgo.RecordHeader, 0, len(dl.Headers)+5)}
	kept, dropped := 0, 0
	for _, h := range dl.Headers {
		switch {
		case h.Key == HeaderError:
			h.Value = cutUTF8(h.Value, referenceErrorBytes)
		case strings.HasPrefix(h.Key, "sluice.dlq."):
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
		add(HeaderKeySize, strconv.Itoa(len(dl.Key)))
	}
	if dropped > 0 {
		add(HeaderHeadersDropped, strconv.Itoa(dropped))
	}
	add(HeaderReference, fmt.Sprintf("the dead letter (%d bytes) is too large for %s: %v; the value here is the first %d of its %d bytes",
		recordBytes(dl), dl.Topic, err, len(head), len(dl.Value)))
	add(HeaderValueSize, strconv.Itoa(len(dl.Value)))
	add(HeaderValueHash, hex.EncodeToString(sum[:]))
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

// IsReference reports whether dead letter r is a reference: its value is
// only the first bytes of the record's.
func IsReference(r *kgo.Record) bool {
	_, ok := Header(r, HeaderReference)
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
	topic, _ := Header(dl, HeaderTopic)
	part, _ := Header(dl, HeaderPartition)
	off, _ := Header(dl, HeaderOffset)
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

// dlqBatchLimit returns the dead-letter topic's max.message.bytes, for the
// producer's batch limit, so that franz-go never builds a batch the broker
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

// security renders a connection's Security for an error: " (…)", or "".
func security(s string) string {
	if s == "" {
		return ""
	}
	return " (" + s + ")"
}
