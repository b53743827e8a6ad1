package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/consumer"
	"github.com/sluice-dev/sluice/schema"
)

// runReplay moves a consumer group's committed offsets, so that its members
// apply part of the topic again once they start. Kafka accepts such a commit
// only while the group has no members, and so does replay: it refuses while
// any member is live.
func runReplay(ctx context.Context, args []string) error {
	c := newCommand("replay")
	c.kafka()
	c.fs.StringVar(&c.o.group, "group", "", "consumer group whose committed offsets are moved (required)")
	toEarliest := c.fs.Bool("to-earliest", false, "move every partition to its first retained record: the group applies the whole topic again")
	toTime := c.fs.String("to-time", "", `move every partition to its first record PRODUCED at or after this time (the Kafka record timestamp, not the event's timestamp column): "2006-01-02 15:04:05" in --tz, or RFC 3339`)
	toOffset := c.fs.String("to-offset", "", "move the listed partitions to these offsets, P:O[,P:O…]; the other partitions keep theirs")
	c.fs.StringVar(&c.o.tz, "tz", "UTC", "time zone of a --to-time without one")
	dryRun := c.fs.Bool("dry-run", false, "print the offsets before and after, and commit nothing")
	tf := c.configuredTables("replay only these configured tables' topics")
	c.logging()
	if err := parseOrHelp(c, args); err != nil {
		return err
	}
	if c.o.group == "" {
		return usagef("--group is required (or %s): the consumer group to move", envName("group"))
	}
	target, err := parseReplayTarget(*toEarliest, *toTime, *toOffset, c.o.tz, time.Now())
	if err != nil {
		return err
	}
	log, err := newLogger(c.o, "replay", newRunID())
	if err != nil {
		return err
	}
	topics := []string{c.o.topic}
	if tf.path != "" || len(tf.names) > 0 {
		tables, err := tf.pick(ctx, c)
		if err != nil {
			return err
		}
		topics = topics[:0]
		for _, t := range tables {
			topics = append(topics, t.Topic)
		}
	}
	log = log.With("group", c.o.group, "topics", strings.Join(topics, ","))

	cl, err := kgo.NewClient(c.o.kafkaClient()...)
	if err != nil {
		return usagef("--brokers %q: %v", c.o.brokers, err)
	}
	defer cl.Close()
	pctx, cancel := context.WithTimeout(ctx, c.o.kafkaTimeout)
	err = cl.Ping(pctx)
	cancel()
	if err != nil {
		return fmt.Errorf("--brokers %s%s unreachable: %w", c.o.brokers, securityNote(c.o.kafkaDesc), err)
	}
	adm := kadm.NewClient(cl)

	plans, err := consumer.PlanReplayTopics(ctx, adm, c.o.group, topics, target)
	if errors.Is(err, consumer.ErrReplayTarget) {
		return usageError{err}
	}
	if err != nil {
		return err
	}
	for _, plan := range plans {
		plan.Print(os.Stdout)
	}
	if *dryRun {
		fmt.Println("dry run: nothing committed")
		return nil
	}
	for _, plan := range plans {
		n, err := plan.Commit(ctx, adm)
		if err != nil {
			log.Error("replay failed", "to", target.Desc, "topic", plan.Topic, "err", err)
			return err
		}
		log.Info("replay committed", "to", target.Desc, "topic", plan.Topic, "partitions", n, "records_to_apply", plan.Total(consumer.ReplayPartition.ToApply),
			"records_applied_again", plan.Total(consumer.ReplayPartition.Again), "records_skipped", plan.Total(consumer.ReplayPartition.Skipped))
		fmt.Printf("committed: group %s starts at the new offsets on %d partitions of %s\n", c.o.group, n, plan.Topic)
	}
	return nil
}

// tableFlags are --config and --table of the commands that act on some of
// the configured tables' topics (replay, dlq).
type tableFlags struct {
	path  string
	names tableNames
}

// tableNames is a repeatable --table: each value one name or a
// comma-separated list.
type tableNames []string

func (n *tableNames) String() string { return strings.Join(*n, ",") }

func (n *tableNames) Set(v string) error {
	for _, s := range splitList(v) {
		if !slices.Contains(*n, s) {
			*n = append(*n, s)
		}
	}
	return nil
}

