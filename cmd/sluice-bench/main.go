// Command sluice-bench is a development tool, not part of the product: it is
// what `make bench` runs to measure Sluice's throughput on the local stack
// (deploy/local/stack.sh). It is never shipped and nothing imports it.
//
// --table picks the table (make bench TABLE=…): iot, the default, is the
// above; iot-config runs steps 1 to 3 and then, instead of step 4, `sluice
// run --config` with the IoT table of deploy/sluice.example.yaml, into an
// empty target made by `sluice migrate --config` and again into the full
// one, so the generic path (consumer/tablewriter.go) and the fixed one
// compare in one run; mixed seeds bench_source.mixed, 21 columns of mixed
// types keyed on (tenant, code) (configured.go), from MariaDB's sequence
// engine, and measures its ceiling (into the target `sluice migrate
// --config` creates) and `sluice run --config`, first load and re-run.
//
// --layout earlier (make bench LAYOUT=earlier) creates bench_source's
// raw_records, the ceiling's and every target's records with the earlier
// RDB-to-RDB job's DDL (earlier.sql, layout.go: utf8mb4_unicode_ci and a
// second index idx_device_event_time repeating the unique key) before
// `sluice seed` and `sluice migrate` add what Sluice needs, for --table iot
// and iot-config; the default layout is Sluice's own DDL. The bench checks
// the layout of bench_source (reseeding it when it has the other one) and
// of every target after migrate, and names its results …-<rows>-earlier.json.
//
// One invocation measures everything on the same MariaDB instance and broker,
// so the figures compare with each other:
//
//  1. Seed: `sluice seed --rows ROWS` into bench_source for the fixed window
//     [2025-10-01, 2025-10-02). Seeding is deterministic, so a bench_source
//     that already holds exactly ROWS rows of the window is reused.
//  2. The ceiling: the server copying the window by itself, one
//     INSERT … SELECT … ON DUPLICATE KEY UPDATE into an empty bench_ceiling
//     (created by `sluice migrate`, so it has the same DDL as Sluice's
//     target), then the same statement again into the now-full table.
//  3. `sluice run` into an empty bench_target, then again into the full one
//     (the nightly re-run). Each measurement has its own topic and group, so
//     it reads the whole window.
//  4. Each stage alone: `sluice backfill` into a fresh topic, then
//     `sluice consume` from that filled topic into an empty bench_consume,
//     stopped with SIGTERM once the group's committed offsets reach the end
//     offsets. The overlapped figure is the `sluice run` of step 3.
//
// Sluice runs as the real binary (--sluice), one child process per step, and
// each child's peak RSS comes from getrusage. The bench prints a table (rows,
// seconds, rows/s, ratio to the ceiling, peak RSS) and writes the same
// figures as JSON to bench/results/<time>-<rows>.json and
// bench/results/latest-<rows>.json.
//
// Every SLUICE_* variable of the environment reaches the children and is
// recorded in the JSON, so settings can be compared run against run:
// `SLUICE_CONSUMERS=4 make bench`. With --profile (make bench PROFILE=1) each
// Sluice stage writes CPU and allocation profiles, through the binary's
// SLUICE_CPUPROFILE and SLUICE_MEMPROFILE, to
// bench/results/profiles/<stage>.{cpu,mem}.pprof.
package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/consumer"
	"github.com/sluice-dev/sluice/schema"
	"github.com/sluice-dev/sluice/seed"
)

// The window every bench seeds and moves. It is fixed so that a seeded
// bench_source can be reused from one invocation to the next.
const (
	windowStart = "2025-10-01 00:00:00"
	windowEnd   = "2025-10-02 00:00:00"
)

// The databases the bench owns on the server. It drops and recreates them.
const (
	sourceDB  = "bench_source"
	ceilingDB = "bench_ceiling"
	targetDB  = "bench_target"
	consumeDB = "bench_consume"
	configDB  = "bench_config" // the target of sluice run --config
)

