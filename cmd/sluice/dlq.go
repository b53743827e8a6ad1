package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/consumer"
	"github.com/sluice-dev/sluice/producer"
)

// errPartial marks a run that completed but sent records to the dead-letter
// topic, or a re-drive that completed but could not send back reference
// dead letters: exit status 4, so a scheduler can tell it from success and
// failure.
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
		Conn:        c.o.kafkaOpts,
		Security:    c.o.kafkaDesc,
		DLQTopic:    c.o.topic + ".dlq",
		Group:       c.o.group + ".dlq-redrive",
		DialTimeout: c.o.kafkaTimeout,
		Skipped: func(_ *kgo.Record, why string) {
			fmt.Fprintf(os.Stderr, "dlq redrive: skipped: %s\n", why)
		},
	}
	rs, err := producer.NewResender(ctx, producer.DeadLetterConfig{Brokers: cfg.Brokers, Conn: cfg.Conn, Security: cfg.Security,
		Topic: cfg.DLQTopic, DialTimeout: cfg.DialTimeout})
	if err != nil {
		return fmt.Errorf("re-drive %s after 0 records: %w", cfg.DLQTopic, err)
	}
	defer rs.Close()
	cfg.Resend = rs
	res, err := consumer.Redrive(ctx, cfg)
	if err != nil {
		return fmt.Errorf("re-drive %s after %d records: %w", cfg.DLQTopic, res.Redriven, err)
	}
	fmt.Printf("dlq redrive: %d records from %s back to their topic (group %s)", res.Redriven, cfg.DLQTopic, cfg.Group)
	if n := res.Skipped(); n > 0 {
		fmt.Printf("; %d skipped: %d references, %d duplicates, %d without Sluice headers", n, res.References, res.Duplicates, res.Foreign)
	}
	fmt.Println()
	if res.References > 0 {
		// A reference's record needs a person: its value is not in the
		// dead-letter topic. Exit 4 so that a script does not take the
		// re-drive for complete.
		return fmt.Errorf("%w: %d reference dead letters of %s could not be re-driven (their values were too large for it; see the lines above)",
			errPartial, res.References, cfg.DLQTopic)
	}
	return nil
}
