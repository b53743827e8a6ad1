package main

// Integration tests: the real sluice binary, as separate processes, against
// the project's own MariaDB and the kfake broker over TCP. `make test` starts
// both and sets SLUICE_TEST_MYSQL_DSN and SLUICE_TEST_BROKERS; with
// SLUICE_REQUIRE_INTEGRATION=1 (or CI=true) a missing server fails the test.

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/consumer"
	"github.com/sluice-dev/sluice/schema"
)

var sluiceBin string

func TestMain(m *testing.M) {
	flag.Parse()
	code := func() int {
		if testing.Short() {
			return m.Run()
		}
		dir, err := os.MkdirTemp("", "sluice-it-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		sluiceBin = filepath.Join(dir, "sluice")
		if out, err := exec.Command("go", "build", "-o", sluiceBin, ".").CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build sluice: %v\n%s", err, out)
			return 1
		}
		return m.Run()
	}()
	os.Exit(code)
}

// itEnv is one test's isolated slice of the shared servers: its own source
// and target databases, topic and group.
type itEnv struct {
	t             *testing.T
	base, brokers string
	src, dst      string
	topic, group  string
	admin         *sql.DB
	kcl           *kgo.Client
	adm           *kadm.Client
	start, end    string // the test window
	startT, endT  time.Time
	extraEnv      []string
}

func requireServers(t *testing.T) (dsnBase, brokers string) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: -short")
	}
	required := os.Getenv("SLUICE_REQUIRE_INTEGRATION") == "1" || os.Getenv("CI") == "true"
	miss := func(format string, a ...any) {
		t.Helper()
		if required {
			t.Fatalf(format, a...)
		}
		t.Skipf(format+" (set by `make test`)", a...)
	}
	dsnBase, brokers = os.Getenv("SLUICE_TEST_MYSQL_DSN"), os.Getenv("SLUICE_TEST_BROKERS")
	if dsnBase == "" || brokers == "" {
		miss("SLUICE_TEST_MYSQL_DSN and SLUICE_TEST_BROKERS are not set")
	}
	if c, err := net.DialTimeout("tcp", brokers, 3*time.Second); err != nil {
		miss("kafka broker %s unreachable: %v", brokers, err)
	} else {
		c.Close()
	}
	return dsnBase, brokers
}

func newITEnv(t *testing.T) *itEnv {
	t.Helper()
	base, brokers := requireServers(t)
	return newITEnvOn(t, base, brokers, "")
}

// newITEnvOn is newITEnv on a given server; adminParams are added to the
// test's own admin connection (its TLS, say).
func newITEnvOn(t *testing.T, base, brokers, adminParams string) *itEnv {
	t.Helper()
	var b [4]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	e := &itEnv{t: t, base: base, brokers: brokers, src: "it_src_" + id, dst: "it_dst_" + id,
		topic: "it." + id, group: "it-" + id,
		start: "2025-10-01 00:00:00", end: "2025-10-02 00:00:00"}
	e.startT, _ = time.Parse(time.DateTime, e.start)
	e.endT, _ = time.Parse(time.DateTime, e.end)
	admin, err := sql.Open("mysql", base+"?parseTime=true&loc=UTC&time_zone=%27%2B00%3A00%27"+adminParams)
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.Ping(); err != nil {
		if os.Getenv("SLUICE_REQUIRE_INTEGRATION") == "1" || os.Getenv("CI") == "true" {
			t.Fatalf("MySQL %s unreachable: %v", base, err)
		}
		t.Skipf("MySQL %s unreachable: %v", base, err)
	}
	e.admin = admin
	e.kcl, err = kgo.NewClient(kgo.SeedBrokers(brokers))
	if err != nil {
		t.Fatal(err)
	}
	e.adm = kadm.NewClient(e.kcl)
	t.Cleanup(func() {
		admin.Exec("DROP DATABASE IF EXISTS " + e.src)
		admin.Exec("DROP DATABASE IF EXISTS " + e.dst)
		admin.Close()
		e.kcl.Close()
	})
	return e
}

