package main

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"

	"github.com/sluice-dev/sluice/backfill"
	"github.com/sluice-dev/sluice/consumer"
	"github.com/sluice-dev/sluice/producer"
	"github.com/sluice-dev/sluice/schema"
	"github.com/sluice-dev/sluice/verify"
)

// stage holds what the pipeline commands share once flags are parsed.
type stage struct {
	o     *options
	runID string
	base  *slog.Logger // cmd, run_id and window: stageLog adds the stage
	log   *slog.Logger // the command's own lines: stage=main
	reg   *prometheus.Registry
	start time.Time
	end   time.Time
	ready atomic.Bool // connected to the database and Kafka: /readyz answers 200

	wire   *consumer.Wire     // how the target's pool dials, for MariaDB's bulk insert (nil: off)
	cm     *consumer.Metrics  // the members' metrics, once newMembers made them
	jn     *jobNotify         // outcome and notifications (run, backfill, consume)
	counts func() stageCounts // rows moved so far, once the stages exist
}

func newStage(c *command, name string, args []string, windowed bool) (*stage, error) {
	if err := parseOrHelp(c, args); err != nil {
		return nil, err
	}
	runID := newRunID()
	log, err := newLogger(c.o, name, runID)
	if err != nil {
		return nil, err
	}
	s := &stage{o: c.o, runID: runID, base: log, reg: prometheus.NewRegistry()}
	s.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if windowed {
		if s.start, s.end, err = parseWindow(c.o, time.Now()); err != nil {
			return nil, err
		}
		s.base = s.base.With(slog.Group("window", "start", s.start.Format(time.DateTime), "end", s.end.Format(time.DateTime)))
	}
	s.log = s.stageLog(stageMain)
	return s, nil
}

// stageLog is the logger of one pipeline stage: every line carries the
// command, the run id, the window (if any) and the stage.
func (s *stage) stageLog(stage string) *slog.Logger { return s.base.With("stage", stage) }

func (s *stage) producerConfig() (producer.Config, error) {
	cfg := producer.DefaultConfig()
	cfg.Brokers = splitList(s.o.brokers)
	cfg.Conn, cfg.Security = s.o.kafkaOpts, s.o.kafkaDesc
	cfg.Topic = s.o.topic
	cfg.StateTopic = s.o.stateTopic
	cfg.Partitions = int32(s.o.partitions)
	cfg.Linger = s.o.produceLinger
	cfg.Compression = s.o.compression
	cfg.MaxBufferedRecords = s.o.maxBuffered
	cfg.DeliveryTimeout = s.o.deliveryTimeout
	cfg.DialTimeout = s.o.kafkaTimeout
	if err := cfg.Validate(); err != nil {
		return cfg, usagef("kafka producer: %v", err)
	}
	return cfg, nil
}

func (s *stage) consumerConfig(database string) (consumer.Config, error) {
	cfg := consumer.DefaultConfig()
	cfg.Brokers = splitList(s.o.brokers)
	cfg.Conn, cfg.Security = s.o.kafkaOpts, s.o.kafkaDesc
	cfg.Topic = s.o.topic
	cfg.Group = s.o.group
	cfg.Database = database
	cfg.BatchSize = s.o.batchSize
	cfg.Linger = s.o.linger
	cfg.DialTimeout = s.o.kafkaTimeout
	cfg.FetchMaxBytes = int32(s.o.fetchMaxBytes)
	cfg.NoBulkLoad = !s.o.bulkLoad
	cfg.Wire = s.wire
	cfg.DBAttempts, cfg.DBBackoff, cfg.CommitTimeout = s.o.dbAttempts, s.o.dbBackoff, s.o.commitTimeout
	switch {
	case cfg.DBAttempts < 1:
		return cfg, usagef("--db-attempts %d: must be at least 1", cfg.DBAttempts)
	case cfg.DBBackoff < 0:
		return cfg, usagef("--db-backoff %s: must not be negative", cfg.DBBackoff)
	case cfg.CommitTimeout <= 0:
		return cfg, usagef("--commit-timeout %s: must be positive", cfg.CommitTimeout)
	}
	if err := cfg.Validate(); err != nil {
		return cfg, usagef("consumer: %v", err)
	}
	return cfg, nil
}

