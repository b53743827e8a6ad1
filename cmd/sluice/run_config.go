package main

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"

	"github.com/sluice-dev/sluice/consumer"
	"github.com/sluice-dev/sluice/verify"
)

// runConfigured is `sluice run --config FILE`: the nightly job for every
// configured table. It backfills each table's window into its topic
// (backfillConfigured), then runs the group's members until they have
// committed every record the topics held at that point (so every row is in
// its target), then, with --verify, reconciles each table. The two steps
// run one after the other: the members start once every topic exists.
func (s *stage) runConfigured(ctx context.Context, c *command, path string) error {
	t0 := time.Now()
	if err := s.checkMembers(); err != nil {
		return err
	}
	if err := s.backfillConfigured(ctx, c, &backfillFlags{path: path}); err != nil {
		return err
	}
	dst, tables, err := s.openTables(ctx, c, path)
	if err != nil {
		return inStage("consumer", err)
	}
	defer dst.Close()
	ccfg, err := s.consumerConfig("")
	if err != nil {
		return err
	}
	ccfg.Tables = tables
	if err := ccfg.Validate(); err != nil {
		return usagef("--config %s: consumer: %v", path, err)
	}
	cl, err := kgo.NewClient(s.o.kafkaClient()...)
	if err != nil {
		return inStage("consumer", fmt.Errorf("kafka client for %v: %w", ccfg.Brokers, err))
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ends := map[string]map[int32]int64{}
	for _, t := range tables {
		if ends[t.Topic], err = consumer.EndOffsets(ctx, adm, t.Topic); err != nil {
			return inStage("consumer", err)
		}
	}
	members, closeWriters, err := s.newMembers(ctx, s.jn.command, ccfg, dst)
	if err != nil {
		return err
	}
	defer closeWriters()
	stats := func() consumer.Stats { return sumStats(members) }
	s.counts = func() stageCounts { return stageCounts{Upserted: stats().Upserted} }
	s.ready.Store(true)
	g, gctx := errgroup.WithContext(ctx)
	consCtx, stopConsumer := context.WithCancel(gctx)
	defer stopConsumer()
	goMembers(g, gctx, consCtx, members)
	g.Go(func() error {
		defer stopConsumer()
		for _, t := range tables {
			if err := consumer.WaitCaughtUp(gctx, adm, s.o.group, t.Topic, ends[t.Topic], catchUpPoll); err != nil {
				return inStage("consumer", err)
			}
		}
		return nil
	})
	stopProgress := startProgress(func(el time.Duration) string { return consumeLine(stats(), el) })
	err = g.Wait()
	stopProgress()
	if err == nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	st := stats()
	if err != nil {
		return fmt.Errorf("run --config %s of window [%s, %s) failed: %w", path, s.start.Format(time.DateTime), s.end.Format(time.DateTime), err)
	}
	fmt.Printf("run --config %s [%s, %s): %d tables, %d records applied, %d upserted, %d deleted, %d dead-lettered, %.1f s\n", path,
		s.start.Format(time.DateTime), s.end.Format(time.DateTime), len(tables), st.Records, st.Upserted, st.Deleted, st.Dead, time.Since(t0).Seconds())
	if s.o.verify {
		if err := verifyConfigured(ctx, c, s, path, "", verify.TableConfig{Slices: 24}); err != nil {
			return inStage("verify", err)
		}
	}
	if st.Dead > 0 {
		return fmt.Errorf("%w: %d records went to %s (sluice dlq inspect --topic %s)", errPartial, st.Dead, ccfg.DeadLetterTopic(), s.o.group)
	}
	return nil
}
