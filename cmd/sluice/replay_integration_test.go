package main

// Integration tests of `sluice replay`: rewinding a group by offset reset and
// letting its consumers repair the target. They use the itEnv helpers of
// integration_test.go.

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluice-dev/sluice/consumer"
)

// committed returns the group's committed offsets on the test topic.
func (e *itEnv) committed() map[int32]int64 {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	offs, err := e.adm.FetchOffsets(ctx, e.group)
	if errors.Is(err, kerr.GroupIDNotFound) {
		return map[int32]int64{}
	}
	if err != nil {
		e.t.Fatalf("fetch offsets of %s: %v", e.group, err)
	}
	out := map[int32]int64{}
	offs.Each(func(o kadm.OffsetResponse) {
		if o.Topic == e.topic {
			if o.Err != nil {
				e.t.Fatalf("offset of %s/%d: %v", o.Topic, o.Partition, o.Err)
			}
			out[o.Partition] = o.At
		}
	})
	return out
}

// waitGroup polls the group until ok says yes, and returns what it saw.
func (e *itEnv) waitGroup(d time.Duration, what string, ok func(kadm.DescribedGroup) bool) kadm.DescribedGroup {
	e.t.Helper()
	deadline := time.Now().Add(d)
	var last kadm.DescribedGroup
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		gs, err := e.adm.DescribeGroups(ctx, e.group)
		cancel()
		if err == nil {
			last = gs[e.group]
			if last.Err == nil && ok(last) {
				return last
			}
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("group %s: not %s within %s (last: state %q, %d members, err %v / %v)", e.group, what, d, last.State, len(last.Members), err, last.Err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func stableWith(n int) func(kadm.DescribedGroup) bool {
	return func(g kadm.DescribedGroup) bool { return g.State == "Stable" && len(g.Members) == n }
}

// stopProc sends SIGTERM and fails the test unless the process exits 0.
func stopProc(t *testing.T, cmd *exec.Cmd, logs *bytes.Buffer) {
	t.Helper()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("%v did not exit 0 on SIGTERM: %v\n%s", cmd.Args, err, logs)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("%v still running 30s after SIGTERM\n%s", cmd.Args, logs)
	}
}

// replayLine is one partition row of replay's table.
type replayLine struct {
	before, after string // "none" or an offset
	end, todo     int64
}

// parseReplay reads replay's table: partition -> line, and the sum of the
// "records to reprocess" column.
func parseReplay(t *testing.T, out string) (map[int32]replayLine, int64) {
	t.Helper()
	lines := map[int32]replayLine{}
	var sum int64
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) < 5 {
			continue
		}
		p, err := strconv.ParseInt(f[0], 10, 32)
		if err != nil {
			continue
		}
		end, err1 := strconv.ParseInt(f[len(f)-2], 10, 64)
		todo, err2 := strconv.ParseInt(f[len(f)-1], 10, 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("replay table line %q: %v %v", l, err1, err2)
		}
		lines[int32(p)] = replayLine{before: f[1], after: f[2], end: end, todo: todo}
		sum += todo
	}
	if len(lines) == 0 {
		t.Fatalf("no table in replay's output:\n%s", out)
	}
	return lines, sum
}

func sameOffsets(a, b map[int32]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for p, o := range a {
		if b[p] != o {
			return false
		}
	}
	return true
}