func (e *itEnv) env() []string {
	return append(os.Environ(),
		"SLUICE_SOURCE_DSN="+e.base+e.src,
		"SLUICE_TARGET_DSN="+e.base+e.dst,
		"SLUICE_BROKERS="+e.brokers,
		"SLUICE_TOPIC="+e.topic,
		"SLUICE_GROUP="+e.group,
		"SLUICE_PARTITIONS=4",
		"SLUICE_METRICS_ADDR=",
		"SLUICE_KAFKA_TIMEOUT=3s",
	)
}

// sluice runs the binary to completion and returns its output and exit code.
func (e *itEnv) sluice(args ...string) (stdout, stderr string, code int) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, sluiceBin, args...)
	cmd.Env = append(e.env(), e.extraEnv...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		e.t.Fatalf("sluice %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

// must runs the binary and fails the test unless it exits 0.
func (e *itEnv) must(args ...string) string {
	e.t.Helper()
	out, errOut, code := e.sluice(args...)
	if code != 0 {
		e.t.Fatalf("sluice %v: exit %d\nstdout:\n%s\nstderr:\n%s", args, code, out, errOut)
	}
	return out
}

// startProc starts the binary in the background; the test stops it.
func (e *itEnv) startProc(args ...string) (*exec.Cmd, *bytes.Buffer) {
	e.t.Helper()
	cmd := exec.Command(sluiceBin, args...)
	cmd.Env = append(e.env(), e.extraEnv...)
	var errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &errb, &errb
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd, &errb
}

func (e *itEnv) window() []string { return []string{"--start-at", e.start, "--end-at", e.end} }

func (e *itEnv) count(q string, args ...any) int {
	e.t.Helper()
	var n int
	if err := e.admin.QueryRow(q, args...).Scan(&n); err != nil {
		e.t.Fatalf("%s: %v", q, err)
	}
	return n
}

// seed writes rows into the test window and, to check the window's edges,
// rows just before and just after it.
func (e *itEnv) seed(rows int) {
	e.t.Helper()
	e.must("seed", "--rows", fmt.Sprint(rows), "--start-at", "2025-09-30 23:00:00", "--end-at", e.start)
	e.must(append([]string{"seed", "--rows", fmt.Sprint(rows)}, e.window()...)...)
	e.must("seed", "--rows", fmt.Sprint(rows), "--start-at", e.end, "--end-at", "2025-10-02 01:00:00")
}

func (e *itEnv) sourceInWindow() int {
	return e.count("SELECT COUNT(*) FROM "+e.src+".raw_records WHERE timestamp >= ? AND timestamp < ?", e.startT, e.endT)
}

// targetFingerprint summarises the whole target table's content.
func (e *itEnv) targetFingerprint() string {
	e.t.Helper()
	var n int
	var sum sql.NullString
	err := e.admin.QueryRow("SELECT COUNT(*), SUM(CRC32(CONCAT_WS('|', device_type, event_type, timestamp, date, message, source_id))) FROM "+e.dst+".records").Scan(&n, &sum)
	if err != nil {
		e.t.Fatal(err)
	}
	return fmt.Sprintf("%d/%s", n, sum.String)
}

func TestIntegrationRunLandsWindowExactlyOnce(t *testing.T) {
	e := newITEnv(t)
	e.seed(20000)
	e.must("migrate")
	want := e.sourceInWindow()
	if want != 20000 {
		t.Fatalf("seeded window holds %d rows, want 20000", want)
	}
	out := e.must(append([]string{"run", "--chunk-size", "3000", "--batch-size", "4000"}, e.window()...)...)
	if !strings.Contains(out, "20000 rows read, 20000 produced") {
		t.Errorf("run summary does not report the window's rows:\n%s", out)
	}

	if got := e.count("SELECT COUNT(*) FROM " + e.dst + ".records"); got != want {
		t.Fatalf("target holds %d rows, want exactly the window's %d (rows outside the window must not land)", got, want)
	}
	outside := e.count("SELECT COUNT(*) FROM "+e.dst+".records WHERE timestamp < ? OR timestamp >= ?", e.startT, e.endT)
	if outside != 0 {
		t.Errorf("%d target rows lie outside the window", outside)
	}
	matched := e.count(`SELECT COUNT(*) FROM ` + e.src + `.raw_records s JOIN ` + e.dst + `.records t
		ON t.device_type = s.device_type AND t.event_type = s.event_type AND t.timestamp = s.timestamp
		WHERE BINARY t.message = BINARY UPPER(s.message) AND BINARY t.message <> BINARY s.message
		AND t.source_id = s.id AND t.date = s.date AND t.loaded_at IS NOT NULL`)
	if matched != want {
		t.Errorf("%d of %d target rows carry the upper-cased source message and lineage, want all", matched, want)
	}

	before := e.targetFingerprint()
	out = e.must(append([]string{"run"}, e.window()...)...)
	if !strings.Contains(out, "(0 new,") {
		t.Errorf("re-run inserted rows:\n%s", out)
	}
	if after := e.targetFingerprint(); after != before {
		t.Errorf("re-running the window changed the target: %s -> %s", before, after)
	}
	e.must(append([]string{"verify"}, e.window()...)...)
}

func TestIntegrationRunEmptyWindowSucceeds(t *testing.T) {
	e := newITEnv(t)
	e.must("migrate")
	out := e.must(append([]string{"run"}, e.window()...)...)
	if !strings.Contains(out, "0 rows read, 0 produced") {
		t.Errorf("empty window summary:\n%s", out)
	}
}

// topicKeys reads the whole topic: partition -> offset -> dedupe key.
// iotRecord is the record of the insert of an IoT row (of the built-in
// table, as the producers encode it) with the given id, device type and
// timestamp, event type "reading", on e.topic.
func (e *itEnv) iotRecord(id int, device string, ts time.Time) *kgo.Record {
	e.t.Helper()
	r := changeRecord(e.t, e.iotTable(), uint64(id), schema.OpCreate, nil, map[string]string{
		"id": strconv.Itoa(id), "date": ts.UTC().Format(time.DateOnly), "timestamp": ts.UTC().Format(time.DateTime),
		"device_type": device, "event_type": "reading",
	})
	r.Topic = e.topic
	return r
}

// iotTable is the built-in table (the IoT table) resolved as sluice
// resolves it against the test's source, its target planned from the
// source: what reads the records of e.topic.
func (e *itEnv) iotTable() *schema.Table {
	e.t.Helper()
	b, err := builtinConfig(e.topic)
	if err != nil {
		e.t.Fatal(err)
	}
	tb, err := schema.Resolve(context.Background(), b.tables[0], e.admin, nil, schema.ResolveConfig{SourceDB: e.src, TargetDB: e.dst})
	if err != nil {
		e.t.Fatal(err)
	}
	return tb
}

func (e *itEnv) topicKeys(total int) map[int32]map[int64]string {
	e.t.Helper()
	tb := e.iotTable()
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.brokers), kgo.ConsumeTopics(e.topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		e.t.Fatal(err)
	}
	defer cl.Close()
	keys := map[int32]map[int64]string{}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for n := 0; n < total; {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			e.t.Fatalf("read %d of %d records of %s", n, total, e.topic)
		}
		fs.EachRecord(func(r *kgo.Record) {
			var c schema.Change
			if _, err := schema.ParseChange(nil, tb, r.Value, &c); err != nil {
				e.t.Fatalf("%s/%d@%d: %v", r.Topic, r.Partition, r.Offset, err)
			}
			if keys[r.Partition] == nil {
				keys[r.Partition] = map[int64]string{}
			}
			keys[r.Partition][r.Offset] = keyOf(tb, c.Image())
			n++
		})
	}
	return keys
}

