package consumer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// EndOffsets returns the end offset of every partition of topic: the offset
// the next produced record will get.
func EndOffsets(ctx context.Context, adm *kadm.Client, topic string) (map[int32]int64, error) {
	listed, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("kafka: end offsets of %s: %w", topic, err)
	}
	ends := map[int32]int64{}
	var perr error
	listed.Each(func(o kadm.ListedOffset) {
		if o.Err != nil && perr == nil {
			perr = fmt.Errorf("kafka: end offset of %s/%d: %w", o.Topic, o.Partition, o.Err)
		}
		ends[o.Partition] = o.Offset
	})
	return ends, perr
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