func (s *stage) backfillConfig(database string) (backfill.Config, error) {
	cfg := backfill.DefaultConfig()
	cfg.Database = database
	cfg.Start, cfg.End = s.start, s.end
	cfg.ChunkSize = s.o.chunkSize
	cfg.Readers = s.o.readers
	cfg.ChunkAttempts, cfg.ChunkBackoff = s.o.chunkAttempts, s.o.chunkBackoff
	cfg.CheckpointInterval, cfg.CheckpointTimeout = s.o.checkpointInterval, s.o.kafkaTimeout
	cfg.Restart = s.o.restart
	// A record waits --delivery-timeout at most before the client fails it,
	// unless it was sent to a broker that died: then for ever. Twice that
	// with nothing acknowledged leaves room for one round of retries.
	cfg.StallTimeout = 2 * s.o.deliveryTimeout
	switch {
	case cfg.ChunkAttempts < 1:
		return cfg, usagef("--chunk-attempts %d: must be at least 1", cfg.ChunkAttempts)
	case cfg.ChunkBackoff < 0:
		return cfg, usagef("--chunk-backoff %s: must not be negative", cfg.ChunkBackoff)
	case cfg.CheckpointInterval <= 0:
		return cfg, usagef("--checkpoint-interval %s: must be positive", cfg.CheckpointInterval)
	}
	if err := cfg.Validate(); err != nil {
		return cfg, usagef("backfill: %v", err)
	}
	return cfg, nil
}

// openTarget connects to the target and makes sure records is ready,
// creating it (or adding the lineage columns) when the user may. It never
// creates the database itself: a database the DSN names that does not exist
// is far more often a typo than a wish (a misspelled name used to be created
// and loaded, and the run exited 0), so that is a usage error, exit 2, that
// names it and points at 'sluice migrate', which does create databases.
// With --bulk-insert (and --bulk-load), its connections are dialed through
// a consumer.Wire, so that the members can send new rows as MariaDB bulk
// inserts.
func (s *stage) openTarget(ctx context.Context, conns int) (*sql.DB, string, error) {
	var dial func(context.Context, string, string) (net.Conn, error)
	if s.o.bulkLoad && s.o.bulkInsert {
		s.wire = consumer.NewWire()
		dial = s.wire.Dial
	}
	db, database, err := openDB(ctx, "--target-dsn", s.o.targetDSN, "target_db", conns, consumer.TargetSession, dial)
	if err != nil {
		return nil, "", err
	}
	ready, err := schema.TargetReady(ctx, db, database)
	if err == nil && !ready {
		err = databaseExists(ctx, db, database)
	}
	if err == nil && !ready {
		s.log.Info("target table missing or without lineage columns; migrating it", "database", database)
		if err = schema.MigrateTarget(ctx, db, database); err != nil {
			err = fmt.Errorf("%w (run 'sluice migrate' as a user with CREATE and ALTER on %s)", err, database)
		}
	}
	if err != nil {
		db.Close()
		return nil, "", err
	}
	return db, database, nil
}

// databaseExists returns nil when database exists on the server of db, and a
// usage error naming it and the flag when it does not.
func databaseExists(ctx context.Context, db *sql.DB, database string) error {
	var n int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = ?", database).Scan(&n); err != nil {
		return fmt.Errorf("look up target database %s: %w", database, err)
	}
	if n == 0 {
		return usagef("--target-dsn: database %s does not exist; run 'sluice migrate' to create it (or correct its name in the DSN)", database)
	}
	return nil
}

// runBackfill runs the backfill of one window into Kafka.
func runBackfill(ctx context.Context, args []string) error {
	c := newCommand("backfill")
	c.source()
	c.kafka()
	c.produce()
	c.window()
	c.read()
	c.serve()
	c.notify()
	c.logging()
	cb := c.configuredBackfill()
	s, err := newStage(c, "backfill", args, true)
	if err != nil {
		return err
	}
	if err := s.setupNotify("backfill", false, true); err != nil {
		return err
	}
	return s.finish(ctx, s.withMetrics(ctx, func(ctx context.Context) error { return s.backfillConfigured(ctx, c, cb) }))
}

