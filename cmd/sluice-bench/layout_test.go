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
	db, database := layoutTestDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

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

// TestCheckIoTOnServer runs the bench's content check on a small earlier-
// layout source and target: a faithful copy passes; a message not
// upper-cased, a case-only change of a key (equal under the layout's _ci
// collation) and a wrong source_id each fail it.
func TestCheckIoTOnServer(t *testing.T) {
	db, database := layoutTestDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b := &bench{db: db, layout: layoutEarlier, rows: 3}
	for _, table := range []string{schema.SourceTable, schema.TargetTable} {
		if err := b.createDatabase(ctx, database, table); err != nil {
			t.Fatal(err)
		}
	}
	if err := schema.MigrateTarget(ctx, db, database); err != nil {
		t.Fatal(err)
	}
	src, dst := database+"."+schema.SourceTable, database+"."+schema.TargetTable
	stmts := []string{
		"INSERT INTO " + src + " (date, timestamp, device_type, event_type, message, created_at, updated_at) VALUES " +
			"('2025-10-01', '2025-10-01 00:00:01', 'meter-00001', 'alert', 'door opened', '2025-10-01 00:00:01', '2025-10-01 00:00:01')," +
			"('2025-10-01', '2025-10-01 00:00:02', 'camera-00002', 'status', 'ok', '2025-10-01 00:00:02', '2025-10-01 00:00:02')," +
			"('2025-10-01', '2025-10-01 00:00:03', 'sensor-00003', 'reading', NULL, '2025-10-01 00:00:03', '2025-10-01 00:00:03')",
		"INSERT INTO " + dst + " (date, timestamp, device_type, event_type, message, created_at, updated_at, source_id) " +
			"SELECT date, timestamp, device_type, event_type, UPPER(message), created_at, updated_at, id FROM " + src,
	}
	for _, q := range stmts {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.checkIoT(ctx, "test", database, database); err != nil {
		t.Fatalf("a faithful copy fails the check: %v", err)
	}
	for _, c := range []struct{ change, undo string }{
		{"SET message = 'DOOR opened' WHERE device_type = 'meter-00001'", "SET message = 'DOOR OPENED' WHERE device_type = 'meter-00001'"},
		{"SET device_type = 'CAMERA-00002' WHERE device_type = 'camera-00002'", "SET device_type = 'camera-00002' WHERE device_type = 'camera-00002'"},
		{"SET source_id = source_id + 100 WHERE event_type = 'reading'", "SET source_id = source_id - 100 WHERE event_type = 'reading'"},
	} {
		// updated_at = updated_at: else ON UPDATE CURRENT_TIMESTAMP changes it too.
		if _, err := db.ExecContext(ctx, "UPDATE "+dst+" SET updated_at = updated_at, "+strings.TrimPrefix(c.change, "SET ")); err != nil {
			t.Fatal(err)
		}
		err := b.checkIoT(ctx, "test", database, database)
		if err == nil || !strings.Contains(err.Error(), "only 2 of the 3 rows of "+dst) {
			t.Errorf("after UPDATE %s: the check says %v, want it to count 2 of the 3 rows equal", c.change, err)
		}
		if _, err := db.ExecContext(ctx, "UPDATE "+dst+" SET updated_at = updated_at, "+strings.TrimPrefix(c.undo, "SET ")); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.checkIoT(ctx, "test", database, database); err != nil {
		t.Fatalf("the copy, restored, fails the check: %v", err)
	}
}

// layoutTestDB connects to the test server (SLUICE_TEST_MYSQL_DSN, without
// a database) and names a database of the test's own, dropped at its end;
// with SLUICE_REQUIRE_INTEGRATION=1 or CI=true a missing server fails the
// test.
func layoutTestDB(t *testing.T) (*sql.DB, string) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: -short")
	}
	fail := t.Skip
	if os.Getenv("SLUICE_REQUIRE_INTEGRATION") == "1" || os.Getenv("CI") == "true" {
		fail = t.Fatal
	}
	dsn := os.Getenv("SLUICE_TEST_MYSQL_DSN")
	if dsn == "" {
		fail(errors.New("SLUICE_TEST_MYSQL_DSN is not set"))
	}
	db, err := sql.Open("mysql", dsn+"?parseTime=true&loc=UTC&time_zone=%27%2B00%3A00%27")
	if err == nil {
		err = db.Ping()
	}
	if err != nil {
		fail(err)
	}
	database := fmt.Sprintf("bench_layout_test_%d", time.Now().UnixNano())
	t.Cleanup(func() {
		_, _ = db.Exec("DROP DATABASE IF EXISTS " + database)
		db.Close()
	})
	return db, database
}