// checkCommitsBehindDB asserts the core invariant once: every record below
// the group's committed offset is in the target. Offsets are read first, the
// target second; the target only grows, so a commit ahead of the database
// shows as a missing key.
func (e *itEnv) checkCommitsBehindDB(keys map[int32]map[int64]string) (committed int64) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	offs, err := e.adm.FetchOffsets(ctx, e.group)
	if errors.Is(err, kerr.GroupIDNotFound) {
		return 0 // the member has not joined yet: nothing committed
	}
	if err != nil {
		e.t.Fatalf("fetch offsets: %v", err)
	}
	// the key columns' texts, in the table's key order, as keyOf joins them
	tb := e.iotTable()
	var cols []string
	for _, k := range tb.Key {
		cols = append(cols, "`"+tb.Columns[k].Target.Name+"`")
	}
	rows, err := e.admin.QueryContext(ctx, "SELECT CONCAT_WS('|', "+strings.Join(cols, ", ")+") FROM "+e.dst+".records")
	if err != nil {
		e.t.Fatal(err)
	}
	have := map[string]bool{}
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			e.t.Fatal(err)
		}
		have[k] = true
	}
	rows.Close()
	offs.Each(func(o kadm.OffsetResponse) {
		if o.Topic != e.topic {
			return
		}
		for off := int64(0); off < o.At; off++ {
			k, ok := keys[o.Partition][off]
			if ok && !have[k] {
				e.t.Errorf("offset %s/%d committed at %d, but the record at %d (key %s) is not in the target", o.Topic, o.Partition, o.At, off, k)
				return
			}
		}
		committed += o.At
	})
	return committed
}

