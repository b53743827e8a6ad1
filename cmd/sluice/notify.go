package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/sluice-dev/sluice/backfill"
	"github.com/sluice-dev/sluice/consumer"
	"github.com/sluice-dev/sluice/notify"
	"github.com/sluice-dev/sluice/producer"
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

// stageCounts are the rows a command moved, for its summary and notices.
type stageCounts struct {
	Read, Produced, Upserted int64
}

// newNotifier checks the webhook flags; it returns nil without a webhook.
func newNotifier(o *options, log *slog.Logger) (*notify.Webhook, error) {
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
	w, err := notify.NewWebhook(o.notifyWebhook, o.notifyFormat, o.notifyTimeout, "sluice/"+versionString(), log)
	if err != nil {
		return nil, usagef("--notify-webhook: %v", err)
	}
	return w, nil
}

// jobNotify is what a command needs to record its outcome and notify.
type jobNotify struct {
	command     string
	job         string
	keepsStatus bool // record the outcome in the state topic (run, backfill): recoveries need it
	notifier    *notify.Webhook
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

// finish runs once a command is over, whatever its outcome: notify.Job
// stores the job's outcome (run, backfill), decides whether that is news
// and posts it. It returns err unchanged: neither the
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
	cur := notify.Status{Outcome: "success", RunID: s.runID, At: now, ExitCode: code}
	switch code {
	case exitOK:
	case exitPartial:
		cur.Outcome = "partial"
	default:
		cur.Outcome, cur.Stage, cur.Error = "failure", stageOf(err), err.Error()
	}
	notice := func() notify.Notice {
		nt := notify.Notice{Job: jn.job, Command: jn.command, RunID: s.runID, Stage: cur.Stage, Error: cur.Error,
			Seconds: round(time.Since(jn.t0).Seconds()), ExitCode: code, At: now, Topic: s.o.topic}
		if err != nil && code != exitOK {
			nt.Where = whereOf(err)
		}
		nt.Host, _ = os.Hostname()
		if !s.start.IsZero() {
			nt.Window = &notify.Window{Start: s.start.Format(time.DateTime), End: s.end.Format(time.DateTime)}
		}
		if s.counts != nil {
			c := s.counts()
			nt.RowsRead, nt.RowsProduced, nt.RowsUpserted = c.Read, c.Produced, c.Upserted
		}
		return nt
	}
	job := notify.Job{Name: jn.job, Summary: s.o.notifySummary, Webhook: jn.notifier, Log: s.log}
	if jn.keepsStatus {
		job.Store = func(ctx context.Context) (notify.Store, error) { return s.stateStore(ctx) }
		job.StoreTimeout = s.o.kafkaTimeout
	}
	job.Finish(ctx, cur, notice)
	return err
}
