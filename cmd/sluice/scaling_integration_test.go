package main

// Integration tests of consumer-group scaling with real processes: members
// joining, leaving and being killed mid-run, and four members loading into a
// full target at once. They use the itEnv helpers of integration_test.go.

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/sluice-dev/sluice/consumer"
)

// slowTarget makes every row written to the target take about perRow longer,
// with a trigger, so that a run lasts long enough for members to join and be
// killed mid-stream. The product code is unchanged.
func (e *itEnv) slowTarget(perRow time.Duration) {
	e.t.Helper()
	q := fmt.Sprintf("CREATE TRIGGER %s.slow_insert BEFORE INSERT ON %s.records FOR EACH ROW DO SLEEP(%f)", e.dst, e.dst, perRow.Seconds())
	if _, err := e.admin.Exec(q); err != nil {
		e.t.Fatalf("%s: %v", q, err)
	}
}

// freeAddr returns a loopback address whose port was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// metricsBody is a member's /metrics page.
func metricsBody(t *testing.T, addr string) []byte {
	t.Helper()
	cl := http.Client{Timeout: 5 * time.Second}
	resp, err := cl.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("scrape %s: %v", addr, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape %s: status %d, %v", addr, resp.StatusCode, err)
	}
	return body
}

// scrape reads the unlabelled counters names from a member's /metrics.
func scrape(t *testing.T, addr string, names ...string) map[string]float64 {
	t.Helper()
	body := metricsBody(t, addr)
	got := map[string]float64{}
	var err error
	for _, l := range strings.Split(string(body), "\n") {
		for _, n := range names {
			if v, ok := strings.CutPrefix(l, n+" "); ok {
				if got[n], err = strconv.ParseFloat(strings.TrimSpace(v), 64); err != nil {
					t.Fatalf("scrape %s: %q: %v", addr, l, err)
				}
			}
		}
	}
	for _, n := range names {
		if _, ok := got[n]; !ok {
			t.Fatalf("scrape %s: no %s in\n%s", addr, n, body)
		}
	}
	return got
}

// assigned counts the partitions each member of g holds.
func assigned(g kadm.DescribedGroup) []int {
	n := make([]int, len(g.Members))
	for i, m := range g.Members {
		if a, ok := m.Assigned.AsConsumer(); ok {
			for _, tp := range a.Topics {
				n[i] += len(tp.Partitions)
			}
		}
	}
	return n
}

// proc is a background `sluice consume` member whose exit is watched, so
// that a member dying mid-test fails the test at once, with its logs.
type proc struct {
	*runProc
	addr string // its --metrics-addr, or ""
}

// startMember starts `sluice consume` as one member (--consumers 1), with
// args, serving /metrics on addr ("" for none).
func (e *itEnv) startMember(addr string, args ...string) *proc {
	e.t.Helper()
	return &proc{runProc: e.startRun(append(append([]string{"consume", "--consumers", "1"}, args...), "--metrics-addr", addr)...), addr: addr}
}

// stop sends SIGTERM and fails the test unless the member exits 0.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	select {
	case <-p.exited:
		t.Errorf("%v had exited before SIGTERM: %v\n%s", p.cmd.Args, p.err, p.logs)
		return
	default:
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.exited:
		if p.err != nil {
			t.Errorf("%v did not exit 0 on SIGTERM: %v\n%s", p.cmd.Args, p.err, p.logs)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("%v still running 30s after SIGTERM", p.cmd.Args)
	}
}

