package main

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"

	"github.com/sluice-dev/sluice/consumer"
	"github.com/sluice-dev/sluice/producer"
)

// runConfigured is `sluice run --config FILE`: the nightly job for every
// configured table. The group's members start first, on every table's
// topic (created here when missing), and consume while each table's window
// is backfilled into its topic (backfillConfigured), as `sluice run` does
// for the IoT table. Once the backfill has produced everything, the run
// waits until the group has committed every record the topics held at that
// point (so every row is in its target), then, with --verify, reconciles
// each table.
func (s *stage) runConfigured(ctx context.Context, c *command, path string) error {
	t0 := time.Now()
	if err := s.checkMembers(); err != nil {
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
	pcfg, err := s.producerConfig()
	if err != nil {
		return err
	}
	cl, err := kgo.NewClient(s.o.kafkaClient()...)
	if err != nil {
		return inStage("consumer", fmt.Errorf("kafka client for %v: %w", ccfg.Brokers, err))
	}
	defer cl.Close()
	for _, t := range tables { // the members subscribe to topics that exist
		tcfg := pcfg
		tcfg.Topic = t.Topic
		if err := producer.EnsureTopic(ctx, cl, tcfg, s.stageLog("producer")); err != nil {
			return inStage("producer", fmt.Errorf("table %s: %w", t.Source, err))
		}
	}
	adm := kadm.NewClient(cl)
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
		bf := &backfillFlags{path: path,
			upserted: func() int64 { return stats().Upserted },
			consumed: func() string { return consumeLine(stats(), time.Since(t0)) }}
		if err := s.backfillConfigured(gctx, c, bf); err != nil {
			return err
		}
		s.log.Info("run: backfill produced; waiting for the group to apply it", "tables", len(tables), "group", s.o.group)
		stopProgress := startProgress(func(time.Duration) string { return consumeLine(stats(), time.Since(t0)) })
		defer stopProgress()
		for _, t := range tables {
			ends, err := consumer.EndOffsets(gctx, adm, t.Topic)
			if err != nil {
				return inStage("consumer", err)
			}
			if err := consumer.WaitCaughtUp(gctx, adm, s.o.group, t.Topic, ends, catchUpPoll); err != nil {
				return inStage("consumer", err)
			}
		}
		return nil
	})
	err = g.Wait()
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
		if err := verifyConfigured(ctx, c, s, path, "", 24); err != nil {
			return inStage("verify", err)
		}
	}
	if st.Dead > 0 {
		return fmt.Errorf("%w: %d records went to %s (sluice dlq inspect --topic %s)", errPartial, st.Dead, ccfg.DeadLetterTopic(), s.o.group)
	}
	return nil
}
