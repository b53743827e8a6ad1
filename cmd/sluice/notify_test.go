package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/backfill"
	"github.com/sluice-dev/sluice/consumer"
	"github.com/sluice-dev/sluice/notify"
)

func TestExitCodeOf(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want int
	}{
		{name: "success", err: nil, want: exitOK},
		{name: "help", err: flag.ErrHelp, want: exitOK},
		{name: "failure", err: errors.New("boom"), want: exitFailed},
		{name: "usage", err: usagef("--readers 0"), want: exitUsage},
		{name: "usage in a stage", err: inStage("consumer", usagef("--db-attempts 0")), want: exitUsage},
		{name: "mismatch", err: fmt.Errorf("%w: 1 of 3 slices", errMismatch), want: exitMismatch},
		{name: "mismatch from run --verify", err: inStage("verify", fmt.Errorf("%w: x", errMismatch)), want: exitMismatch},
		{name: "partial", err: fmt.Errorf("%w: 3 records", errPartial), want: exitPartial},
		{name: "interrupted", err: context.Canceled, want: exitFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := exitCodeOf(tt.err); got != tt.want {
				t.Errorf("exitCodeOf(%v) = %d, want %d", tt.err, got, tt.want)
			}
		})
	}
}

func TestStageAndWhere(t *testing.T) {
	rec := &consumer.RecordError{Topic: "sluice.raw_records", Partition: 3, Offset: 1234, Key: []byte(`{"k":1}`), Err: errors.New("bad")}
	chunk := &backfill.ChunkError{Chunk: backfill.Chunk{Lo: 10, Hi: 20}, Attempts: 5, Err: errors.New("delivery: timed out")}
	tests := []struct {
		name      string
		err       error
		stage     string
		where     string
		wantInMsg string
	}{
		{name: "untagged", err: errors.New("x"), stage: "main"},
		{name: "tagged", err: inStage("producer", errors.New("flush")), stage: "producer"},
		{name: "the innermost tag wins", err: inStage("main", inStage("backfill", errors.New("x"))), stage: "backfill"},
		{name: "wrapped tag", err: fmt.Errorf("run of window failed: %w", inStage("consumer", errors.New("x"))), stage: "consumer"},
		{name: "record", err: fmt.Errorf("run: %w", inStage("consumer", rec)), stage: "consumer",
			where: "record sluice.raw_records/3@1234", wantInMsg: "record sluice.raw_records/3@1234 key"},
		{name: "chunk", err: inStage("backfill", chunk), stage: "backfill", where: "chunk id (10,20]",
			wantInMsg: "chunk id (10,20] failed after 5 attempt(s): delivery: timed out"},
		{name: "nil stays nil", err: inStage("backfill", nil), stage: "main"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := stageOf(tt.err); got != tt.stage {
				t.Errorf("stageOf = %q, want %q", got, tt.stage)
			}
			if got := whereOf(tt.err); got != tt.where {
				t.Errorf("whereOf = %q, want %q", got, tt.where)
			}
			if tt.wantInMsg != "" && !strings.Contains(tt.err.Error(), tt.wantInMsg) {
				t.Errorf("message %q does not say %q", tt.err, tt.wantInMsg)
			}
		})
	}
	if inStage("x", nil) != nil {
		t.Error("inStage(nil) is not nil")
	}
}

func TestNewNotifier(t *testing.T) {
	tests := []struct {
		name    string
		url     string
		format  string
		timeout time.Duration
		wantErr string // "" for none
		wantNil bool
	}{
		{name: "no webhook", format: "json", timeout: time.Second, wantNil: true},
		{name: "json", url: "https://hooks.example.com/x", format: "json", timeout: time.Second},
		{name: "slack", url: "http://127.0.0.1:9/hook", format: "slack", timeout: time.Second},
		{name: "bad format", url: "https://h/x", format: "xml", timeout: time.Second, wantErr: `--notify-format "xml"`},
		{name: "bad format without webhook", format: "xml", timeout: time.Second, wantErr: "--notify-format"},
		{name: "not a URL", url: "hooks.example.com/x", format: "json", timeout: time.Second, wantErr: "--notify-webhook"},
		{name: "wrong scheme", url: "ftp://h/x", format: "json", timeout: time.Second, wantErr: `scheme "ftp"`},
		{name: "zero timeout", url: "https://h/x", format: "json", wantErr: "--notify-timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := &options{notifyWebhook: tt.url, notifyFormat: tt.format, notifyTimeout: tt.timeout}
			n, err := newNotifier(o, slog.New(slog.DiscardHandler))
			var ue usageError
			switch {
			case tt.wantErr != "":
				if err == nil || !errors.As(err, &ue) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("newNotifier = %v, want a usage error saying %q", err, tt.wantErr)
				}
			case err != nil:
				t.Fatalf("newNotifier = %v", err)
			case (n == nil) != tt.wantNil:
				t.Fatalf("notifier %v, want nil %v", n, tt.wantNil)
			}
		})
	}
}

