package consumer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// Replay moves a stopped group's committed offsets, so that its members
// apply part of the topic again once they start (`sluice replay`). Kafka
// accepts such a commit only while the group has no members, and so does
// PlanReplayTopics: it refuses while any member is live.

// ReplayTarget is where a replay moves a group: exactly one of Earliest, a
// time (At), or explicit partition offsets.
type ReplayTarget struct {
	Earliest bool
	At       time.Time       // an instant compared with Kafka record timestamps
	Offsets  map[int32]int64 // partitions not listed keep their commit
	Pairs    map[int32]string
	Desc     string
}

// ErrReplayTarget marks a target the topic cannot take (a partition it does
// not have, an offset outside what it keeps): the user's input, not Kafka's
// failure.
var ErrReplayTarget = errors.New("replay target")

// ReplayPartition is one partition of a replay plan. Offsets of -1 mean "no
// commit".
type ReplayPartition struct {
	Partition  int32
	Before     int64
	After      int64
	Start, End int64
	Change     bool // After is committed
}

// from is where a member starts reading given committed offset at: with no
// commit, or a commit below the log start, it resets to the start (Config
// resets to the earliest offset).
func (r ReplayPartition) from(at int64) int64 { return max(at, r.Start) }

// ToApply counts the records the group applies from the new offset.
func (r ReplayPartition) ToApply() int64 { return max(0, r.End-r.from(r.After)) }

// Again counts the records the group had applied that it applies again.
func (r ReplayPartition) Again() int64 { return max(0, r.from(r.Before)-r.from(r.After)) }

// Skipped counts the records the group had not applied yet that the replay
// moves past: they will not be applied.
func (r ReplayPartition) Skipped() int64 { return max(0, r.from(r.After)-r.from(r.Before)) }

// ReplayPlan is where each partition of a group's topic goes.
type ReplayPlan struct {
	Group, Topic string
	Target       ReplayTarget
	Exists       bool // the group exists (else the commit creates it)
	Partitions   []ReplayPartition
}

// Total sums f over the plan's partitions.
func (p *ReplayPlan) Total(f func(ReplayPartition) int64) int64 {
	var n int64
	for _, r := range p.Partitions {
		n += f(r)
	}
	return n
}

// PlanReplayTopics checks that group has no live member, then, for each of
// topics (the configured tables' topics a table-driven group reads), reads
// the topic's start and end offsets and the group's commits and computes
// where each partition goes: the group is checked once, and each topic gets
// a plan of its own; the group's commits on any other topic are not
// touched. Explicit offsets name partitions of one topic, so they are
// refused with more than one.
func PlanReplayTopics(ctx context.Context, adm *kadm.Client, group string, topics []string, t ReplayTarget) ([]*ReplayPlan, error) {
	if len(topics) == 0 {
		return nil, fmt.Errorf("%w: replay of group %s: no topic", ErrReplayTarget, group)
	}
	if t.Offsets != nil && len(topics) > 1 {
		return nil, fmt.Errorf("%w: --to-offset names partitions of one topic, and group %s is to move on %d (%s): name one table",
			ErrReplayTarget, group, len(topics), strings.Join(topics, ", "))
	}
	exists, err := groupIdle(ctx, adm, group)
	if err != nil {
		return nil, err
	}
	plans := make([]*ReplayPlan, 0, len(topics))
	for _, topic := range topics {
		rows, err := planReplay(ctx, adm, group, topic, t)
		if err != nil {
			return nil, err
		}
		plans = append(plans, &ReplayPlan{Group: group, Topic: topic, Target: t, Exists: exists, Partitions: rows})
	}
	return plans, nil
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
func planReplay(ctx context.Context, adm *kadm.Client, group, topic string, t ReplayTarget) ([]ReplayPartition, error) {
	starts, err := listedOffsets(ctx, topic, "start", func() (kadm.ListedOffsets, error) { return adm.ListStartOffsets(ctx, topic) })
	if err != nil {
		return nil, err
	}
	ends, err := EndOffsets(ctx, adm, topic)
	if err != nil {
		return nil, err
	}
	committed, err := adm.FetchOffsets(ctx, group)
	if err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
		return nil, fmt.Errorf("kafka: committed offsets of group %s: %w", group, err)
	}
	var at map[int32]int64
	switch {
	case t.Earliest:
		at = starts
	case !t.At.IsZero():
		// A partition with no record at or after the time gets its end
		// offset (kadm asks again for those; -1 is handled here as well).
		if at, err = listedOffsets(ctx, topic, "by-time", func() (kadm.ListedOffsets, error) {
			return adm.ListOffsetsAfterMilli(ctx, t.At.UnixMilli(), topic)
		}); err != nil {
			return nil, err
		}
	default:
		at = t.Offsets
		for p, o := range t.Offsets {
			end, ok := ends[p]
			switch {
			case !ok:
				return nil, fmt.Errorf("%w: --to-offset pair %q: topic %s has no partition %d (it has %d partitions, 0-%d)", ErrReplayTarget, t.Pairs[p], topic, p, len(ends), len(ends)-1)
			case o > end:
				return nil, fmt.Errorf("%w: --to-offset pair %q: offset %d is past the end of %s/%d (%d)", ErrReplayTarget, t.Pairs[p], o, topic, p, end)
			case o < starts[p]:
				return nil, fmt.Errorf("%w: --to-offset pair %q: offset %d is before the first retained record of %s/%d (%d)", ErrReplayTarget, t.Pairs[p], o, topic, p, starts[p])
			}
		}
	}
	rows := make([]ReplayPartition, 0, len(ends))
	for p, end := range ends {
		r := ReplayPartition{Partition: p, Before: -1, Start: starts[p], End: end}
		if o, ok := committed.Lookup(topic, p); ok {
			if o.Err != nil {
				return nil, fmt.Errorf("kafka: committed offset of group %s for %s/%d: %w", group, topic, p, o.Err)
			}
			r.Before = o.At
		}
		r.After = r.Before
		if o, ok := at[p]; ok {
			if o < 0 {
				o = end
			}
			r.After, r.Change = o, true
		}
		rows = append(rows, r)
	}
	slices.SortFunc(rows, func(a, b ReplayPartition) int { return int(a.Partition - b.Partition) })
	return rows, nil
}

