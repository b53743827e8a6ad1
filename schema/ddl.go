package schema

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// DDL for the tables of a configuration (sluice migrate --config): a target
// table Resolve planned because it was missing, the lineage columns Sluice
// writes beside the traveling ones, and the tombstone table of deleted keys.
// The IoT table of the flag-only setup keeps its own DDL (migrate.go).

// Lineage columns of a configured target table: the version of the source
// change a row holds, and when Sluice wrote it.
var tableLineage = []column{
	{"source_version", "BIGINT UNSIGNED NULL COMMENT 'version of the source change: epoch << 52 | binlog file sequence << 32 | offset'"},
	{"loaded_at", "DATETIME(6) NULL COMMENT 'when Sluice last wrote the row (UTC)'"},
}

// plannedTarget is the target a missing table gets: every source column
// under its target name, fit for what its transforms make of it (a hash is
// 64 ASCII characters; a null transform needs NULL), and the source's
// unique indexes under the target names, plus the declared key's when no
// source index has exactly its columns.
func (r *resolver) plannedTarget(srcIdx []Index) ([]Column, []Index) {
	targetName := func(n string) string {
		for from, to := range r.spec.Columns.Rename {
			if strings.EqualFold(from, n) {
				return to
			}
		}
		return n
	}
	cols := make([]Column, len(r.srcCols))
	for i, c := range r.srcCols {
		c.Name, c.Generated, c.AutoIncrement = targetName(c.Name), false, false
		for _, ts := range specFor(r.spec.Transforms, r.srcCols[i].Name) {
			switch ts.Name {
			case TransformHash:
				c.DataType, c.ColumnType, c.Length, c.Charset, c.Collation = "char", "char(64)", 64, "ascii", "ascii_general_ci"
			case TransformNull:
				c.Nullable = true
			}
		}
		cols[i] = c
	}
	idx := make([]Index, 0, len(srcIdx)+1)
	for _, i := range srcIdx {
		named := Index{Name: i.Name}
		for _, c := range i.Columns {
			named.Columns = append(named.Columns, targetName(c))
		}
		idx = append(idx, named)
	}
	if len(r.spec.Key) > 0 {
		var key []string
		for _, n := range r.spec.Key {
			key = append(key, targetName(n))
		}
		found := false
		for _, i := range idx {
			found = found || sameColumns(i.Columns, key)
		}
		if !found {
			idx = append(idx, Index{Name: "sluice_key", Columns: key})
		}
	}
	return cols, idx
}

// CreateTargetDDL is the CREATE TABLE of a target Resolve planned
// (Table.Create): the traveling columns with their types, character sets
// and nullability, the lineage columns, the key as the primary key, and the
// source's other unique indexes whose columns all travel as plain indexes.
func CreateTargetDDL(t *Table) (string, error) {
	name, err := t.Target.Quoted()
	if err != nil {
		return "", err
	}
	var lines []string
	travels := map[string]bool{}
	for _, c := range t.Columns {
		def, err := columnDef(c.Target)
		if err != nil {
			return "", fmt.Errorf("create %s: %w", t.Target, err)
		}
		lines = append(lines, def)
		travels[strings.ToLower(c.Target.Name)] = true
	}
	for _, l := range tableLineage {
		lines = append(lines, "`"+l.name+"` "+l.def)
	}
	keyCols := targetNames(t.KeyColumns())
	cols, err := quoteList(keyCols)
	if err != nil {
		return "", err
	}
	// The key is the one unique index: a second one (the source's id, an
	// email) would let the upsert of one key land on another key's row
	// when their changes arrive in another order than the source made
	// them (another partition), and mix the two rows. The source's other
	// unique indexes become plain ones, for the queries users run.
	lines = append(lines, "PRIMARY KEY ("+cols+")")
	for _, i := range t.Indexes {
		all := true
		for _, c := range i.Columns {
			all = all && travels[strings.ToLower(c)]
		}
		if !all || sameColumns(i.Columns, keyCols) {
			continue
		}
		icols, err := quoteList(i.Columns)
		if err != nil {
			return "", fmt.Errorf("create %s: index %s: %w", t.Target, i.Name, err)
		}
		name := i.Name
		if name == "PRIMARY" {
			name = "source_primary"
		}
		iname, err := QuoteIdent(name)
		if err != nil {
			return "", err
		}
		lines = append(lines, "KEY "+iname+" ("+icols+")")
	}
	for _, c := range t.KeyColumns() {
		if err := indexable(c.Target); err != nil {
			return "", fmt.Errorf("create %s: key: %w", t.Target, err)
		}
	}
	return "CREATE TABLE IF NOT EXISTS " + name + " (\n  " + strings.Join(lines, ",\n  ") + "\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4", nil
}

