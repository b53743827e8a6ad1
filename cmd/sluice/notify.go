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
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/backfill"
	"github.com/sluice-dev/sluice/consumer"
	"github.com/sluice-dev/sluice/producer"
)

// Notification events.
const (
	eventFailure  = "failure"  // the job failed (any exit status but 0 and 4)
	eventPartial  = "partial"  // the job completed, but records went to the dead-letter topic (exit 4)
	eventRecovery = "recovery" // the first success after a failure or a partial run
	eventSummary  = "summary"  // any other success, with --notify-summary
)

// stageMain is the stage of a command's own log lines and of failures no
// pipeline stage claims (flags, an interruption).
const stageMain = "main"

// stageError records which pipeline stage an error came from, for the
// failure log line and the notification. It leaves the message alone.
type stageError struct {
	stage string
	err   error
}

func (e *stageError) Error() string { return e.err.Error() }
func (e *stageError) Unwrap() error { return e.err }

// inStage tags err with the stage it came from, unless a stage closer to the
// cause already did.
func inStage(stage string, err error) error {
	var se *stageError
	if err == nil || errors.As(err, &se) {
		return err
	}
	return &stageError{stage: stage, err: err}
}

// stageOf is the stage err was tagged with, or stageMain.
func stageOf(err error) string {
	var se *stageError
	if errors.As(err, &se) {
		return se.stage
	}
	return stageMain
}

// whereOf names the place of a failure when the error carries it: a
// record's topic/partition@offset, or a backfill chunk's id range.
func whereOf(err error) string {
	var re *consumer.RecordError
	if errors.As(err, &re) {
		return fmt.Sprintf("record %s/%d@%d", re.Topic, re.Partition, re.Offset)
	}
	var ce *backfill.ChunkError
	if errors.As(err, &ce) {
		return "chunk " + ce.Chunk.String()
	}
	return ""
}

// decideEvent says what, if anything, to tell the webhook about a run that
// ended as cur, after the job's previous run ended as prev (when known).
func decideEvent(cur, prev jobStatus, hadPrev, summary bool) string {
	switch {
	case cur.Outcome == "failure":
		return eventFailure
	case cur.Outcome == "partial":
		return eventPartial
	case hadPrev && prev.Outcome != "success":
		return eventRecovery
	case summary:
		return eventSummary
	}
	return ""
}

// notice is one webhook message. With --notify-format json it is posted as
// is; with slack, as {"text": notice.text()}.
type notice struct {
	Event        string     `json:"event"`
	Job          string     `json:"job"`
	Command      string     `json:"command"`
	RunID        string     `json:"run_id"`
	Host         string     `json:"host,omitempty"`
	Window       *window    `json:"window,omitempty"`
	Stage        string     `json:"stage,omitempty"`
	Where        string     `json:"where,omitempty"`
	Error        string     `json:"error,omitempty"`
	RowsRead     int64      `json:"rows_read"`
	RowsProduced int64      `json:"rows_produced"`
	RowsUpserted int64      `json:"rows_upserted"`
	Seconds      float64    `json:"seconds"`
	ExitCode     int        `json:"exit_code"`
	At           time.Time  `json:"at"`
	Previous     *jobStatus `json:"previous,omitempty"` // with recovery: the run that failed
	Topic        string     `json:"topic,omitempty"`
}

type window struct {
	Start string `json:"start"`
	End   string `json:"end"`
}

// stageCounts are the rows a command moved, for its summary and notices.
type stageCounts struct {
	Read, Produced, Upserted int64
}