// complete drops the window's saved progress once the whole job succeeded:
// the next run of the window is a deliberate full re-run. Failing to is not
// a failure of the job, only a re-run that would skip the read.
func (s *stage) complete(ctx context.Context, bf *backfill.Backfill) {
	if err := bf.Complete(ctx); err != nil {
		s.log.Warn("window finished but its saved progress was not cleared; a re-run of it will skip the read (use --restart)", "err", err)
	}
}

// openBackfill connects the source and the producer and builds the backfill.
func (s *stage) openBackfill(ctx context.Context) (*backfill.Backfill, *producer.Producer, func(), error) {
	pcfg, err := s.producerConfig()
	if err != nil {
		return nil, nil, nil, err
	}
	src, database, err := openDB(ctx, "--source-dsn", s.o.sourceDSN, "source_db", s.o.readers+2, backfill.SourceSession, nil)
	if err != nil {
		return nil, nil, nil, inStage("backfill", err)
	}
	bcfg, err := s.backfillConfig(database)
	if err != nil {
		src.Close()
		return nil, nil, nil, err
	}
	p, err := producer.New(ctx, pcfg, s.reg, s.stageLog("producer"))
	if err != nil {
		src.Close()
		return nil, nil, nil, inStage("producer", err)
	}
	st, err := s.stateStore(ctx)
	if err != nil {
		p.Close()
		src.Close()
		return nil, nil, nil, inStage("producer", err)
	}
	closeState := func() {} // the job's store is closed by finish; one opened here (tail) by cleanup
	if s.jn == nil || s.jn.state != st {
		closeState = st.Close
	}
	blog := s.stageLog("backfill")
	bf, err := backfill.New(bcfg, src, p, backfill.NewMetrics(s.reg), blog)
	if err != nil {
		closeState()
		p.Close()
		src.Close()
		return nil, nil, nil, err
	}
	bf.SetCheckpoints(&backfill.StateCheckpoints{KV: st, RunID: s.runID, Where: st.Topic(), Log: blog,
		Key: backfill.ProgressKey(bcfg.Database, bcfg.Table, bcfg.Start, bcfg.End, s.o.topic)})
	bf.SetEpochs(stateEpochs{st})
	return bf, p, func() { closeState(); p.Close(); src.Close() }, nil
}

// newMembers makes the --consumers group members of this process. They share
// the target's connection pool and the metrics, and each has its own Kafka
// client (its own fetches and partitions), its own dead-letter writer
// (producer.DeadLetterWriter: the producer owns every Kafka write) and its
// own connection at a time: on a target that parses every upsert, two
// members keep it busy from two connections where one leaves it waiting
// between batches. closeWriters closes the writers: call it once the
// members have stopped.
//
// With --instance-id, the members are static (consumer.InstanceIDs): before they
// join, announceGroup says which members the group already holds.
func (s *stage) newMembers(ctx context.Context, command string, ccfg consumer.Config, dst *sql.DB) (_ []*consumer.Consumer, closeWriters func(), err error) {
	ids, err := consumer.InstanceIDs(command, s.o.instanceID, s.o.consumers)
	if err != nil {
		return nil, nil, usageError{err}
	}
	s.announceGroup(ctx, ids)
	cm := consumer.NewMetrics(s.reg)
	s.cm = cm
	dm := producer.NewDeadLetterMetrics(s.reg)
	var writers []*producer.DeadLetterWriter
	closeWriters = func() {
		for _, w := range writers {
			w.Close()
		}
	}
	defer func() {
		if err != nil {
			closeWriters()
		}
	}()
	members := make([]*consumer.Consumer, s.o.consumers)
	for i := range members {
		mcfg := ccfg
		if len(members) > 1 { // one member keeps the plain client id
			mcfg.ClientID = fmt.Sprintf("%s-%d", ccfg.ClientID, i+1)
		}
		if ids != nil {
			mcfg.InstanceID = ids[i]
		}
		mlog := s.stageLog("consumer").With("member", i+1)
		dw, err := producer.NewDeadLetterWriter(ctx, producer.DeadLetterConfig{Brokers: mcfg.Brokers, Conn: mcfg.Conn, Security: mcfg.Security,
			Topic: mcfg.DeadLetterTopic(), ClientID: mcfg.ClientID, DialTimeout: mcfg.DialTimeout}, dm, mlog)
		if err != nil {
			return nil, nil, inStage("consumer", err)
		}
		writers = append(writers, dw)
		mcfg.DeadLetters = dw
		if members[i], err = consumer.New(ctx, mcfg, dst, cm, mlog); err != nil {
			return nil, nil, inStage("consumer", err)
		}
	}
	return members, closeWriters, nil
}

