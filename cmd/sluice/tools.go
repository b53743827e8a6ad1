package main

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sluice-dev/sluice/backfill"
	"github.com/sluice-dev/sluice/consumer"
	"github.com/sluice-dev/sluice/schema"
	"github.com/sluice-dev/sluice/seed"
	"github.com/sluice-dev/sluice/verify"
)

func runMigrate(ctx context.Context, args []string) error {
	c := newCommand("migrate")
	var path string
	c.fs.StringVar(&path, "config", "", "a configuration file (YAML): create each configured target table that is missing, add the lineage columns and the tombstone table; without it, the IoT tables of the flag-only setup")
	c.source()
	c.target()
	c.logging()
	s, err := newStage(c, "migrate", args, false)
	if err != nil {
		return err
	}
	if path != "" {
		return migrateConfigured(ctx, c, path)
	}
	src, sdb, err := openDB(ctx, "--source-dsn", s.o.sourceDSN, "source_db", 1, backfill.SourceSession, nil)
	if err != nil {
		return err
	}
	defer src.Close()
	if err := schema.MigrateSource(ctx, src, sdb); err != nil {
		return err
	}
	dst, tdb, err := openDB(ctx, "--target-dsn", s.o.targetDSN, "target_db", 1, consumer.TargetSession, nil)
	if err != nil {
		return err
	}
	defer dst.Close()
	if err := schema.MigrateTarget(ctx, dst, tdb); err != nil {
		return err
	}
	fmt.Printf("migrate: %s.%s and %s.%s are ready\n", sdb, schema.SourceTable, tdb, schema.TargetTable)
	return nil
}

func runSeed(ctx context.Context, args []string) error {
	c := newCommand("seed")
	c.source()
	c.window()
	c.fs.IntVar(&c.o.rows, "rows", 1000000, "rows to write, spread evenly over the window")
	c.logging()
	s, err := newStage(c, "seed", args, true)
	if err != nil {
		return err
	}
	cfg := seed.DefaultConfig()
	cfg.Rows, cfg.Start, cfg.End = s.o.rows, s.start, s.end
	if err := cfg.Validate(); err != nil {
		return usagef("seed: %v", err)
	}
	src, sdb, err := openDB(ctx, "--source-dsn", s.o.sourceDSN, "source_db", cfg.Writers+1, backfill.SourceSession, nil)
	if err != nil {
		return err
	}
	defer src.Close()
	if err := schema.MigrateSource(ctx, src, sdb); err != nil {
		return err
	}
	cfg.Database = sdb
	t0 := time.Now()
	var written atomic.Int64
	stop := startProgress(func(el time.Duration) string {
		n := written.Load()
		return fmt.Sprintf("seed %5.1f%% %d rows %.0f rows/s", 100*float64(n)/float64(max(cfg.Rows, 1)), n, float64(n)/el.Seconds())
	})
	err = seed.Run(ctx, src, cfg, func(n int64) { written.Store(n) })
	stop()
	if err != nil {
		return err
	}
	secs := time.Since(t0).Seconds()
	fmt.Printf("seed: %d rows in %s.%s for [%s, %s), %.1f s, %.0f rows/s\n", cfg.Rows, sdb, schema.SourceTable,
		s.start.Format(time.DateTime), s.end.Format(time.DateTime), secs, float64(cfg.Rows)/secs)
	return nil
}

func runVerify(ctx context.Context, args []string) error {
	c := newCommand("verify")
	var path, only string
	var slices int
	c.fs.StringVar(&path, "config", "", "a configuration file (YAML): reconcile every configured table (or --table's) for the window; without it, the IoT table")
	c.fs.StringVar(&only, "table", "", "with --config: only this configured source table (db.table)")
	c.fs.IntVar(&slices, "slices", 24, "with --config: equal time slices of the window compared one by one")
	c.source()
	c.target()
	c.window()
	c.fs.IntVar(&c.o.chunkRows, "chunk-rows", 10000, "source rows per compared time slice")
	c.logging()
	s, err := newStage(c, "verify", args, true)
	if err != nil {
		return err
	}
	if path != "" {
		return verifyConfigured(ctx, c, s, path, only, slices)
	}
	dst, tdb, err := openDB(ctx, "--target-dsn", s.o.targetDSN, "target_db", 3, consumer.TargetSession, nil)
	if err != nil {
		return err
	}
	defer dst.Close()
	return verifyWindow(ctx, s, dst, tdb)
}

// verifyWindow reconciles the stage's window against the source of
// --source-dsn and prints the table.
func verifyWindow(ctx context.Context, s *stage, dst *sql.DB, tdb string) error {
	cfg := verify.DefaultConfig()
	if s.o.chunkRows < 1 {
		return usagef("--chunk-rows %d: must be at least 1", s.o.chunkRows)
	}
	cfg.ChunkRows = s.o.chunkRows
	src, sdb, err := openDB(ctx, "--source-dsn", s.o.sourceDSN, "source_db", cfg.Workers+1, backfill.SourceSession, nil)
	if err != nil {
		return err
	}
	defer src.Close()
	cfg.SourceDatabase, cfg.TargetDatabase = sdb, tdb
	cfg.Start, cfg.End = s.start, s.end
	t0 := time.Now()
	rep, err := verify.Run(ctx, src, dst, cfg)
	if err != nil {
		return err
	}
	rep.WriteText(os.Stdout, s.start, s.end, time.Since(t0))
	if rep.OK() {
		return nil
	}
	return fmt.Errorf("%w: %d of %d slices of [%s, %s), first at slice %d", errMismatch, rep.Differing(), len(rep.Slices),
		s.start.Format(time.DateTime), s.end.Format(time.DateTime), rep.FirstDiff+1)
}

// verifyConfigured reconciles each configured table (or the one named) for
// the stage's window, printing each table's slices; any difference exits 3.
func verifyConfigured(ctx context.Context, c *command, s *stage, path, only string, slices int) error {
	cf, err := openConfigured(ctx, c, path)
	if err != nil {
		return err
	}
	defer cf.close()
	tables, err := cf.resolve(ctx, false)
	if err != nil {
		return err
	}
	var failed []string
	matched := false
	for _, t := range tables {
		if only != "" && !strings.EqualFold(t.Source.String(), only) {
			continue
		}
		matched = true
		t0 := time.Now()
		rep, err := verify.RunTable(ctx, cf.src, cf.dst, t, verify.TableConfig{Start: s.start, End: s.end, Slices: slices, MaxKeys: 5})
		if err != nil {
			return err
		}
		rep.WriteText(os.Stdout, s.start, s.end, time.Since(t0))
		if rep.OK() {
			continue
		}
		failed = append(failed, t.Source.String())
	}
	if !matched {
		return usagef("--table %s: not a configured source table of %s", only, path)
	}
	if len(failed) > 0 {
		return fmt.Errorf("%w: %s", errMismatch, strings.Join(failed, ", "))
	}
	return nil
}
