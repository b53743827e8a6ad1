package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

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
			fmt.Println("usage: sluice dlq inspect [--topic T] [-n N] | sluice dlq inspect --config FILE [--group G] [--table db.table …] [-n N]\n" +
				"       sluice dlq redrive [--topic T] [--group G] | sluice dlq redrive --config FILE [--group G] [--table db.table …]\n\n" + summaryOf("dlq"))
			return nil
		}
		return usagef("dlq: say inspect or redrive (sluice dlq inspect | sluice dlq redrive)")
	}
	if args[0] == "inspect" {
		if configuredDLQ(args[1:]) {
			return inspectConfigured(ctx, args[1:])
		}
		return runPeekTopic(ctx, "dlq inspect", args[1:], func(topic string) string { return topic + ".dlq" })
	}
	c := newCommand("dlq redrive")
	c.kafka()
	c.fs.StringVar(&c.o.group, "group", "sluice", "the consumer group whose dead letters these are; the re-drive commits as <group>.dlq-redrive (with --config, <group>.dlq-redrive.<db.table>, one for each table)")
	tf := c.configuredTables("re-drive only the dead letters of these configured tables")
	if err := parseOrHelp(c, args[1:]); err != nil {
		return err
	}
	if tf.path != "" || len(tf.names) > 0 {
		return redriveConfigured(ctx, c, tf)
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

// configuredDLQ says whether dlq inspect acts on configured tables: --config
// or --table among args, or in the environment.
func configuredDLQ(args []string) bool {
	for _, a := range args {
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if strings.HasPrefix(a, "-") && (name == "config" || name == "table") {
			return true
		}
	}
	_, cfg := os.LookupEnv(envName("config"))
	_, table := os.LookupEnv(envName("table"))
	return cfg || table
}

// inspectConfigured is dlq inspect --config: the dead letters of the
// table-driven group's dead-letter topic (<group>.dlq), those of the tables
// --table names only, one JSON line each, as peek prints records.
func inspectConfigured(ctx context.Context, args []string) error {
	c := newCommand("dlq inspect")
	c.kafka()
	c.fs.StringVar(&c.o.group, "group", "sluice", "the consumer group whose dead letters these are: its dead-letter topic is <group>.dlq")
	n := c.fs.Int("n", 5, "dead letters to print")
	idle := c.fs.Duration("idle", 3*time.Second, "stop after this long without a record")
	tf := c.configuredTables("only the dead letters of these configured tables")
	if err := parseOrHelp(c, args); err != nil {
		return err
	}
	tables, err := tf.pick(ctx, c)
	if err != nil {
		return err
	}
	cfg := consumer.InspectConfig{Brokers: splitList(c.o.brokers), Conn: c.o.kafkaOpts, Security: c.o.kafkaDesc,
		DLQTopic: c.o.group + ".dlq", DialTimeout: c.o.kafkaTimeout, Limit: *n, Idle: *idle}
	if len(tf.names) > 0 {
		for _, t := range tables {
			cfg.Topics = append(cfg.Topics, t.Topic)
		}
	}
	enc := json.NewEncoder(os.Stdout)
	_, err = consumer.Inspect(ctx, cfg, func(r *kgo.Record) error { return encodeRecord(enc, r) })
	if err != nil {
		return fmt.Errorf("dlq inspect %s: %w", cfg.DLQTopic, err)
	}
	return nil
}

// redriveConfigured is dlq redrive --config: the dead letters of each
// table --table names (every configured table by default) go back to the
// table's topic, one table after the other. Each table's re-drive is its
// own group, <group>.dlq-redrive.<db.table>, which commits past the other
// tables' dead letters without sending them: they wait for their own
// table's re-drive.
func redriveConfigured(ctx context.Context, c *command, tf *tableFlags) error {
	tables, err := tf.pick(ctx, c)
	if err != nil {
		return err
	}
	dlq := c.o.group + ".dlq"
	rs, err := producer.NewResender(ctx, producer.DeadLetterConfig{Brokers: splitList(c.o.brokers), Conn: c.o.kafkaOpts, Security: c.o.kafkaDesc,
		Topic: dlq, DialTimeout: c.o.kafkaTimeout})
	if err != nil {
		return fmt.Errorf("re-drive %s after 0 records: %w", dlq, err)
	}
	defer rs.Close()
	refs := 0
	for _, t := range tables {
		cfg := consumer.RedriveConfig{
			Brokers:     splitList(c.o.brokers),
			Conn:        c.o.kafkaOpts,
			Security:    c.o.kafkaDesc,
			DLQTopic:    dlq,
			Topics:      []string{t.Topic},
			Group:       c.o.group + ".dlq-redrive." + t.Source.String(),
			DialTimeout: c.o.kafkaTimeout,
			Resend:      rs,
			Skipped: func(_ *kgo.Record, why string) {
				fmt.Fprintf(os.Stderr, "dlq redrive: table %s: skipped: %s\n", t.Source, why)
			},
		}
		res, err := consumer.Redrive(ctx, cfg)
		if err != nil {
			return fmt.Errorf("re-drive of table %s from %s after %d records: %w", t.Source, dlq, res.Redriven, err)
		}
		fmt.Printf("dlq redrive: table %s: %d records from %s back to %s (group %s)", t.Source, res.Redriven, dlq, t.Topic, cfg.Group)
		if n := res.Skipped(); n > 0 {
			fmt.Printf("; %d skipped: %d references, %d duplicates, %d without Sluice headers", n, res.References, res.Duplicates, res.Foreign)
		}
		fmt.Printf("; %d of other tables left\n", res.Other)
		refs += res.References
	}
	if refs > 0 {
		return fmt.Errorf("%w: %d reference dead letters of %s could not be re-driven (their values were too large for it; see the lines above)",
			errPartial, refs, dlq)
	}
	return nil
}
