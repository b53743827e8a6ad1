package main

import (
	"context"
	"flag"
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
	c.fs.StringVar(&path, "config", "", "a configuration file (YAML): create each configured target table that is missing, add the lineage columns and the tombstone table; without it, the built-in IoT table's source and target")
	c.source()
	c.target()
	c.logging()
	s, err := newStage(c, "migrate", args, false)
	if err != nil {
		return err
	}
	if path == "" {
		if err := migrateBuiltin(ctx, s); err != nil {
			return err
		}
	}
	return migrateConfigured(ctx, c, path)
}

// migrateBuiltin creates what the built-in IoT table needs beyond what
// migrateConfigured makes: its source table (for seed and the demo;
// a configured source is never created) and its target records as the
// flag-only setup always made it (with its own auto-increment id), so a
// new deployment gets the same table an older one has.
func migrateBuiltin(ctx context.Context, s *stage) error {
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
	return schema.MigrateTarget(ctx, dst, tdb)
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
	c.fs.StringVar(&path, "config", "", "a configuration file (YAML): reconcile every configured table (or --table's) for the window; without it, the built-in IoT table")
	c.fs.StringVar(&only, "table", "", "only this configured source table (db.table)")
	c.fs.IntVar(&slices, "slices", 24, "equal time slices of the window compared one by one (with --config; without it, --chunk-rows decides)")
	c.source()
	c.target()
	c.window()
	c.fs.IntVar(&c.o.chunkRows, "chunk-rows", 10000, "source rows per compared time slice: without --config, or when given, instead of --slices")
	c.logging()
	s, err := newStage(c, "verify", args, true)
	if err != nil {
		return err
	}
	if s.o.chunkRows < 1 {
		return usagef("--chunk-rows %d: must be at least 1", s.o.chunkRows)
	}
	vc := verify.TableConfig{Slices: slices}
	if path == "" && !isSet(c.fs, "slices") || isSet(c.fs, "chunk-rows") {
		vc.ChunkRows = s.o.chunkRows
	}
	return verifyConfigured(ctx, c, s, path, only, vc)
}

// isSet says whether the command line or its SLUICE_* variable set the flag.
func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// verifyConfigured reconciles each configured table (or the one named) for
// the stage's window, printing each table's slices; any difference exits 3.
func verifyConfigured(ctx context.Context, c *command, s *stage, path, only string, vc verify.TableConfig) error {
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
		rep, err := verify.RunTable(ctx, cf.src, cf.dst, t, verify.TableConfig{Start: s.start, End: s.end, Slices: vc.Slices, ChunkRows: vc.ChunkRows, MaxKeys: 5})
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
		return usagef("--table %s: not a source table of %s", only, cf.desc())
	}
	if len(failed) > 0 {
		return fmt.Errorf("%w: %s", errMismatch, strings.Join(failed, ", "))
	}
	return nil
}