// The tables --table measures.
const (
	tableIoT       = "iot"        // the fixed IoT path (no --config): the default
	tableIoTConfig = "iot-config" // the IoT table through both paths: fixed, then run --config with the shipped example
	tableMixed     = "mixed"      // a table of 21 mixed-type columns through run --config
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "sluice-bench:", err)
		os.Exit(1)
	}
}

// bench is one invocation: the servers, the binary under test and the
// figures gathered so far.
type bench struct {
	rows    int
	table   string // tableIoT, tableIoTConfig or tableMixed
	layout  string // layoutDefault or layoutEarlier: the DDL of the IoT tables
	keep    bool
	purge   bool          // purge the binary logs between steps
	base    *mysql.Config // server DSN without a database
	brokers string
	db      *sql.DB
	adm     *kadm.Client
	sluice  *sluice
	runID   string // names this invocation's topics and groups

	exampleConfig string // the shipped configuration whose IoT table --table iot-config runs
	configDir     string // where the configuration files of the measurements are written
	results       []result
}

func run() error {
	fs := flag.NewFlagSet("sluice-bench", flag.ExitOnError)
	rows := fs.Int("rows", 1000000, "rows to seed and move (the window is one day)")
	bin := fs.String("sluice", "bin/sluice", "the sluice binary under test")
	dsn := fs.String("mysql-dsn", envOr("SLUICE_BENCH_MYSQL_DSN", "sluice:sluice@tcp(127.0.0.1:3307)/"),
		"MariaDB/MySQL server DSN without a database [SLUICE_BENCH_MYSQL_DSN]")
	brokers := fs.String("brokers", envOr("SLUICE_BENCH_BROKERS", "127.0.0.1:9092"), "Kafka brokers, comma-separated [SLUICE_BENCH_BROKERS]")
	profile := fs.Bool("profile", false, "write CPU and allocation profiles of each Sluice stage under <results>/profiles")
	resultsDir := fs.String("results", "bench/results", "directory of the JSON results")
	tailRate := fs.Int("tail-rate", 0, "instead of the throughput bench, the tail bench (make bench-tail): source inserts per second with tail and consume running")
	tailPerTx := fs.Int("tail-rows-per-tx", 1, "tail bench: rows per source transaction")
	tailFor := fs.Duration("tail-duration", 30*time.Second, "tail bench: how long to insert at --tail-rate")
	tailBacklog := fs.Int("tail-backlog", 100000, "tail bench: single-row inserts in the backlog the tail alone then streams")
	tailConns := fs.Int("tail-connections", 0, "tail bench: source connections the inserts are dealt to; 0: one per 500 transactions/s, at least four")
	tailAim := fs.Duration("tail-p99-aim", time.Second, "tail bench: exit non-zero (after writing the results) when the p99 from source commit to target row seen is above it; 0: no aim")
	table := fs.String("table", tableIoT, "the table to measure: iot (the fixed path), iot-config (the IoT table through the fixed path and through run --config with --example-config's table), mixed (21 columns of mixed types through run --config)")
	example := fs.String("example-config", "deploy/sluice.example.yaml", "--table iot-config: the configuration file declaring the IoT table")
	layout := fs.String("layout", layoutDefault, "the IoT tables' DDL: default (what sluice migrate creates) or earlier (the earlier job's, earlier.sql: utf8mb4_unicode_ci and the extra index idx_device_event_time), for source, ceiling and targets alike")
	keep := fs.Bool("keep", false, "keep the bench target databases at the end (bench_source is always kept)")
	purge := fs.Bool("purge-binlogs", false, "between steps, purge the server's binary logs up to the current one (only on a server of your own: make bench passes it for the local stack)")
	_ = fs.Parse(os.Args[1:])
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (flags only)", fs.Arg(0))
	}
	switch *table {
	case tableIoT, tableIoTConfig:
		if err := checkRows(*rows); err != nil {
			return err
		}
	case tableMixed:
		if *rows < 1 {
			return fmt.Errorf("--rows %d: must be at least 1", *rows)
		}
	default:
		return fmt.Errorf("--table %q: want iot, iot-config or mixed", *table)
	}
	switch {
	case *layout != layoutDefault && *layout != layoutEarlier:
		return fmt.Errorf("--layout %q: want default or earlier", *layout)
	case *layout == layoutEarlier && (*table == tableMixed || *tailRate > 0):
		return fmt.Errorf("--layout earlier: only for the throughput bench of --table iot or iot-config (the layout is the IoT tables')")
	}
	base, err := mysql.ParseDSN(*dsn)
	if err != nil {
		return fmt.Errorf("--mysql-dsn: %w", err)
	}
	if base.DBName != "" {
		return fmt.Errorf("--mysql-dsn %q: give the server without a database; the bench uses its own bench_* databases", redactDSN(base))
	}
	if _, err := os.Stat(*bin); err != nil {
		return fmt.Errorf("--sluice %s: %w (build it with 'make build')", *bin, err)
	}
	if err := os.MkdirAll(*resultsDir, 0o755); err != nil {
		return err
	}
	unlock, err := lockResults(*resultsDir)
	if err != nil {
		return err
	}
	defer unlock()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	b := &bench{rows: *rows, table: *table, layout: *layout, exampleConfig: *example, keep: *keep, purge: *purge, base: base, brokers: *brokers, runID: fmt.Sprint(time.Now().UnixNano())}
	if b.sluice, err = newSluice(*bin, b.redact); err != nil {
		return err
	}
	if *profile {
		dir, err := filepath.Abs(filepath.Join(*resultsDir, "profiles"))
		if err != nil {
			return err
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		b.sluice.profileDir = dir
	}
	if b.configDir, err = os.MkdirTemp("", "sluice-bench-config-"); err != nil {
		return err
	}
	defer os.RemoveAll(b.configDir)
	if b.db, err = b.open(); err != nil {
		return err
	}
	defer b.db.Close()
	if err := b.db.PingContext(ctx); err != nil {
		return fmt.Errorf("mysql %s: %w (is the stack up? make up)", base.Addr, err)
	}
	kcl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(b.brokers, ",")...))
	if err != nil {
		return fmt.Errorf("--brokers %s: %w", b.brokers, err)
	}
	defer kcl.Close()
	if err := kcl.Ping(ctx); err != nil {
		return fmt.Errorf("kafka %s: %w (is the stack up? make up)", b.brokers, err)
	}
	b.adm = kadm.NewClient(kcl)

	if *tailRate > 0 {
		if *tailPerTx < 1 || *tailBacklog < 1 || *tailFor <= 0 || *tailConns < 0 {
			return fmt.Errorf("--tail-rows-per-tx, --tail-backlog and --tail-duration must be positive, --tail-connections not negative")
		}
		return b.tailBench(ctx, *tailRate, *tailPerTx, *tailFor, *tailBacklog, *tailConns, *tailAim, *resultsDir)
	}
	rep := b.newReport(ctx, *profile)
	if err := b.measure(ctx); err != nil {
		return err
	}
	rep.finish(b.results)
	rep.printTable(os.Stdout)
	paths, err := rep.write(*resultsDir)
	if err != nil {
		return err
	}
	fmt.Printf("\nwrote %s\n", strings.Join(paths, " and "))
	if *profile {
		var stages []string
		for _, r := range b.results {
			if len(r.Env) > 0 {
				stages = append(stages, r.Stage)
			}
		}
		fmt.Printf("profiles: %s/{%s}.{cpu,mem}.pprof, e.g. go tool pprof -top %s\n",
			b.sluice.profileDir, strings.Join(stages, ","), filepath.Join(*resultsDir, "profiles", stages[len(stages)-1]+".cpu.pprof"))
	}
	return nil
}

