package main

// Integration tests of how a run ends: a failure ends the process with its
// exit status within a bounded time, whatever is still open (a broker killed
// mid-backfill or mid-consume, a SIGTERM); a rerun after a killed run takes
// over its group members; a misspelled target database is never created.
// Liveness bounds here are generous (tens of seconds): they tell a hang from
// an exit, not a fast exit from a slow one.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// syncBuffer is a bytes.Buffer a process writes while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var (
	brokerBinOnce sync.Once
	brokerBin     string
	brokerBinErr  error
)

// privateBroker is a sluice-kafka process of one test's own, so that the
// test can kill it.
type privateBroker struct {
	addr   string
	cmd    *exec.Cmd
	exited chan struct{}
}

// startBroker builds cmd/sluice-kafka (once) and starts it on a free
// loopback port with a data directory of the test's.
func startBroker(t *testing.T) *privateBroker {
	t.Helper()
	brokerBinOnce.Do(func() {
		brokerBin = filepath.Join(filepath.Dir(sluiceBin), "sluice-kafka")
		if out, err := exec.Command("go", "build", "-o", brokerBin, "../sluice-kafka").CombinedOutput(); err != nil {
			brokerBinErr = fmt.Errorf("build sluice-kafka: %v\n%s", err, out)
		}
	})
	if brokerBinErr != nil {
		t.Fatal(brokerBinErr)
	}
	addr := freeAddr(t)
	cmd := exec.Command(brokerBin, "--listen", addr, "--data-dir", t.TempDir(), "--log-level", "error")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	b := &privateBroker{addr: addr, cmd: cmd, exited: make(chan struct{})}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			select {
			case ready <- sc.Text():
			default:
			}
		}
	}()
	go func() { _ = cmd.Wait(); close(b.exited) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-b.exited })
	select {
	case <-ready:
	case <-b.exited:
		t.Fatalf("sluice-kafka on %s exited at start", addr)
	case <-time.After(30 * time.Second):
		t.Fatalf("sluice-kafka on %s not ready after 30 s", addr)
	}
	return b
}

// kill SIGKILLs the broker and waits until it is gone.
func (b *privateBroker) kill(t *testing.T) {
	t.Helper()
	if err := b.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-b.exited
}

// runProc is a `sluice` process started in the background.
type runProc struct {
	cmd    *exec.Cmd
	logs   *syncBuffer
	exited chan struct{}
	err    error
}