func (e *itEnv) waitCaughtUp(d time.Duration) {
	e.t.Helper()
	if err := e.caughtUp(d); err != nil {
		e.t.Fatal(err)
	}
}

// caughtUp waits up to d for the group to commit the topic's end offsets. It
// returns the error rather than failing the test, so that it can run outside
// the test's goroutine.
func (e *itEnv) caughtUp(d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	ends, err := consumer.EndOffsets(ctx, e.adm, e.topic)
	if err != nil {
		return err
	}
	return consumer.WaitCaughtUp(ctx, e.adm, e.group, e.topic, ends, 100*time.Millisecond)
}

func TestIntegrationConsumerKilledMidRunLosesNothing(t *testing.T) {
	e := newITEnv(t)
	const rows = 40000
	e.must(append([]string{"seed", "--rows", fmt.Sprint(rows)}, e.window()...)...)
	e.must("migrate")
	e.must(append([]string{"backfill"}, e.window()...)...)
	keys := e.topicKeys(rows)

	// A slow-ish member: small batches, so the kill lands mid-stream. One
	// member per process: a member killed while the group is still forming
	// can stay in it for minutes on the kfake dev broker (the scaling tests
	// kill members of a stable group), and this test is about the offsets.
	proc, logs := e.startProc("consume", "--consumers", "1", "--batch-size", "500", "--linger", "200ms")
	observations := 0
	deadline := time.Now().Add(2 * time.Minute)
	for e.count("SELECT COUNT(*) FROM "+e.dst+".records") < rows/4 {
		if time.Now().After(deadline) {
			t.Fatalf("consumer made no progress:\n%s", logs)
		}
		e.checkCommitsBehindDB(keys)
		observations++
		time.Sleep(50 * time.Millisecond)
	}
	if err := proc.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = proc.Wait()
	atKill := e.count("SELECT COUNT(*) FROM " + e.dst + ".records")
	if atKill >= rows {
		t.Fatalf("the consumer finished before the kill (%d rows); the test needs a mid-run kill", atKill)
	}
	e.checkCommitsBehindDB(keys)

	proc2, logs2 := e.startProc("consume", "--batch-size", "5000", "--linger", "200ms")
	done := make(chan error, 1)
	go func() { done <- e.caughtUp(3 * time.Minute) }()
	for waiting := true; waiting; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("the restarted member did not catch up: %v\n%s", err, logs2)
			}
			waiting = false
		case <-time.After(100 * time.Millisecond):
			e.checkCommitsBehindDB(keys)
			observations++
		}
	}
	if err := proc2.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := proc2.Wait(); err != nil {
		t.Errorf("consumer did not stop cleanly on SIGTERM: %v\n%s", err, logs2)
	}
	if got := e.checkCommitsBehindDB(keys); got != int64(rows) {
		t.Errorf("committed offsets add up to %d, want %d", got, rows)
	}
	if got := e.count("SELECT COUNT(*) FROM " + e.dst + ".records"); got != rows {
		t.Errorf("target holds %d rows after the restart, want %d", got, rows)
	}
	e.must(append([]string{"verify"}, e.window()...)...)
	t.Logf("killed at %d of %d rows; %d observations of the offsets-behind-DB invariant", atKill, rows, observations)
}