// checkRows rejects a row count the seed cannot fit into the one-day window
// with distinct dedupe keys.
func checkRows(rows int) error {
	if rows < 1 {
		return fmt.Errorf("--rows %d: must be at least 1", rows)
	}
	cfg := seed.DefaultConfig()
	cfg.Rows = rows
	cfg.Start, _ = time.Parse(time.DateTime, windowStart)
	cfg.End, _ = time.Parse(time.DateTime, windowEnd)
	if err := cfg.Validate(); err != nil {
		secs := int(cfg.End.Sub(cfg.Start) / time.Second)
		return fmt.Errorf("--rows %d: the bench window is one day, which holds at most %d rows (%d distinct keys a second): %w",
			rows, secs*cfg.Devices*len(seed.EventTypes), cfg.Devices*len(seed.EventTypes), err)
	}
	return nil
}

// measure runs every step in order; the table's order is the same.
func (b *bench) measure(ctx context.Context) error {
	steps := []func(context.Context) error{b.seed, b.ceiling, b.sluiceRuns, b.stagesAlone}
	switch b.table {
	case tableIoTConfig:
		steps = []func(context.Context) error{b.seed, b.ceiling, b.sluiceRuns, b.configRuns}
	case tableMixed:
		steps = []func(context.Context) error{b.seedMixed, b.ceilingMixed, b.configRuns}
	}
	for _, step := range steps {
		if err := b.purgeBinlogs(ctx); err != nil {
			return err
		}
		if err := step(ctx); err != nil {
			return err
		}
	}
	if !b.keep {
		for _, db := range []string{ceilingDB, targetDB, consumeDB, configDB} {
			if err := b.dropDatabase(ctx, db); err != nil {
				return err
			}
		}
	}
	return b.purgeBinlogs(ctx)
}

