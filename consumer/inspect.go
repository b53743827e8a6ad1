package consumer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/schema"
)

// InspectConfig says which dead letters Inspect reads.
type InspectConfig struct {
	Brokers     []string
	Conn        []kgo.Opt // the connection's TLS and SASL (see Config.Conn)
	Security    string    // what Conn is, for errors
	DLQTopic    string
	DialTimeout time.Duration // how long to wait for the brokers at start
	// Topics, when set, keeps only the dead letters of records from these
	// topics (by their schema.DLQHeaderTopic): one configured table's, say.
	Topics []string
	Limit  int           // dead letters to pass to each, at most
	Idle   time.Duration // stop after this long without a record (a partition whose end is a marker, not a record)
}

// Inspect reads the dead-letter topic from its start up to its end when
// Inspect begins, and calls each with every dead letter Topics selects, up
// to Limit, in partition order. It joins no group and commits nothing. It
// returns how many dead letters it passed to each.
func Inspect(ctx context.Context, cfg InspectConfig, each func(*kgo.Record) error) (int, error) {
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ConsumeTopics(cfg.DLQTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DialTimeout(cfg.DialTimeout),
	}, cfg.Conn...)...)
	if err != nil {
		return 0, fmt.Errorf("kafka client for %v: %w", cfg.Brokers, err)
	}
	defer cl.Close()
	pctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
	defer cancel()
	if err := cl.Ping(pctx); err != nil {
		return 0, fmt.Errorf("kafka brokers %v%s unreachable: %w", cfg.Brokers, security(cfg.Security), err)
	}
	ends, err := EndOffsets(ctx, kadm.NewClient(cl), cfg.DLQTopic)
	if err != nil {
		return 0, err
	}
	// The partitions still to read to their end offset; an empty one is
	// read already.
	left := map[int32]bool{}
	for p, end := range ends {
		if end > 0 {
			left[p] = true
		}
	}
	n := 0
	for len(left) > 0 && n < cfg.Limit {
		fctx, cancel := context.WithTimeout(ctx, cfg.Idle)
		fetches := cl.PollFetches(fctx)
		cancel()
		if ctx.Err() != nil {
			return n, ctx.Err()
		}
		for _, fe := range fetches.Errors() {
			if !errors.Is(fe.Err, context.DeadlineExceeded) {
				return n, fmt.Errorf("fetch %s/%d: %w", fe.Topic, fe.Partition, fe.Err)
			}
		}
		if fetches.Empty() {
			return n, nil
		}
		var ferr error
		fetches.EachRecord(func(r *kgo.Record) {
			if ferr != nil || n >= cfg.Limit || !left[r.Partition] {
				return
			}
			if r.Offset >= ends[r.Partition]-1 {
				delete(left, r.Partition)
			}
			if r.Offset >= ends[r.Partition] {
				return
			}
			if len(cfg.Topics) > 0 {
				if to, _ := Header(r, schema.DLQHeaderTopic); !slices.Contains(cfg.Topics, to) {
					return
				}
			}
			if ferr = each(r); ferr == nil {
				n++
			}
		})
		if ferr != nil {
			return n, ferr
		}
	}
	return n, nil
}
