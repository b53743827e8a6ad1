package main

// The configured-table benches (--table mixed, --table iot-config): the
// generic path of `sluice run --config` (consumer/tablewriter.go), on a
// table of mixed types or on the IoT table as the shipped example
// configuration declares it.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/schema"
)

// The mixed table: 21 columns of most kinds the text protocol carries, a
// TIMESTAMP(6) window column and a composite key (tenant, code). Its
// comment versions the definition and the seed: a bench_source.mixed with
// another comment was seeded by another version of this file and is
// dropped.
const (
	mixedTable   = "mixed"
	mixedVersion = "sluice-bench mixed v1"
	mixedDDL     = `CREATE TABLE %s.%s (
  id BIGINT UNSIGNED NOT NULL,
  tenant VARCHAR(32) NOT NULL,
  code INT NOT NULL,
  ts TIMESTAMP(6) NOT NULL DEFAULT '2025-10-01 00:00:00',
  amount DECIMAL(20,6) NOT NULL,
  ratio DOUBLE NULL,
  name VARCHAR(100) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  note TEXT CHARACTER SET utf8mb4 NULL,
  happened DATETIME(6) NULL,
  day DATE NOT NULL,
  tod TIME NULL,
  doc JSON NULL,
  state ENUM('new','open','closed') NOT NULL,
  tags SET('a','b','c','d') NOT NULL,
  flags BIT(8) NOT NULL,
  digest VARBINARY(32) NOT NULL,
  payload BLOB NULL,
  level TINYINT NOT NULL,
  yr YEAR NULL,
  country CHAR(2) NOT NULL,
  counter BIGINT NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY tenant_code (tenant, code),
  KEY ts (ts)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COMMENT='%s'`
)

// mixedColumns are the mixed table's columns, in order.
var mixedColumns = []string{"id", "tenant", "code", "ts", "amount", "ratio", "name", "note", "happened", "day", "tod", "doc",
	"state", "tags", "flags", "digest", "payload", "level", "yr", "country", "counter"}

// mixedSelect (arguments 4 to 7: rows, window start, first and last seq)
// computes row seq (1..rows) of the mixed table from MariaDB's
// sequence engine: deterministic, spread over the window in order, NULLs in
// ratio, note, happened, tod, doc, payload and yr.
const mixedSelect = `SELECT seq,
  CONCAT('t', seq %% 16),
  seq - %[4]d DIV 2,
  TIMESTAMP('%[5]s') + INTERVAL ((seq - 1) * 86400000000 DIV %[4]d) MICROSECOND,
  seq * 1.000001 - 500000,
  IF(seq %% 11 = 0, NULL, seq / 7.0),
  CONCAT('🦄 naïve "q" ', seq),
  IF(seq %% 7 = 0, NULL, REPEAT(CONCAT('lorem ipsum ', seq, ' '), 1 + seq %% 5)),
  IF(seq %% 13 = 0, NULL, TIMESTAMP('2025-01-01') + INTERVAL seq * 1234567 MICROSECOND),
  DATE('2000-01-01') + INTERVAL seq %% 10000 DAY,
  IF(seq %% 17 = 0, NULL, SEC_TO_TIME(seq %% 200000 - 100000)),
  IF(seq %% 19 = 0, NULL, JSON_OBJECT('n', seq, 's', CONCAT('é', seq), 'a', JSON_ARRAY(1, NULL, seq %% 2 = 0))),
  1 + seq %% 3,
  seq %% 16,
  seq %% 256,
  UNHEX(MD5(seq)),
  IF(seq %% 5 = 0, NULL, REPEAT(UNHEX(SHA1(seq)), 1 + seq %% 4)),
  seq %% 256 - 128,
  IF(seq %% 23 = 0, NULL, 1901 + seq %% 255),
  ELT(1 + seq %% 4, 'FR', 'DE', 'US', 'JP'),
  seq * 2654435761
FROM (SELECT CAST(seq AS SIGNED) AS seq FROM %[1]s.seq_%[6]d_to_%[7]d) s`

