package main

// Integration tests of source events the tail must not let pass silently
// (issue 19): DML logged as a statement, TRUNCATE, and the recovery from a
// purged binlog under a concurrent writer.

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"math/rand/v2"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/sluice-dev/sluice/schema"
)

// tablesEqual compares the whole source and target tables by count and
// content checksum (the message upper-cased, as the consumer writes it).
func (e *itEnv) tablesEqual() (bool, string) { return e.compareTables("") }

// waitTablesEqual polls until the whole tables agree.
func (e *itEnv) waitTablesEqual(d time.Duration, logs ...fmt.Stringer) {
	e.t.Helper()
	e.waitEqual(d, e.tablesEqual, logs...)
}

// waitCount polls a count until it is want.
func (e *itEnv) waitCount(d time.Duration, want int, q string, logs ...fmt.Stringer) {
	e.t.Helper()
	deadline := time.Now().Add(d)
	for {
		n := e.count(q)
		if n == want {
			return
		}
		if time.Now().After(deadline) {
			var b strings.Builder
			for _, l := range logs {
				b.WriteString(l.String())
			}
			e.t.Fatalf("%s: %d after %s, want %d\n%s", q, n, d, want, b.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// exited waits up to d for a started process to end and returns its exit
// code, or fails the test.
func exited(t *testing.T, done <-chan error, p *exec.Cmd, d time.Duration, logs fmt.Stringer) int {
	t.Helper()
	select {
	case <-done:
		return p.ProcessState.ExitCode()
	case <-time.After(d):
		t.Fatalf("the process is still running after %s:\n%s", d, logs)
	}
	return 0
}

// A writer that logs its DML as statements (binlog_format=STATEMENT for its
// session) changes the followed table: the change has no row images, and
// the tail must stop naming where and why, not log it as DDL and go on. The
// same session's statement on another table is not the tail's business.
func TestIntegrationTailStatementFormatDMLStops(t *testing.T) {
	e := newITEnv(t)
	e.migrateOnly()
	e.srcExec("CREATE TABLE {src}.other (id INT PRIMARY KEY, v VARCHAR(10))")
	tl, tlogs := e.startTail("--from", "now")
	done := make(chan error, 1)
	go func() { done <- tl.Wait() }()

	ctx := context.Background()
	conn, err := e.admin.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	exec := func(q string) {
		t.Helper()
		if _, err := conn.ExecContext(ctx, strings.ReplaceAll(q, "{src}", e.src)); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec("SET SESSION binlog_format = 'STATEMENT'")
	exec("INSERT INTO {src}.other VALUES (1, 'a')")
	// A row change after it, in ROW format from another session, reaches
	// the topic: the tail went past the other table's statement.
	e.srcExec("INSERT INTO {src}.raw_records (date, timestamp, device_type, event_type, message) VALUES ('2025-10-01', '2025-10-01 01:00:00', 'd1', 'e1', 'row')")
	deadline := time.Now().Add(time.Minute)
	for e.opCounts(e.topic)[schema.OpCreate] < 1 {
		select {
		case <-done:
			t.Fatalf("the tail stopped at a statement on another table:\n%s", tlogs)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the row insert did not reach the topic:\n%s", tlogs)
		}
		time.Sleep(100 * time.Millisecond)
	}

	file, _, _ := e.binlogNow()
	exec("UPDATE {src}.raw_records SET message = 'by statement' WHERE id > 0")
	if code := exited(t, done, tl, time.Minute, tlogs); code != 1 {
		t.Fatalf("tail after a statement-format UPDATE: exit %d, want 1:\n%s", code, tlogs)
	}
	for _, want := range []string{"binlog " + file + ":", e.src + ".raw_records", "logged as a statement", "UPDATE", "row images",
		"ROW", "--reset --from " + file + ":", "backfill"} {
		if !strings.Contains(tlogs.String(), want) {
			t.Errorf("the tail's error does not say %q:\n%s", want, tlogs)
		}
	}

	// Its advice goes on past the statement; a LOAD DATA logged as a
	// statement stops the tail again.
	m := regexp.MustCompile(`--reset --from (\S+)`).FindStringSubmatch(tlogs.String())
	if m == nil {
		t.Fatalf("no --reset --from in:\n%s", tlogs)
	}
	tl, tlogs = e.startTail("--reset", "--from", m[1])
	done = make(chan error, 1)
	go func() { done <- tl.Wait() }()
	mysql.RegisterReaderHandler("sluice-it-load", func() io.Reader {
		return strings.NewReader("2025-10-01\t2025-10-01 02:00:00\td2\te2\tloaded\n")
	})
	defer mysql.DeregisterReaderHandler("sluice-it-load")
	exec("LOAD DATA LOCAL INFILE 'Reader::sluice-it-load' INTO TABLE {src}.raw_records (date, timestamp, device_type, event_type, message)")
	if code := exited(t, done, tl, time.Minute, tlogs); code != 1 {
		t.Fatalf("tail after a statement-format LOAD DATA: exit %d, want 1:\n%s", code, tlogs)
	}
	for _, want := range []string{e.src + ".raw_records", "logged as a statement", "LOAD DATA"} {
		if !strings.Contains(tlogs.String(), want) {
			t.Errorf("the tail's error does not say %q:\n%s", want, tlogs)
		}
	}
}

// A TRUNCATE of the source table reaches the target as the deletion of
// every row, and backfill reads taken before it, applied after it, do not
// bring rows back; rows written after it stay.
func TestIntegrationTailTruncateReachesTarget(t *testing.T) {
	e := newITEnv(t)
	e.migrateOnly()
	e.must(append([]string{"seed", "--rows", "3000"}, e.window()...)...)
	tl, tlogs := e.startTail("--from", "now")
	// The same reads twice: into the topic now, and into a topic applied
	// only after the truncate (older reads arriving late).
	late := e.topic + ".late-backfill"
	e.extraEnv = []string{"SLUICE_TOPIC=" + late}
	e.must(append([]string{"backfill"}, e.window()...)...)
	e.extraEnv = nil
	e.must(append([]string{"backfill"}, e.window()...)...)
	cons, clogs := e.startProc("consume")
	e.waitSame(2*time.Minute, tlogs, clogs)
	if n := e.count("SELECT COUNT(*) FROM " + e.dst + ".records"); n != 3000 {
		t.Fatalf("target holds %d rows before the truncate, want 3000", n)
	}

	e.srcExec("TRUNCATE TABLE {src}.raw_records")
	e.waitCount(time.Minute, 0, "SELECT COUNT(*) FROM "+e.dst+".records", tlogs, clogs)
	rng := rand.New(rand.NewPCG(13, 14))
	var ch changes
	for round := range 3 {
		e.mutate(rng, round, &ch)
	}
	e.waitSame(2*time.Minute, tlogs, clogs)
	e.waitGroupCaughtUp(e.topic, e.group, time.Minute)
	stopProc(t, cons, clogs)

	e.extraEnv = []string{"SLUICE_TOPIC=" + late, "SLUICE_GROUP=" + e.group + "-late"}
	lateCons, lateLogs := e.startProc("consume")
	e.waitGroupCaughtUp(late, e.group+"-late", time.Minute)
	stopProc(t, lateCons, lateLogs)
	e.extraEnv = nil
	stopProc(t, tl, tlogs)

	if same, what := e.tablesEqual(); !same {
		t.Errorf("after the older backfill reads: %s\n%s", what, lateLogs)
	}
	if got := e.opCounts(e.topic)[schema.OpTruncate]; got != 1 {
		t.Errorf("%d truncate events in the topic, want 1", got)
	}
	e.must(append([]string{"verify"}, e.window()...)...)
}

// With --on-truncate=fail a TRUNCATE stops the tail with an error naming it;
// the target keeps its rows and nothing is produced for it.
func TestIntegrationTailTruncateRefused(t *testing.T) {
	e := newITEnv(t)
	e.migrateOnly()
	e.must(append([]string{"seed", "--rows", "100"}, e.window()...)...)
	tl, tlogs := e.startTail("--from", "now", "--on-truncate", "fail")
	done := make(chan error, 1)
	go func() { done <- tl.Wait() }()
	file, _, _ := e.binlogNow()
	e.srcExec("TRUNCATE TABLE {src}.raw_records")
	if code := exited(t, done, tl, time.Minute, tlogs); code != 1 {
		t.Fatalf("tail after a TRUNCATE with --on-truncate=fail: exit %d, want 1:\n%s", code, tlogs)
	}
	for _, want := range []string{"binlog " + file + ":", "TRUNCATE of " + e.src + ".raw_records", "--on-truncate=fail", "--on-truncate=apply"} {
		if !strings.Contains(tlogs.String(), want) {
			t.Errorf("the tail's error does not say %q:\n%s", want, tlogs)
		}
	}
	if got := e.opCounts(e.topic)[schema.OpTruncate]; got != 0 {
		t.Errorf("%d truncate events in the topic, want none", got)
	}
}

// The stored position is purged while no tail runs, and a writer inserts
// rows all through the recovery: `sluice tail --recover-purged`, which
// backfills the gap beside itself, or with --recover-backfill=false, then
// the backfill it prints, run by hand. Every source row must reach the
// target: the gap's through the backfill, the writer's through the tail or
// the backfill.
func TestIntegrationTailRecoverPurgedLosesNothing(t *testing.T) {
	for _, tc := range []struct {
		name   string
		byHand bool
	}{{"the tail backfills the gap", false}, {"the printed backfill by hand", true}} {
		t.Run(tc.name, func(t *testing.T) { recoverPurgedUnderWriter(t, tc.byHand) })
	}
}

func recoverPurgedUnderWriter(t *testing.T, byHand bool) {
	e := newITEnv(t)
	e.migrateOnly()
	cons, clogs := e.startProc("consume")
	tl, tlogs := e.startTail("--from", "now")
	insert := func(db *sql.DB, prefix string, i int) error {
		_, err := db.Exec("INSERT INTO "+e.src+".raw_records (date, timestamp, device_type, event_type, message) VALUES (UTC_DATE(), UTC_TIMESTAMP(), ?, 'ev', ?)",
			fmt.Sprintf("%s%05d", prefix, i), fmt.Sprintf("%s row %d", prefix, i))
		return err
	}
	for i := range 30 {
		if err := insert(e.admin, "before", i); err != nil {
			t.Fatal(err)
		}
	}
	e.waitCount(time.Minute, 30, "SELECT COUNT(*) FROM "+e.dst+".records", tlogs, clogs)
	stopProc(t, tl, tlogs)

	// The gap: rows in a binlog that is then purged.
	e.srcExec("FLUSH BINARY LOGS")
	for i := range 50 {
		if err := insert(e.admin, "gap", i); err != nil {
			t.Fatal(err)
		}
	}
	e.srcExec("FLUSH BINARY LOGS")
	file, _, _ := e.binlogNow()
	e.srcExec("PURGE BINARY LOGS TO '" + file + "'")

	// The writer inserts through the whole recovery, one row at a time.
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var written int
	var werr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ; ; written++ {
			select {
			case <-stop:
				return
			default:
			}
			if werr = insert(e.admin, "writer", written); werr != nil {
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	stopWriter := func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}
	defer stopWriter()
	time.Sleep(300 * time.Millisecond)

	args := []string{"--recover-purged"}
	if byHand {
		args = append(args, "--recover-backfill=false")
	}
	tl, tlogs = e.startTail(args...)
	re := regexp.MustCompile(`sluice backfill --start-at '([^']+)' --end-at '([^']+)'`)
	var m []string
	deadline := time.Now().Add(time.Minute)
	for m = re.FindStringSubmatch(tlogs.String()); m == nil; m = re.FindStringSubmatch(tlogs.String()) {
		if time.Now().After(deadline) {
			t.Fatalf("the recovering tail printed no backfill command:\n%s", tlogs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // the writer goes on between the two steps
	if byHand {
		e.must("backfill", "--start-at", m[1], "--end-at", m[2])
	} else {
		for !strings.Contains(tlogs.String(), "tail: the gap is backfilled") {
			if time.Now().After(deadline) {
				t.Fatalf("the recovering tail did not backfill the gap:\n%s", tlogs)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	time.Sleep(300 * time.Millisecond)
	stopWriter()
	if werr != nil {
		t.Fatalf("writer: %v", werr)
	}
	t.Logf("the writer inserted %d rows during the recovery; backfill window %s to %s", written, m[1], m[2])

	e.waitTablesEqual(2*time.Minute, tlogs, clogs)
	stopProc(t, tl, tlogs)
	if n := e.count("SELECT COUNT(*) FROM " + e.dst + ".records WHERE device_type LIKE 'gap%'"); n != 50 {
		t.Errorf("%d of the gap's 50 rows reached the target", n)
	}
	if n := e.count("SELECT COUNT(*) FROM " + e.dst + ".records WHERE device_type LIKE 'writer%'"); n != written {
		t.Errorf("%d of the writer's %d rows reached the target", n, written)
	}
	if !strings.Contains(tlogs.String(), "--recover-purged: the stored binlog position is purged") {
		t.Errorf("the tail did not say it recovered:\n%s", tlogs)
	}

	// The gap is recorded: a restart with --recover-purged resumes from the
	// new position and, when the tail backfilled it, does not backfill again.
	tl, tlogs = e.startTail("--recover-purged")
	time.Sleep(time.Second)
	stopProc(t, tl, tlogs)
	stopProc(t, cons, clogs)
	if !strings.Contains(tlogs.String(), "resuming from the position committed") {
		t.Errorf("the restarted tail did not resume from the recovery's position:\n%s", tlogs)
	}
	if again := strings.Contains(tlogs.String(), "backfilling the gap"); again == !byHand {
		t.Errorf("restart after the recovery: backfilling the gap again %v, want %v:\n%s", again, byHand, tlogs)
	}
}
