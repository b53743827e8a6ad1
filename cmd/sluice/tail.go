package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/sluice-dev/sluice/backfill"
	"github.com/sluice-dev/sluice/schema"
	"github.com/sluice-dev/sluice/tail"
)

// runTail follows the source's binlog into the topic until SIGINT/SIGTERM.
func runTail(ctx context.Context, args []string) error {
	c := newCommand("tail")
	var path string
	c.fs.StringVar(&path, "config", "", "a configuration file (YAML): follow every configured table on one binlog stream, each into its topic as generic change events (binlog_row_metadata=FULL lets it follow DDL); without it, the IoT table")
	c.source()
	c.target() // with --config: the target the configured tables resolve against
	c.kafka()
	c.produce()
	c.read() // for the backfill of a recovered gap
	c.serve()
	c.logging()
	var from, flavor, name, onTruncate string
	var reset, recoverPurged, recoverBackfill bool
	var serverID uint
	var flushInterval, recoverMargin time.Duration
	var flushEvents int
	c.fs.StringVar(&from, "from", "now", "where to start when no position is stored: now, earliest, FILE:POS (mysql-bin.000042:1234) or a GTID set")
	c.fs.BoolVar(&reset, "reset", false, "ignore the stored position and start at --from")
	c.fs.BoolVar(&recoverPurged, "recover-purged", false, "when the stored position's binlog is purged, stream from now instead of stopping (committed before any event) and print the gap's backfill window; run that backfill next")
	c.fs.BoolVar(&recoverBackfill, "recover-backfill", true, "with --recover-purged: backfill the gap's window in this process, beside the tail (false: only print the command)")
	c.fs.StringVar(&c.o.tz, "tz", "UTC", "time zone of the source's DATETIME wall clock, for the window of a recovered gap's backfill")
	c.fs.DurationVar(&recoverMargin, "recover-margin", 5*time.Minute, "with --recover-purged: start the gap's backfill window this long before the last commit carried (a transaction may stamp its rows when it begins)")
	c.fs.StringVar(&flavor, "flavor", "auto", "source server flavor: auto, mysql or mariadb")
	c.fs.UintVar(&serverID, "server-id", 0, "replica server id used on the source, unique among its replicas (default: derived from --tail-name)")
	c.fs.StringVar(&name, "tail-name", "", "name of this tail: its Kafka transactional id and position key (default: its tables' sources, db.table, joined by +; the built-in table's is the fixed tail's)")
	c.fs.DurationVar(&flushInterval, "flush-interval", 100*time.Millisecond, "longest a Kafka transaction of events stays open (bounds the added latency)")
	c.fs.IntVar(&flushEvents, "flush-events", 5000, "events that end a Kafka transaction early")
	c.fs.StringVar(&onTruncate, "on-truncate", "apply", "what a TRUNCATE of the source table does: apply (carried as a truncate event, op t, that empties the target) or fail (the tail stops with an error)")
	s, err := newStage(c, "tail", args, false)
	if err != nil {
		return err
	}
	start, err := tail.ParseFrom(from)
	if err != nil {
		return usagef("%v", err)
	}
	if onTruncate != "apply" && onTruncate != "fail" {
		return usagef("--on-truncate %q: want apply or fail", onTruncate)
	}
	if serverID > 1<<32-1 {
		return usagef("--server-id %d: must fit in 32 bits", serverID)
	}
	cf, err := openSourceConfigured(ctx, c, path)
	if err != nil {
		return err
	}
	// What the tail needs of the server first: a user who may not
	// replicate hears that, not that the table is not visible to it.
	err = tail.CheckServer(ctx, cf.src, flavor)
	var tables []*schema.Table
	if err == nil {
		tables, err = cf.resolve(ctx, false)
	}
	cf.close()
	if err != nil {
		return err
	}
	// The tail's position and the source's epoch are kept in the
	// configuration's state topic (openConfigured: the built-in table's is
	// <--topic>.progress, as ever); its source is the one the tables
	// resolved against.
	s.o.sourceDSN, _ = dsnOf(c.fs, "source-dsn", cf.cfg.sourceDSN, "")
	if path != "" {
		recoverBackfill = false // the gap's backfill of a file's tables is printed, not run
	}
	dsn, err := mysql.ParseDSN(s.o.sourceDSN)
	if err != nil {
		return usagef("--source-dsn: %v", err)
	}
	if dsn.Net != "" && dsn.Net != "tcp" {
		return usagef("--source-dsn: tail mode needs a tcp address, not %s", dsn.Net)
	}
	pcfg, err := s.producerConfig()
	if err != nil {
		return err
	}
	// Before any event: a consumer given no source DSN decodes them by
	// the description the tables resolved with.
	if err := s.describeSources(ctx, cf, tables); err != nil {
		return inStage("producer", err)
	}
	return s.withMetrics(ctx, func(ctx context.Context) error {
		src, _, err := openDB(ctx, "--source-dsn", s.o.sourceDSN, "source_db", 2, backfill.SourceSession, nil)
		if err != nil {
			return err
		}
		defer src.Close()
		cfg := tail.DefaultConfig()
		cfg.Addr, cfg.User, cfg.Password, cfg.TLS = dsn.Addr, dsn.User, dsn.Passwd, dsn.TLS
		cfg.Flavor, cfg.ServerID, cfg.Name = flavor, uint32(serverID), name
		cfg.From, cfg.Reset, cfg.RecoverPurged, cfg.RecoverMargin = start, reset, recoverPurged, recoverMargin
		cfg.Producer = pcfg
		cfg.FlushInterval, cfg.FlushEvents = flushInterval, flushEvents
		cfg.OnTruncate = onTruncate
		cfg.Database, cfg.Table, cfg.Tables = "", "", tables
		if err := cfg.Validate(); err != nil {
			return usagef("tail: %v", err)
		}
		tl, err := tail.New(cfg, src, tail.NewMetrics(s.reg), s.stageLog("tail"))
		if err != nil {
			return err
		}
		defer tl.Close()
		if _, err := tl.Ready(ctx); err != nil {
			return err
		}
		g := tl.Gap()
		autoGap := g != nil && recoverPurged && recoverBackfill && g.BackfillCommand() != ""
		if g != nil {
			g.WriteNotice(os.Stdout, autoGap)
		}
		s.ready.Store(true)
		t0 := time.Now()
		stop := startProgress(func(el time.Duration) string { return tl.Stats().Line(el) })
		if autoGap {
			err = tl.RunFillingGap(ctx, func(ctx context.Context, g *tail.Gap) error { return s.backfillGap(ctx, c, tl, g) })
		} else {
			err = tl.Run(ctx)
		}
		stop()
		st := tl.Stats()
		s.log.Info("tail summary", "events", st.Events, "kafka_transactions", st.KafkaTxs, "source_transactions", st.SourceTxs,
			"reconnects", st.Reconnects, "started_from", st.StartedFrom.String(), "position", st.Position.String(), "gtid", st.Position.GTID,
			"seconds", round(time.Since(t0).Seconds()))
		if err != nil {
			s.log.Error("tail failed", "err", err)
		}
		return err
	})
}