// TombstoneDDL is the CREATE TABLE of a target's tombstones: one row per
// deleted key, with the version of the delete (see sql/target_tombstones.sql
// for the IoT table's, which this follows).
func TombstoneDDL(t *Table) (string, error) {
	name, err := TableName{DB: t.Target.DB, Table: TombstoneTable(t.Target.Table)}.Quoted()
	if err != nil {
		return "", err
	}
	var lines []string
	for _, c := range t.KeyColumns() {
		if err := indexable(c.Target); err != nil {
			return "", fmt.Errorf("tombstones of %s: key: %w", t.Target, err)
		}
		tc := c.Target
		tc.Nullable = false
		def, err := columnDef(tc)
		if err != nil {
			return "", fmt.Errorf("tombstones of %s: %w", t.Target, err)
		}
		lines = append(lines, def)
	}
	keys, err := quoteList(targetNames(t.KeyColumns()))
	if err != nil {
		return "", err
	}
	lines = append(lines,
		"`source_version` BIGINT UNSIGNED NOT NULL COMMENT 'version of the newest delete of the key'",
		"`deleted_at` DATETIME(6) NOT NULL COMMENT 'when Sluice applied that delete (UTC)'",
		"PRIMARY KEY ("+keys+")",
		"KEY `idx_deleted_at` (`deleted_at`)")
	return "CREATE TABLE IF NOT EXISTS " + name + " (\n  " + strings.Join(lines, ",\n  ") + "\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4", nil
}

// TruncatesTable is the table, in each configured target database, of the
// truncate markers: per target table, the version of its newest truncate,
// which drops changes older than it that arrive later.
const TruncatesTable = "sluice_truncates"

// truncatesDDL creates the truncate markers' table in a database (quoted).
func truncatesDDL(qdb string) string {
	return "CREATE TABLE IF NOT EXISTS " + qdb + ".`" + TruncatesTable + "` (\n" +
		"  `target_table` VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,\n" +
		"  `source_version` BIGINT UNSIGNED NOT NULL COMMENT 'version of the newest truncate of the table',\n" +
		"  `truncated_at` DATETIME(6) NOT NULL COMMENT 'when Sluice applied it (UTC)',\n" +
		"  PRIMARY KEY (`target_table`)\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
}