func TestIntegrationVerifyDetectsDeletedAndAlteredRows(t *testing.T) {
	e := newITEnv(t)
	e.must(append([]string{"seed", "--rows", "5000"}, e.window()...)...)
	e.must("migrate")
	e.must(append([]string{"run"}, e.window()...)...)
	e.must(append([]string{"verify"}, e.window()...)...)

	var k schema.Key
	if err := e.admin.QueryRow("SELECT device_type, event_type, timestamp FROM "+e.dst+".records ORDER BY id LIMIT 1 OFFSET 1234").Scan(&k.DeviceType, &k.EventType, &k.Timestamp); err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.Exec("DELETE FROM "+e.dst+".records WHERE device_type = ? AND event_type = ? AND timestamp = ?", k.DeviceType, k.EventType, k.Timestamp); err != nil {
		t.Fatal(err)
	}
	// verify names a key by its values, "|"-joined (verify.TableDiff).
	key := k.DeviceType + "|" + k.EventType + "|" + k.Timestamp.UTC().Format(time.DateTime)
	out, errOut, code := e.sluice(append([]string{"verify"}, e.window()...)...)
	if code != exitMismatch {
		t.Fatalf("verify after a delete: exit %d, want %d\n%s%s", code, exitMismatch, out, errOut)
	}
	if !strings.Contains(out, key+": missing in target") || !strings.Contains(out, "first differing slice") {
		t.Errorf("verify does not name the deleted key %s:\n%s", k, out)
	}

	e.must(append([]string{"run"}, e.window()...)...) // repairs the target
	e.must(append([]string{"verify"}, e.window()...)...)
	if _, err := e.admin.Exec("UPDATE "+e.dst+".records SET message = 'ALTERED' WHERE device_type = ? AND event_type = ? AND timestamp = ?", k.DeviceType, k.EventType, k.Timestamp); err != nil {
		t.Fatal(err)
	}
	out, _, code = e.sluice(append([]string{"verify"}, e.window()...)...)
	if code != exitMismatch || !strings.Contains(out, key+": content differs") {
		t.Errorf("verify after an update: exit %d, want %d naming %s:\n%s", code, exitMismatch, k, out)
	}
}

func TestIntegrationBadInput(t *testing.T) {
	e := newITEnv(t)
	e.must("migrate")
	for _, tc := range []struct {
		name     string
		args     []string
		env      []string
		wantCode int
		want     []string
	}{
		{name: "end before start", args: []string{"run", "--start-at", "2025-10-02 00:00:00", "--end-at", "2025-10-01 00:00:00"},
			wantCode: exitUsage, want: []string{"--end-at 2025-10-01 00:00:00 is not after --start-at 2025-10-02 00:00:00"}},
		{name: "malformed time", args: []string{"backfill", "--start-at", "2025-10-01 25:00", "--end-at", "2025-10-02"},
			wantCode: exitUsage, want: []string{`--start-at "2025-10-01 25:00": not a time`}},
		{name: "earlier job spelling malformed", args: []string{"backfill", "-start_at", "yesterday", "-end_at", "2025-10-02"},
			wantCode: exitUsage, want: []string{`--start-at "yesterday"`}},
		{name: "unknown flag", args: []string{"run", "--nope"}, wantCode: exitUsage, want: []string{"nope"}},
		{name: "bad env value", args: []string{"consume"}, env: []string{"SLUICE_BATCH_SIZE=lots"},
			wantCode: exitUsage, want: []string{"SLUICE_BATCH_SIZE"}},
		{name: "unreachable source", args: append([]string{"backfill"}, e.window()...),
			env:      []string{"SLUICE_SOURCE_DSN=sluice:sluice@tcp(127.0.0.1:1)/source_db"},
			wantCode: exitFailed, want: []string{"--source-dsn", "127.0.0.1:1", "unreachable"}},
		{name: "unreachable target", args: []string{"consume"},
			env:      []string{"SLUICE_TARGET_DSN=sluice:sluice@tcp(127.0.0.1:1)/target_db"},
			wantCode: exitFailed, want: []string{"--target-dsn", "127.0.0.1:1", "unreachable"}},
		{name: "unreachable broker", args: append([]string{"run"}, e.window()...), env: []string{"SLUICE_BROKERS=127.0.0.1:1"},
			wantCode: exitFailed, want: []string{"127.0.0.1:1", "unreachable"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.t = t
			e.extraEnv = tc.env
			defer func() { e.extraEnv = nil }()
			out, errOut, code := e.sluice(tc.args...)
			if code != tc.wantCode {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.wantCode, out, errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr does not say %q:\n%s", w, errOut)
				}
			}
		})
	}
}

