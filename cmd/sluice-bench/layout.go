package main

// The layout of the IoT tables (--layout, make bench LAYOUT=…): Sluice's
// own DDL (schema/sql, through `sluice migrate`), or the earlier job's
// (earlier.sql, issue 22), which Sluice keeps when it takes that job's
// tables over. The source, the ceiling and every target get the layout, so
// the ratios compare Sluice with the server on the same tables.

import (
	"context"
	"database/sql"
	_ "embed"
	"fmt"
	"slices"
	"strings"

	"github.com/sluice-dev/sluice/schema"
)

const (
	layoutDefault = "default" // the DDL Sluice creates
	layoutEarlier = "earlier" // earlier.sql: utf8mb4_unicode_ci and idx_device_event_time
)

// What the earlier layout has and Sluice's own has not.
const (
	earlierCollation = "utf8mb4_unicode_ci"
	earlierIndex     = "idx_device_event_time"
	dedupeIndex      = "uniq_dedupe"
)

// earlierIndexColumns are the columns of idx_device_event_time, and of
// uniq_dedupe, which it repeats.
var earlierIndexColumns = []string{"device_type", "event_type", "timestamp"}

// earlierTextColumns are the text columns the earlier job declared in
// earlierCollation.
var earlierTextColumns = []string{"device_type", "event_type", "message"}

//go:embed earlier.sql
var earlierSQL string

// earlierDDL is earlier.sql's CREATE TABLE of table (raw_records or
// records), for database.
func earlierDDL(database, table string) (string, error) {
	q, err := schema.QuoteIdent(database)
	if err != nil {
		return "", err
	}
	var code []string
	for _, line := range strings.Split(earlierSQL, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "--") {
			code = append(code, line)
		}
	}
	for _, stmt := range strings.Split(strings.Join(code, "\n"), ";") {
		stmt = strings.TrimSpace(stmt)
		if strings.HasPrefix(stmt, "CREATE TABLE {{db}}."+table+" (") {
			return strings.ReplaceAll(stmt, "{{db}}", q), nil
		}
	}
	return "", fmt.Errorf("earlier.sql: no CREATE TABLE {{db}}.%s", table)
}

// createDatabase creates database if it is missing and, on the earlier
// layout, table in it with the earlier job's DDL. On the default layout
// `sluice seed` or `sluice migrate` creates the table afterwards.
func (b *bench) createDatabase(ctx context.Context, database, table string) error {
	q, err := schema.QuoteIdent(database)
	if err != nil {
		return err
	}
	stmt := "CREATE DATABASE IF NOT EXISTS " + q + " CHARACTER SET utf8mb4"
	if b.layout == layoutEarlier {
		stmt += " COLLATE " + earlierCollation
	}
	if _, err := b.db.ExecContext(ctx, stmt); err != nil {
		return fmt.Errorf("create database %s: %w", database, err)
	}
	if b.layout != layoutEarlier {
		return nil
	}
	ddl, err := earlierDDL(database, table)
	if err != nil {
		return err
	}
	if _, err := b.db.ExecContext(ctx, ddl); err != nil {
		return fmt.Errorf("create %s.%s with the earlier job's DDL: %w", database, table, err)
	}
	return nil
}

// targetLayoutKept fails when, on the earlier layout, `sluice migrate` left
// database's records without the earlier job's collation or index: the
// figures would then be of another layout.
func (b *bench) targetLayoutKept(ctx context.Context, database string) error {
	if b.layout != layoutEarlier {
		return nil
	}
	why, err := layoutMismatch(ctx, b.db, database, schema.TargetTable, layoutEarlier)
	if err != nil {
		return err
	}
	if why != "" {
		return fmt.Errorf("after sluice migrate, %s", why)
	}
	return nil
}

