package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// replayTarget is where `sluice replay` moves a group: exactly one of
// earliest, a time, or explicit partition offsets.
type replayTarget struct {
	earliest bool
	at       time.Time       // --to-time, an instant compared with Kafka record timestamps
	offsets  map[int32]int64 // --to-offset; partitions not listed keep their commit
	pairs    map[int32]string
	desc     string
}

// replayRow is one partition of a replay plan. Offsets of -1 mean "no commit".
type replayRow struct {
	partition  int32
	before     int64
	after      int64
	start, end int64
	change     bool // after is committed
}

// from is where a member starts reading given committed offset at: with no
// commit, or a commit below the log start, it resets to the start
// (consumer.Config resets to the earliest offset).
func (r replayRow) from(at int64) int64 { return max(at, r.start) }

func (r replayRow) toApply() int64 { return max(0, r.end-r.from(r.after)) }

// again counts the records the group had applied that it applies again.
func (r replayRow) again() int64 { return max(0, r.from(r.before)-r.from(r.after)) }

// skipped counts the records the group had not applied yet that the replay
// moves past: they will not be applied.
func (r replayRow) skipped() int64 { return max(0, r.from(r.after)-r.from(r.before)) }

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
	log = log.With("group", c.o.group, "topic", c.o.topic)

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

	exists, err := groupIdle(ctx, adm, c.o.group)
	if err != nil {
		return err
	}
	rows, err := planReplay(ctx, adm, c.o.group, c.o.topic, target)
	if err != nil {
		return err
	}
	printReplay(os.Stdout, c.o.group, c.o.topic, target, rows, exists)
	if *dryRun {
		fmt.Println("dry run: nothing committed")
		return nil
	}
	n, err := commitReplay(ctx, adm, c.o.group, c.o.topic, rows)
	if err != nil {
		log.Error("replay failed", "to", target.desc, "err", err)
		return err
	}
	log.Info("replay committed", "to", target.desc, "partitions", n, "records_to_apply", total(rows, replayRow.toApply),
		"records_applied_again", total(rows, replayRow.again), "records_skipped", total(rows, replayRow.skipped))
	fmt.Printf("committed: group %s starts at the new offsets on %d partitions of %s\n", c.o.group, n, c.o.topic)
	return nil
}

// parseReplayTarget checks that exactly one target is given and parses it.
func parseReplayTarget(earliest bool, toTime, toOffset, tz string, now time.Time) (replayTarget, error) {
	var t replayTarget
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
		t.earliest, t.desc = true, "earliest"
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
		t.at = time.Date(wall.Year(), wall.Month(), wall.Day(), wall.Hour(), wall.Minute(), wall.Second(), wall.Nanosecond(), loc)
		if t.at.After(now) {
			return t, usagef("--to-time %s (%s) is in the future: it would move every partition to its end, skipping what the group has not applied (check --tz, now %s)",
				toTime, t.at.Format(time.RFC3339), now.In(loc).Format(time.RFC3339))
		}
		t.desc = "time " + t.at.Format(time.RFC3339Nano) + " (record timestamps)"
	default:
		t.offsets, t.pairs = map[int32]int64{}, map[int32]string{}
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
			if prev, dup := t.pairs[int32(p)]; dup {
				return t, usagef("--to-offset pair %q: partition %d is already given by %q", pair, p, prev)
			}
			t.offsets[int32(p)], t.pairs[int32(p)] = o, pair
		}
		if len(t.offsets) == 0 {
			return t, usagef("--to-offset %q: no partition:offset pair", toOffset)
		}
		t.desc = "offsets " + toOffset
	}
	return t, nil
}