// purgeBinlogs, with --purge-binlogs, removes the server's binary logs up to
// the one it writes now. Every row the bench writes is logged (ROW, FULL
// images), about 1.5 GB a 1M-row bench and 30 GB at 20M; a day of benches on
// the local stack once filled 48 GB of disk.
func (b *bench) purgeBinlogs(ctx context.Context) error {
	if !b.purge {
		return nil
	}
	if _, err := b.db.ExecContext(ctx, "PURGE BINARY LOGS BEFORE NOW() + INTERVAL 1 SECOND"); err != nil {
		return fmt.Errorf("--purge-binlogs: %w", err)
	}
	return nil
}

// seed fills bench_source with ROWS rows for the window, unless it already
// holds exactly that: the same count and window always give the same rows.
func (b *bench) seed(ctx context.Context) error {
	n, exists, err := b.countWindow(ctx)
	if err != nil {
		return err
	}
	if exists {
		why, err := layoutMismatch(ctx, b.db, sourceDB, schema.SourceTable, b.layout)
		if err != nil {
			return err
		}
		if why != "" {
			fmt.Printf("== seed: %s, not the %s layout; dropping %s\n", why, b.layout, sourceDB)
			if err := b.dropDatabase(ctx, sourceDB); err != nil {
				return err
			}
			n, exists = 0, false
		}
	}
	if n == int64(b.rows) {
		fmt.Printf("== seed: %s.%s already holds the %d rows of [%s, %s); reusing it\n", sourceDB, schema.SourceTable, n, windowStart, windowEnd)
		b.add(result{Stage: "seed", Label: "seed (reused)", Rows: n, Note: "reused: bench_source already held exactly these rows"})
		return nil
	}
	if exists {
		fmt.Printf("== seed: %s holds %d rows of the window, not %d; dropping it\n", sourceDB, n, b.rows)
		if err := b.dropDatabase(ctx, sourceDB); err != nil {
			return err
		}
	}
	fmt.Printf("== seed: %d rows into %s (%s layout)\n", b.rows, sourceDB, b.layout)
	if err := b.createDatabase(ctx, sourceDB, schema.SourceTable); err != nil {
		return err
	}
	out, err := b.sluice.run(ctx, "", "seed", "--source-dsn", b.dsn(sourceDB), "--rows", fmt.Sprint(b.rows),
		"--start-at", windowStart, "--end-at", windowEnd)
	if err != nil {
		return err
	}
	if n, _, err = b.countWindow(ctx); err != nil {
		return err
	}
	if n != int64(b.rows) {
		return fmt.Errorf("seed: %s holds %d rows of the window after seeding, want %d", sourceDB, n, b.rows)
	}
	if why, err := layoutMismatch(ctx, b.db, sourceDB, schema.SourceTable, b.layout); err != nil {
		return fmt.Errorf("seed: %w", err)
	} else if why != "" {
		return fmt.Errorf("seed: after sluice seed, %s", why)
	}
	b.add(out.result("seed", "seed", n))
	return nil
}

