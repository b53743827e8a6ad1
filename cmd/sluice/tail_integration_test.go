package main

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/consumer"
	"github.com/sluice-dev/sluice/schema"
)

// srcExec runs a statement on the test's source database and returns the
// rows it affected.
func (e *itEnv) srcExec(q string, args ...any) int {
	e.t.Helper()
	res, err := e.admin.Exec(strings.ReplaceAll(q, "{src}", e.src), args...)
	if err != nil {
		e.t.Fatalf("%s: %v", q, err)
	}
	n, _ := res.RowsAffected()
	return int(n)
}

// binlogNow returns the source's binlog file, offset and GTID position now.
func (e *itEnv) binlogNow() (file string, pos uint64, gtid string) {
	e.t.Helper()
	file, pos, ok, err := schema.BinlogStatus(context.Background(), e.admin, "SHOW MASTER STATUS")
	if err != nil || !ok {
		e.t.Fatalf("SHOW MASTER STATUS: %v (binlog on: %v)", err, ok)
	}
	if err := e.admin.QueryRow("SELECT @@GLOBAL.gtid_binlog_pos").Scan(&gtid); err != nil {
		e.t.Fatal(err)
	}
	return file, pos, gtid
}

// opCounts reads the whole topic as a read_committed consumer does and counts
// the change events of each op; records of aborted transactions are not
// seen. It stops at the last stable offsets.
func (e *itEnv) opCounts(topic string) map[schema.Op]int {
	e.t.Helper()
	counts := map[schema.Op]int{}
	tb := e.iotTable()
	var c schema.Change
	for _, r := range e.committedRecords(topic) {
		if _, err := schema.ParseChange(nil, tb, r.Value, &c); err != nil {
			e.t.Fatalf("%s/%d@%d: %v", r.Topic, r.Partition, r.Offset, err)
		}
		counts[c.Op]++
	}
	return counts
}

// committedRecords reads the whole topic as a read_committed consumer does,
// up to the last stable offsets: records of aborted transactions and
// control records are not returned.
func (e *itEnv) committedRecords(topic string) []*kgo.Record {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ends, err := e.adm.ListCommittedOffsets(ctx, topic)
	if err != nil {
		e.t.Fatal(err)
	}
	want := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			want[o.Partition] = o.Offset
		}
	})
	var out []*kgo.Record
	if len(want) == 0 {
		return out
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.brokers), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())
	if err != nil {
		e.t.Fatal(err)
	}
	defer cl.Close()
	for len(want) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			e.t.Fatalf("read %s: still waiting for partitions %v", topic, want)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if end, ok := want[r.Partition]; ok && r.Offset >= end-1 {
				delete(want, r.Partition)
			}
			if !r.Attrs.IsControl() {
				out = append(out, r)
			}
		})
	}
	return out
}

// sourceEqualsTarget compares the window of source and target by count and
// content checksum (the message upper-cased, as the consumer writes it).
func (e *itEnv) sourceEqualsTarget() (bool, string) {
	return e.compareTables("WHERE timestamp >= ? AND timestamp < ?", e.startT, e.endT)
}

// compareTables compares the rows of source and target that where selects.
func (e *itEnv) compareTables(where string, args ...any) (bool, string) {
	e.t.Helper()
	sum := func(db, table, msg string) string {
		var n int
		var s sql.NullString
		q := fmt.Sprintf("SELECT COUNT(*), SUM(CRC32(CONCAT_WS('|', device_type, event_type, timestamp, date, %s))) FROM %s.%s %s", msg, db, table, where)
		if err := e.admin.QueryRow(q, args...).Scan(&n, &s); err != nil {
			e.t.Fatal(err)
		}
		return fmt.Sprintf("%d/%s", n, s.String)
	}
	a, b := sum(e.src, "raw_records", "UPPER(message)"), sum(e.dst, "records", "message")
	return a == b, "source " + a + ", target " + b
}