func TestIntegrationReplayFromEarliest(t *testing.T) {
	e := newITEnv(t)
	const rows = 8000
	e.must(append([]string{"seed", "--rows", strconv.Itoa(rows)}, e.window()...)...)
	e.must("migrate")
	e.must(append([]string{"run", "--batch-size", "2000"}, e.window()...)...)
	e.must(append([]string{"verify"}, e.window()...)...)
	want := e.targetFingerprint()
	ends := e.committed()
	var sum int64
	for _, o := range ends {
		sum += o
	}
	if len(ends) != 4 || sum != rows {
		t.Fatalf("after the run the group committed %v (sum %d), want 4 partitions summing to %d", ends, sum, rows)
	}

	// Damage the target: delete some rows, alter others.
	if _, err := e.admin.Exec("DELETE FROM " + e.dst + ".records ORDER BY id LIMIT 300"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.Exec("UPDATE " + e.dst + ".records SET message = 'ALTERED' ORDER BY id DESC LIMIT 200"); err != nil {
		t.Fatal(err)
	}
	if out, _, code := e.sluice(append([]string{"verify"}, e.window()...)...); code != exitMismatch {
		t.Fatalf("verify of the damaged target: exit %d, want %d\n%s", code, exitMismatch, out)
	}

	// Bad input is a usage error naming the flags or the pair, before anything is touched.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--group", e.group}, "exactly one of --to-earliest, --to-time or --to-offset (got none)"},
		{[]string{"--group", e.group, "--to-earliest", "--to-offset", "0:1"}, "(got --to-earliest, --to-offset)"},
		{[]string{"--group", e.group, "--to-offset", "0:5,99:0"}, `--to-offset pair "99:0": topic ` + e.topic + " has no partition 99"},
		{[]string{"--group", e.group, "--to-offset", "1:-3"}, `--to-offset pair "1:-3": offset -3 is negative`},
		{[]string{"--group", e.group, "--to-offset", "1"}, `--to-offset pair "1": want partition:offset`},
		{[]string{"--group", e.group, "--to-time", "2025-13-01"}, `--to-time "2025-13-01": not a time`},
	} {
		out, errOut, code := e.sluice(append([]string{"replay"}, tc.args...)...)
		if code != exitUsage || !strings.Contains(errOut, tc.want) {
			t.Errorf("replay %v: exit %d, want %d saying %q\nstdout: %s\nstderr: %s", tc.args, code, exitUsage, tc.want, out, errOut)
		}
	}
	if got := e.committed(); !sameOffsets(got, ends) {
		t.Fatalf("bad replay invocations changed the offsets: %v -> %v", ends, got)
	}

	// While a member is live, replay refuses, and so does Kafka: the commit
	// is rejected per partition, which commitReplay must notice.
	member, memberLogs := e.startProc("consume", "--consumers", "1")
	e.waitGroup(30*time.Second, "stable with 1 member", stableWith(1))
	out, errOut, code := e.sluice("replay", "--group", e.group, "--to-earliest")
	if code != exitFailed {
		t.Errorf("replay with a live member: exit %d, want %d\n%s%s", code, exitFailed, out, errOut)
	}
	for _, w := range []string{"group " + e.group + " has 1 live member(s)", "state Stable", "sluice-consumer@"} {
		if !strings.Contains(errOut, w) {
			t.Errorf("refusal does not say %q:\n%s", w, errOut)
		}
	}
	plan := &consumer.ReplayPlan{Group: e.group, Topic: e.topic}
	for p, o := range ends {
		plan.Partitions = append(plan.Partitions, consumer.ReplayPartition{Partition: p, Before: o, After: 0, End: o, Change: true})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := plan.Commit(ctx, e.adm); err == nil {
		t.Errorf("committing for a group with a live member reported success")
	} else if !strings.Contains(err.Error(), "UNKNOWN_MEMBER_ID") || !strings.Contains(err.Error(), e.topic+"/0") {
		t.Errorf("commit refusal does not name the partitions and the broker's error: %v", err)
	} else {
		t.Logf("commit with a live member: %v", err)
	}
	if got := e.committed(); !sameOffsets(got, ends) {
		t.Fatalf("a refused replay changed the offsets: %v -> %v", ends, got)
	}
	stopProc(t, member, memberLogs)
	e.waitGroup(30*time.Second, "empty", func(g kadm.DescribedGroup) bool { return len(g.Members) == 0 })

	// --dry-run prints the plan and commits nothing.
	out = e.must("replay", "--group", e.group, "--to-earliest", "--dry-run")
	lines, todo := parseReplay(t, out)
	if !strings.Contains(out, "dry run: nothing committed") || todo != rows {
		t.Errorf("dry run: %d records to reprocess, want %d, and the dry-run notice:\n%s", todo, rows, out)
	}
	for p, o := range ends {
		if l := lines[p]; l.before != strconv.FormatInt(o, 10) || l.after != "0" || l.end != o || l.todo != o {
			t.Errorf("dry run, partition %d: %+v, want before %d, after 0, end %d, %d to reprocess", p, l, o, o, o)
		}
	}
	out = e.must("replay", "--group", e.group, "--to-offset", "1:10", "--dry-run")
	if lines, _ := parseReplay(t, out); lines[1].after != "10" || !strings.Contains(out, " (kept)") {
		t.Errorf("--to-offset 1:10 dry run: partition 1 after %q, want 10, the others kept:\n%s", lines[1].after, out)
	}
	if got := e.committed(); !sameOffsets(got, ends) {
		t.Fatalf("--dry-run changed the offsets: %v -> %v", ends, got)
	}

	// The replay itself.
	out = e.must("replay", "--group", e.group, "--to-earliest")
	t.Logf("sluice replay --to-earliest:\n%s", out)
	if _, todo := parseReplay(t, out); todo != rows || !strings.Contains(out, "committed: group "+e.group) {
		t.Errorf("replay: %d records to reprocess, want %d:\n%s", todo, rows, out)
	}
	for p, o := range e.committed() {
		if o != 0 {
			t.Errorf("after --to-earliest, partition %d is committed at %d, want 0", p, o)
		}
	}

	// The group applies the topic again and the target is repaired.
	member, memberLogs = e.startProc("consume", "--batch-size", "2000", "--linger", "200ms")
	e.waitCaughtUp(2 * time.Minute)
	stopProc(t, member, memberLogs)
	e.must(append([]string{"verify"}, e.window()...)...)
	if got := e.targetFingerprint(); got != want {
		t.Errorf("target after the replay %s, want the original %s", got, want)
	}
}

func TestIntegrationReplayToTime(t *testing.T) {
	e := newITEnv(t)
	const half = 4000
	mid := "2025-10-01 12:00:00"
	e.must("seed", "--rows", strconv.Itoa(half), "--start-at", e.start, "--end-at", mid)
	e.must("seed", "--rows", strconv.Itoa(half), "--start-at", mid, "--end-at", e.end)
	e.must("migrate")

	// Two produce phases: window A, then after a pause window B. Every record
	// of A carries a Kafka timestamp before cut, every record of B one after.
	e.must("backfill", "--start-at", e.start, "--end-at", mid)
	cut := time.Now().Truncate(time.Second).Add(time.Second)
	time.Sleep(time.Until(cut) + 500*time.Millisecond)
	e.must("backfill", "--start-at", mid, "--end-at", e.end)

	member, logs := e.startProc("consume", "--batch-size", "2000", "--linger", "200ms")
	e.waitCaughtUp(2 * time.Minute)
	stopProc(t, member, logs)
	e.must(append([]string{"verify"}, e.window()...)...)

	res, err := e.admin.Exec("DELETE FROM "+e.dst+".records WHERE timestamp >= ?", mid)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n != half {
		t.Fatalf("deleted %d target rows of window B, want %d", n, half)
	}
	before := e.committed()

	// --to-time in another zone than UTC, when the machine knows one.
	tz, loc := "UTC", time.UTC
	if l, err := time.LoadLocation("Asia/Tokyo"); err == nil {
		tz, loc = "Asia/Tokyo", l
	}
	out := e.must("replay", "--group", e.group, "--to-time", cut.In(loc).Format(time.DateTime), "--tz", tz)
	t.Logf("sluice replay --to-time %s --tz %s:\n%s", cut.In(loc).Format(time.DateTime), tz, out)
	if _, todo := parseReplay(t, out); todo != half {
		t.Errorf("replay to the time between the phases: %d records to reprocess, want exactly window B's %d of %d", todo, half, 2*half)
	}
	after := e.committed()
	var rewound int64
	for p, o := range before {
		if after[p] > o {
			t.Errorf("partition %d moved forward: %d -> %d", p, o, after[p])
		}
		rewound += o - after[p]
	}
	if rewound != half {
		t.Errorf("offsets moved back by %d records in all, want %d (window B only): %v -> %v", rewound, half, before, after)
	}

	member, logs = e.startProc("consume", "--batch-size", "2000", "--linger", "200ms")
	e.waitCaughtUp(2 * time.Minute)
	stopProc(t, member, logs)
	e.must(append([]string{"verify"}, e.window()...)...)
	if got := e.count("SELECT COUNT(*) FROM " + e.dst + ".records"); got != 2*half {
		t.Errorf("target holds %d rows, want %d", got, 2*half)
	}
}