// ceiling times the server's own INSERT … SELECT into an empty target, then
// the same statement into the full target.
func (b *bench) ceiling(ctx context.Context) error {
	if err := b.freshTarget(ctx, ceilingDB); err != nil {
		return err
	}
	q := fmt.Sprintf(`INSERT INTO %[1]s.%[2]s (date, timestamp, device_type, event_type, message, created_at, updated_at, source_id, loaded_at)
SELECT date, timestamp, device_type, event_type, UPPER(message), created_at, updated_at, id, NOW(6)
FROM %[3]s.%[4]s WHERE timestamp >= ? AND timestamp < ?
ON DUPLICATE KEY UPDATE date=VALUES(date), message=VALUES(message), created_at=VALUES(created_at),
  updated_at=VALUES(updated_at), source_id=VALUES(source_id), loaded_at=VALUES(loaded_at)`,
		ceilingDB, schema.TargetTable, sourceDB, schema.SourceTable)
	return b.timeCeiling(ctx, q, schema.TargetTable)
}

// timeCeiling runs q, the ceiling's INSERT … SELECT of the window into
// bench_ceiling's table, twice: into the empty table, then the full one.
func (b *bench) timeCeiling(ctx context.Context, q, table string) error {
	for _, m := range []struct{ stage, label string }{
		{"ceiling", "ceiling: INSERT…SELECT, empty target"},
		{"ceiling_rerun", "ceiling re-run: full target"},
	} {
		fmt.Printf("== %s\n", m.label)
		t0 := time.Now()
		if _, err := b.db.ExecContext(ctx, q, windowStart, windowEnd); err != nil {
			return fmt.Errorf("%s: INSERT … SELECT into %s: %w", m.stage, ceilingDB, err)
		}
		secs := time.Since(t0).Seconds()
		if err := b.checkTable(ctx, m.stage, ceilingDB, table); err != nil {
			return err
		}
		fmt.Printf("%s: %.2f s, %.0f rows/s\n", m.stage, secs, float64(b.rows)/secs)
		b.add(result{Stage: m.stage, Label: m.label, Rows: int64(b.rows), Seconds: secs, SQL: q})
	}
	return nil
}

// sluiceRuns times `sluice run` into an empty target, then into the full one.
// Each gets a new topic and group, so each reads the whole window.
func (b *bench) sluiceRuns(ctx context.Context) error {
	if err := b.freshTarget(ctx, targetDB); err != nil {
		return err
	}
	for _, m := range []struct{ stage, label string }{
		{"run", "sluice run, empty target (overlapped)"},
		{"rerun", "sluice re-run, full target"},
	} {
		topic := b.name(m.stage)
		fmt.Printf("== %s: topic and group %s\n", m.label, topic)
		out, err := b.sluice.run(ctx, m.stage, "run", "--source-dsn", b.dsn(sourceDB), "--target-dsn", b.dsn(targetDB),
			"--brokers", b.brokers, "--topic", topic, "--group", topic, "--start-at", windowStart, "--end-at", windowEnd, "--metrics-addr=")
		b.forget(ctx, topic)
		if err != nil {
			return err
		}
		if err := b.checkTarget(ctx, m.stage, targetDB); err != nil {
			return err
		}
		b.add(out.result(m.stage, m.label, int64(b.rows)))
	}
	return nil
}

