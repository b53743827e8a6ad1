package schema

import (
	"bufio"
	"context"
	"database/sql"
	_ "embed"
	"fmt"
	"strings"
	"unicode/utf8"
)

var (
	//go:embed sql/source.sql
	sourceDDL string
	//go:embed sql/target.sql
	targetDDL string
	//go:embed sql/target_lineage.sql
	lineageDDL string
	//go:embed sql/target_tombstones.sql
	tombstonesDDL string
)

// Table names. They are the earlier job's, so Sluice drops in beside it.
const (
	SourceTable = "raw_records"
	TargetTable = "records"
)

// TombstoneTable names the table of delete tombstones that sits beside a
// target table: records_tombstones for records.
func TombstoneTable(table string) string { return table + "_tombstones" }

// QuoteIdent quotes a database or table name for MySQL. Names come from flags,
// so they are quoted, never formatted in raw.
func QuoteIdent(name string) (string, error) {
	if name == "" || utf8.RuneCountInString(name) > 64 {
		return "", fmt.Errorf("identifier %q: must be 1 to 64 characters", name)
	}
	if strings.ContainsRune(name, 0) {
		return "", fmt.Errorf("identifier %q: contains a NUL byte", name)
	}
	return "`" + strings.ReplaceAll(name, "`", "``") + "`", nil
}

// MigrateSource creates the source database and raw_records if missing.
// db must be connected without a default database (it may not exist yet).
func MigrateSource(ctx context.Context, db *sql.DB, database string) error {
	return createTable(ctx, db, database, sourceDDL)
}

// MigrateTarget creates the target database and records if missing, adds
// the nullable lineage columns (source_id, source_version, loaded_at) to a
// records table that lacks them, in place, and creates records_tombstones
// and the truncate markers' table (TruncatesTable) beside it if missing.
// Running it again changes nothing.
func MigrateTarget(ctx context.Context, db *sql.DB, database string) error {
	if err := createTable(ctx, db, database, targetDDL); err != nil {
		return err
	}
	if err := createTable(ctx, db, database, tombstonesDDL); err != nil {
		return err
	}
	q, _ := QuoteIdent(database) // checked by createTable
	if _, err := db.ExecContext(ctx, truncatesDDL(q)); err != nil {
		return fmt.Errorf("migrate %s.%s: %w", database, TruncatesTable, err)
	}
	for _, col := range lineageColumns() {
		var n int
		err := db.QueryRowContext(ctx,
			`SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = ? AND table_name = ? AND column_name = ?`,
			database, TargetTable, col.name).Scan(&n)
		if err != nil {
			return fmt.Errorf("migrate %s.%s: look up column %s: %w", database, TargetTable, col.name, err)
		}
		if n > 0 {
			continue
		}
		stmt := fmt.Sprintf("ALTER TABLE %s.%s ADD COLUMN %s %s", q, TargetTable, col.name, col.def)
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("migrate %s.%s: add column %s: %w", database, TargetTable, col.name, err)
		}
	}
	return nil
}

type column struct{ name, def string }

// lineageColumns parses target_lineage.sql: one column a line, name first.
func lineageColumns() []column {
	var cols []column
	sc := bufio.NewScanner(strings.NewReader(lineageDDL))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "--") {
			continue
		}
		name, def, _ := strings.Cut(line, " ")
		cols = append(cols, column{name, strings.TrimSpace(def)})
	}
	return cols
}

func createTable(ctx context.Context, db *sql.DB, database, ddl string) error {
	q, err := QuoteIdent(database)
	if err != nil {
		return fmt.Errorf("migrate: database name: %w", err)
	}
	if _, err := db.ExecContext(ctx, "CREATE DATABASE IF NOT EXISTS "+q+" CHARACTER SET utf8mb4"); err != nil {
		return fmt.Errorf("migrate: create database %s: %w", database, err)
	}
	if _, err := db.ExecContext(ctx, strings.ReplaceAll(ddl, "{{db}}", q)); err != nil {
		return fmt.Errorf("migrate: create table in %s: %w", database, err)
	}
	return nil
}

// TargetReady reports whether the target records table exists with every
// lineage column, and its tombstone and truncate markers' tables beside it,
// so a consumer can write without migrating first.
func TargetReady(ctx context.Context, db *sql.DB, database string) (bool, error) {
	cols := lineageColumns()
	args := []any{database, TargetTable}
	for _, c := range cols {
		args = append(args, c.name)
	}
	args = append(args, database, TombstoneTable(TargetTable), TruncatesTable)
	var n, tables int
	err := db.QueryRowContext(ctx, `SELECT
		(SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = ? AND table_name = ?
			AND column_name IN (?`+strings.Repeat(",?", len(cols)-1)+`)),
		(SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = ? AND table_name IN (?, ?))`, args...).Scan(&n, &tables)
	if err != nil {
		return false, fmt.Errorf("check target %s.%s: %w", database, TargetTable, err)
	}
	return n == len(cols) && tables == 2, nil
}