// seedMixed fills bench_source.mixed with ROWS rows in the window, unless
// it already holds exactly those (same count, same definition).
func (b *bench) seedMixed(ctx context.Context) error {
	var comment string
	var n int64
	err := b.db.QueryRowContext(ctx, "SELECT table_comment FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
		sourceDB, mixedTable).Scan(&comment)
	exists := err == nil
	if exists && comment == mixedVersion {
		if err := b.db.QueryRowContext(ctx, fmt.Sprintf("SELECT COUNT(*) FROM %s.%s WHERE ts >= ? AND ts < ?", sourceDB, mixedTable),
			windowStart, windowEnd).Scan(&n); err != nil {
			return fmt.Errorf("seed: count %s.%s: %w", sourceDB, mixedTable, err)
		}
		if n == int64(b.rows) {
			fmt.Printf("== seed: %s.%s already holds the %d rows of [%s, %s); reusing it\n", sourceDB, mixedTable, n, windowStart, windowEnd)
			b.add(result{Stage: "seed", Label: "seed (reused)", Rows: n, Note: "reused: bench_source.mixed already held exactly these rows"})
			return nil
		}
	}
	fmt.Printf("== seed: %d rows into %s.%s (INSERT … SELECT from the sequence engine)\n", b.rows, sourceDB, mixedTable)
	t0 := time.Now()
	stmts := []string{
		"CREATE DATABASE IF NOT EXISTS " + sourceDB + " CHARACTER SET utf8mb4",
		fmt.Sprintf("DROP TABLE IF EXISTS %s.%s", sourceDB, mixedTable),
		fmt.Sprintf(mixedDDL, sourceDB, mixedTable, mixedVersion),
	}
	for _, q := range stmts {
		if _, err := b.db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("seed: %s: %w", firstLine(q), err)
		}
	}
	// Chunks of 100,000 rows keep each transaction's undo small.
	const chunk = 100000
	for lo := 1; lo <= b.rows; lo += chunk {
		hi := min(b.rows, lo+chunk-1)
		q := fmt.Sprintf("INSERT INTO %[1]s.%[2]s (%[3]s) "+mixedSelect, sourceDB, mixedTable, strings.Join(mixedColumns, ", "),
			b.rows, windowStart, lo, hi)
		if _, err := b.db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("seed: %s.%s rows %d to %d: %w (the seed needs MariaDB's sequence engine)", sourceDB, mixedTable, lo, hi, err)
		}
	}
	secs := time.Since(t0).Seconds()
	if err := b.db.QueryRowContext(ctx, fmt.Sprintf("SELECT COUNT(*) FROM %s.%s WHERE ts >= ? AND ts < ?", sourceDB, mixedTable),
		windowStart, windowEnd).Scan(&n); err != nil {
		return fmt.Errorf("seed: count %s.%s: %w", sourceDB, mixedTable, err)
	}
	if n != int64(b.rows) {
		return fmt.Errorf("seed: %s.%s holds %d rows of the window after seeding, want %d", sourceDB, mixedTable, n, b.rows)
	}
	fmt.Printf("seed: %.2f s\n", secs)
	b.add(result{Stage: "seed", Label: "seed", Rows: n, Seconds: secs})
	return nil
}

// configTable is one table of a bench configuration file.
type configTable struct {
	source, target string // db.table
}

// writeConfig writes the configuration of one measurement: the table into
// database's target, through topic. For the mixed table it is written
// here; for the IoT table it is the shipped example's, with the databases
// and the topic replaced, so the bench measures what an operator runs.
func (b *bench) writeConfig(database, topic string) (string, error) {
	var yaml string
	switch b.table {
	case tableMixed:
		yaml = fmt.Sprintf(`kafka:
  state_topic: %[5]s.progress
tables:
  - source: %[1]s.%[2]s
    target: %[3]s.%[4]s
    id: id
    window: ts
    key: [tenant, code]
    topic: %[5]s
`, sourceDB, mixedTable, database, mixedTable, topic)
	default:
		raw, err := os.ReadFile(b.exampleConfig)
		if err != nil {
			return "", fmt.Errorf("--example-config: %w", err)
		}
		yaml = string(raw)
		// Each measurement has its own topic and state topic (the
		// backfill's progress), so each reads the whole window.
		for _, r := range []struct{ re, to string }{
			{`(?m)^(\s+- source: )source_db\.` + schema.SourceTable + `\b`, "${1}" + sourceDB + "." + schema.SourceTable},
			{`(?m)^(\s+target: )target_db\.` + schema.TargetTable + `\b`, "${1}" + database + "." + schema.TargetTable},
			{`(?m)^(\s+topic: )sluice\.` + schema.SourceTable + `( |$)`, "${1}" + topic + "${2}"},
			{`(?m)^(\s+state_topic: )\S+`, "${1}" + topic + ".progress"},
		} {
			re := regexp.MustCompile(r.re)
			if n := len(re.FindAllStringIndex(yaml, -1)); n != 1 {
				return "", fmt.Errorf("--example-config %s: want exactly one line matching %s to replace, found %d", b.exampleConfig, r.re, n)
			}
			yaml = re.ReplaceAllString(yaml, r.to)
		}
	}
	path := filepath.Join(b.configDir, database+".yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		return "", err
	}
	return path, nil
}