// TestIntegrationDeadLettersAndRedrive: records that cannot be applied go to
// the dead-letter topic while the rest of the window lands; the run exits 4
// (partial) saying how many; `dlq inspect` shows them with their reason and
// coordinates; once the cause is fixed (the column widened), `dlq redrive`
// sends them back and they land.
func TestIntegrationDeadLettersAndRedrive(t *testing.T) {
	e := newITEnv(t)
	e.must(append([]string{"seed", "--rows", "3000"}, e.window()...)...)
	e.must("migrate")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := e.adm.CreateTopic(ctx, 4, -1, nil, e.topic); err != nil {
		t.Fatal(err)
	}
	longDevice := strings.Repeat("d", 300)
	long := e.iotRecord(1, longDevice, e.startT.Add(time.Hour))
	for _, r := range []*kgo.Record{long, {Topic: e.topic, Key: []byte(`{"device_type":"x"}`), Value: []byte(`{"op":"c","after":`)}} {
		if err := e.kcl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	out, errOut, code := e.sluice(append([]string{"run"}, e.window()...)...)
	if code != exitPartial || !strings.Contains(errOut, "2 records of "+e.topic+" went to "+e.topic+".dlq") {
		t.Fatalf("run with two poison records: exit %d, want %d naming them\n%s%s", code, exitPartial, out, errOut)
	}
	e.must(append([]string{"verify"}, e.window()...)...) // the window itself landed whole

	out = e.must("dlq", "inspect", "-n", "10", "--idle", "1s")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		t.Fatalf("dlq inspect printed %d records, want 2:\n%s", len(lines), out)
	}
	for _, want := range []string{`"sluice.dlq.reason":"validation"`, `"sluice.dlq.reason":"decode"`, `"sluice.dlq.topic":"` + e.topic + `"`,
		`"sluice.dlq.offset":"0"`, "column device_type: rule max_length: 300 characters, over 255", "malformed change event"} {
		if !strings.Contains(out, want) {
			t.Errorf("dlq inspect does not show %s:\n%s", want, out)
		}
	}

	// The fix: a wider column (the unique key still fits InnoDB's 3072 bytes).
	if _, err := e.admin.Exec("ALTER TABLE " + e.dst + ".records MODIFY device_type VARCHAR(400) NOT NULL"); err != nil {
		t.Fatal(err)
	}
	if out := e.must("dlq", "redrive"); !strings.Contains(out, "2 records") {
		t.Errorf("dlq redrive: %s", out)
	}
	proc, logs := e.startProc("consume", "--linger", "100ms")
	e.waitCaughtUp(time.Minute)
	_ = proc.Process.Signal(syscall.SIGTERM)
	if err := proc.Wait(); err != nil {
		t.Errorf("consume: %v\n%s", err, logs)
	}
	if n := e.count("SELECT COUNT(*) FROM "+e.dst+".records WHERE device_type = ?", longDevice); n != 1 {
		t.Errorf("the re-driven record is not in the target (%d rows)", n)
	}
	// The malformed record cannot be fixed by any schema: it is back in the
	// dead-letter topic, after the two the re-drive took.
	ends, err := consumer.EndOffsets(ctx, e.adm, e.topic+".dlq")
	if err != nil {
		t.Fatal(err)
	}
	if ends[0] != 3 {
		t.Errorf("dead-letter topic ends at %d, want 3 (2 dead letters + the malformed one again)", ends[0])
	}
}