// checkMembers checks the flags of the members before anything connects.
func (s *stage) checkMembers() error {
	switch {
	case s.o.consumers < 1:
		return usagef("--consumers %d: must be at least 1", s.o.consumers)
	case s.o.fetchMaxBytes < 1<<10 || s.o.fetchMaxBytes > 1<<30:
		return usagef("--fetch-max-bytes %d: must be between 1024 and 1073741824", s.o.fetchMaxBytes)
	}
	return nil
}

// goMembers runs the members in g until consCtx ends: stopping them that
// way, once the group has caught up, is no error; g's own end is.
func goMembers(g *errgroup.Group, gctx, consCtx context.Context, members []*consumer.Consumer) {
	for _, m := range members {
		g.Go(func() error {
			if err := m.Run(consCtx); err != nil {
				return inStage("consumer", err)
			}
			if gctx.Err() == nil && consCtx.Err() != nil {
				return nil // stopped by us, after catching up
			}
			return gctx.Err()
		})
	}
}

// sumStats adds up the members' counts.
func sumStats(members []*consumer.Consumer) consumer.Stats {
	var t consumer.Stats
	for _, m := range members {
		t.Add(m.Stats())
	}
	return t
}

// runConsume runs --consumers consumer-group members, until SIGINT/SIGTERM.
func runConsume(ctx context.Context, args []string) error {
	c := newCommand("consume")
	var cfgPath string
	c.fs.StringVar(&cfgPath, "config", "", "a configuration file (YAML): one group reads every configured table's topic and applies each record to its table's target, made by 'sluice migrate --config' (--topic is then not used); without it, the IoT table of the flag-only setup")
	c.source()
	c.target()
	c.kafka()
	c.consume()
	c.instance("")
	c.serve()
	c.notify()
	c.logging()
	s, err := newStage(c, "consume", args, false)
	if err != nil {
		return err
	}
	if err := s.setupNotify("consume", true, false); err != nil {
		return err
	}
	return s.finish(ctx, s.withMetrics(ctx, func(ctx context.Context) error {
		t0 := time.Now()
		if err := s.checkMembers(); err != nil {
			return err
		}
		var dst *sql.DB
		var database string
		var tables []*schema.Table
		if cfgPath != "" {
			dst, tables, err = s.openTables(ctx, c, cfgPath)
		} else {
			dst, database, err = s.openTarget(ctx, s.o.consumers+2)
		}
		if err != nil {
			return inStage("consumer", err)
		}
		defer dst.Close()
		ccfg, err := s.consumerConfig(database)
		if err != nil {
			return err
		}
		if ccfg.Tables = tables; tables != nil {
			if err := ccfg.Validate(); err != nil {
				return usagef("--config %s: consumer: %v", cfgPath, err)
			}
		}
		members, closeWriters, err := s.newMembers(ctx, s.jn.command, ccfg, dst)
		if err != nil {
			return err
		}
		defer closeWriters()
		s.counts = func() stageCounts { return stageCounts{Upserted: sumStats(members).Upserted} }
		s.ready.Store(true)
		stopProgress := startProgress(func(el time.Duration) string { return consumeLine(sumStats(members), el) })
		g, gctx := errgroup.WithContext(ctx)
		for _, m := range members {
			g.Go(func() error { return inStage("consumer", m.Run(gctx)) })
		}
		if s.lagWatched() {
			lcl, err := kgo.NewClient(s.o.kafkaClient()...)
			if err != nil {
				return inStage("consumer", fmt.Errorf("kafka client for %v: %w", ccfg.Brokers, err))
			}
			defer lcl.Close()
			topics := []string{s.o.topic}
			if tables != nil {
				topics = topics[:0]
				for _, t := range tables {
					topics = append(topics, t.Topic)
				}
			}
			for _, topic := range topics {
				g.Go(func() error { s.watchLag(gctx, kadm.NewClient(lcl), topic); return nil })
			}
		}
		err = g.Wait()
		stopProgress()
		st := sumStats(members)
		s.log.Info("consumer summary", "members", len(members), "records", st.Records, "rows_upserted", st.Upserted, "rows_inserted", st.Inserted, "dead_lettered", st.Dead,
			"duplicates_merged", st.Merged, "rows_deleted", st.Deleted, "batches", st.Batches, "seconds", round(time.Since(t0).Seconds()))
		if err != nil {
			s.log.Error("consume failed", "failed_stage", stageOf(err), "where", whereOf(err), "err", err)
		}
		return err
	}))
}