// backfillGap backfills a recovered gap's window of the built-in table
// into its topic, beside the running tail, with the backfill's own
// resumable progress, and records the gap as done.
func (s *stage) backfillGap(ctx context.Context, c *command, tl *tail.Tail, g *tail.Gap) error {
	loc, err := time.LoadLocation(s.o.tz)
	if err != nil {
		return usagef("--tz %q: %v", s.o.tz, err)
	}
	s.start, s.end = wallClock(g.Since, loc), wallClock(g.Until, loc)
	log := s.stageLog("backfill").With("gap_after", g.Lost.String())
	log.Info("tail: backfilling the gap beside the running tail", "start", s.start.Format(time.DateTime), "end", s.end.Format(time.DateTime), "tz", s.o.tz)
	if err := s.backfillConfigured(ctx, c, &backfillFlags{}); err != nil {
		return fmt.Errorf("backfill of the gap after %s (%s): %w", g.Lost.String(), g.BackfillCommand(), err)
	}
	if err := tl.GapBackfilled(ctx); err != nil {
		return err
	}
	n := s.counts()
	log.Info("tail: the gap is backfilled", "rows_read", n.Read, "rows_produced", n.Produced)
	fmt.Printf("tail: the gap is backfilled: %d rows read, %d produced to %s\n", n.Read, n.Produced, s.o.topic)
	return nil
}