// freshConfigured drops database and recreates its table with `sluice
// migrate --config`, so the target has exactly the DDL the configured path
// creates (lineage columns, tombstone and truncate tables).
func (b *bench) freshConfigured(ctx context.Context, database, topic string) (string, error) {
	if err := b.dropDatabase(ctx, database); err != nil {
		return "", err
	}
	if err := b.createDatabase(ctx, database, schema.TargetTable); err != nil { // the earlier layout's records too (layout.go)
		return "", err
	}
	path, err := b.writeConfig(database, topic)
	if err != nil {
		return "", err
	}
	if _, err = b.sluice.run(ctx, "", "migrate", "--config", path, "--source-dsn", b.dsn(sourceDB), "--target-dsn", b.dsn(database)); err != nil {
		return path, err
	}
	return path, b.targetLayoutKept(ctx, database)
}

// ceilingMixed times the server's own INSERT … SELECT … ON DUPLICATE KEY
// UPDATE of the mixed table into the target `sluice migrate --config`
// made, empty then full.
func (b *bench) ceilingMixed(ctx context.Context) error {
	if _, err := b.freshConfigured(ctx, ceilingDB, b.name("ceiling")); err != nil {
		return err
	}
	// The configuration keeps id: a column like the others.
	cols := mixedColumns
	var assign []string
	for _, c := range cols {
		if c != "tenant" && c != "code" {
			assign = append(assign, c+"=VALUES("+c+")")
		}
	}
	assign = append(assign, "loaded_at=VALUES(loaded_at)")
	q := fmt.Sprintf(`INSERT INTO %[1]s.%[2]s (%[3]s, loaded_at)
SELECT %[3]s, NOW(6) FROM %[4]s.%[2]s WHERE ts >= ? AND ts < ?
ON DUPLICATE KEY UPDATE %[5]s`, ceilingDB, mixedTable, strings.Join(cols, ", "), sourceDB, strings.Join(assign, ", "))
	return b.timeCeiling(ctx, q, mixedTable)
}

// configRuns times `sluice run --config` into an empty target made by
// `sluice migrate --config`, then into the full one.
func (b *bench) configRuns(ctx context.Context) error {
	table := schema.TargetTable
	if b.table == tableMixed {
		table = mixedTable
	}
	path, err := b.freshConfigured(ctx, configDB, b.name("config"))
	if err != nil {
		return err
	}
	for _, m := range []struct{ stage, label string }{
		{"run_config", "sluice run --config, empty target"},
		{"rerun_config", "sluice run --config re-run, full target"},
	} {
		topic := b.name(m.stage)
		if path, err = b.writeConfig(configDB, topic); err != nil {
			return err
		}
		fmt.Printf("== %s: topic and group %s\n", m.label, topic)
		out, err := b.sluice.run(ctx, m.stage, "run", "--config", path, "--source-dsn", b.dsn(sourceDB), "--target-dsn", b.dsn(configDB),
			"--brokers", b.brokers, "--group", topic, "--start-at", windowStart, "--end-at", windowEnd, "--metrics-addr=")
		b.forget(ctx, topic)
		if err != nil {
			return err
		}
		if want := fmt.Sprintf(" %d records applied", b.rows); !strings.Contains(out.summary, want) {
			return fmt.Errorf("%s: sluice's summary %q does not say%s: it did not read the whole window", m.stage, out.summary, want)
		}
		if err := b.checkTable(ctx, m.stage, configDB, table); err != nil {
			return err
		}
		if b.table == tableMixed {
			if err := b.checkMixed(ctx, m.stage, configDB); err != nil {
				return err
			}
		}
		b.add(out.result(m.stage, m.label, int64(b.rows)))
	}
	return nil
}

// checkMixed fails the bench when a row of database's mixed table differs
// from its source row in any column: the count alone would let a wrong
// value pass.
func (b *bench) checkMixed(ctx context.Context, stage, database string) error {
	var same []string
	for _, c := range mixedColumns {
		same = append(same, "BINARY s."+c+" <=> BINARY t."+c)
	}
	q := fmt.Sprintf("SELECT COUNT(*) FROM %s.%s s JOIN %s.%s t ON t.tenant = s.tenant AND t.code = s.code WHERE s.ts >= ? AND s.ts < ? AND NOT (%s)",
		sourceDB, mixedTable, database, mixedTable, strings.Join(same, " AND "))
	var n int64
	if err := b.db.QueryRowContext(ctx, q, windowStart, windowEnd).Scan(&n); err != nil {
		return fmt.Errorf("%s: compare %s.%s with its source: %w", stage, database, mixedTable, err)
	}
	if n != 0 {
		return fmt.Errorf("%s: %d rows of %s.%s differ from their source rows", stage, n, database, mixedTable)
	}
	return nil
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}