// openTables is consume --config's target: every configured table
// resolved against both databases (a target that does not exist is an
// error naming 'sluice migrate --config'), and the target's pool, sized for
// the members. Nothing is created here: the TableWriters check the lineage
// columns and the tombstone tables.
func (s *stage) openTables(ctx context.Context, c *command, path string) (*sql.DB, []*schema.Table, error) {
	cf, err := openConfigured(ctx, c, path)
	if err != nil {
		return nil, nil, err
	}
	tables, err := cf.resolve(ctx, false)
	cf.src.Close()
	if err != nil {
		cf.dst.Close()
		return nil, nil, err
	}
	if len(tables) == 0 {
		cf.dst.Close()
		return nil, nil, usagef("--config %s: no table to consume", path)
	}
	s.wire = s.o.wire // consumerConfig hands it to the members
	cf.dst.SetMaxOpenConns(s.o.consumers + 2)
	cf.dst.SetMaxIdleConns(s.o.consumers + 2)
	s.log.Info("consuming the configured tables", "config", path, "tables", len(tables))
	for _, t := range tables {
		for _, u := range t.ExtraUnique {
			s.log.Warn("the target has a unique index beyond the key: a change whose value another key's row still holds there (its own change in another partition, not applied yet) would land on that row; drop the index, or make it the key",
				"table", t.Target.String(), "index", u.Name, "columns", strings.Join(u.Columns, ", "))
		}
	}
	return cf.dst, tables, nil
}

// lagWatched says whether this process exports its group's lag: only with
// a metrics endpoint to read it from.
func (s *stage) lagWatched() bool { return s.o.metricsAddr != "" && s.o.lagInterval > 0 }

// watchLag exports the group's lag from its committed offsets until ctx
// ends (consumer.WatchLag): every process with members does, so the gauge
// is there while any member is, and it sees a group whose members are
// stuck, which the members' own polls do not.
func (s *stage) watchLag(ctx context.Context, adm *kadm.Client, topic string) {
	s.cm.WatchLag(ctx, adm, s.o.group, topic, s.o.lagInterval, s.o.kafkaTimeout, s.stageLog("consumer"))
}

// catchUpPoll is how often a run, its backfill produced, asks the group's
// committed offsets whether the last batch is in: the run ends on average
// half of it after its last commit. One offset fetch per poll is nothing to
// a broker; 200 ms was 1% of a 1M-row run.
const catchUpPoll = 50 * time.Millisecond