// awaitCaughtUp waits until the group has committed the topic's current end
// offsets, calling tick (if any) every 100 ms meanwhile. It fails at once if
// one of members exits.
func (e *itEnv) awaitCaughtUp(d time.Duration, members []*proc, tick func()) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	ends, err := consumer.EndOffsets(ctx, e.adm, e.topic)
	if err != nil {
		e.t.Fatal(err)
	}
	for {
		behind, err := consumer.Behind(ctx, e.adm, e.group, e.topic, ends)
		if err != nil {
			e.t.Fatal(err)
		}
		if len(behind) == 0 {
			return
		}
		for i, p := range members {
			select {
			case <-p.exited:
				e.t.Fatalf("member %d exited before the group caught up: %v\n%s", i+1, p.err, p.logs)
			default:
			}
		}
		if tick != nil {
			tick()
		}
		select {
		case <-ctx.Done():
			e.t.Fatalf("group %s not caught up within %s: still behind %v", e.group, d, behind)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func TestIntegrationConsumerGroupScaling(t *testing.T) {
	e := newITEnv(t)
	const rows, partitions = 60000, 12
	e.must(append([]string{"seed", "--rows", strconv.Itoa(rows)}, e.window()...)...)
	e.must("migrate")
	e.must(append([]string{"backfill", "--partitions", strconv.Itoa(partitions)}, e.window()...)...)
	keys := e.topicKeys(rows)
	if len(keys) != partitions {
		t.Fatalf("topic has records in %d partitions, want %d", len(keys), partitions)
	}
	// About 3,000 rows/s per member, so the membership changes land mid-run.
	e.slowTarget(250 * time.Microsecond)

	applied := func() int { return e.count("SELECT COUNT(*) FROM " + e.dst + ".records") }
	var members []*proc // the live ones
	observations := 0
	observeUntil := func(what string, d time.Duration, done func() bool) {
		t.Helper()
		deadline := time.Now().Add(d)
		for !done() {
			for i, m := range members {
				select {
				case <-m.exited:
					t.Fatalf("member %d exited: %v\n%s", i+1, m.err, m.logs)
				default:
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("not %s within %s (%d rows applied)", what, d, applied())
			}
			e.checkCommitsBehindDB(keys)
			observations++
			time.Sleep(50 * time.Millisecond)
		}
	}
	start := func() *proc { return e.startMember("", "--batch-size", "1000", "--linger", "200ms") }

	groupOf := func(n int) func() bool {
		return func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			gs, err := e.adm.DescribeGroups(ctx, e.group)
			if err != nil || !stableWith(n)(gs[e.group]) {
				return false
			}
			for _, k := range assigned(gs[e.group]) {
				if k == 0 {
					return false
				}
			}
			return true
		}
	}

	// One member; at 10% three more join; once all four hold partitions the
	// first leaves on SIGTERM (exit 0), abandoning its batch in flight.
	members = []*proc{start()}
	observeUntil("10% applied by one member", time.Minute, func() bool { return applied() >= rows/10 })
	atJoin := applied()
	members = append(members, start(), start(), start())
	observeUntil("4 members stable", time.Minute, groupOf(4))
	leaver := members[0]
	members = members[1:]
	leaver.stop(t)
	atLeave := applied()
	observeUntil("3 members stable after the leave", time.Minute, groupOf(3))
	observeUntil("40% applied", time.Minute, func() bool { return applied() >= rows*4/10 })

	// SIGKILL one of the three: its batch in flight is lost, and its
	// partitions go to the others only once its session times out (45 s).
	// Nothing it committed may be missing from the target.
	victim := members[1]
	if err := victim.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-victim.exited
	killedAt := time.Now()
	members = []*proc{members[0], members[2]}
	atKill := applied()
	if atKill >= rows {
		t.Fatalf("all %d rows were applied before the kill; the test needs a mid-run kill", rows)
	}
	e.checkCommitsBehindDB(keys)
	// The rest may run at full speed.
	if _, err := e.admin.Exec("DROP TRIGGER " + e.dst + ".slow_insert"); err != nil {
		t.Fatal(err)
	}

	e.awaitCaughtUp(3*time.Minute, members, func() {
		e.checkCommitsBehindDB(keys)
		observations++
	})
	recovered := time.Since(killedAt)
	for _, m := range members {
		m.stop(t)
	}
	if got := e.checkCommitsBehindDB(keys); got != rows {
		t.Errorf("committed offsets add up to %d, want %d", got, rows)
	}
	if got := applied(); got != rows {
		t.Errorf("target holds %d rows, want exactly the %d seeded", got, rows)
	}
	e.must(append([]string{"verify"}, e.window()...)...)
	t.Logf("1 member; 3 joined at %d rows; 1 left at %d; 1 of 3 SIGKILLed at %d of %d rows; caught up %s after the kill; %d observations of the offsets-behind-DB invariant",
		atJoin, atLeave, atKill, rows, recovered.Round(100*time.Millisecond), observations)
}

// loadResult is what one phase of parallel loading did, from the members'
// /metrics.
type loadResult struct{ batches, retries float64 }

// loadInParallel applies the window through e.topic (created here) and
// e.group with n concurrent `sluice consume` processes. All n hold partitions
// before the first record is produced, so the load is shared from the start.
// It fails
// the test if any member's batch failed for good (a failed transaction
// attempt that was not retried), if fewer than 2 members committed batches,
// or if a member does not exit 0 on SIGTERM.
func (e *itEnv) loadInParallel(phase string, n int, partitions int32) loadResult {
	t := e.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := e.adm.CreateTopic(ctx, partitions, -1, nil, e.topic); err != nil {
		t.Fatal(err)
	}
	var members []*proc
	for range n {
		members = append(members, e.startMember(freeAddr(t), "--batch-size", "2000", "--linger", "200ms"))
	}
	g := e.waitGroup(time.Minute, fmt.Sprintf("stable with %d members holding partitions", n), func(g kadm.DescribedGroup) bool {
		if !stableWith(n)(g) {
			return false
		}
		for _, k := range assigned(g) {
			if k == 0 {
				return false
			}
		}
		return true
	})
	e.must(append([]string{"backfill"}, e.window()...)...)
	e.awaitCaughtUp(3*time.Minute, members, nil)

	const (
		errorsName  = "sluice_consumer_db_errors_total"
		retriesName = "sluice_consumer_db_retries_total"
		batchesName = "sluice_consumer_batches_total"
	)
	var res loadResult
	sharing := 0
	for i, m := range members {
		got := scrape(t, m.addr, errorsName, retriesName, batchesName)
		if failed := got[errorsName] - got[retriesName]; failed != 0 {
			t.Errorf("%s, member %d: %v failed transaction attempts, %v retried: %v batches failed for good\n%s",
				phase, i+1, got[errorsName], got[retriesName], failed, m.logs)
		}
		res.retries += got[retriesName]
		res.batches += got[batchesName]
		if got[batchesName] > 0 {
			sharing++
		}
		t.Logf("%s, member %d (%d partitions): %v batches, %v retried transactions, %v failed attempts",
			phase, i+1, assigned(g)[i], got[batchesName], got[retriesName], got[errorsName])
	}
	if sharing < 2 {
		t.Errorf("%s: only %d of %d members committed batches: the load was not shared", phase, sharing, n)
	}
	for _, m := range members {
		m.stop(t)
	}
	return res
}

// innodbLocks reads the server-wide deadlock and row-lock-wait counters. They
// count every session of the server, so they are logged, never asserted.
func (e *itEnv) innodbLocks() (deadlocks, waits int) {
	e.t.Helper()
	for name, v := range map[string]*int{"Innodb_deadlocks": &deadlocks, "Innodb_row_lock_waits": &waits} {
		var n string
		if err := e.admin.QueryRow("SHOW GLOBAL STATUS LIKE '"+name+"'").Scan(&n, v); err != nil {
			e.t.Logf("%s: %v", name, err)
		}
	}
	return deadlocks, waits
}

func TestIntegrationParallelLoadersNoFailedBatches(t *testing.T) {
	e := newITEnv(t)
	const rows, loaders = 80000, 4
	e.must(append([]string{"seed", "--rows", strconv.Itoa(rows)}, e.window()...)...)
	e.must("migrate")
	topic, group := e.topic, e.group

	// Three loads of the window, each by 4 concurrent members through a
	// fresh topic and group:
	//   - fill: into the empty target, every row an insert;
	//   - rerun: into the full target, every row an INSERT … ON DUPLICATE KEY
	//     UPDATE of an existing row, where the earlier job's loaders deadlocked;
	//   - mixed: into the target with a third of its rows deleted, so that
	//     inserts into gaps meet the next-key locks of updated neighbours.
	// Deadlocks may or may not happen on a given machine; none may fail a batch.
	var want string
	for _, phase := range []string{"fill", "rerun", "mixed"} {
		switch phase {
		case "rerun":
			want = e.targetFingerprint()
		case "mixed":
			if _, err := e.admin.Exec("DELETE FROM " + e.dst + ".records WHERE id % 3 = 0"); err != nil {
				t.Fatal(err)
			}
		}
		d0, w0 := e.innodbLocks()
		e.topic, e.group = topic+"."+phase, group+"-"+phase
		res := e.loadInParallel(phase, loaders, 12)
		d1, w1 := e.innodbLocks()
		e.must(append([]string{"verify"}, e.window()...)...)
		if want != "" {
			if got := e.targetFingerprint(); got != want {
				t.Errorf("%s: the target differs from the first load: %s -> %s", phase, want, got)
			}
		}
		t.Logf("%s: %d loaders applied %d rows in %v batches, %v retried transactions, 0 failed batches (server-wide meanwhile: %d deadlocks, %d row lock waits)",
			phase, loaders, rows, res.batches, res.retries, d1-d0, w1-w0)
	}
}