// waitSame polls until the window of source and target agree.
func (e *itEnv) waitSame(d time.Duration, logs ...fmt.Stringer) {
	e.t.Helper()
	e.waitEqual(d, e.sourceEqualsTarget, logs...)
}

// waitEqual polls equal until it holds, failing the test after d.
func (e *itEnv) waitEqual(d time.Duration, equal func() (bool, string), logs ...fmt.Stringer) {
	e.t.Helper()
	deadline := time.Now().Add(d)
	for {
		same, what := equal()
		if same {
			return
		}
		if time.Now().After(deadline) {
			var b strings.Builder
			for _, l := range logs {
				b.WriteString(l.String())
			}
			e.t.Fatalf("source and target still differ after %s: %s\n%s", d, what, b.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// throughTail starts a tail and a consumer, makes rounds of source changes
// (mutate, seeded with seed), then more (extra, may be nil), waits until the
// window of target and source agree, and stops both.
func (e *itEnv) throughTail(seed uint64, rounds int, extra func()) {
	e.t.Helper()
	tl, tlogs := e.startTail("--from", "now", "--flush-interval", "20ms")
	cons, clogs := e.startProc("consume", "--linger", "50ms")
	rng := rand.New(rand.NewPCG(seed, seed+1))
	var ch changes
	for round := range rounds {
		e.mutate(rng, round, &ch)
	}
	if extra != nil {
		extra()
	}
	e.waitSame(time.Minute, tlogs, clogs)
	stopProc(e.t, tl, tlogs)
	stopProc(e.t, cons, clogs)
}

// changes counts the row changes a test made, as the binlog records them.
type changes struct{ c, u, d int }

func (ch *changes) want() map[schema.Op]int {
	return map[schema.Op]int{schema.OpCreate: ch.c, schema.OpUpdate: ch.u, schema.OpDelete: ch.d}
}

// mutate makes one round of source changes inside the window: inserts, plain
// updates, dedupe-key updates and deletes, each its own transaction, and
// counts them.
func (e *itEnv) mutate(rng *rand.Rand, round int, ch *changes) {
	e.t.Helper()
	var vals []string
	for i := range 20 {
		ts := e.startT.Add(time.Duration(round*500+i) * time.Second)
		vals = append(vals, fmt.Sprintf("('%s','%s','dev%02d','ev%d','r%d i%d é')", ts.Format(time.DateOnly), ts.Format(time.DateTime), rng.IntN(30), rng.IntN(3), round, i))
	}
	ch.c += e.srcExec("INSERT IGNORE INTO {src}.raw_records (date, timestamp, device_type, event_type, message) VALUES " + strings.Join(vals, ","))
	ch.u += e.srcExec("UPDATE {src}.raw_records SET message = CONCAT('upd ', ?, ' ', id) ORDER BY RAND() LIMIT 5", round)
	n := e.srcExec("UPDATE {src}.raw_records SET event_type = CONCAT('moved', id) WHERE event_type NOT LIKE 'moved%' ORDER BY RAND() LIMIT 2")
	ch.c, ch.d = ch.c+n, ch.d+n
	ch.d += e.srcExec("DELETE FROM {src}.raw_records ORDER BY RAND() LIMIT 3")
}

// checkOps compares the c/u/d events in the test's topic with the changes
// the source made: every change once, none twice. It returns the counts.
func (e *itEnv) checkOps(ch changes, when string) map[schema.Op]int {
	e.t.Helper()
	got := e.opCounts(e.topic)
	for op, n := range ch.want() {
		if got[op] != n {
			e.t.Errorf("op %s: %d events in the topic%s, the source made %d changes", op, got[op], when, n)
		}
	}
	return got
}

// startTail starts `sluice tail` and waits until it has taken its start
// position, so that changes made after it returns are the tail's to stream.
func (e *itEnv) startTail(args ...string) (*exec.Cmd, *bytes.Buffer) {
	e.t.Helper()
	p, logs := e.startProc(append([]string{"tail"}, args...)...)
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(logs.String(), "tail: starting") && !strings.Contains(logs.String(), "tail: resuming") {
		if time.Now().After(deadline) || p.ProcessState != nil {
			e.t.Fatalf("tail did not start within a minute:\n%s", logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return p, logs
}

// migrateOnly creates the test's source and target tables.
func (e *itEnv) migrateOnly() {
	e.t.Helper()
	e.must("migrate")
}

func TestIntegrationTailChangesReachTarget(t *testing.T) {
	e := newITEnv(t)
	e.migrateOnly()
	e.must(append([]string{"seed", "--rows", "500"}, e.window()...)...)
	tl, tlogs := e.startTail("--from", "now")
	cons, clogs := e.startProc("consume")
	rng := rand.New(rand.NewPCG(1, 2))
	var ch changes
	for round := range 10 {
		e.mutate(rng, round, &ch)
	}
	// The seeded rows were written before the tail started: give the target
	// the window's rows the tail did not see, through the nightly job's path.
	e.must(append([]string{"backfill"}, e.window()...)...)
	e.waitSame(2*time.Minute, tlogs, clogs)
	e.must(append([]string{"verify"}, e.window()...)...)
	stopProc(t, tl, tlogs)
	stopProc(t, cons, clogs)
	got := e.checkOps(ch, "")
	if got[schema.OpRead] != e.sourceInWindow() {
		t.Errorf("backfill: %d reads, %d rows in the window", got[schema.OpRead], e.sourceInWindow())
	}
	if e.count("SELECT COUNT(*) FROM "+e.dst+".records WHERE event_type LIKE 'moved%'") == 0 {
		t.Error("no row with a changed dedupe key reached the target")
	}
}

func TestIntegrationTailKilledMidStreamLosesNothing(t *testing.T) {
	e := newITEnv(t)
	e.migrateOnly()
	tl, tlogs := e.startTail("--from", "now", "--flush-interval", "20ms")
	cons, clogs := e.startProc("consume")
	rng := rand.New(rand.NewPCG(3, 4))
	var ch changes
	kills := 0
	for round := range 60 {
		e.mutate(rng, round, &ch)
		if round%10 == 3 {
			// SIGKILL a few milliseconds into the next rounds' changes, at
			// whatever point the stream is; the next tail resumes from the
			// position committed with the last events.
			victim := tl
			time.AfterFunc(time.Duration(rng.IntN(40))*time.Millisecond, func() { _ = victim.Process.Signal(syscall.SIGKILL) })
			e.mutate(rng, 100+round, &ch)
			e.mutate(rng, 200+round, &ch)
			_ = victim.Wait()
			if ws, ok := victim.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
				t.Fatalf("tail was not killed: %v\n%s", victim.ProcessState, tlogs)
			}
			kills++
			e.mutate(rng, 300+round, &ch) // changes while no tail runs
			tl, tlogs = e.startTail("--from", "now", "--flush-interval", "20ms")
		}
	}
	e.waitSame(2*time.Minute, tlogs, clogs)
	e.must(append([]string{"verify"}, e.window()...)...)
	stopProc(t, tl, tlogs)
	stopProc(t, cons, clogs)
	if !strings.Contains(tlogs.String(), "resuming from the position committed") {
		t.Errorf("the restarted tail did not resume from its stored position:\n%s", tlogs)
	}
	// Exactly once: every change is in the topic once, none twice, although
	// %d tails were killed mid-stream.
	e.checkOps(ch, fmt.Sprintf(" after %d kills", kills))
}

// TestIntegrationTailKilledBeforeFirstCommit kills a tail started with
// --from now before it commits any event (its flush interval is an hour), then
// starts it again with --from now: the changes the first one saw must still
// reach the topic and the target, because the start position was committed
// before the first event. Without that, the second start's "now" is later
// and skips them.
func TestIntegrationTailKilledBeforeFirstCommit(t *testing.T) {
	e := newITEnv(t)
	e.migrateOnly()
	cons, clogs := e.startProc("consume")
	tl, tlogs := e.startTail("--from", "now", "--flush-interval", "1h", "--flush-events", "1000000")
	rng := rand.New(rand.NewPCG(7, 8))
	var ch changes
	for round := range 3 {
		e.mutate(rng, round, &ch)
	}
	_ = tl.Process.Signal(syscall.SIGKILL)
	_ = tl.Wait()
	e.mutate(rng, 3, &ch) // while no tail runs
	tl, tlogs = e.startTail("--from", "now", "--flush-interval", "20ms")
	if !strings.Contains(tlogs.String(), "resuming from the position committed") {
		t.Errorf("the second tail did not resume from the first one's start position:\n%s", tlogs)
	}
	e.mutate(rng, 4, &ch)
	e.waitSame(2*time.Minute, tlogs, clogs)
	stopProc(t, tl, tlogs)
	stopProc(t, cons, clogs)
	e.checkOps(ch, "")
}

func TestIntegrationTailStartOptions(t *testing.T) {
	e := newITEnv(t)
	e.migrateOnly()
	file, pos, gtid := e.binlogNow()
	rng := rand.New(rand.NewPCG(5, 6))
	var ch changes
	for round := range 3 {
		e.mutate(rng, round, &ch)
	}
	// Three tails under their own names into their own topics, started after
	// the changes: from the file position, from the GTID, and from now.
	for _, tc := range []struct{ name, from string }{
		{"file", fmt.Sprintf("%s:%d", file, pos)},
		{"gtid", gtid},
		{"now", "now"},
	} {
		topic := e.topic + "." + tc.name
		e.extraEnv = []string{"SLUICE_TOPIC=" + topic}
		p, logs := e.startTail("--from", tc.from, "--tail-name", e.src+"-"+tc.name)
		time.Sleep(time.Second)
		stopProc(t, p, logs)
		got := e.opCounts(topic)
		want := ch.want()
		if tc.name == "now" {
			want = map[schema.Op]int{}
		}
		for _, op := range []schema.Op{schema.OpCreate, schema.OpUpdate, schema.OpDelete} {
			if got[op] != want[op] {
				t.Errorf("--from %s: op %s: %d events, want %d\n%s", tc.from, op, got[op], want[op], logs)
			}
		}
	}
	e.extraEnv = nil
	_, errOut, code := e.sluice("tail", "--from", "mysql-bin:12")
	if code != 2 || !strings.Contains(errOut, "--from") {
		t.Errorf("bad --from: exit %d, want 2 naming --from:\n%s", code, errOut)
	}
}

func TestIntegrationTailPurgedBinlogStopsWithClearError(t *testing.T) {
	e := newITEnv(t)
	e.migrateOnly()
	tl, tlogs := e.startTail("--from", "now")
	rng := rand.New(rand.NewPCG(7, 8))
	var ch changes
	e.mutate(rng, 0, &ch)
	deadline := time.Now().Add(time.Minute)
	for e.opCounts(e.topic)[schema.OpCreate] < ch.c {
		if time.Now().After(deadline) {
			t.Fatalf("tail produced nothing:\n%s", tlogs)
		}
		time.Sleep(100 * time.Millisecond)
	}
	stopProc(t, tl, tlogs)
	// While no tail runs, changes land in a binlog that is then purged.
	e.srcExec("FLUSH BINARY LOGS")
	e.mutate(rng, 1, &ch)
	e.srcExec("FLUSH BINARY LOGS")
	file, _, _ := e.binlogNow()
	e.srcExec("PURGE BINARY LOGS TO '" + file + "'")
	var oldest string
	if err := e.admin.QueryRow("SHOW BINARY LOGS").Scan(&oldest, new(any)); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := e.sluice("tail", "--from", "now")
	if code != 1 {
		t.Fatalf("tail after a purge: exit %d, want 1:\n%s", code, errOut)
	}
	for _, want := range []string{"no longer has the binlog", "oldest binlog is " + oldest, "sluice backfill --start-at", "--reset --from now"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("purged-binlog error does not say %q:\n%s", want, errOut)
		}
	}
	// The steps in the order that loses nothing: the tail first, then the
	// backfill (the other order loses the changes made in between).
	if i, j := strings.Index(errOut, "--recover-purged"), strings.Index(errOut, "sluice backfill --start-at"); i < 0 || j < 0 || i > j {
		t.Errorf("purged-binlog error does not say to restart the tail (--recover-purged) before the backfill:\n%s", errOut)
	}
}

func TestIntegrationTailChecksServerSettings(t *testing.T) {
	e := newITEnv(t)
	e.migrateOnly()
	user := "it_norepl_" + e.src[len("it_src_"):]
	e.srcExec("CREATE USER '" + user + "'@'%' IDENTIFIED BY 'pw'")
	t.Cleanup(func() { e.admin.Exec("DROP USER '" + user + "'@'%'") })
	addr := e.base[strings.Index(e.base, "@")+1:]
	e.extraEnv = []string{"SLUICE_SOURCE_DSN=" + user + ":pw@" + addr + e.src}
	_, errOut, code := e.sluice("tail")
	if code != 1 || !strings.Contains(errOut, "REPLICATION SLAVE") || !strings.Contains(errOut, "GRANT") {
		t.Errorf("tail without replication grants: exit %d, want 1 naming REPLICATION SLAVE:\n%s", code, errOut)
	}
	e.extraEnv = nil

	// A server logging minimal row images is refused, naming the setting.
	// Only new sessions see the global value, and no other test tails.
	e.srcExec("SET GLOBAL binlog_row_image = 'MINIMAL'")
	t.Cleanup(func() { e.admin.Exec("SET GLOBAL binlog_row_image = 'FULL'") })
	_, errOut, code = e.sluice("tail")
	if code != 1 || !strings.Contains(errOut, "binlog_row_image is MINIMAL") {
		t.Errorf("tail with binlog_row_image=MINIMAL: exit %d, want 1 naming binlog_row_image:\n%s", code, errOut)
	}
}

// waitGroupCaughtUp waits until group has committed every partition of
// topic up to its end offsets as they are now.
func (e *itEnv) waitGroupCaughtUp(topic, group string, d time.Duration) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	ends, err := consumer.EndOffsets(ctx, e.adm, topic)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := consumer.WaitCaughtUp(ctx, e.adm, group, topic, ends, 100*time.Millisecond); err != nil {
		e.t.Fatalf("group %s on %s: %v", group, topic, err)
	}
}

// The backfill reads a row, then the source updates or deletes it, and the
// tail's event reaches the target first; the backfill's older read arrives
// last. The target must keep the update and must not bring the deleted row
// back. The read is held back by producing the backfill to a topic that is
// applied only after the tail's.
func TestIntegrationTailBesideBackfillOlderReadsArriveLate(t *testing.T) {
	e := newITEnv(t)
	e.migrateOnly()
	e.must(append([]string{"seed", "--rows", "3000"}, e.window()...)...)
	tl, tlogs := e.startTail("--from", "now")
	late := e.topic + ".late-backfill"
	e.extraEnv = []string{"SLUICE_TOPIC=" + late}
	e.must(append([]string{"backfill"}, e.window()...)...)
	e.extraEnv = nil

	// After the reads: update, move (dedupe-key change) and delete rows
	// the backfill has read, and insert new ones.
	rng := rand.New(rand.NewPCG(9, 10))
	var ch changes
	for round := range 5 {
		e.mutate(rng, round, &ch)
	}
	updated := e.srcExec("UPDATE {src}.raw_records SET message = CONCAT('after the read ', id) WHERE id % 7 = 0")
	deleted := e.srcExec("DELETE FROM {src}.raw_records WHERE id % 11 = 0")
	if updated == 0 || deleted == 0 {
		t.Fatalf("updated %d, deleted %d: the test needs both", updated, deleted)
	}
	stillUpdated := e.count("SELECT COUNT(*) FROM " + e.src + ".raw_records WHERE message LIKE 'after the read %'")
	cons, clogs := e.startProc("consume")
	deadline := time.Now().Add(time.Minute)
	for e.count("SELECT COUNT(*) FROM "+e.dst+".records WHERE message LIKE 'AFTER THE READ %'") < stillUpdated {
		if time.Now().After(deadline) {
			t.Fatalf("the tail's updates did not reach the target:\n%s\n%s", tlogs, clogs)
		}
		time.Sleep(100 * time.Millisecond)
	}
	e.waitGroupCaughtUp(e.topic, e.group, time.Minute)
	stopProc(t, cons, clogs)

	// Now the older reads, all of them, through a second group.
	e.extraEnv = []string{"SLUICE_TOPIC=" + late, "SLUICE_GROUP=" + e.group + "-late"}
	lateCons, lateLogs := e.startProc("consume")
	e.waitGroupCaughtUp(late, e.group+"-late", time.Minute)
	stopProc(t, lateCons, lateLogs)
	e.extraEnv = nil
	stopProc(t, tl, tlogs)

	if same, what := e.sourceEqualsTarget(); !same {
		t.Errorf("after the older backfill reads: %s", what)
	}
	if n := e.count("SELECT COUNT(*) FROM " + e.dst + ".records WHERE source_id % 11 = 0"); n != 0 {
		t.Errorf("%d deleted rows came back from older backfill reads", n)
	}
	if n := e.count("SELECT COUNT(*) FROM " + e.dst + ".records WHERE source_id % 7 = 0 AND source_id % 11 <> 0 AND message NOT LIKE 'AFTER THE READ %'"); n != 0 {
		t.Errorf("%d updated rows were overwritten by older backfill reads", n)
	}
	e.must(append([]string{"verify"}, e.window()...)...)
}

// A backfill of the window runs while the source changes and the tail and
// the consumers run: whatever the interleaving, the target ends equal to the
// source.
func TestIntegrationTailBesideConcurrentBackfill(t *testing.T) {
	e := newITEnv(t)
	e.migrateOnly()
	e.must(append([]string{"seed", "--rows", "20000"}, e.window()...)...)
	tl, tlogs := e.startTail("--from", "now", "--flush-interval", "20ms")
	cons, clogs := e.startProc("consume", "--linger", "50ms")
	bf, blogs := e.startProc(append([]string{"backfill", "--chunk-size", "500", "--readers", "2"}, e.window()...)...)
	done := make(chan error, 1)
	go func() { done <- bf.Wait() }()
	rng := rand.New(rand.NewPCG(11, 12))
	var ch changes
	rounds := 0
	for running := true; running; rounds++ {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("backfill: %v\n%s", err, blogs)
			}
			running = false
		default:
		}
		e.mutate(rng, rounds%160, &ch)
		e.srcExec("UPDATE {src}.raw_records SET message = CONCAT('concurrent ', ?, ' ', id) WHERE id % 97 = ?", rounds, rounds%97)
		e.srcExec("DELETE FROM {src}.raw_records WHERE id % 89 = ?", rounds%89)
	}
	t.Logf("%d rounds of changes while the backfill ran", rounds)
	e.waitSame(2*time.Minute, tlogs, clogs)
	e.must(append([]string{"verify"}, e.window()...)...)
	stopProc(t, tl, tlogs)
	stopProc(t, cons, clogs)
}