func (e *itEnv) startRun(args ...string) *runProc {
	e.t.Helper()
	cmd := exec.Command(sluiceBin, args...)
	cmd.Env = append(e.env(), e.extraEnv...)
	p := &runProc{cmd: cmd, logs: &syncBuffer{}, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.logs, p.logs
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	go func() { p.err = cmd.Wait(); close(p.exited) }()
	e.t.Cleanup(func() { _ = cmd.Process.Kill(); <-p.exited })
	return p
}

// waitFor polls cond every 50 ms until it holds, failing the test after d
// or when the process exits first.
func (p *runProc) waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		select {
		case <-p.exited:
			t.Fatalf("sluice exited (%v) before %s:\n%s", p.err, what, p.logs)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s after %s:\n%s", what, d, p.logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// exitCode waits up to d for the process to exit and returns its status;
// a process still running then fails the test with its goroutines.
func (p *runProc) exitCode(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(d):
		_ = p.cmd.Process.Signal(syscall.SIGQUIT) // the goroutine dump says where it hangs
		select {
		case <-p.exited:
		case <-time.After(5 * time.Second):
		}
		t.Fatalf("sluice %v still running %s after the failure:\n%s", p.cmd.Args[1:], d, p.logs)
	}
	var ee *exec.ExitError
	switch {
	case p.err == nil:
		return 0
	case errors.As(p.err, &ee):
		return ee.ExitCode()
	}
	t.Fatalf("sluice: %v", p.err)
	return -1
}

func (e *itEnv) targetRows() int { return e.count("SELECT COUNT(*) FROM " + e.dst + ".records") }

// TestIntegrationRunEndsWhenBrokerDies: a broker SIGKILLed during a run, while
// the backfill produces or while the group applies it, fails the run with
// exit 1 within a minute, its failure logged, instead of leaving the process
// waiting on Kafka (it used to stay up for minutes after `run failed`).
// Mid-backfill the members have not started (the run backfills first): the
// backfill's stall watchdog fails it after --delivery-timeout, as for
// `sluice backfill` alone (TestIntegrationBackfillEndsWhenBrokerDies).
func TestIntegrationRunEndsWhenBrokerDies(t *testing.T) {
	const rows = 60000
	for _, tc := range []struct {
		name string
		args []string
		// killNow says, from the run's logs and the target, when to kill.
		killNow func(e *itEnv, logs string) bool
		midWhat string
	}{
		{name: "mid-backfill", midWhat: "backfill",
			// one reader, one chunk of 500 in flight: the backfill lasts
			args: []string{"--readers", "1", "--chunk-size", "500", "--max-buffered-records", "500", "--produce-linger", "20ms",
				"--checkpoint-interval", "100ms", "--delivery-timeout", "5s"},
			// (the members start once it has produced the window)
			killNow: func(e *itEnv, logs string) bool { return strings.Contains(logs, "backfill: planned") },
		},
		{name: "mid-consume", midWhat: "consume",
			// small batches into a slowed target: the group applies for long
			args: []string{"--consumers", "1", "--batch-size", "200", "--linger", "100ms"},
			killNow: func(e *itEnv, logs string) bool {
				return strings.Contains(logs, "waiting for the group to apply it") && e.targetRows() > 0
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newITEnv(t)
			e.must(append([]string{"seed", "--rows", fmt.Sprint(rows)}, e.window()...)...)
			e.must("migrate")
			if tc.midWhat == "consume" {
				e.slowTarget(200 * time.Microsecond)
			}
			b := startBroker(t)
			e.brokers = b.addr
			p := e.startRun(append(append([]string{"run"}, tc.args...), e.window()...)...)
			p.waitFor(t, 2*time.Minute, "progress to kill the broker at", func() bool { return tc.killNow(e, p.logs.String()) })
			produced := strings.Contains(p.logs.String(), "waiting for the group to apply it")
			if (tc.midWhat == "backfill") == produced {
				t.Fatalf("the broker was to be killed mid-%s, but the backfill had produced=%v:\n%s", tc.midWhat, produced, p.logs)
			}
			b.kill(t)
			killed := time.Now()
			code := p.exitCode(t, 60*time.Second)
			logs := p.logs.String()
			if code != exitFailed {
				t.Errorf("exit %d after the broker died, want %d:\n%s", code, exitFailed, logs)
			}
			if !strings.Contains(logs, `msg="run failed"`) {
				t.Errorf("no run failed line:\n%s", logs)
			}
			if n := e.targetRows(); n >= rows {
				t.Errorf("the target has all %d rows: the broker was not killed mid-run", n)
			}
			t.Logf("exited %d, %.1f s after the broker was killed", code, time.Since(killed).Seconds())
		})
	}
}

// TestIntegrationBackfillEndsWhenBrokerDies: `sluice backfill` alone, whose
// broker is SIGKILLed mid-window, exits 1 about --delivery-timeout later,
// naming the stall. Records sent to a broker that died are never failed by
// the Kafka client: before the backfill's watchdog, it waited for ever.
func TestIntegrationBackfillEndsWhenBrokerDies(t *testing.T) {
	const rows = 60000
	e := newITEnv(t)
	e.must(append([]string{"seed", "--rows", fmt.Sprint(rows)}, e.window()...)...)
	b := startBroker(t)
	e.brokers = b.addr
	// One reader, chunks of 100 ids, 100 records buffered, 20 ms linger:
	// 600 chunks, each waiting for its acknowledgement, last seconds.
	p := e.startRun(append([]string{"backfill", "--readers", "1", "--chunk-size", "100", "--max-buffered-records", "100",
		"--produce-linger", "20ms", "--delivery-timeout", "5s"}, e.window()...)...)
	p.waitFor(t, 2*time.Minute, "the backfill's plan", func() bool { return strings.Contains(p.logs.String(), "backfill: planned") })
	b.kill(t)
	if strings.Contains(p.logs.String(), "backfill: done") {
		t.Fatalf("the backfill was done before the broker was killed:\n%s", p.logs)
	}
	killed := time.Now()
	code := p.exitCode(t, 60*time.Second)
	logs := p.logs.String()
	if code != exitFailed {
		t.Errorf("exit %d after the broker died, want %d:\n%s", code, exitFailed, logs)
	}
	if !strings.Contains(logs, "Kafka acknowledged nothing for") || strings.Contains(logs, "backfill: done") {
		t.Errorf("the backfill did not fail on the stall:\n%s", logs)
	}
	t.Logf("exited %d, %.1f s after the broker was killed", code, time.Since(killed).Seconds())
}

// TestIntegrationRunEndsOnFirstSIGTERM: the first SIGTERM ends a run with
// exit 1 (README, Exit codes: interrupted), promptly: with the broker up,
// and with the broker just killed, where the run's last Kafka calls (the
// outcome written to the state topic) cannot be answered.
func TestIntegrationRunEndsOnFirstSIGTERM(t *testing.T) {
	const rows = 30000
	for _, killBroker := range []bool{false, true} {
		name := "broker up"
		if killBroker {
			name = "broker killed"
		}
		t.Run(name, func(t *testing.T) {
			e := newITEnv(t)
			e.must(append([]string{"seed", "--rows", fmt.Sprint(rows)}, e.window()...)...)
			e.must("migrate")
			e.slowTarget(200 * time.Microsecond)
			b := startBroker(t)
			e.brokers = b.addr
			p := e.startRun(append([]string{"run", "--consumers", "1", "--batch-size", "200", "--linger", "100ms"}, e.window()...)...)
			p.waitFor(t, 2*time.Minute, "rows in the target", func() bool { return e.targetRows() > 0 })
			if killBroker {
				b.kill(t)
			}
			if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			signalled := time.Now()
			code := p.exitCode(t, 30*time.Second)
			if code != exitFailed {
				t.Errorf("exit %d after SIGTERM, want %d (interrupted):\n%s", code, exitFailed, p.logs)
			}
			if n := e.targetRows(); n >= rows {
				t.Errorf("the target has all %d rows: the run was not interrupted mid-way", n)
			}
			t.Logf("exited %d, %.1f s after SIGTERM", code, time.Since(signalled).Seconds())
		})
	}
}

// TestIntegrationRunDoesNotCreateTargetDatabase: a target DSN naming a
// database that does not exist (a typo) fails run and consume with exit 2
// (a usage error: the same flags fail the same way, README Exit codes), an
// error naming the database and 'sluice migrate', and creates nothing.
func TestIntegrationRunDoesNotCreateTargetDatabase(t *testing.T) {
	e := newITEnv(t)
	e.must(append([]string{"seed", "--rows", "2000"}, e.window()...)...)
	e.must("migrate")
	missing := e.dst + "_nosuch"
	t.Cleanup(func() { e.admin.Exec("DROP DATABASE IF EXISTS " + missing) })
	e.extraEnv = []string{"SLUICE_TARGET_DSN=" + e.base + missing}
	for _, args := range [][]string{append([]string{"run"}, e.window()...), {"consume"}} {
		out, errOut, code := e.sluice(args...)
		if code != exitUsage {
			t.Errorf("sluice %s: exit %d, want %d\nstdout: %s\nstderr: %s", args[0], code, exitUsage, out, errOut)
		}
		for _, w := range []string{"database " + missing + " does not exist", "sluice migrate"} {
			if !strings.Contains(errOut, w) {
				t.Errorf("sluice %s: stderr does not say %q:\n%s", args[0], w, errOut)
			}
		}
		if n := e.count("SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = ?", missing); n != 0 {
			t.Fatalf("sluice %s created the database %s", args[0], missing)
		}
	}
	if n := e.targetRows(); n != 0 {
		t.Errorf("the real target got %d rows", n)
	}
}

// describeGroup returns the group as the broker of brokers describes it.
func describeGroup(ctx context.Context, brokers, group string) (kadm.DescribedGroup, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers))
	if err != nil {
		return kadm.DescribedGroup{}, err
	}
	defer cl.Close()
	gs, err := kadm.NewClient(cl).DescribeGroups(ctx, group)
	if err != nil {
		return kadm.DescribedGroup{}, err
	}
	return gs[group], gs[group].Err
}