// MigrateTable makes a configured table's target ready: its database with
// its truncate markers' table, the table itself when Resolve planned it,
// the lineage columns an existing table lacks (added in place) and the
// tombstone table. It returns what it
// did, for the command's output. Running it again changes nothing.
func MigrateTable(ctx context.Context, db *sql.DB, t *Table) ([]string, error) {
	var did []string
	qdb, err := QuoteIdent(t.Target.DB)
	if err != nil {
		return nil, err
	}
	if _, err := db.ExecContext(ctx, "CREATE DATABASE IF NOT EXISTS "+qdb+" CHARACTER SET utf8mb4"); err != nil {
		return nil, fmt.Errorf("migrate %s: create database: %w", t.Target, err)
	}
	markers := TableName{DB: t.Target.DB, Table: TruncatesTable}
	if err := tableExists(ctx, db, markers); errors.Is(err, errNoTable) {
		if _, err := db.ExecContext(ctx, truncatesDDL(qdb)); err != nil {
			return nil, fmt.Errorf("migrate %s: create %s: %w", t.Target, markers, err)
		}
		did = append(did, "created "+markers.String())
	} else if err != nil {
		return nil, err
	}
	if t.Create {
		ddl, err := CreateTargetDDL(t)
		if err != nil {
			return nil, err
		}
		if _, err := db.ExecContext(ctx, ddl); err != nil {
			return nil, fmt.Errorf("migrate %s: create table: %w", t.Target, err)
		}
		did = append(did, "created "+t.Target.String())
	}
	have, err := ReadColumns(ctx, db, t.Target.DB, t.Target.Table)
	if err != nil {
		return nil, err
	}
	name, _ := t.Target.Quoted()
	for _, l := range tableLineage {
		found := false
		for _, c := range have {
			found = found || strings.EqualFold(c.Name, l.name)
		}
		if found {
			continue
		}
		if _, err := db.ExecContext(ctx, "ALTER TABLE "+name+" ADD COLUMN `"+l.name+"` "+l.def); err != nil {
			return nil, fmt.Errorf("migrate %s: add column %s: %w", t.Target, l.name, err)
		}
		did = append(did, "added "+t.Target.String()+"."+l.name)
	}
	ts := TableName{DB: t.Target.DB, Table: TombstoneTable(t.Target.Table)}
	if err := tableExists(ctx, db, ts); errors.Is(err, errNoTable) {
		ddl, err := TombstoneDDL(t)
		if err != nil {
			return nil, err
		}
		if _, err := db.ExecContext(ctx, ddl); err != nil {
			return nil, fmt.Errorf("migrate %s: create %s: %w", t.Target, ts, err)
		}
		did = append(did, "created "+ts.String())
	} else if err != nil {
		return nil, err
	}
	return did, nil
}

// columnDef is one column's definition: type, character set and collation
// for text, nullability; a TIMESTAMP gets an explicit default, so that the
// server adds no ON UPDATE of its own.
func columnDef(c Column) (string, error) {
	name, err := QuoteIdent(c.Name)
	if err != nil {
		return "", err
	}
	def := name + " " + c.ColumnType
	if c.Charset != "" && !isBinaryCollation(c) {
		def += " CHARACTER SET " + c.Charset
		if c.Collation != "" {
			def += " COLLATE " + c.Collation
		}
	}
	switch {
	case c.DataType == "timestamp" && c.Nullable:
		def += " NULL DEFAULT NULL"
	case c.DataType == "timestamp":
		fsp := ""
		if c.Precision > 0 {
			fsp = fmt.Sprintf("(%d)", c.Precision)
		}
		def += " NOT NULL DEFAULT CURRENT_TIMESTAMP" + fsp
	case c.Nullable:
		def += " NULL"
	default:
		def += " NOT NULL"
	}
	return def, nil
}

// isBinaryCollation: binary strings carry no character set of their own.
func isBinaryCollation(c Column) bool { return c.Charset == "binary" }

// indexable refuses a key column an index cannot hold whole: TEXT, BLOB
// and JSON need a prefix length, and a key must compare whole values.
func indexable(c Column) error {
	switch c.DataType {
	case "tinytext", "text", "mediumtext", "longtext", "tinyblob", "blob", "mediumblob", "longblob", "json":
		return fmt.Errorf("column %s is %s: an index on it needs a prefix, and the key must compare whole values; key on other columns, or make it a VARCHAR/VARBINARY", c.Name, c.ColumnType)
	}
	return nil
}

func quoteList(names []string) (string, error) {
	out := make([]string, len(names))
	for i, n := range names {
		q, err := QuoteIdent(n)
		if err != nil {
			return "", err
		}
		out[i] = q
	}
	return strings.Join(out, ", "), nil
}

func targetNames(cols []TableColumn) []string {
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = c.Target.Name
	}
	return out
}