// text renders the notice as the lines a person reads in a chat channel.
func (n notice) text() string {
	var b strings.Builder
	head := map[string]string{
		eventFailure:  ":x: sluice %s FAILED",
		eventPartial:  ":warning: sluice %s completed PARTIALLY (records dead-lettered)",
		eventRecovery: ":white_check_mark: sluice %s RECOVERED",
		eventSummary:  ":information_source: sluice %s succeeded",
	}[n.Event]
	fmt.Fprintf(&b, head, n.Command)
	fmt.Fprintf(&b, ": job %s", n.Job)
	if n.Window != nil {
		fmt.Fprintf(&b, ", window [%s, %s)", n.Window.Start, n.Window.End)
	}
	fmt.Fprintf(&b, ", run %s", n.RunID)
	if n.Host != "" {
		fmt.Fprintf(&b, " on %s", n.Host)
	}
	if n.Error != "" {
		fmt.Fprintf(&b, "\nstage: %s", n.Stage)
		if n.Where != "" {
			fmt.Fprintf(&b, ", at %s", n.Where)
		}
		fmt.Fprintf(&b, "\nerror: %s", n.Error)
	}
	if n.Previous != nil {
		fmt.Fprintf(&b, "\nprevious run %s %s at %s", n.Previous.RunID, n.Previous.Outcome, n.Previous.At.Format(time.RFC3339))
		if n.Previous.Stage != "" {
			fmt.Fprintf(&b, " in stage %s", n.Previous.Stage)
		}
	}
	fmt.Fprintf(&b, "\n%d rows read, %d produced, %d upserted in %.1f s; exit %d", n.RowsRead, n.RowsProduced, n.RowsUpserted, n.Seconds, n.ExitCode)
	return b.String()
}

func (n notice) payload(format string) ([]byte, error) {
	if format == "slack" {
		return json.Marshal(struct {
			Text string `json:"text"`
		}{n.text()})
	}
	return json.Marshal(n)
}

// notifier posts notices to --notify-webhook. A POST that fails is logged
// and never changes the command's exit status: the scheduler already knows
// the outcome from the status, the webhook is for people.
type notifier struct {
	url, format string
	client      *http.Client
	log         *slog.Logger
}

// newNotifier checks the webhook flags; it returns nil without a webhook.
func newNotifier(o *options, log *slog.Logger) (*notifier, error) {
	switch o.notifyFormat {
	case "json", "slack":
	default:
		return nil, usagef("--notify-format %q: use json or slack", o.notifyFormat)
	}
	if o.notifyTimeout <= 0 {
		return nil, usagef("--notify-timeout %s: must be positive", o.notifyTimeout)
	}
	if o.notifyWebhook == "" {
		return nil, nil
	}
	u, err := url.Parse(o.notifyWebhook)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usagef("--notify-webhook: not an http(s) URL (got scheme %q host %q)", schemeOf(u), hostOf(u))
	}
	return &notifier{url: o.notifyWebhook, format: o.notifyFormat, client: &http.Client{Timeout: o.notifyTimeout}, log: log}, nil
}

func schemeOf(u *url.URL) string {
	if u == nil {
		return ""
	}
	return u.Scheme
}

func hostOf(u *url.URL) string {
	if u == nil {
		return ""
	}
	return u.Host
}

// post sends one notice. Only the webhook's host is logged: a Slack
// webhook's path is its secret.
func (n *notifier) post(ctx context.Context, nt notice) {
	u, _ := url.Parse(n.url)
	log := n.log.With("event", nt.Event, "webhook_host", u.Host)
	body, err := nt.payload(n.format)
	if err != nil {
		log.Error("notification not sent: encode", "err", err)
		return
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.url, bytes.NewReader(body))
	if err != nil {
		log.Error("notification not sent", "err", err)
		return
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "sluice/"+versionString())
	resp, err := n.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // *url.Error repeats the URL, secret path included
		}
		log.Warn("notification not delivered", "err", err)
		return
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		log.Warn("notification refused by the webhook", "status", resp.Status)
		return
	}
	log.Info("notification sent")
}

// jobNotify is what a command needs to record its outcome and notify.
type jobNotify struct {
	command     string
	job         string
	keepsStatus bool // record the outcome in the state topic (run, backfill): recoveries need it
	notifier    *notifier
	t0          time.Time
	state       *producer.State // opened on first use, closed by finish
}

