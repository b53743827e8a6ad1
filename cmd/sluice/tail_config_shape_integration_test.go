package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestIntegrationTailConfigWithoutColumnNames follows a configured table
// on a source that logs no column names (binlog_row_metadata=MINIMAL, the
// default of MySQL 8 and RDS): the tail reads each row by the table's shape.
// A DDL that moves every column while the tail is stopped is met as the
// fixed table's tail meets it: the events logged before it are read by the
// shape stored with the position, the first event after it stops the tail
// with an error naming the DDL and where to restart, and with FULL set,
// `--reset --from` there reads the rest by the table's current columns.
// At each step the target equals the source.
func TestIntegrationTailConfigWithoutColumnNames(t *testing.T) {
	e := newITEnv(t)
	for _, stmt := range []string{
		"CREATE DATABASE " + e.src, "CREATE DATABASE " + e.dst,
		"CREATE TABLE " + e.src + `.gadgets (id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, name VARCHAR(20) NOT NULL,
			price DECIMAL(10,2), note TEXT, made DATETIME(3) NOT NULL)`,
	} {
		if _, err := e.admin.Exec(stmt); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "sluice.yaml")
	yaml := fmt.Sprintf(`kafka:
  topic_prefix: %s
tables:
  - source: %s.gadgets
    target: %s.gadgets
    columns:
      include: [id, name, price, note, made]
    transforms:
      name: [upper]
`, e.topic, e.src, e.dst)
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	e.must("migrate", "--config", path)
	insert := func(from, n int, what string) {
		t.Helper()
		for i := from; i < from+n; i++ {
			e.srcExec("INSERT INTO {src}.gadgets (name, price, note, made) VALUES (?, ?, ?, ?)",
				fmt.Sprintf("%s-%d", what, i), fmt.Sprintf("%d.%02d", i, i%100), fmt.Sprintf("note %d é", i), e.startT.Add(time.Duration(i)*time.Millisecond))
		}
	}
	same := func() (bool, string) {
		out, errOut, code := e.sluice("verify", "--config", path)
		return code == 0, out + errOut
	}

	// A global setting: cmd/sluice's tests run one at a time, and no other
	// package follows the binlog.
	if _, err := e.admin.Exec("SET GLOBAL binlog_row_metadata = 'MINIMAL'"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.admin.Exec("SET GLOBAL binlog_row_metadata = 'FULL'") })
	tl, tlogs := e.startTail("--config", path, "--from", "now", "--flush-interval", "20ms")
	if !strings.Contains(tlogs.String(), "binlog_row_metadata is not FULL") {
		t.Errorf("the tail does not warn that the binlog carries no column names:\n%s", tlogs)
	}
	cons, clogs := e.startProc("consume", "--config", path, "--linger", "50ms")
	insert(0, 10, "first")
	e.srcExec("UPDATE {src}.gadgets SET note = NULL, price = price * 2 WHERE id % 3 = 0")
	e.srcExec("DELETE FROM {src}.gadgets WHERE id = 2")
	e.waitEqual(time.Minute, same, tlogs, clogs)
	stopProc(t, tl, tlogs)

	// While the tail is stopped: rows in the old shape, a DDL that moves
	// every column, rows in the new shape.
	insert(10, 5, "before")
	e.srcExec("ALTER TABLE {src}.gadgets ADD COLUMN extra VARCHAR(5) NOT NULL DEFAULT 'x' FIRST")
	insert(15, 5, "after")
	tl, tlogs = e.startTail("--config", path, "--flush-interval", "20ms")
	m := waitStopsAtDDL(t, tl, tlogs, "changed shape since the stored position", "ADD COLUMN extra", "binlog_row_metadata is MINIMAL", "--reset --from")
	// The rows logged before the DDL arrived, read by the stored shape;
	// none after it.
	e.waitCount(time.Minute, 5, "SELECT COUNT(*) FROM "+e.dst+".gadgets WHERE name LIKE 'BEFORE-%'", tlogs, clogs)
	if got := e.count("SELECT COUNT(*) FROM " + e.dst + ".gadgets WHERE name LIKE 'AFTER-%'"); got != 0 {
		t.Errorf("%d rows logged after the DDL reached the target before the restart", got)
	}

	if _, err := e.admin.Exec("SET GLOBAL binlog_row_metadata = 'FULL'"); err != nil {
		t.Fatal(err)
	}
	tl, tlogs = e.startTail("--config", path, "--reset", "--from", m[1], "--flush-interval", "20ms")
	insert(20, 5, "named")
	e.waitEqual(time.Minute, same, tlogs, clogs)
	stopProc(t, tl, tlogs)
	stopProc(t, cons, clogs)
}
