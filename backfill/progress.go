package backfill

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"time"
)

// Range is an inclusive range of source ids, [Lo, Hi]. Saved progress is a
// list of them: the ids whose chunks Kafka has acknowledged.
type Range struct {
	Lo, Hi uint64
}

// String renders the range like a chunk: id [lo,hi].
func (r Range) String() string { return fmt.Sprintf("id [%d,%d]", r.Lo, r.Hi) }

// Span is how many ids the range covers; the whole id space saturates at
// MaxUint64.
func (r Range) Span() uint64 {
	if r.Hi < r.Lo {
		return 0
	}
	return min(r.Hi-r.Lo, math.MaxUint64-1) + 1
}

// Coalesce returns the ranges sorted, with overlapping and adjacent ones
// merged and inverted ones dropped, so a saved value stays a handful of
// ranges however many chunks were acknowledged. It does not modify rs.
func Coalesce(rs []Range) []Range {
	out := make([]Range, 0, len(rs))
	for _, r := range rs {
		if r.Lo <= r.Hi {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b Range) int { return cmp.Compare(a.Lo, b.Lo) })
	n := 0
	for _, r := range out {
		if n > 0 && (out[n-1].Hi == math.MaxUint64 || r.Lo <= out[n-1].Hi+1) {
			out[n-1].Hi = max(out[n-1].Hi, r.Hi)
			continue
		}
		out[n] = r
		n++
	}
	return out[:n]
}

// Checkpoints keeps a backfill's progress between runs of the same window,
// so a failed or interrupted run started again skips the chunks Kafka has
// already acknowledged. StateCheckpoints implements it over a key-value
// store (cmd/sluice passes the compacted state topic); the backfill knows
// nothing of where it is kept.
type Checkpoints interface {
	// Load returns the id ranges saved for this window, nil when none.
	Load(ctx context.Context) ([]Range, error)
	// Save replaces the saved ranges. The backfill only ever saves ranges
	// whose every row Kafka has acknowledged.
	Save(ctx context.Context, done []Range) error
	// Complete forgets the window's progress once the whole job succeeded,
	// so the next run of the window is a deliberate full re-run.
	Complete(ctx context.Context) error
}

// doneSet is the coalesced set of acknowledged ranges, shared by the
// acknowledgement callbacks and the checkpoint writer.
type doneSet struct {
	mu    sync.Mutex
	rs    []Range
	dirty bool // changed since the last successful save
}

func (d *doneSet) add(r Range) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.rs = Coalesce(append(d.rs, r))
	d.dirty = true
}

// take returns a copy of the set when it changed since the last save.
func (d *doneSet) take() ([]Range, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.dirty {
		return nil, false
	}
	d.dirty = false
	return slices.Clone(d.rs), true
}

func (d *doneSet) markDirty() {
	d.mu.Lock()
	d.dirty = true
	d.mu.Unlock()
}

// saveProgress writes the done set if it changed. A failed save is logged
// and counted, not fatal: the run is still correct, a restart just redoes
// more chunks. The set is marked dirty again so the next tick retries.
func (b *Backfill) saveProgress(ctx context.Context) {
	rs, changed := b.done.take()
	if !changed {
		return
	}
	if err := b.cp.Save(ctx, rs); err != nil {
		b.done.markDirty()
		b.metrics.checkpointErrors.Inc()
		b.log.Warn("backfill: saving progress failed; a restart will redo more chunks", "ranges", len(rs), "err", err)
		return
	}
	b.log.Debug("backfill: progress saved", "ranges", len(rs))
}

// startCheckpoints saves progress every CheckpointInterval until the
// returned func is called; that func stops the writer, waits for it and
// saves once more, with ctx's values but not its cancellation (an
// interrupted run must still record what Kafka acknowledged), bounded by
// CheckpointTimeout.
func (b *Backfill) startCheckpoints(ctx context.Context) (finish func()) {
	if b.cp == nil {
		return func() {}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(b.cfg.CheckpointInterval)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				// Each save within CheckpointTimeout: with the broker
				// gone, a save waiting on it must not hold the next.
				sctx, cancel := context.WithTimeout(ctx, b.cfg.CheckpointTimeout)
				b.saveProgress(sctx)
				cancel()
			case <-stop:
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	return func() {
		close(stop)
		wg.Wait()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.cfg.CheckpointTimeout)
		defer cancel()
		b.saveProgress(sctx)
	}
}

// Complete tells the Checkpoints that the job this backfill belongs to
// succeeded, so its saved progress is dropped. Call it after Run returned nil
// and whatever follows the backfill (the consumers catching up) succeeded
// too; a job failing after the backfill keeps its progress and the next
// run skips the whole read.
func (b *Backfill) Complete(ctx context.Context) error {
	if b.cp == nil {
		return nil
	}
	if err := b.cp.Complete(ctx); err != nil {
		return fmt.Errorf("backfill: mark window complete: %w", err)
	}
	return nil
}