// stagesAlone times the backfill into a fresh topic, then a consumer applying
// that filled topic to an empty target.
func (b *bench) stagesAlone(ctx context.Context) error {
	topic := b.name("stages")
	defer b.forget(ctx, topic)
	fmt.Printf("== backfill alone: topic %s\n", topic)
	out, err := b.sluice.run(ctx, "backfill", "backfill", "--source-dsn", b.dsn(sourceDB), "--brokers", b.brokers,
		"--topic", topic, "--start-at", windowStart, "--end-at", windowEnd, "--metrics-addr=")
	if err != nil {
		return err
	}
	ends, err := consumer.EndOffsets(ctx, b.adm, topic)
	if err != nil {
		return err
	}
	var produced int64
	for _, e := range ends {
		produced += e
	}
	if produced != int64(b.rows) {
		return fmt.Errorf("backfill: topic %s holds %d records, want %d", topic, produced, b.rows)
	}
	b.add(out.result("backfill", "backfill alone (produce)", produced))

	if err := b.freshTarget(ctx, consumeDB); err != nil {
		return err
	}
	fmt.Printf("== consume alone: topic %s into empty %s\n", topic, consumeDB)
	out, err = b.sluice.consumeUntil(ctx, "consume", func(ctx context.Context) error {
		return consumer.WaitCaughtUp(ctx, b.adm, topic, topic, ends, 100*time.Millisecond)
	}, "consume", "--target-dsn", b.dsn(consumeDB), "--brokers", b.brokers, "--topic", topic, "--group", topic, "--metrics-addr=")
	if err != nil {
		return err
	}
	if err := b.checkTarget(ctx, "consume", consumeDB); err != nil {
		return err
	}
	b.add(out.result("consume", "consume alone (filled topic, empty target)", produced))
	return nil
}

// add records a result, with its ratio to the ceiling it compares with:
// first loads against the empty-target ceiling, re-runs against the
// ceiling's re-run.
func (b *bench) add(r result) {
	if r.Seconds > 0 {
		r.RowsPerSecond = float64(r.Rows) / r.Seconds
	}
	against := ""
	switch r.Stage {
	case "run", "run_config", "backfill", "consume":
		against = "ceiling"
	case "rerun", "rerun_config":
		against = "ceiling_rerun"
	}
	for _, c := range b.results {
		if against != "" && c.Stage == against && c.RowsPerSecond > 0 {
			r.RatioTo, r.Ratio = against, r.RowsPerSecond/c.RowsPerSecond
		}
	}
	b.results = append(b.results, r)
}

// name is a topic (and group) name no earlier measurement used.
func (b *bench) name(stage string) string { return "bench." + b.runID + "." + stage }

// forget deletes a measurement's topic and group, so the broker does not keep
// every bench's records. A failure is only reported.
func (b *bench) forget(ctx context.Context, topic string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	resp, err := b.adm.DeleteTopics(ctx, topic)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "sluice-bench: warning: delete topic %s: %v\n", topic, err)
	}
	if _, err := b.adm.DeleteGroups(ctx, topic); err != nil {
		fmt.Fprintf(os.Stderr, "sluice-bench: warning: delete group %s: %v\n", topic, err)
	}
}

// open connects to the server as the bench's own client, with the session
// settings Sluice uses (UTC, client-side interpolation).
func (b *bench) open() (*sql.DB, error) {
	cfg := b.base.Clone()
	cfg.ParseTime, cfg.Loc, cfg.InterpolateParams = true, time.UTC, true
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.Params == nil {
		cfg.Params = map[string]string{}
	}
	cfg.Params["time_zone"] = "'+00:00'"
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("--mysql-dsn: %w", err)
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(2)
	return db, nil
}