// runRun is the nightly job: backfill the window while a consumer-group member
// applies it, then wait until the group has committed everything the backfill
// produced. Offsets are committed only after the database commit, so a caught
// up group means every row of the window is in the target.
func runRun(ctx context.Context, args []string) error {
	c := newCommand("run")
	c.source()
	c.target()
	c.kafka()
	c.produce()
	c.window()
	c.read()
	c.consume()
	c.instance("host")
	c.fs.BoolVar(&c.o.verify, "verify", false, "after the run, reconcile source and target for the window (as 'sluice verify')")
	c.fs.IntVar(&c.o.chunkRows, "chunk-rows", 10000, "with --verify: source rows per compared time slice")
	var cfgPath string
	c.fs.StringVar(&cfgPath, "config", "", "a configuration file (YAML): backfill every configured table's window, then consume until the group has applied all of it (and --verify each table); without it, the IoT table")
	c.serve()
	c.notify()
	c.logging()
	s, err := newStage(c, "run", args, true)
	if err != nil {
		return err
	}
	if err := s.setupNotify("run", true, true); err != nil {
		return err
	}
	if cfgPath != "" {
		return s.finish(ctx, s.withMetrics(ctx, func(ctx context.Context) error { return s.runConfigured(ctx, c, cfgPath) }))
	}
	return s.finish(ctx, s.withMetrics(ctx, func(ctx context.Context) error {
		t0 := time.Now()
		if err := s.checkMembers(); err != nil {
			return err
		}
		dst, tdb, err := s.openTarget(ctx, s.o.consumers+2)
		if err != nil {
			return inStage("consumer", err)
		}
		defer dst.Close()
		ccfg, err := s.consumerConfig(tdb)
		if err != nil {
			return err
		}
		bf, p, cleanup, err := s.openBackfill(ctx)
		if err != nil {
			return err
		}
		defer cleanup()
		members, closeWriters, err := s.newMembers(ctx, s.jn.command, ccfg, dst)
		if err != nil {
			return err
		}
		defer closeWriters()
		stats := func() consumer.Stats { return sumStats(members) }
		s.counts = func() stageCounts {
			pr := bf.Progress()
			return stageCounts{Read: pr.RowsRead, Produced: pr.RowsAcked, Upserted: stats().Upserted}
		}
		adm := kadm.NewClient(p.Client())
		s.ready.Store(true)

		g, gctx := errgroup.WithContext(ctx)
		consCtx, stopConsumer := context.WithCancel(gctx)
		defer stopConsumer()
		goMembers(g, gctx, consCtx, members)
		if s.lagWatched() {
			g.Go(func() error { s.watchLag(consCtx, adm, s.o.topic); return nil })
		}
		var produced int64
		g.Go(func() error {
			defer stopConsumer()
			if err := bf.Run(gctx); err != nil {
				return inStage("backfill", err)
			}
			if err := p.Flush(gctx); err != nil {
				return inStage("producer", err)
			}
			produced = bf.Progress().RowsAcked
			ends, err := consumer.EndOffsets(gctx, adm, s.o.topic)
			if err != nil {
				return inStage("consumer", err)
			}
			s.log.Info("run: backfill produced; waiting for the group to apply it", "rows", produced, "group", s.o.group)
			return inStage("consumer", consumer.WaitCaughtUp(gctx, adm, s.o.group, s.o.topic, ends, catchUpPoll))
		})
		stopProgress := startProgress(func(el time.Duration) string {
			return bf.Progress().Line(el) + " | " + consumeLine(stats(), el)
		})
		err = g.Wait()
		stopProgress()
		pr, st := bf.Progress(), stats()
		secs := time.Since(t0).Seconds()
		if err == nil && ctx.Err() != nil {
			err = ctx.Err()
		}
		if err != nil {
			s.log.Error("run failed", "rows_read", pr.RowsRead, "rows_produced", pr.RowsAcked, "rows_upserted", st.Upserted,
				"failed_stage", stageOf(err), "where", whereOf(err), "err", err)
			return fmt.Errorf("run of window [%s, %s) failed: %w", s.start.Format(time.DateTime), s.end.Format(time.DateTime), err)
		}
		s.complete(ctx, bf)
		s.log.Info("run summary", "rows_read", pr.RowsRead, "rows_produced", pr.RowsAcked, "rows_upserted", st.Upserted,
			"resumed_ids", pr.IDsResumed, "chunk_retries", pr.Retries,
			"rows_inserted", st.Inserted, "duplicates_merged", st.Merged, "dead_lettered", st.Dead, "seconds", round(secs), "rows_per_second", round(float64(pr.RowsRead)/secs))
		fmt.Printf("run [%s, %s): %d rows read, %d produced, %d upserted by this process (%d new, %d duplicates merged)%s, %.1f s, %.0f rows/s\n",
			s.start.Format(time.DateTime), s.end.Format(time.DateTime), pr.RowsRead, pr.RowsAcked, st.Upserted, st.Inserted, st.Merged,
			pr.ResumedNote(), secs, float64(pr.RowsRead)/secs)
		if s.o.verify {
			if err := verifyConfigured(ctx, c, s, "", "", verify.TableConfig{ChunkRows: s.o.chunkRows}); err != nil {
				return inStage("verify", err)
			}
		}
		if st.Dead > 0 {
			return fmt.Errorf("%w: %d records of %s went to %s (sluice dlq inspect --topic %s)", errPartial, st.Dead,
				s.o.topic, ccfg.DeadLetterTopic(), s.o.topic)
		}
		return nil
	}))
}

func round(f float64) float64 { return float64(int64(f*10+0.5)) / 10 }
