package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/sluice-dev/sluice/consumer"
)

// errPartial marks a run that completed but sent records to the dead-letter
// topic: exit status 4, so a scheduler can tell it from success and failure.
var errPartial = errors.New("completed with dead-lettered records")

// runDLQ inspects or re-drives the dead-letter topic.
func runDLQ(ctx context.Context, args []string) error {
	if len(args) == 0 || (args[0] != "inspect" && args[0] != "redrive") {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			fmt.Println("usage: sluice dlq inspect [--topic T] [-n N] | sluice dlq redrive [--topic T] [--group G]\n\n" + summaryOf("dlq"))
			return nil
		}
		return usagef("dlq: say inspect or redrive (sluice dlq inspect | sluice dlq redrive)")
	}
	if args[0] == "inspect" {
		return runPeekTopic(ctx, "dlq inspect", args[1:], func(topic string) string { return topic + ".dlq" })
	}
	c := newCommand("dlq redrive")
	c.kafka()
	c.fs.StringVar(&c.o.group, "group", "sluice", "the consumer group whose dead letters these are; the re-drive commits as <group>.dlq-redrive")
	if err := parseOrHelp(c, args[1:]); err != nil {
		return err
	}
	cfg := consumer.RedriveConfig{
		Brokers:     splitList(c.o.brokers),
		DLQTopic:    c.o.topic + ".dlq",
		Group:       c.o.group + ".dlq-redrive",
		DialTimeout: c.o.kafkaTimeout,
	}
	n, err := consumer.Redrive(ctx, cfg)
	if err != nil {
		return fmt.Errorf("re-drive %s after %d records: %w", cfg.DLQTopic, n, err)
	}
	fmt.Printf("dlq redrive: %d records from %s back to their topic (group %s)\n", n, cfg.DLQTopic, cfg.Group)
	return nil
}
