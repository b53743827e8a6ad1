package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"

	"github.com/sluice-dev/sluice/schema"
)

// TestEarlierDDL reads the embedded earlier.sql: each table keeps the
// earlier job's collation and its extra index beside the unique key, and
// otherwise Sluice's own columns (schema/sql), so the earlier layout differs
// from the default in those two things only.
func TestEarlierDDL(t *testing.T) {
	const coll = " CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
	for table, own := range map[string]string{schema.SourceTable: "source.sql", schema.TargetTable: "target.sql"} {
		ddl, err := earlierDDL("bench_x", table)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(ddl, "CREATE TABLE `bench_x`."+table+" (") {
			t.Errorf("%s: the statement does not create `bench_x`.%s:\n%s", table, table, ddl)
		}
		for _, want := range []string{
			"UNIQUE KEY uniq_dedupe (device_type, event_type, timestamp),",
			"KEY idx_device_event_time (device_type, event_type, timestamp)",
			") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci",
		} {
			if !strings.Contains(ddl, want) {
				t.Errorf("%s: the earlier DDL lacks %q:\n%s", table, want, ddl)
			}
		}
		for _, col := range earlierTextColumns {
			line := regexp.MustCompile(`(?m)^\s*` + col + `\s.*$`).FindString(ddl)
			if !strings.Contains(line, coll) {
				t.Errorf("%s: column %s is not declared%s: %q", table, col, coll, line)
			}
		}

		// The columns are Sluice's, in the same order and types.
		raw, err := os.ReadFile("../../schema/sql/" + own)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := columnDefs(strings.ReplaceAll(ddl, coll, "")), columnDefs(string(raw)); !equalLines(got, want) {
			t.Errorf("%s: the earlier DDL's columns, collation aside, are\n%s\nschema/sql/%s's are\n%s",
				table, strings.Join(got, "\n"), own, strings.Join(want, "\n"))
		}
	}
}

// columnDefs are a CREATE TABLE's column lines, spaces collapsed.
func columnDefs(ddl string) []string {
	var defs []string
	for _, line := range strings.Split(ddl, "\n") {
		f := strings.Fields(strings.TrimSuffix(strings.TrimSpace(line), ","))
		if len(f) < 2 || strings.HasPrefix(f[0], "--") || strings.ToUpper(f[0]) == f[0] || f[0] == ")" {
			continue // a comment, a key, the CREATE or the closing line
		}
		defs = append(defs, strings.Join(f, " "))
	}
	return defs
}

func equalLines(a, b []string) bool { return strings.Join(a, "\n") == strings.Join(b, "\n") }

// TestEarlierLayoutOnServer creates the earlier layout on the test server,
// migrates it as `sluice migrate` does (schema.MigrateSource and
// MigrateTarget), and reads information_schema: the collation and the
// extra index are still there, and the lineage columns and the tombstone
// table were added. Then it takes the index, then the collation, away and
// sees the bench's check name each.
func TestEarlierLayoutOnServer(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: -short")
	}
	dsn := os.Getenv("SLUICE_TEST_MYSQL_DSN")
	if dsn == "" {
		err := errors.New("SLUICE_TEST_MYSQL_DSN is not set")
		if os.Getenv("SLUICE_REQUIRE_INTEGRATION") == "1" || os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	database := fmt.Sprintf("bench_layout_test_%d", time.Now().UnixNano())
	t.Cleanup(func() { _, _ = db.Exec("DROP DATABASE IF EXISTS " + database) })

	b := &bench{db: db, layout: layoutEarlier}
	for _, table := range []string{schema.SourceTable, schema.TargetTable} {
		if err := b.createDatabase(ctx, database, table); err != nil {
			t.Fatal(err)
		}
	}
	if err := schema.MigrateSource(ctx, db, database); err != nil {
		t.Fatal(err)
	}
	if err := schema.MigrateTarget(ctx, db, database); err != nil {
		t.Fatal(err)
	}
	if ready, err := schema.TargetReady(ctx, db, database); err != nil || !ready {
		t.Fatalf("after migrate, %s.%s is not ready for the consumer (lineage columns, tombstones): %v", database, schema.TargetTable, err)
	}
	for _, table := range []string{schema.SourceTable, schema.TargetTable} {
		if why, err := layoutMismatch(ctx, db, database, table, layoutEarlier); err != nil || why != "" {
			t.Errorf("after migrate, %s.%s is not the earlier layout: %q %v", database, table, why, err)
		}
		if why, err := layoutMismatch(ctx, db, database, table, layoutDefault); err != nil || why == "" {
			t.Errorf("%s.%s passes for the default layout too: %v", database, table, err)
		}
	}

	for _, c := range []struct{ alter, want string }{
		{"DROP INDEX idx_device_event_time", "has no index idx_device_event_time"},
		{"ADD INDEX idx_device_event_time (device_type, event_type)", "index idx_device_event_time is on (device_type, event_type)"},
		{"MODIFY message TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci", `column message has collation "utf8mb4_general_ci"`},
	} {
		if _, err := db.ExecContext(ctx, "ALTER TABLE "+database+"."+schema.TargetTable+" "+c.alter); err != nil {
			t.Fatal(err)
		}
		why, err := layoutMismatch(ctx, db, database, schema.TargetTable, layoutEarlier)
		if err != nil || !strings.Contains(why, c.want) {
			t.Errorf("after %s: the check says %q (%v), want it to say %q", c.alter, why, err, c.want)
		}
		if c.alter == "DROP INDEX idx_device_event_time" {
			continue
		}
		// Put it back for the next case.
		if _, err := db.ExecContext(ctx, "ALTER TABLE "+database+"."+schema.TargetTable+" DROP INDEX idx_device_event_time, ADD INDEX idx_device_event_time (device_type, event_type, timestamp)"); err != nil {
			t.Fatal(err)
		}
	}
}
