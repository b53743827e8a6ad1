package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// runPeek prints the first records of the topic, one JSON line each, with
// their coordinates. It joins no group and commits nothing.
func runPeek(ctx context.Context, args []string) error {
	return runPeekTopic(ctx, "peek", args, func(topic string) string { return topic })
}

// runPeekTopic is peek on the topic that topicOf derives from --topic.
func runPeekTopic(ctx context.Context, name string, args []string, topicOf func(string) string) error {
	c := newCommand(name)
	c.kafka()
	n := c.fs.Int("n", 5, "records to print")
	part := c.fs.Int("partition", -1, "only this partition (-1: all)")
	idle := c.fs.Duration("idle", 3*time.Second, "stop after this long without a record")
	if err := parseOrHelp(c, args); err != nil {
		return err
	}
	c.o.topic = topicOf(c.o.topic)
	opts := c.o.kafkaClient()
	if *part >= 0 {
		opts = append(opts, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{c.o.topic: {int32(*part): kgo.NewOffset().AtStart()}}))
	} else {
		opts = append(opts, kgo.ConsumeTopics(c.o.topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("kafka client for %s: %w", c.o.brokers, err)
	}
	defer cl.Close()
	pctx, cancel := context.WithTimeout(ctx, c.o.kafkaTimeout)
	defer cancel()
	if err := cl.Ping(pctx); err != nil {
		return fmt.Errorf("--brokers %s%s unreachable: %w", c.o.brokers, securityNote(c.o.kafkaDesc), err)
	}
	enc := json.NewEncoder(os.Stdout)
	for printed := 0; printed < *n; {
		fctx, cancel := context.WithTimeout(ctx, *idle)
		fetches := cl.PollRecords(fctx, *n-printed)
		cancel()
		if ctx.Err() != nil || fetches.Empty() {
			return nil
		}
		for _, fe := range fetches.Errors() {
			if fctx.Err() == nil {
				return fmt.Errorf("fetch %s/%d: %w", fe.Topic, fe.Partition, fe.Err)
			}
		}
		for _, r := range fetches.Records() {
			if err := encodeRecord(enc, r); err != nil {
				return err
			}
			printed++
		}
	}
	return nil
}

// encodeRecord writes r as one JSON line: its coordinates, its headers and
// its key and value (as JSON where they are, else as strings). peek and
// dlq inspect print records this way.
func encodeRecord(enc *json.Encoder, r *kgo.Record) error {
	headers := map[string]string{}
	for _, h := range r.Headers {
		headers[h.Key] = string(h.Value)
	}
	return enc.Encode(struct {
		Topic     string            `json:"topic"`
		Partition int32             `json:"partition"`
		Offset    int64             `json:"offset"`
		Headers   map[string]string `json:"headers,omitempty"`
		Key       json.RawMessage   `json:"key"`
		Value     json.RawMessage   `json:"value"`
	}{r.Topic, r.Partition, r.Offset, headers, rawOrString(r.Key), rawOrString(r.Value)})
}

// rawOrString keeps JSON as it is and quotes anything else.
func rawOrString(b []byte) json.RawMessage {
	if len(b) == 0 {
		return json.RawMessage("null")
	}
	if json.Valid(b) {
		return b
	}
	q, _ := json.Marshal(string(b))
	return q
}