// dsn is the server DSN with database set, for the sluice children.
func (b *bench) dsn(database string) string {
	cfg := b.base.Clone()
	cfg.DBName = database
	return cfg.FormatDSN()
}

// redact hides the server password wherever the bench prints or records a
// command line.
func (b *bench) redact(s string) string {
	if b.base.Passwd == "" {
		return s
	}
	return strings.ReplaceAll(s, ":"+b.base.Passwd+"@", ":***@")
}

func redactDSN(cfg *mysql.Config) string {
	c := cfg.Clone()
	if c.Passwd != "" {
		c.Passwd = "***"
	}
	return c.FormatDSN()
}

// freshTarget drops database and recreates it with `sluice migrate`, so the
// target has exactly the DDL Sluice itself would create, or on the earlier
// layout the earlier job's table as migrate leaves it.
func (b *bench) freshTarget(ctx context.Context, database string) error {
	if err := b.dropDatabase(ctx, database); err != nil {
		return err
	}
	if err := b.createDatabase(ctx, database, schema.TargetTable); err != nil {
		return err
	}
	if _, err := b.sluice.run(ctx, "", "migrate", "--source-dsn", b.dsn(sourceDB), "--target-dsn", b.dsn(database)); err != nil {
		return err
	}
	return b.targetLayoutKept(ctx, database)
}

func (b *bench) dropDatabase(ctx context.Context, database string) error {
	q, err := schema.QuoteIdent(database)
	if err != nil {
		return err
	}
	if _, err := b.db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+q); err != nil {
		return fmt.Errorf("drop database %s: %w", database, err)
	}
	return nil
}

// countWindow counts bench_source's rows in the window; exists says whether
// its table is there at all.
func (b *bench) countWindow(ctx context.Context) (n int64, exists bool, err error) {
	err = b.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
		sourceDB, schema.SourceTable).Scan(&n)
	if err != nil || n == 0 {
		return 0, false, err
	}
	err = b.db.QueryRowContext(ctx, fmt.Sprintf("SELECT COUNT(*) FROM %s.%s WHERE timestamp >= ? AND timestamp < ?", sourceDB, schema.SourceTable),
		windowStart, windowEnd).Scan(&n)
	if err != nil {
		return 0, true, fmt.Errorf("count %s.%s: %w", sourceDB, schema.SourceTable, err)
	}
	return n, true, nil
}

// checkTarget fails the bench when a measurement did not leave exactly the
// window's rows in its target, each equal to its source row (checkIoT): a
// fast wrong answer is no result.
func (b *bench) checkTarget(ctx context.Context, stage, database string) error {
	return b.checkTable(ctx, stage, database, schema.TargetTable)
}

func (b *bench) checkTable(ctx context.Context, stage, database, table string) error {
	var n int64
	if err := b.db.QueryRowContext(ctx, fmt.Sprintf("SELECT COUNT(*) FROM %s.%s", database, table)).Scan(&n); err != nil {
		return fmt.Errorf("%s: count %s.%s: %w", stage, database, table, err)
	}
	if n != int64(b.rows) {
		return fmt.Errorf("%s: %s.%s holds %d rows, want %d", stage, database, table, n, b.rows)
	}
	if table == schema.TargetTable {
		return b.checkIoT(ctx, stage, sourceDB, database)
	}
	return nil
}

// lockResults keeps two benches from sharing the stack (and the bench_*
// databases) at once: their timings would both be wrong.
func lockResults(dir string) (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("another sluice-bench holds %s; wait for it (two benches on one stack measure nothing)", f.Name())
		}
		return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	return func() { f.Close() }, nil
}

func envOr(name, def string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return def
}