// setupNotify checks the notification flags and names the job: --job, or
// <command>/<topic>, plus /<group> for the commands that consume.
func (s *stage) setupNotify(command string, withGroup, keepsStatus bool) error {
	n, err := newNotifier(s.o, s.log)
	if err != nil {
		return err
	}
	job := s.o.job
	if job == "" {
		job = command + "/" + s.o.topic
		if withGroup {
			job += "/" + s.o.group
		}
	}
	s.jn = &jobNotify{command: command, job: job, keepsStatus: keepsStatus, notifier: n, t0: time.Now()}
	return nil
}

// stateStore opens the state topic on first use; finish closes it.
func (s *stage) stateStore(ctx context.Context) (*producer.State, error) {
	if s.jn != nil && s.jn.state != nil {
		return s.jn.state, nil
	}
	pcfg, err := s.producerConfig()
	if err != nil {
		return nil, err
	}
	st, err := producer.OpenState(ctx, pcfg, s.stageLog("producer"))
	if err != nil {
		return nil, err
	}
	if s.jn != nil {
		s.jn.state = st
	}
	return st, nil
}

// finish runs once a command is over, whatever its outcome: it stores the
// job's outcome (run, backfill), decides whether that is news (a failure, a
// partial run, the first success after either, or any success with
// --notify-summary) and posts it. It returns err unchanged: neither the
// status store nor the webhook changes the exit status. It works on ctx's
// values without its cancellation, since an interrupted run must still be
// reported: the stored outcome within --kafka-timeout (a run that failed
// because Kafka is gone must not wait on Kafka any longer than that), the
// notification within --notify-timeout.
func (s *stage) finish(ctx context.Context, err error) error {
	jn := s.jn
	if jn == nil || errors.Is(err, flag.ErrHelp) {
		return err
	}
	defer func() {
		if jn.state != nil {
			jn.state.Close()
		}
	}()
	ctx = context.WithoutCancel(ctx)
	code := exitCodeOf(err)
	now := time.Now().UTC()
	cur := jobStatus{Outcome: "success", RunID: s.runID, At: now, ExitCode: code}
	switch code {
	case exitOK:
	case exitPartial:
		cur.Outcome = "partial"
	default:
		cur.Outcome, cur.Stage, cur.Error = "failure", stageOf(err), err.Error()
	}
	var prev jobStatus
	var hadPrev bool
	if jn.keepsStatus {
		sctx, cancel := context.WithTimeout(ctx, s.o.kafkaTimeout)
		st, serr := s.stateStore(sctx)
		if serr == nil {
			prev, hadPrev, serr = loadJobStatus(sctx, st, jn.job)
			if serr != nil { // unreadable: store ours anyway
				s.log.Warn("previous job status unreadable", "job", jn.job, "err", serr)
				serr = nil
			}
		}
		if serr == nil {
			serr = saveJobStatus(sctx, st, jn.job, cur)
		}
		cancel()
		if serr != nil {
			s.log.Warn("job outcome not stored; a later success cannot be reported as a recovery", "job", jn.job, "err", serr)
		}
	}
	event := decideEvent(cur, prev, hadPrev, s.o.notifySummary)
	if !jn.keepsStatus && event != eventFailure {
		event = "" // consume: a stop is not news, and without a stored outcome there is no recovery
	}
	if event == "" || jn.notifier == nil {
		return err
	}
	nt := notice{Event: event, Job: jn.job, Command: jn.command, RunID: s.runID, Stage: cur.Stage, Error: cur.Error,
		Seconds: round(time.Since(jn.t0).Seconds()), ExitCode: code, At: now, Topic: s.o.topic}
	if err != nil && code != exitOK {
		nt.Where = whereOf(err)
	}
	if event == eventRecovery {
		nt.Previous = &prev
	}
	nt.Host, _ = os.Hostname()
	if !s.start.IsZero() {
		nt.Window = &window{Start: s.start.Format(time.DateTime), End: s.end.Format(time.DateTime)}
	}
	if s.counts != nil {
		c := s.counts()
		nt.RowsRead, nt.RowsProduced, nt.RowsUpserted = c.Read, c.Produced, c.Upserted
	}
	jn.notifier.post(ctx, nt)
	return err
}