// groupIdle returns an error naming the live members when group has any, and
// whether the group exists at all. A group that does not exist yet is idle:
// the commit creates it.
func groupIdle(ctx context.Context, adm *kadm.Client, group string) (exists bool, err error) {
	described, err := adm.DescribeGroups(ctx, group)
	if errors.Is(err, kerr.GroupIDNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("kafka: describe group %s: %w", group, err)
	}
	g, ok := described[group]
	switch {
	case !ok:
		return false, fmt.Errorf("kafka: describe group %s: the coordinator did not answer for it", group)
	case errors.Is(g.Err, kerr.GroupIDNotFound) || (g.Err == nil && g.State == "Dead"):
		return false, nil
	case g.Err != nil:
		return false, fmt.Errorf("kafka: describe group %s: %w", group, g.Err)
	}
	busy := g.State == "Stable" || g.State == "PreparingRebalance" || g.State == "CompletingRebalance"
	if len(g.Members) == 0 && !busy {
		return true, nil
	}
	members := make([]string, len(g.Members))
	for i, m := range g.Members {
		members[i] = m.ClientID + "@" + strings.TrimPrefix(m.ClientHost, "/")
	}
	return true, fmt.Errorf("group %s has %d live member(s) (state %s): %s; stop every consumer of the group (sluice consume, sluice run) and run replay again: offsets are moved only while the group is empty",
		group, len(g.Members), g.State, strings.Join(members, ", "))
}

// planReplay reads the topic's start and end offsets and the group's commits,
// and computes where each partition goes.
func planReplay(ctx context.Context, adm *kadm.Client, group, topic string, t replayTarget) ([]replayRow, error) {
	starts, err := listedOffsets(ctx, topic, "start", func() (kadm.ListedOffsets, error) { return adm.ListStartOffsets(ctx, topic) })
	if err != nil {
		return nil, err
	}
	ends, err := listedOffsets(ctx, topic, "end", func() (kadm.ListedOffsets, error) { return adm.ListEndOffsets(ctx, topic) })
	if err != nil {
		return nil, err
	}
	committed, err := adm.FetchOffsets(ctx, group)
	if err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
		return nil, fmt.Errorf("kafka: committed offsets of group %s: %w", group, err)
	}
	var at map[int32]int64
	switch {
	case t.earliest:
		at = starts
	case !t.at.IsZero():
		// A partition with no record at or after the time gets its end
		// offset (kadm asks again for those; -1 is handled here as well).
		if at, err = listedOffsets(ctx, topic, "by-time", func() (kadm.ListedOffsets, error) {
			return adm.ListOffsetsAfterMilli(ctx, t.at.UnixMilli(), topic)
		}); err != nil {
			return nil, err
		}
	default:
		at = t.offsets
		for p, o := range t.offsets {
			end, ok := ends[p]
			switch {
			case !ok:
				return nil, usagef("--to-offset pair %q: topic %s has no partition %d (it has %d partitions, 0-%d)", t.pairs[p], topic, p, len(ends), len(ends)-1)
			case o > end:
				return nil, usagef("--to-offset pair %q: offset %d is past the end of %s/%d (%d)", t.pairs[p], o, topic, p, end)
			case o < starts[p]:
				return nil, usagef("--to-offset pair %q: offset %d is before the first retained record of %s/%d (%d)", t.pairs[p], o, topic, p, starts[p])
			}
		}
	}
	rows := make([]replayRow, 0, len(ends))
	for p, end := range ends {
		r := replayRow{partition: p, before: -1, start: starts[p], end: end}
		if o, ok := committed.Lookup(topic, p); ok {
			if o.Err != nil {
				return nil, fmt.Errorf("kafka: committed offset of group %s for %s/%d: %w", group, topic, p, o.Err)
			}
			r.before = o.At
		}
		r.after = r.before
		if o, ok := at[p]; ok {
			if o < 0 {
				o = end
			}
			r.after, r.change = o, true
		}
		rows = append(rows, r)
	}
	slices.SortFunc(rows, func(a, b replayRow) int { return int(a.partition - b.partition) })
	return rows, nil
}

// listedOffsets turns a kadm listing of topic into partition -> offset,
// failing on a missing topic or on any partition's error.
func listedOffsets(ctx context.Context, topic, what string, list func() (kadm.ListedOffsets, error)) (map[int32]int64, error) {
	listed, err := list()
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		return nil, fmt.Errorf("kafka: %s offsets of %s: %w", what, topic, err)
	}
	if o, ok := listed.Lookup(topic, -1); ok && o.Err != nil {
		if errors.Is(o.Err, kerr.UnknownTopicOrPartition) {
			return nil, fmt.Errorf("topic %s does not exist (--topic)", topic)
		}
		return nil, fmt.Errorf("kafka: %s offsets of %s: %w", what, topic, o.Err)
	}
	out := map[int32]int64{}
	for p, o := range listed[topic] {
		if o.Err != nil {
			return nil, fmt.Errorf("kafka: %s offset of %s/%d: %w", what, topic, p, o.Err)
		}
		out[p] = o.Offset
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("topic %s does not exist (--topic)", topic)
	}
	return out, nil
}