// TestIntegrationRerunAfterKilledRuns: runs SIGKILLed while their members
// join the group, and one SIGKILLed mid-consume, leave their members'
// sessions open; the next run, started at once, must not fail on them (after
// seven such kills it used to wait 139 s and exit 1 with "unable to join
// group session: … i/o timeout"): it says it takes the dead members' places,
// succeeds, and the target holds exactly the window.
func TestIntegrationRerunAfterKilledRuns(t *testing.T) {
	e := newITEnv(t)
	const rows = 40000
	e.must(append([]string{"seed", "--rows", fmt.Sprint(rows)}, e.window()...)...)
	e.must("migrate")
	e.slowTarget(200 * time.Microsecond)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	const kills = 7
	for i := range kills {
		before := e.targetRows()
		p := e.startRun(append([]string{"run", "--batch-size", "300", "--linger", "100ms"}, e.window()...)...)
		if i < kills-1 {
			p.waitFor(t, time.Minute, "a member joining", func() bool { return strings.Contains(p.logs.String(), "joining group") })
			time.Sleep(300 * time.Millisecond)
		} else {
			p.waitFor(t, 3*time.Minute, "new rows in the target", func() bool { return e.targetRows() > before })
		}
		if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-p.exited
	}
	g, err := describeGroup(ctx, e.brokers, e.group)
	if err != nil {
		t.Fatal(err)
	}
	atKill := e.targetRows()
	t.Logf("%d runs killed; %d rows in the target; the group holds %d members", kills, atKill, len(g.Members))
	if atKill >= rows {
		t.Fatalf("the last killed run had applied the whole window")
	}
	if _, err := e.admin.Exec("DROP TRIGGER " + e.dst + ".slow_insert"); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	out, errOut, code := e.sluice(append([]string{"run"}, e.window()...)...)
	if code != 0 {
		t.Fatalf("the run after %d killed runs: exit %d\nstdout: %s\nstderr: %s", kills, code, out, errOut)
	}
	if !strings.Contains(errOut, "members of an earlier run") {
		t.Errorf("the rerun does not say it found the killed runs' members:\n%s", errOut)
	}
	if got := e.targetRows(); got != rows {
		t.Errorf("target holds %d rows, want %d", got, rows)
	}
	e.must(append([]string{"verify"}, e.window()...)...)
	t.Logf("the rerun succeeded in %.1f s", time.Since(t0).Seconds())
	// A run that ends leaves the group, static members included: replay
	// and the next run find it empty.
	if g, err := describeGroup(ctx, e.brokers, e.group); err != nil || len(g.Members) != 0 {
		t.Errorf("the group after the run: %d members (%v), want none: %+v", len(g.Members), err, g.Members)
	}
}

