package main

// Integration tests of resumable runs, notifications and logs, with the
// helpers of integration_test.go (real sluice processes, MariaDB, kfake).

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/sluice-dev/sluice/backfill"
	"github.com/sluice-dev/sluice/producer"
	"github.com/sluice-dev/sluice/schema"
)

// savedRanges reads the window's saved backfill progress from the state
// topic, as the next run will.
func (e *itEnv) savedRanges(ctx context.Context, st *producer.State) ([]backfill.Range, bool) {
	e.t.Helper()
	cp := &backfill.StateCheckpoints{KV: st, Key: backfill.ProgressKey(e.src, schema.SourceTable, e.startT, e.endT, e.topic), Log: slog.New(slog.DiscardHandler)}
	rs, err := cp.Load(ctx)
	if err != nil {
		e.t.Fatalf("load progress: %v", err)
	}
	_, found, err := st.Get(ctx, cp.Key)
	if err != nil {
		e.t.Fatal(err)
	}
	return rs, found
}

func (e *itEnv) openState(ctx context.Context) *producer.State {
	e.t.Helper()
	cfg := producer.DefaultConfig()
	cfg.Brokers, cfg.Topic, cfg.DialTimeout = []string{e.brokers}, e.topic, 10*time.Second
	st, err := producer.OpenState(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(st.Close)
	return st
}

// topicRecords is the number of records in the data topic: the sum of its
// partitions' end offsets.
func (e *itEnv) topicRecords(ctx context.Context) int64 {
	e.t.Helper()
	ends, err := e.adm.ListEndOffsets(ctx, e.topic)
	if err != nil {
		e.t.Fatal(err)
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
	return n
}

var rowsReadRE = regexp.MustCompile(`\): (\d+) rows read, (\d+) produced`)

func TestIntegrationRunKilledHalfwayResumes(t *testing.T) {
	e := newITEnv(t)
	const rows = 100000
	e.must(append([]string{"seed", "--rows", strconv.Itoa(rows)}, e.window()...)...)
	e.must("migrate")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var minID, maxID uint64
	if err := e.admin.QueryRow("SELECT MIN(id), MAX(id) FROM "+e.src+".raw_records WHERE timestamp >= ? AND timestamp < ?", e.startT, e.endT).Scan(&minID, &maxID); err != nil {
		t.Fatal(err)
	}
	total := maxID - minID + 1
	st := e.openState(ctx)

	// A deliberately slow first run: one reader, and a producer buffer of
	// one chunk, so each chunk waits for the previous one's acknowledgement.
	// Its members join a group of their own: killed members linger in their
	// group until the broker expires them (45 s on Kafka, sometimes minutes
	// on the kfake dev broker), which is the scaling tests' subject, not
	// this one's. The restart's group starts at the earliest offset, so it
	// applies the killed run's records too.
	slow := append([]string{"run", "--group", e.group + "-killed", "--readers", "1", "--chunk-size", "500",
		"--max-buffered-records", "500", "--produce-linger", "20ms", "--checkpoint-interval", "100ms"}, e.window()...)
	proc, logs := e.startProc(slow...)
	var done uint64
	deadline := time.Now().Add(2 * time.Minute)
	for done < total*2/5 {
		if time.Now().After(deadline) {
			t.Fatalf("no progress saved after 2 minutes:\n%s", logs)
		}
		time.Sleep(50 * time.Millisecond)
		rs, _ := e.savedRanges(ctx, st)
		done = 0
		for _, r := range rs {
			done += r.Span()
		}
	}
	if err := proc.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = proc.Wait()
	saved, found := e.savedRanges(ctx, st)
	if !found || len(saved) == 0 {
		t.Fatalf("no progress saved by the killed run:\n%s", logs)
	}
	// The rows the second run must read: those whose ids no saved range holds.
	var cond []string
	for _, r := range saved {
		cond = append(cond, fmt.Sprintf("id BETWEEN %d AND %d", r.Lo, r.Hi))
	}
	remaining := e.count("SELECT COUNT(*) FROM "+e.src+".raw_records WHERE timestamp >= ? AND timestamp < ? AND NOT ("+
		strings.Join(cond, " OR ")+")", e.startT, e.endT)
	if remaining == 0 || remaining >= rows {
		t.Fatalf("killed with %d of %d rows left to read; the test needs a kill halfway (saved %v)", remaining, rows, saved)
	}
	producedBefore := e.topicRecords(ctx)

	out := e.must(append([]string{"run"}, e.window()...)...)
	m := rowsReadRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no summary line:\n%s", out)
	}
	read, _ := strconv.Atoi(m[1])
	produced, _ := strconv.Atoi(m[2])
	if read != remaining || produced != remaining {
		t.Errorf("second run read %d and produced %d rows, want exactly the %d the first run had not produced", read, produced, remaining)
	}
	if !strings.Contains(out, "resumed:") {
		t.Errorf("the summary does not say the run resumed:\n%s", out)
	}
	records := e.topicRecords(ctx)
	if records < rows || records >= 2*rows {
		t.Errorf("the topic holds %d records after both runs (%d before the restart), want at least %d and fewer than %d", records, producedBefore, rows, 2*rows)
	}
	if got := e.count("SELECT COUNT(*) FROM " + e.dst + ".records"); got != rows {
		t.Errorf("target holds %d rows, want %d", got, rows)
	}
	e.must(append([]string{"verify"}, e.window()...)...)
	if rs, found := e.savedRanges(ctx, st); found {
		t.Errorf("the finished window still has saved progress %v; the next run would not be a full re-run", rs)
	}
	t.Logf("killed with %d of %d ids saved; the restart read %d of %d rows; the topic holds %d records", done, total, read, rows, records)

	// A re-run of the finished window reads it all again.
	out = e.must(append([]string{"run"}, e.window()...)...)
	if !strings.Contains(out, fmt.Sprintf("%d rows read, %d produced", rows, rows)) || strings.Contains(out, "resumed:") {
		t.Errorf("re-run of a finished window is not a full re-run:\n%s", out)
	}
}

func TestIntegrationNotifyFailureThenRecovery(t *testing.T) {
	e := newITEnv(t)
	const rows = 3000
	e.must(append([]string{"seed", "--rows", strconv.Itoa(rows)}, e.window()...)...)
	e.must("migrate")
	w := newWebhook(t)
	job := "run/" + e.topic + "/" + e.group // the default job name
	run := append([]string{"run", "--notify-webhook", w.URL + "/hook"}, e.window()...)

	// 1. The target is unreachable: exit 1, a failure message.
	e.extraEnv = []string{"SLUICE_TARGET_DSN=sluice:sluice@tcp(127.0.0.1:1)/target_db"}
	_, errOut, code := e.sluice(run...)
	e.extraEnv = nil
	if code != exitFailed {
		t.Fatalf("run with an unreachable target: exit %d, want %d\n%s", code, exitFailed, errOut)
	}
	got := w.notices(t)
	if len(got) != 1 {
		t.Fatalf("webhook got %d messages after the failure, want 1: %v", len(got), got)
	}
	f := got[0]
	for k, want := range map[string]any{"event": "failure", "job": job, "command": "run", "stage": "consumer", "exit_code": 1.0} {
		if f[k] != want {
			t.Errorf("failure %s = %v, want %v", k, f[k], want)
		}
	}
	if msg, _ := f["error"].(string); !strings.Contains(msg, "--target-dsn") || !strings.Contains(msg, "127.0.0.1:1") || !strings.Contains(msg, "unreachable") {
		t.Errorf("failure error %q does not name the target and its address", msg)
	}
	if win, _ := f["window"].(map[string]any); win["start"] != e.start || win["end"] != e.end {
		t.Errorf("failure window = %v, want [%s, %s)", f["window"], e.start, e.end)
	}
	failedRun, _ := f["run_id"].(string)
	if failedRun == "" || !strings.Contains(errOut, "run_id="+failedRun) {
		t.Errorf("failure run_id %q is not the run id of the logs:\n%s", failedRun, errOut)
	}

	// 2. The next run succeeds: a recovery message naming the failed run.
	_, errOut, code = e.sluice(append(run, "--log-format", "json")...)
	if code != exitOK {
		t.Fatalf("second run: exit %d\n%s", code, errOut)
	}
	got = w.notices(t)
	if len(got) != 2 {
		t.Fatalf("webhook got %d messages after the recovery, want 2: %v", len(got), got)
	}
	r := got[1]
	for k, want := range map[string]any{"event": "recovery", "job": job, "exit_code": 0.0, "rows_read": float64(rows),
		"rows_produced": float64(rows), "rows_upserted": float64(rows)} {
		if r[k] != want {
			t.Errorf("recovery %s = %v, want %v", k, r[k], want)
		}
	}
	if prev, _ := r["previous"].(map[string]any); prev["outcome"] != "failure" || prev["run_id"] != failedRun || prev["stage"] != "consumer" {
		t.Errorf("recovery previous = %v, want the failed run %s", r["previous"], failedRun)
	}
	if _, has := r["error"]; has {
		t.Errorf("recovery carries an error: %v", r)
	}
	checkLogLines(t, errOut, e)

	// 3. Another success: no news without --notify-summary, a summary with it.
	e.must(run...)
	if n := len(w.notices(t)); n != 2 {
		t.Errorf("a success after a success posted (%d messages, want 2)", n)
	}
	e.must(append(run, "--notify-summary", "--notify-format", "slack")...)
	got = w.notices(t)
	if len(got) != 3 {
		t.Fatalf("webhook got %d messages after a run with --notify-summary, want 3", len(got))
	}
	if text, _ := got[2]["text"].(string); !strings.Contains(text, "succeeded") || !strings.Contains(text, job) ||
		!strings.Contains(text, fmt.Sprintf("%d rows read", rows)) {
		t.Errorf("slack summary text:\n%s", text)
	}
}

// checkLogLines asserts that every log line of a run is JSON carrying the
// command, the run id, the window and the stage, and that the stages show.
func checkLogLines(t *testing.T, stderr string, e *itEnv) {
	t.Helper()
	stages := map[string]bool{}
	runIDs := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(stderr), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Errorf("log line is not JSON: %q", line)
			continue
		}
		win, _ := m["window"].(map[string]any)
		stage, _ := m["stage"].(string)
		runID, _ := m["run_id"].(string)
		if m["cmd"] != "run" || runID == "" || stage == "" || win["start"] != e.start || win["end"] != e.end {
			t.Errorf("log line without cmd, run_id, stage or window: %s", line)
		}
		stages[stage], runIDs[runID] = true, true
	}
	for _, s := range []string{"main", "backfill", "consumer"} {
		if !stages[s] {
			t.Errorf("no log line of stage %s (stages %v)", s, stages)
		}
	}
	if len(runIDs) != 1 {
		t.Errorf("one run logged %d run ids: %v", len(runIDs), runIDs)
	}
}