// KV is where StateCheckpoints keeps progress: a key-value store whose
// values outlive the process. cmd/sluice passes the state topic
// (producer.State). Put with a nil value deletes the key.
type KV interface {
	Get(ctx context.Context, key string) ([]byte, bool, error)
	Put(ctx context.Context, key string, value []byte) error
}

// ProgressKey names the progress of one window's backfill of one table into
// one topic: progress/<db>.<table>/<start>/<end>/<topic>, the times as
// 2006-01-02T15:04:05. Runs of the same window into the same topic share it.
func ProgressKey(database, table string, start, end time.Time, topic string) string {
	return fmt.Sprintf("progress/%s.%s/%s/%s/%s", database, table,
		start.Format("2006-01-02T15:04:05"), end.Format("2006-01-02T15:04:05"), topic)
}

// savedProgress is the JSON value of a progress key. Its encoding is what
// runs of earlier versions saved, and must stay so: an interrupted run
// resumes on a newer binary.
type savedProgress struct {
	RunID   string      `json:"run_id"`
	SavedAt time.Time   `json:"saved_at"`
	Done    [][2]uint64 `json:"done"` // inclusive id ranges whose rows Kafka acknowledged
}

// StateCheckpoints keeps one window's progress under Key in KV, as JSON:
// {"run_id": …, "saved_at": …, "done": [[lo, hi], …]}. Complete deletes the
// key, so running the window again reads all of it.
type StateCheckpoints struct {
	KV    KV
	Key   string       // ProgressKey of the window
	RunID string       // saved with the progress, for the logs of the run that resumes it
	Where string       // names KV in logs, e.g. the state topic
	Log   *slog.Logger // nil: slog.Default()
}

func (s *StateCheckpoints) log() *slog.Logger {
	if s.Log == nil {
		return slog.Default()
	}
	return s.Log
}

// Load returns the saved ranges. A value it cannot read is logged and taken
// as no progress: that only costs a full re-read, which is safe.
func (s *StateCheckpoints) Load(ctx context.Context) ([]Range, error) {
	v, ok, err := s.KV.Get(ctx, s.Key)
	if err != nil || !ok {
		return nil, err
	}
	var sp savedProgress
	if err := json.Unmarshal(v, &sp); err != nil {
		s.log().Warn("saved progress unreadable; reading the whole window", "topic", s.Where, "key", s.Key, "err", err)
		return nil, nil
	}
	rs := make([]Range, len(sp.Done))
	for i, r := range sp.Done {
		rs[i] = Range{Lo: r[0], Hi: r[1]}
	}
	s.log().Info("found saved progress of an earlier run", "key", s.Key, "earlier_run_id", sp.RunID,
		"saved_at", sp.SavedAt.Format(time.RFC3339), "ranges", len(rs))
	return rs, nil
}

// Save replaces the saved ranges with done.
func (s *StateCheckpoints) Save(ctx context.Context, done []Range) error {
	sp := savedProgress{RunID: s.RunID, SavedAt: time.Now().UTC(), Done: make([][2]uint64, len(done))}
	for i, r := range done {
		sp.Done[i] = [2]uint64{r.Lo, r.Hi}
	}
	v, err := json.Marshal(sp)
	if err != nil {
		return fmt.Errorf("progress %s: %w", s.Key, err)
	}
	return s.KV.Put(ctx, s.Key, v)
}

// Complete deletes the window's progress.
func (s *StateCheckpoints) Complete(ctx context.Context) error { return s.KV.Put(ctx, s.Key, nil) }

// Line is the backfill's progress in one line, el after it started, for
// the status line of a terminal: the share of the id range done, the rows
// produced, their rate and the time left at that rate.
func (p Progress) Line(el time.Duration) string {
	secs := el.Seconds()
	frac := 0.0
	if p.IDs > 0 {
		frac = float64(p.IDsDone) / float64(p.IDs)
	}
	eta := "?"
	if frac > 0 && frac < 1 {
		eta = (time.Duration(secs*(1-frac)/frac) * time.Second).Round(time.Second).String()
	} else if frac >= 1 {
		eta = "0s"
	}
	return fmt.Sprintf("backfill %5.1f%% %d rows %.0f rows/s ETA %s", 100*frac, p.RowsAcked, float64(p.RowsAcked)/secs, eta)
}

// ResumedNote says, in a summary line, that the run resumed an earlier one:
// " (resumed: N% of the id range was done by an earlier run)", or "".
func (p Progress) ResumedNote() string {
	if p.IDsResumed == 0 {
		return ""
	}
	return fmt.Sprintf(" (resumed: %.0f%% of the id range was done by an earlier run)", 100*float64(p.IDsResumed)/float64(max(p.IDs, 1)))
}