func total(rows []replayRow, f func(replayRow) int64) int64 {
	var n int64
	for _, r := range rows {
		n += f(r)
	}
	return n
}

// printReplay writes the plan as a table, one line per partition.
func printReplay(w io.Writer, group, topic string, t replayTarget, rows []replayRow, exists bool) {
	fmt.Fprintf(w, "replay of group %s on %s to %s\n", group, topic, t.desc)
	if !exists {
		fmt.Fprintf(w, "group %s does not exist yet: the commit creates it\n", group)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "partition\tcommitted before\toffset after\tend offset\trecords to reprocess\t")
	off := func(o int64) string {
		if o < 0 {
			return "none"
		}
		return strconv.FormatInt(o, 10)
	}
	var notes []string
	for _, r := range rows {
		after := off(r.after)
		if !r.change {
			after += " (kept)"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%d\t\n", r.partition, off(r.before), after, r.end, r.toApply())
		if r.change && r.skipped() > 0 {
			notes = append(notes, fmt.Sprintf("warning: %s/%d moves forward: %d records the group has not applied are skipped",
				topic, r.partition, r.skipped()))
		}
	}
	_ = tw.Flush()
	for _, n := range notes {
		fmt.Fprintln(w, n)
	}
	fmt.Fprintf(w, "total: %d records to reprocess on %d partitions (%d of them applied before), %d skipped\n",
		total(rows, replayRow.toApply), len(rows), total(rows, replayRow.again), total(rows, replayRow.skipped))
}

// commitReplay commits the new offsets and checks every partition's answer:
// kadm reports a refused partition in the response, not in the error.
func commitReplay(ctx context.Context, adm *kadm.Client, group, topic string, rows []replayRow) (int, error) {
	offs := kadm.Offsets{}
	for _, r := range rows {
		if r.change {
			offs.Add(kadm.Offset{Topic: topic, Partition: r.partition, At: r.after, LeaderEpoch: -1})
		}
	}
	resp, err := adm.CommitOffsets(ctx, group, offs)
	if err != nil {
		return 0, fmt.Errorf("kafka: commit of group %s on %s: %w (it may or may not have happened: check with replay --dry-run)", group, topic, err)
	}
	var failed []string
	var joined bool
	ok := 0
	for _, r := range rows {
		if !r.change {
			continue
		}
		o, found := resp.Lookup(topic, r.partition)
		switch {
		case !found:
			failed = append(failed, fmt.Sprintf("%s/%d: no answer", topic, r.partition))
		case o.Err != nil:
			failed = append(failed, fmt.Sprintf("%s/%d: %v", topic, r.partition, o.Err))
			joined = joined || errors.Is(o.Err, kerr.UnknownMemberID) || errors.Is(o.Err, kerr.IllegalGeneration) ||
				errors.Is(o.Err, kerr.RebalanceInProgress)
		default:
			ok++
		}
	}
	if len(failed) > 0 {
		hint := ""
		if joined {
			hint = " (a consumer joined the group meanwhile: stop it and run replay again)"
		}
		return ok, fmt.Errorf("replay of group %s: commit failed for %d of %d partitions%s: %s; the other %d were committed",
			group, len(failed), len(failed)+ok, hint, strings.Join(failed, "; "), ok)
	}
	// Read the commits back, so that "committed" is what the group now holds.
	now, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return ok, fmt.Errorf("kafka: reading back the offsets of group %s: %w", group, err)
	}
	for _, r := range rows {
		if !r.change {
			continue
		}
		if o, found := now.Lookup(topic, r.partition); !found || o.Err != nil || o.At != r.after {
			return ok, fmt.Errorf("replay of group %s: %s/%d reads back as %d (err %v), want %d: did a consumer commit meanwhile?",
				group, topic, r.partition, o.At, o.Err, r.after)
		}
	}
	return ok, nil
}