// Print writes the plan as a table, one line per partition.
func (p *ReplayPlan) Print(w io.Writer) {
	group, topic, t, rows, exists := p.Group, p.Topic, p.Target, p.Partitions, p.Exists
	fmt.Fprintf(w, "replay of group %s on %s to %s\n", group, topic, t.Desc)
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
		after := off(r.After)
		if !r.Change {
			after += " (kept)"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%d\t\n", r.Partition, off(r.Before), after, r.End, r.ToApply())
		if r.Change && r.Skipped() > 0 {
			notes = append(notes, fmt.Sprintf("warning: %s/%d moves forward: %d records the group has not applied are skipped",
				topic, r.Partition, r.Skipped()))
		}
	}
	_ = tw.Flush()
	for _, n := range notes {
		fmt.Fprintln(w, n)
	}
	fmt.Fprintf(w, "total: %d records to reprocess on %d partitions (%d of them applied before), %d skipped\n",
		p.Total(ReplayPartition.ToApply), len(rows), p.Total(ReplayPartition.Again), p.Total(ReplayPartition.Skipped))
}

// Commit commits the plan's new offsets and checks every partition's
// answer (kadm reports a refused partition in the response, not in the
// error), then reads them back. It returns how many partitions it moved.
func (p *ReplayPlan) Commit(ctx context.Context, adm *kadm.Client) (int, error) {
	group, topic, rows := p.Group, p.Topic, p.Partitions
	offs := kadm.Offsets{}
	for _, r := range rows {
		if r.Change {
			offs.Add(kadm.Offset{Topic: topic, Partition: r.Partition, At: r.After, LeaderEpoch: -1})
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
		if !r.Change {
			continue
		}
		o, found := resp.Lookup(topic, r.Partition)
		switch {
		case !found:
			failed = append(failed, fmt.Sprintf("%s/%d: no answer", topic, r.Partition))
		case o.Err != nil:
			failed = append(failed, fmt.Sprintf("%s/%d: %v", topic, r.Partition, o.Err))
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
		if !r.Change {
			continue
		}
		if o, found := now.Lookup(topic, r.Partition); !found || o.Err != nil || o.At != r.After {
			return ok, fmt.Errorf("replay of group %s: %s/%d reads back as %d (err %v), want %d: did a consumer commit meanwhile?",
				group, topic, r.Partition, o.At, o.Err, r.After)
		}
	}
	return ok, nil
}