// webhook is a test receiver that keeps every body posted to it.
type webhook struct {
	*httptest.Server
	mu     sync.Mutex
	bodies [][]byte
	status int
}

func newWebhook(t *testing.T) *webhook {
	w := &webhook{status: http.StatusOK}
	w.Server = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.mu.Lock()
		defer w.mu.Unlock()
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("webhook got %s with Content-Type %q", r.Method, r.Header.Get("Content-Type"))
		}
		w.bodies = append(w.bodies, b)
		rw.WriteHeader(w.status)
	}))
	t.Cleanup(w.Close)
	return w
}

func (w *webhook) notices(t *testing.T) []map[string]any {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []map[string]any
	for _, b := range w.bodies {
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("webhook body %s: %v", b, err)
		}
		out = append(out, m)
	}
	return out
}

func TestNotifierPost(t *testing.T) {
	nt := notify.Notice{Event: notify.Failure, Job: "run/sluice.raw_records/sluice", Command: "run", RunID: "abc123",
		Window: &notify.Window{Start: "2025-10-01 00:00:00", End: "2025-10-02 00:00:00"}, Stage: "backfill", Where: "chunk id (10,20]",
		Error: "backfill: chunk id (10,20] failed after 5 attempt(s): delivery: timed out", RowsRead: 100, RowsProduced: 90,
		Seconds: 1.5, ExitCode: 1, At: time.Date(2025, 10, 2, 2, 0, 0, 0, time.UTC)}
	for _, format := range []string{"json", "slack"} {
		t.Run(format, func(t *testing.T) {
			w := newWebhook(t)
			var logs bytes.Buffer
			n, err := newNotifier(&options{notifyWebhook: w.URL + "/secret-token", notifyFormat: format, notifyTimeout: 5 * time.Second},
				slog.New(slog.NewTextHandler(&logs, nil)))
			if err != nil {
				t.Fatal(err)
			}
			n.Post(t.Context(), nt)
			got := w.notices(t)
			if len(got) != 1 {
				t.Fatalf("webhook got %d messages, want 1", len(got))
			}
			if format == "json" {
				for k, want := range map[string]any{"event": "failure", "job": nt.Job, "run_id": "abc123", "stage": "backfill",
					"where": "chunk id (10,20]", "error": nt.Error, "rows_read": 100.0, "rows_produced": 90.0, "rows_upserted": 0.0,
					"seconds": 1.5, "exit_code": 1.0, "command": "run"} {
					if got[0][k] != want {
						t.Errorf("%s = %v, want %v", k, got[0][k], want)
					}
				}
				if win, _ := got[0]["window"].(map[string]any); win["start"] != "2025-10-01 00:00:00" || win["end"] != "2025-10-02 00:00:00" {
					t.Errorf("window = %v", got[0]["window"])
				}
				return
			}
			text, _ := got[0]["text"].(string)
			if len(got[0]) != 1 {
				t.Errorf("slack payload has fields %v, want only text", got[0])
			}
			for _, want := range []string{"FAILED", nt.Job, "[2025-10-01 00:00:00, 2025-10-02 00:00:00)", "run abc123",
				"stage: backfill, at chunk id (10,20]", "error: " + nt.Error, "100 rows read, 90 produced", "exit 1"} {
				if !strings.Contains(text, want) {
					t.Errorf("slack text does not say %q:\n%s", want, text)
				}
			}
			if strings.Contains(logs.String(), "secret-token") {
				t.Errorf("the log shows the webhook's path:\n%s", logs.String())
			}
		})
	}
}

func TestNotifierFailureIsOnlyLogged(t *testing.T) {
	w := newWebhook(t)
	w.status = http.StatusInternalServerError
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	n, err := newNotifier(&options{notifyWebhook: w.URL + "/secret-token", notifyFormat: "json", notifyTimeout: time.Second}, log)
	if err != nil {
		t.Fatal(err)
	}
	n.Post(t.Context(), notify.Notice{Event: notify.Failure})
	if !strings.Contains(logs.String(), "notification refused") || !strings.Contains(logs.String(), "500") {
		t.Errorf("a refused POST is not logged:\n%s", logs.String())
	}
	w.Close() // now unreachable
	logs.Reset()
	n.Post(t.Context(), notify.Notice{Event: notify.Failure})
	if !strings.Contains(logs.String(), "notification not delivered") || strings.Contains(logs.String(), "secret-token") {
		t.Errorf("an unreachable webhook is not logged, or its secret path is:\n%s", logs.String())
	}
}