// layoutMismatch says how database.table differs from layout, or "" when
// it has it: the earlier layout wants the table and its text columns in
// utf8mb4_unicode_ci and idx_device_event_time beside uniq_dedupe, both on
// (device_type, event_type, timestamp); the default layout wants neither
// that collation nor that index.
func layoutMismatch(ctx context.Context, db *sql.DB, database, table, layout string) (string, error) {
	name := database + "." + table
	var tableCollation string
	err := db.QueryRowContext(ctx, "SELECT COALESCE(table_collation, '') FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
		database, table).Scan(&tableCollation)
	if err != nil {
		return "", fmt.Errorf("layout of %s: look up the table: %w", name, err)
	}
	rows, err := db.QueryContext(ctx, "SELECT column_name, collation_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ? AND collation_name IS NOT NULL",
		database, table)
	if err != nil {
		return "", fmt.Errorf("layout of %s: look up the columns: %w", name, err)
	}
	collations := map[string]string{}
	for rows.Next() {
		var c, coll string
		if err := rows.Scan(&c, &coll); err != nil {
			rows.Close()
			return "", fmt.Errorf("layout of %s: %w", name, err)
		}
		collations[strings.ToLower(c)] = coll
	}
	if err := rows.Close(); err != nil {
		return "", fmt.Errorf("layout of %s: %w", name, err)
	}
	rows, err = db.QueryContext(ctx, "SELECT index_name, column_name, non_unique FROM information_schema.statistics WHERE table_schema = ? AND table_name = ? ORDER BY index_name, seq_in_index",
		database, table)
	if err != nil {
		return "", fmt.Errorf("layout of %s: look up the indexes: %w", name, err)
	}
	indexes, unique := map[string][]string{}, map[string]bool{}
	for rows.Next() {
		var idx, c string
		var nonUnique int
		if err := rows.Scan(&idx, &c, &nonUnique); err != nil {
			rows.Close()
			return "", fmt.Errorf("layout of %s: %w", name, err)
		}
		indexes[idx] = append(indexes[idx], strings.ToLower(c))
		unique[idx] = nonUnique == 0
	}
	if err := rows.Close(); err != nil {
		return "", fmt.Errorf("layout of %s: %w", name, err)
	}

	if layout != layoutEarlier {
		if cols, ok := indexes[earlierIndex]; ok {
			return fmt.Sprintf("%s has the earlier layout's index %s (%s)", name, earlierIndex, strings.Join(cols, ", ")), nil
		}
		for _, c := range earlierTextColumns {
			if collations[c] == earlierCollation {
				return fmt.Sprintf("%s's column %s is in the earlier layout's collation %s", name, c, earlierCollation), nil
			}
		}
		return "", nil
	}
	if tableCollation != earlierCollation {
		return fmt.Sprintf("%s's default collation is %q, not %s", name, tableCollation, earlierCollation), nil
	}
	for _, c := range earlierTextColumns {
		if collations[c] != earlierCollation {
			return fmt.Sprintf("%s's column %s has collation %q, not %s", name, c, collations[c], earlierCollation), nil
		}
	}
	for _, idx := range []string{dedupeIndex, earlierIndex} {
		cols, ok := indexes[idx]
		switch {
		case !ok:
			return fmt.Sprintf("%s has no index %s", name, idx), nil
		case !slices.Equal(cols, earlierIndexColumns):
			return fmt.Sprintf("%s's index %s is on (%s), not (%s)", name, idx, strings.Join(cols, ", "), strings.Join(earlierIndexColumns, ", ")), nil
		case unique[idx] != (idx == dedupeIndex):
			return fmt.Sprintf("%s's index %s is unique=%t, want unique=%t", name, idx, unique[idx], idx == dedupeIndex), nil
		}
	}
	return "", nil
}

// checkIoT fails the bench when a row of database's records differs from
// its row in source's raw_records (the message upper-cased; source_id, where the target has
// it, the source's id: `sluice migrate` adds it, `migrate --config` does
// not): the count alone would let a wrong value pass. Text is compared as
// bytes, not by the collation, which would take a case-only difference for
// equal.
func (b *bench) checkIoT(ctx context.Context, stage, source, database string) error {
	var hasSourceID int
	if err := b.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = ? AND table_name = ? AND column_name = 'source_id'",
		database, schema.TargetTable).Scan(&hasSourceID); err != nil {
		return fmt.Errorf("%s: look up %s.%s.source_id: %w", stage, database, schema.TargetTable, err)
	}
	cols := "date, message upper-cased, created_at, updated_at"
	cond := `BINARY t.device_type = BINARY s.device_type AND BINARY t.event_type = BINARY s.event_type
  AND t.date <=> s.date AND BINARY t.message <=> BINARY UPPER(s.message)
  AND t.created_at <=> s.created_at AND t.updated_at <=> s.updated_at`
	if hasSourceID > 0 {
		cols += ", source_id"
		cond += " AND t.source_id <=> s.id"
	}
	q := fmt.Sprintf(`SELECT COUNT(*) FROM %s.%s s JOIN %s.%s t
  ON t.device_type = s.device_type AND t.event_type = s.event_type AND t.timestamp = s.timestamp
WHERE s.timestamp >= ? AND s.timestamp < ?
  AND %s`, source, schema.SourceTable, database, schema.TargetTable, cond)
	var n int64
	if err := b.db.QueryRowContext(ctx, q, windowStart, windowEnd).Scan(&n); err != nil {
		return fmt.Errorf("%s: compare %s.%s with its source: %w", stage, database, schema.TargetTable, err)
	}
	if n != int64(b.rows) {
		return fmt.Errorf("%s: only %d of the %d rows of %s.%s equal their source row (%s)", stage, n, b.rows, database, schema.TargetTable, cols)
	}
	return nil
}
