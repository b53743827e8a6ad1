// Package notify tells people how a job ended. It keeps each job's last
// outcome in a small key-value store (Sluice's state topic, through
// cmd/sluice), decides whether a run's outcome is news (a failure, a
// partial run, the first success after either, or any success when
// summaries are asked for) and posts it to a webhook, as JSON or as a Slack
// message. A webhook that fails is logged and never changes a command's
// exit status.
package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Events a notice reports.
const (
	Failure  = "failure"  // the job failed (any exit status but 0 and 4)
	Partial  = "partial"  // the job completed, but records went to the dead-letter topic (exit 4)
	Recovery = "recovery" // the first success after a failure or a partial run
	Summary  = "summary"  // any other success, when summaries are asked for
)

// Decide says what, if anything, to tell the webhook about a run that
// ended as cur, after the job's previous run ended as prev (when known).
func Decide(cur, prev Status, hadPrev, summary bool) string {
	switch {
	case cur.Outcome == "failure":
		return Failure
	case cur.Outcome == "partial":
		return Partial
	case hadPrev && prev.Outcome != "success":
		return Recovery
	case summary:
		return Summary
	}
	return ""
}

// Notice is one webhook message. As JSON it is posted as is; for Slack,
// as {"text": Notice.Text()}.
type Notice struct {
	Event        string    `json:"event"`
	Job          string    `json:"job"`
	Command      string    `json:"command"`
	RunID        string    `json:"run_id"`
	Host         string    `json:"host,omitempty"`
	Window       *Window   `json:"window,omitempty"`
	Stage        string    `json:"stage,omitempty"`
	Where        string    `json:"where,omitempty"`
	Error        string    `json:"error,omitempty"`
	RowsRead     int64     `json:"rows_read"`
	RowsProduced int64     `json:"rows_produced"`
	RowsUpserted int64     `json:"rows_upserted"`
	Seconds      float64   `json:"seconds"`
	ExitCode     int       `json:"exit_code"`
	At           time.Time `json:"at"`
	Previous     *Status   `json:"previous,omitempty"` // with recovery: the run that failed
	Topic        string    `json:"topic,omitempty"`
}

// Window is the run's window, as the command printed it.
type Window struct {
	Start string `json:"start"`
	End   string `json:"end"`
}

// Text renders the notice as the lines a person reads in a chat channel.
func (n Notice) Text() string {
	var b strings.Builder
	head := map[string]string{
		Failure:  ":x: sluice %s FAILED",
		Partial:  ":warning: sluice %s completed PARTIALLY (records dead-lettered)",
		Recovery: ":white_check_mark: sluice %s RECOVERED",
		Summary:  ":information_source: sluice %s succeeded",
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

// Payload is the notice as posted in format ("json" or "slack").
func (n Notice) Payload(format string) ([]byte, error) {
	if format == "slack" {
		return json.Marshal(struct {
			Text string `json:"text"`
		}{n.Text()})
	}
	return json.Marshal(n)
}

// Webhook posts notices. A POST that fails is logged and never changes the
// command's exit status: the scheduler already knows the outcome from the
// status, the webhook is for people.
type Webhook struct {
	url, format, userAgent string
	client                 *http.Client
	log                    *slog.Logger
}

// NewWebhook checks a webhook's URL and format ("json" or "slack"); the
// URL's path is treated as a secret (never logged).
func NewWebhook(rawURL, format string, timeout time.Duration, userAgent string, log *slog.Logger) (*Webhook, error) {
	switch format {
	case "json", "slack":
	default:
		return nil, fmt.Errorf("format %q: use json or slack", format)
	}
	if timeout <= 0 {
		return nil, fmt.Errorf("timeout %s: must be positive", timeout)
	}
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("not an http(s) URL (got scheme %q host %q)", schemeOf(u), hostOf(u))
	}
	return &Webhook{url: rawURL, format: format, client: &http.Client{Timeout: timeout}, userAgent: userAgent, log: log}, nil
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
func (n *Webhook) Post(ctx context.Context, nt Notice) {
	u, _ := url.Parse(n.url)
	log := n.log.With("event", nt.Event, "webhook_host", u.Host)
	body, err := nt.Payload(n.format)
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
	req.Header.Set("User-Agent", n.userAgent)
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

// Store is where job outcomes are kept: Sluice's state topic
// (producer.State) through cmd/sluice.
type Store interface {
	Get(ctx context.Context, key string) ([]byte, bool, error)
	Put(ctx context.Context, key string, value []byte) error
}

// Status is the value of a status key: how the job's last run ended.
type Status struct {
	Outcome  string    `json:"outcome"` // success, failure or partial
	RunID    string    `json:"run_id"`
	At       time.Time `json:"at"`
	Stage    string    `json:"stage,omitempty"`
	Error    string    `json:"error,omitempty"`
	ExitCode int       `json:"exit_code"`
}

// StatusKey is the store key of a job's last outcome.
func StatusKey(job string) string { return "status/" + job }

// LoadStatus reads a job's last outcome; false when none is kept.
func LoadStatus(ctx context.Context, st Store, job string) (Status, bool, error) {
	var js Status
	v, ok, err := st.Get(ctx, StatusKey(job))
	if err != nil || !ok {
		return js, false, err
	}
	if err := json.Unmarshal(v, &js); err != nil {
		return js, false, fmt.Errorf("status of job %s: %w", job, err)
	}
	return js, true, nil
}

// SaveStatus records a job's outcome.
func SaveStatus(ctx context.Context, st Store, job string, js Status) error {
	v, err := json.Marshal(js)
	if err != nil {
		return err
	}
	return st.Put(ctx, StatusKey(job), v)
}

// Job is a command's job as it is recorded and told.
type Job struct {
	Name    string   // the job's name: its key in the store and in notices
	Summary bool     // every success is news too, not only a recovery
	Webhook *Webhook // nil: nothing is posted
	// Store opens the store of the job's outcomes. nil: no outcome is kept
	// (consume), so only a failure is news: a stop is not, and without a
	// stored outcome there is no recovery.
	Store func(context.Context) (Store, error)
	// StoreTimeout bounds storing the outcome: a run that failed because
	// the store is gone must not wait on it any longer than that.
	StoreTimeout time.Duration
	Log          *slog.Logger
}

// Finish stores the outcome cur of the job's run, decides whether it is
// news after the job's previous outcome (Decide) and, if it is, posts the
// notice that notice builds, with its Event (and Previous, for a
// recovery). Neither the store nor the webhook changes the run's outcome:
// their failures are logged.
func (j Job) Finish(ctx context.Context, cur Status, notice func() Notice) {
	var prev Status
	var hadPrev bool
	if j.Store != nil {
		sctx, cancel := context.WithTimeout(ctx, j.StoreTimeout)
		st, err := j.Store(sctx)
		if err == nil {
			prev, hadPrev, err = LoadStatus(sctx, st, j.Name)
			if err != nil { // unreadable: store ours anyway
				j.Log.Warn("previous job status unreadable", "job", j.Name, "err", err)
				err = nil
			}
		}
		if err == nil {
			err = SaveStatus(sctx, st, j.Name, cur)
		}
		cancel()
		if err != nil {
			j.Log.Warn("job outcome not stored; a later success cannot be reported as a recovery", "job", j.Name, "err", err)
		}
	}
	event := Decide(cur, prev, hadPrev, j.Summary)
	if j.Store == nil && event != Failure {
		event = ""
	}
	if event == "" || j.Webhook == nil {
		return
	}
	nt := notice()
	nt.Event = event
	if event == Recovery {
		nt.Previous = &prev
	}
	j.Webhook.Post(ctx, nt)
}