// configuredTables registers --config and --table, and the DSN flags that
// resolving the tables (their topics) needs.
func (c *command) configuredTables(what string) *tableFlags {
	f := &tableFlags{}
	c.fs.StringVar(&f.path, "config", "", "the configuration file (YAML) declaring the tables: act on their topics instead of --topic")
	c.fs.Var(&f.names, "table", "with --config: "+what+", named by their source (db.table, or table when unambiguous); repeat it or give a comma-separated list (default: every configured table)")
	c.source()
	c.target()
	return f
}

// pick resolves the configured tables and returns those --table names, in
// configuration order, or all of them.
func (f *tableFlags) pick(ctx context.Context, c *command) ([]*schema.Table, error) {
	if len(f.names) > 0 && f.path == "" {
		return nil, usagef("--table %s: needs --config, which declares the tables", f.names.String())
	}
	cf, err := openConfigured(ctx, c, f.path)
	if err != nil {
		return nil, err
	}
	defer cf.close()
	all, err := cf.resolve(ctx, false)
	if err != nil {
		return nil, err
	}
	if len(f.names) == 0 {
		return all, nil
	}
	picked := map[*schema.Table]bool{}
	for _, name := range f.names {
		ts, err := pickTables(all, name, cf.desc())
		if err != nil {
			return nil, err
		}
		picked[ts[0]] = true
	}
	out := make([]*schema.Table, 0, len(picked))
	for _, t := range all {
		if picked[t] {
			out = append(out, t)
		}
	}
	return out, nil
}

// parseReplayTarget checks that exactly one target is given and parses it.
func parseReplayTarget(earliest bool, toTime, toOffset, tz string, now time.Time) (consumer.ReplayTarget, error) {
	var t consumer.ReplayTarget
	var given []string
	if earliest {
		given = append(given, "--to-earliest")
	}
	if toTime != "" {
		given = append(given, "--to-time")
	}
	if toOffset != "" {
		given = append(given, "--to-offset")
	}
	if len(given) != 1 {
		got := "none"
		if len(given) > 1 {
			got = strings.Join(given, ", ")
		}
		return t, usagef("give exactly one of --to-earliest, --to-time or --to-offset (got %s)", got)
	}
	switch {
	case earliest:
		t.Earliest, t.Desc = true, "earliest"
	case toTime != "":
		loc, err := time.LoadLocation(tz)
		if err != nil {
			return t, usagef("--tz %q: %v", tz, err)
		}
		wall, err := parseTime("--to-time", toTime, loc)
		if err != nil {
			return t, err
		}
		// parseTime returns a wall clock labelled UTC; here it is an instant in --tz.
		t.At = time.Date(wall.Year(), wall.Month(), wall.Day(), wall.Hour(), wall.Minute(), wall.Second(), wall.Nanosecond(), loc)
		if t.At.After(now) {
			return t, usagef("--to-time %s (%s) is in the future: it would move every partition to its end, skipping what the group has not applied (check --tz, now %s)",
				toTime, t.At.Format(time.RFC3339), now.In(loc).Format(time.RFC3339))
		}
		t.Desc = "time " + t.At.Format(time.RFC3339Nano) + " (record timestamps)"
	default:
		t.Offsets, t.Pairs = map[int32]int64{}, map[int32]string{}
		for _, pair := range splitList(toOffset) {
			ps, os, ok := strings.Cut(pair, ":")
			p, perr := strconv.ParseInt(strings.TrimSpace(ps), 10, 32)
			o, oerr := strconv.ParseInt(strings.TrimSpace(os), 10, 64)
			switch {
			case !ok || perr != nil || oerr != nil:
				return t, usagef("--to-offset pair %q: want partition:offset, e.g. 3:1200", pair)
			case p < 0:
				return t, usagef("--to-offset pair %q: partition %d is negative", pair, p)
			case o < 0:
				return t, usagef("--to-offset pair %q: offset %d is negative", pair, o)
			}
			if prev, dup := t.Pairs[int32(p)]; dup {
				return t, usagef("--to-offset pair %q: partition %d is already given by %q", pair, p, prev)
			}
			t.Offsets[int32(p)], t.Pairs[int32(p)] = o, pair
		}
		if len(t.Offsets) == 0 {
			return t, usagef("--to-offset %q: no partition:offset pair", toOffset)
		}
		t.Desc = "offsets " + toOffset
	}
	return t, nil
}
