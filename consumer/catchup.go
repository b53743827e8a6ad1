package consumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// EndOffsets returns the end offset of every partition of topic: the offset
// the next produced record will get.
func EndOffsets(ctx context.Context, adm *kadm.Client, topic string) (map[int32]int64, error) {
	return listedOffsets(ctx, topic, "end", func() (kadm.ListedOffsets, error) { return adm.ListEndOffsets(ctx, topic) })
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
			return nil, fmt.Errorf("kafka: topic %s does not exist", topic)
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
		return nil, fmt.Errorf("kafka: topic %s does not exist", topic)
	}
	return out, nil
}

// Behind returns, for every partition of ends whose committed offset in group
// is short of its end, how many records are still to be applied. A partition
// with no commit counts from offset 0.
func Behind(ctx context.Context, adm *kadm.Client, group, topic string, ends map[int32]int64) (map[int32]int64, error) {
	committed, err := adm.FetchOffsets(ctx, group)
	if errors.Is(err, kerr.GroupIDNotFound) {
		committed, err = nil, nil // a group that has not joined yet has committed nothing
	}
	if err != nil {
		return nil, fmt.Errorf("kafka: committed offsets of group %s: %w", group, err)
	}
	behind := map[int32]int64{}
	for p, end := range ends {
		var at int64
		if o, ok := committed.Lookup(topic, p); ok {
			if o.Err != nil {
				return nil, fmt.Errorf("kafka: committed offset of group %s for %s/%d: %w", group, topic, p, o.Err)
			}
			at = o.At
		}
		if at < end {
			behind[p] = end - at
		}
	}
	return behind, nil
}

// WaitCaughtUp returns once group has committed every partition of topic at
// or past ends, checking every interval. Because offsets are committed only
// after the database commit, that means every record before ends is in the
// target.
func WaitCaughtUp(ctx context.Context, adm *kadm.Client, group, topic string, ends map[int32]int64, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		behind, err := Behind(ctx, adm, group, topic, ends)
		if err != nil {
			return err
		}
		if len(behind) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			var n int64
			for _, b := range behind {
				n += b
			}
			return fmt.Errorf("consumer group %s: %d records of %s not yet applied: %w", group, n, topic, ctx.Err())
		case <-t.C:
		}
	}
}

// Lag returns, for every partition of topic, how many records group has not
// committed: the end offset minus the committed offset (0 without a commit,
// as Behind counts). Offsets are committed only after the database commit,
// so this is what is not in the target yet, whatever the members have
// polled: a group whose members hold records in a stuck batch, or are gone,
// shows it.
func Lag(ctx context.Context, adm *kadm.Client, group, topic string) (map[int32]int64, error) {
	ends, err := EndOffsets(ctx, adm, topic)
	if err != nil {
		return nil, err
	}
	behind, err := Behind(ctx, adm, group, topic, ends)
	if err != nil {
		return nil, err
	}
	lag := make(map[int32]int64, len(ends))
	for p := range ends {
		lag[p] = behind[p]
	}
	return lag, nil
}

// WatchLag sets sluice_consumer_lag_records{group,topic,partition} from Lag
// now and every interval until ctx ends, each look bounded by timeout. A look
// that fails is logged and leaves the last values. One process running
// members of the group is enough to export the whole group's lag; every one
// that does exports the same values (take the max per partition, not the
// sum, across processes).
func (m *Metrics) WatchLag(ctx context.Context, adm *kadm.Client, group, topic string, interval, timeout time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	failing := false
	for {
		lctx, cancel := context.WithTimeout(ctx, timeout)
		lag, err := Lag(lctx, adm, group, topic)
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			if !failing {
				log.Warn("consumer: group lag not measured; the gauge keeps its last values", "group", group, "topic", topic, "err", err)
			}
			failing = true
		default:
			failing = false
			for p, n := range lag {
				m.lag.WithLabelValues(group, topic, strconv.Itoa(int(p))).Set(float64(n))
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
