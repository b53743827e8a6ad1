package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"golang.org/x/sync/errgroup"

	"github.com/sluice-dev/sluice/consumer"
	"github.com/sluice-dev/sluice/schema"
	"github.com/sluice-dev/sluice/verify"
)

// runConfigured is `sluice run [--config FILE]`: the nightly job for every
// configured table (without a file, the built-in IoT table). It resolves
// the tables against both sides first (a target that cannot work fails
// before a row is read), backfills each table's window into its topic,
// then runs the group's members until they have committed every record the
// topics then held: offsets are committed only after the database commit,
// so a caught-up group means every row of the window is in its target. The
// window's progress is dropped only then, so a run that failed after its
// backfill only waits for the group when started again. With --verify it
// then reconciles each table. The backfill and the members do not overlap:
// on two cores they compete for the CPU, and together they held more
// memory than the 256 MB budget on a 21-column table.
func (s *stage) runConfigured(ctx context.Context, c *command, path string) error {
	t0 := time.Now()
	if err := s.checkMembers(); err != nil {
		return err
	}
	b, err := s.openBackfills(ctx, c, &backfillFlags{path: path})
	if err != nil {
		return err
	}
	defer b.close()
	dst, tables, ccfg, err := s.openConsumer(ctx, c, path)
	if err != nil {
		return err
	}
	defer dst.Close()
	members, closeWriters, err := s.newMembers(ctx, s.jn.command, ccfg, dst)
	if err != nil {
		return err
	}
	defer closeWriters()
	stats := func() consumer.Stats { return sumStats(members) }
	s.counts = func() stageCounts {
		r, a := b.rows()
		return stageCounts{Read: r, Produced: a, Upserted: stats().Upserted}
	}
	adm := kadm.NewClient(b.p.Client())
	s.ready.Store(true)

	err = b.run(ctx)
	if err == nil {
		_, produced := b.rows()
		s.log.Info("run: backfill produced; waiting for the group to apply it", "rows", produced, "tables", len(tables), "group", s.o.group)
		err = s.applyCaughtUp(ctx, members, tables, adm, t0)
	}
	if err == nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	read, produced := b.rows()
	st, secs := stats(), time.Since(t0).Seconds()
	window := fmt.Sprintf("[%s, %s)", s.start.Format(time.DateTime), s.end.Format(time.DateTime))
	if path != "" {
		window = "--config " + path + " " + window
	}
	if err != nil {
		s.log.Error("run failed", "rows_read", read, "rows_produced", produced, "rows_upserted", st.Upserted,
			"failed_stage", stageOf(err), "where", whereOf(err), "err", err)
		return fmt.Errorf("run %s failed: %w", window, err)
	}
	b.complete(ctx)
	s.log.Info("run summary", "tables", len(tables), "rows_read", read, "rows_produced", produced, "records", st.Records,
		"rows_upserted", st.Upserted, "rows_inserted", st.Inserted, "duplicates_merged", st.Merged, "rows_deleted", st.Deleted,
		"dead_lettered", st.Dead, "seconds", round(secs), "rows_per_second", round(float64(read)/secs))
	fmt.Printf("run %s: %d rows read, %d produced, %d records applied, %d upserted by this process (%d new, %d duplicates merged), %d deleted, %d dead-lettered, %d tables, %.1f s, %.0f rows/s\n",
		window, read, produced, st.Records, st.Upserted, st.Inserted, st.Merged, st.Deleted, st.Dead, len(tables), secs, float64(read)/secs)
	if s.o.verify {
		if err := verifyConfigured(ctx, c, s, path, "", verify.TableConfig{ChunkRows: s.o.chunkRows}); err != nil {
			return inStage("verify", err)
		}
	}
	if st.Dead > 0 {
		topics := make([]string, len(tables))
		for i, t := range tables {
			topics[i] = t.Topic
		}
		return fmt.Errorf("%w: %d records of %s went to %s (%s)", errPartial, st.Dead, strings.Join(topics, ", "), ccfg.DeadLetterTopic(), s.inspectHint(path))
	}
	return nil
}

// applyCaughtUp runs the members until the group has committed every
// record the tables' topics hold now, that is, everything the backfill
// produced.
func (s *stage) applyCaughtUp(ctx context.Context, members []*consumer.Consumer, tables []*schema.Table, adm *kadm.Client, t0 time.Time) error {
	ends := make([]map[int32]int64, len(tables))
	for i, t := range tables {
		var err error
		if ends[i], err = consumer.EndOffsets(ctx, adm, t.Topic); err != nil {
			return inStage("consumer", err)
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	consCtx, stopConsumer := context.WithCancel(gctx)
	defer stopConsumer()
	goMembers(g, gctx, consCtx, members)
	if s.lagWatched() {
		for _, t := range tables {
			g.Go(func() error { s.watchLag(consCtx, adm, t.Topic); return nil })
		}
	}
	g.Go(func() error {
		defer stopConsumer()
		for i, t := range tables {
			if err := consumer.WaitCaughtUp(gctx, adm, s.o.group, t.Topic, ends[i], catchUpPoll); err != nil {
				return inStage("consumer", err)
			}
		}
		return nil
	})
	stopProgress := startProgress(func(time.Duration) string { return consumeLine(sumStats(members), time.Since(t0)) })
	defer stopProgress()
	return g.Wait()
}
