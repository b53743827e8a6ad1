package main

import (
	"bytes"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// insertRows inserts n rows into the window of the test's source table,
// from the given second on, naming the columns (the table's column order
// is what the test changes).
func (e *itEnv) insertRows(from, n int, msg string) {
	e.t.Helper()
	for i := range n {
		ts := e.startT.Add(time.Duration(from+i) * time.Second)
		e.srcExec("INSERT INTO {src}.raw_records (date, timestamp, device_type, event_type, message) VALUES (?, ?, ?, ?, ?)",
			ts.Format(time.DateOnly), ts, fmt.Sprintf("ddl-%d", (from+i)%7), "reading", fmt.Sprintf("%s %d", msg, from+i))
	}
}

// TestIntegrationTailFollowsDDL changes the source table's shape while the
// tail runs (a column moved, a column added) and while it is stopped (a
// column added first, another dropped, between inserts): with column names
// in the binlog (binlog_row_metadata=FULL, as the local stack runs), every
// row reaches the target with each value in its own column.
func TestIntegrationTailFollowsDDL(t *testing.T) {
	e := newITEnv(t)
	e.migrateOnly()
	var meta string
	if err := e.admin.QueryRow("SELECT @@GLOBAL.binlog_row_metadata").Scan(&meta); err != nil || meta != "FULL" {
		t.Fatalf("binlog_row_metadata = %q (%v): the local stack runs with FULL", meta, err)
	}
	tl, tlogs := e.startTail("--from", "now", "--flush-interval", "20ms")
	cons, clogs := e.startProc("consume", "--linger", "50ms")
	e.insertRows(0, 20, "before")
	e.waitSame(time.Minute, tlogs, clogs)

	// While it runs: message moves next to id, where date was.
	e.srcExec("ALTER TABLE {src}.raw_records MODIFY message TEXT AFTER id")
	e.insertRows(20, 20, "moved")
	e.srcExec("UPDATE {src}.raw_records SET message = CONCAT(message, ' updated') WHERE timestamp < ?", e.startT.Add(10*time.Second))
	e.srcExec("ALTER TABLE {src}.raw_records ADD COLUMN extra INT NOT NULL DEFAULT 7")
	e.insertRows(40, 20, "added")
	e.waitSame(time.Minute, tlogs, clogs)

	// While it is stopped: rows on both sides of two DDLs.
	stopProc(t, tl, tlogs)
	e.insertRows(60, 10, "down")
	e.srcExec("ALTER TABLE {src}.raw_records ADD COLUMN first_col VARCHAR(20) NOT NULL DEFAULT 'x' FIRST")
	e.insertRows(70, 10, "first")
	e.srcExec("ALTER TABLE {src}.raw_records DROP COLUMN extra")
	e.insertRows(80, 10, "dropped")
	e.srcExec("DELETE FROM {src}.raw_records WHERE timestamp >= ? AND timestamp < ?", e.startT.Add(65*time.Second), e.startT.Add(75*time.Second))
	tl, tlogs = e.startTail("--flush-interval", "20ms")
	e.waitSame(time.Minute, tlogs, clogs)
	if got := e.count("SELECT COUNT(*) FROM " + e.dst + ".records WHERE message LIKE 'DROPPED %'"); got != 10 {
		t.Errorf("%d rows inserted after the DROP COLUMN in the target, want 10", got)
	}
	stopProc(t, tl, tlogs)
	stopProc(t, cons, clogs)
}

// TestIntegrationTailStopsAtDDLWithoutColumnNames runs the source without
// column names in the binlog (binlog_row_metadata=MINIMAL, MySQL 8's
// default): a column moved while the tail runs makes the tail stop at the
// first row event after the DDL, with an error naming the DDL, its position
// and the command that gets past it. After FULL is set, that command
// carries on, and the target equals the source.
func TestIntegrationTailStopsAtDDLWithoutColumnNames(t *testing.T) {
	e := newITEnv(t)
	e.migrateOnly()
	// A global setting: cmd/sluice's tests run one at a time, and no other
	// package follows the binlog.
	if _, err := e.admin.Exec("SET GLOBAL binlog_row_metadata = 'MINIMAL'"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.admin.Exec("SET GLOBAL binlog_row_metadata = 'FULL'") })
	tl, tlogs := e.startTail("--from", "now", "--flush-interval", "20ms")
	cons, clogs := e.startProc("consume", "--linger", "50ms")
	e.insertRows(0, 10, "before")
	e.waitSame(time.Minute, tlogs, clogs)

	e.srcExec("ALTER TABLE {src}.raw_records MODIFY message TEXT AFTER id")
	e.insertRows(10, 10, "moved")
	m := waitStopsAtDDL(t, tl, tlogs, "MODIFY message TEXT AFTER id", "binlog_row_metadata is MINIMAL", "SET GLOBAL binlog_row_metadata = 'FULL'", "sluice tail --reset --from")
	// Nothing of the moved rows was read into the wrong columns.
	if got := e.count("SELECT COUNT(*) FROM " + e.dst + ".records WHERE message LIKE 'MOVED %'"); got != 0 {
		t.Errorf("%d rows after the DDL reached the target before the restart", got)
	}

	if _, err := e.admin.Exec("SET GLOBAL binlog_row_metadata = 'FULL'"); err != nil {
		t.Fatal(err)
	}
	tl, tlogs = e.startTail("--reset", "--from", m[1], "--flush-interval", "20ms")
	e.insertRows(20, 10, "named")
	e.waitSame(time.Minute, tlogs, clogs)
	if got := e.count("SELECT COUNT(*) FROM " + e.dst + ".records WHERE message LIKE 'MOVED %'"); got != 10 {
		t.Errorf("%d rows logged without names after the DDL in the target, want 10", got)
	}
	stopProc(t, tl, tlogs)
	stopProc(t, cons, clogs)
}

// waitStopsAtDDL waits for the tail tl to stop at a DDL it cannot read past
// (exiting non-zero within a minute), checks that its logs say each of
// wants, and returns the position its error says to restart from (m[1]).
func waitStopsAtDDL(t *testing.T, tl *exec.Cmd, tlogs *bytes.Buffer, wants ...string) []string {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- tl.Wait() }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatalf("the tail exited 0 at a DDL it cannot read past:\n%s", tlogs)
		}
	case <-time.After(time.Minute):
		t.Fatalf("the tail did not stop at the DDL without column names within a minute:\n%s", tlogs)
	}
	logs := tlogs.String()
	for _, want := range wants {
		if !strings.Contains(logs, want) {
			t.Errorf("the tail's logs do not say %q:\n%s", want, logs)
		}
	}
	m := regexp.MustCompile("sluice tail --reset --from (\\S+)`").FindStringSubmatch(logs)
	if m == nil {
		t.Fatalf("no position to restart from in:\n%s", logs)
	}
	return m
}