// sumSeries adds up every series of the metric name on a member's /metrics
// (0, false when it has none).
func sumSeries(t *testing.T, addr, name string) (float64, bool) {
	t.Helper()
	body := metricsBody(t, addr)
	var sum float64
	found := false
	for _, l := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(l, name+"{") && !strings.HasPrefix(l, name+" ") {
			continue
		}
		f := strings.Fields(l)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			t.Fatalf("scrape %s: %q: %v", addr, l, err)
		}
		sum, found = sum+v, true
	}
	return sum, found
}

// TestIntegrationLagCountsUncommittedRecords: the lag gauge counts what the
// group has not committed, not what its members have not polled. A member
// whose batch is stuck (the target table locked) has polled every new record,
// and the group has committed none of them: the gauge must say so (it used
// to read 0, and the lag alert built on it was blind), and fall back to 0
// once the batch commits.
func TestIntegrationLagCountsUncommittedRecords(t *testing.T) {
	e := newITEnv(t)
	const rows = 3000
	e.must(append([]string{"seed", "--rows", fmt.Sprint(rows)}, e.window()...)...)
	e.must("migrate")
	addr := freeAddr(t)
	// The interval by environment: an older binary without the flag ignores it.
	e.extraEnv = []string{"SLUICE_LAG_INTERVAL=200ms"}
	m := e.startRun("consume", "--consumers", "1", "--linger", "100ms", "--metrics-addr", addr)
	e.must(append([]string{"backfill"}, e.window()...)...)
	if err := e.caughtUp(2 * time.Minute); err != nil {
		t.Fatalf("the member did not apply the first window: %v\n%s", err, m.logs)
	}
	m.waitFor(t, 30*time.Second, "a lag of 0 once caught up", func() bool {
		lag, ok := sumSeries(t, addr, "sluice_consumer_lag_records")
		return ok && lag == 0
	})
	polled := scrape(t, addr, "sluice_consumer_records_total")["sluice_consumer_records_total"]

	// Stall the member: its next batch waits on the table lock.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	lockConn, err := e.admin.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer lockConn.Close()
	if _, err := lockConn.ExecContext(ctx, "LOCK TABLES "+e.dst+".records WRITE, "+e.dst+".records_tombstones WRITE"); err != nil {
		t.Fatal(err)
	}
	unlocked := false
	unlock := func() {
		if !unlocked {
			unlocked = true
			if _, err := lockConn.ExecContext(ctx, "UNLOCK TABLES"); err != nil {
				t.Fatal(err)
			}
		}
	}
	defer unlock()
	next := []string{"--start-at", e.end, "--end-at", "2025-10-03 00:00:00"}
	e.must(append([]string{"seed", "--rows", fmt.Sprint(rows)}, next...)...)
	e.must(append([]string{"backfill"}, next...)...)
	// The member polls some of the new records and is stuck on them: all of
	// them, or under load a first batch cut by --linger before the rest
	// arrived. Either way the group has committed none of the rows.
	m.waitFor(t, time.Minute, "the member polling the new records", func() bool {
		return scrape(t, addr, "sluice_consumer_records_total")["sluice_consumer_records_total"] > polled
	})
	var lag float64
	deadline := time.Now().Add(30 * time.Second)
	for lag != rows && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		lag, _ = sumSeries(t, addr, "sluice_consumer_lag_records")
	}
	if lag != rows {
		t.Fatalf("sum(sluice_consumer_lag_records) = %v with the member stuck on %d polled, uncommitted records, want %d\n%s", lag, rows, rows, m.logs)
	}
	unlock()
	m.waitFor(t, time.Minute, "a lag of 0 after the batch committed", func() bool {
		lag, _ := sumSeries(t, addr, "sluice_consumer_lag_records")
		return lag == 0
	})
	if got := e.targetRows(); got != 2*rows {
		t.Errorf("target holds %d rows, want %d", got, 2*rows)
	}
}
