package main

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
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

func (s *stage) consumerConfig() (consumer.Config, error) {
	cfg := consumer.DefaultConfig()
	cfg.Brokers = splitList(s.o.brokers)
	cfg.Conn, cfg.Security = s.o.kafkaOpts, s.o.kafkaDesc
	cfg.Group = s.o.group
	cfg.BatchSize = s.o.batchSize
	cfg.Linger = s.o.linger
	cfg.DialTimeout = s.o.kafkaTimeout
	cfg.FetchMaxBytes = int32(s.o.fetchMaxBytes)
	cfg.NoBulkLoad = !s.o.bulkLoad
	cfg.Wire = s.o.wire // set when the target's pool was opened (openConfiguredFor)
	cfg.DBAttempts, cfg.DBBackoff, cfg.CommitTimeout = s.o.dbAttempts, s.o.dbBackoff, s.o.commitTimeout
	switch {
	case cfg.DBAttempts < 1:
		return cfg, usagef("--db-attempts %d: must be at least 1", cfg.DBAttempts)
	case cfg.DBBackoff < 0:
		return cfg, usagef("--db-backoff %s: must not be negative", cfg.DBBackoff)
	case cfg.CommitTimeout <= 0:
		return cfg, usagef("--commit-timeout %s: must be positive", cfg.CommitTimeout)
	}
	return cfg, nil // validated with its tables (openConsumer)
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
	closeAll := func() {
		for _, w := range writers {
			w.Close()
		}
	}
	defer func() {
		if err != nil {
			closeAll() // not closeWriters: a failed return has set it to nil
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
	return members, closeAll, nil
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
	c.fs.StringVar(&cfgPath, "config", "", "a configuration file (YAML): one group reads every configured table's topic and applies each record to its table's target, made by 'sluice migrate --config' (--topic is then not used); without it, the built-in IoT table")
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
		dst, tables, ccfg, err := s.openConsumer(ctx, c, cfgPath)
		if err != nil {
			return err
		}
		defer dst.Close()
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
			for _, t := range tables {
				g.Go(func() error { s.watchLag(gctx, kadm.NewClient(lcl), t.Topic); return nil })
			}
		}
		err = g.Wait()
		stopProgress()
		st := sumStats(members)
		s.log.Info("consumer summary", "members", len(members), "tables", len(tables), "records", st.Records, "rows_upserted", st.Upserted, "rows_inserted", st.Inserted, "dead_lettered", st.Dead,
			"duplicates_merged", st.Merged, "rows_deleted", st.Deleted, "batches", st.Batches, "seconds", round(time.Since(t0).Seconds()))
		if err != nil {
			s.log.Error("consume failed", "failed_stage", stageOf(err), "where", whereOf(err), "err", err)
		}
		return err
	}))
}

// openConsumer resolves the tables the members apply (openTables) and
// makes their configuration: the built-in table's dead letters go to
// <--topic>.dlq, as they always did; a file's tables' to <group>.dlq.
func (s *stage) openConsumer(ctx context.Context, c *command, path string) (*sql.DB, []*schema.Table, consumer.Config, error) {
	dst, tables, err := s.openTables(ctx, c, path)
	if err != nil {
		return nil, nil, consumer.Config{}, inStage("consumer", err)
	}
	ccfg, err := s.consumerConfig()
	if err == nil {
		ccfg.Tables = tables
		if path == "" {
			ccfg.DLQTopic = s.o.topic + ".dlq"
		}
		if err = ccfg.Validate(); err != nil {
			err = usagef("%s: consumer: %v", describeConfig(path), err)
		}
	}
	if err != nil {
		dst.Close()
		return nil, nil, ccfg, err
	}
	return dst, tables, ccfg, nil
}

// inspectHint is the command that shows the job's dead letters.
func (s *stage) inspectHint(path string) string {
	if path == "" {
		return "sluice dlq inspect --topic " + s.o.topic
	}
	return fmt.Sprintf("sluice dlq inspect --config %s --group %s", path, s.o.group)
}

// openTables is the members' target: every table of the file (without
// one, the built-in table) resolved against the target and the source, or,
// when no source DSN is given, the source's description the producers
// stored in the state topic (openConsumeConfigured, waiting for a table not
// described yet); and the target's pool, sized for the members. Nothing of
// a file's tables is created here (a target that does not exist is an
// error naming 'sluice migrate --config'; the TableWriters check the
// lineage columns and the tombstone tables). The built-in table's target is
// made ready when missing, as the flag-only consumer always did
// (migrateBuiltin).
func (s *stage) openTables(ctx context.Context, c *command, path string) (*sql.DB, []*schema.Table, error) {
	cf, err := openConsumeConfigured(ctx, c, path)
	if err != nil {
		return nil, nil, err
	}
	if path == "" {
		if err := s.migrateBuiltin(ctx, cf.dst, cf.rc.TargetDB); err != nil {
			cf.close()
			return nil, nil, err
		}
	}
	tables, err := s.resolveConsumed(ctx, cf)
	dst := cf.dst
	cf.dst = nil // the caller's
	cf.close()
	if err != nil {
		dst.Close()
		return nil, nil, err
	}
	if len(tables) == 0 {
		dst.Close()
		return nil, nil, usagef("%s: no table to consume", cf.desc())
	}
	dst.SetMaxOpenConns(s.o.consumers + 2)
	dst.SetMaxIdleConns(s.o.consumers + 2)
	s.log.Info("consuming the configured tables", "config", cf.desc(), "tables", len(tables))
	for _, t := range tables {
		for _, u := range t.ExtraUnique {
			s.log.Warn("the target has a unique index beyond the key: a change whose value another key's row still holds there (its own change in another partition, not applied yet) would land on that row; drop the index, or make it the key",
				"table", t.Target.String(), "index", u.Name, "columns", strings.Join(u.Columns, ", "))
		}
	}
	return dst, tables, nil
}

// migrateBuiltin makes the built-in table's target ready (records, its
// lineage columns, its tombstone and truncate markers' tables) when it is
// not, as the flag-only consumer always did. It never creates the database
// itself: a database the DSN names that does not exist is far more often a
// typo than a wish (a misspelled name used to be created and loaded, and
// the run exited 0), so that is a usage error, exit 2, that names it and
// points at 'sluice migrate', which does create databases.
func (s *stage) migrateBuiltin(ctx context.Context, db *sql.DB, database string) error {
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
	return err
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
	return s.finish(ctx, s.withMetrics(ctx, func(ctx context.Context) error { return s.runConfigured(ctx, c, cfgPath) }))
}

func round(f float64) float64 { return float64(int64(f*10+0.5)) / 10 }
