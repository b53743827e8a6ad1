package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/sluice-dev/sluice/backfill"
	"github.com/sluice-dev/sluice/producer"
	"github.com/sluice-dev/sluice/schema"
)

// What Sluice keeps in the state topic (<topic>.progress, see
// producer.State), by key:
//
//	progress/<db>.<table>/<start>/<end>/<topic>  a window's acknowledged id ranges, while the window is unfinished
//	status/<job>                                 the job's last outcome, for recovery notifications
//	source/era                                   the source's version epoch (producer.EraKey)
//	tail/<name>                                  a tail's committed position (tail.PositionKey)
//
// Both values are JSON. A finished window's progress is deleted (a
// tombstone), so running it again reads all of it.

// progressKey names one window's backfill into one topic.
func progressKey(database, table string, start, end time.Time, topic string) string {
	return fmt.Sprintf("progress/%s.%s/%s/%s/%s", database, table,
		start.Format("2006-01-02T15:04:05"), end.Format("2006-01-02T15:04:05"), topic)
}

// savedProgress is the value of a progress key.
type savedProgress struct {
	RunID   string      `json:"run_id"`
	SavedAt time.Time   `json:"saved_at"`
	Done    [][2]uint64 `json:"done"` // inclusive id ranges whose rows Kafka acknowledged
}

// windowCheckpoints keeps one window's backfill progress in the state
// topic; it is the backfill.Checkpoints of run and backfill.
type windowCheckpoints struct {
	st    *producer.State
	key   string
	runID string
	log   *slog.Logger
}

func (w *windowCheckpoints) Load(ctx context.Context) ([]backfill.Range, error) {
	v, ok, err := w.st.Get(ctx, w.key)
	if err != nil || !ok {
		return nil, err
	}
	var sp savedProgress
	if err := json.Unmarshal(v, &sp); err != nil {
		// Unreadable progress only costs a full re-read, which is safe.
		w.log.Warn("saved progress unreadable; reading the whole window", "topic", w.st.Topic(), "key", w.key, "err", err)
		return nil, nil
	}
	rs := make([]backfill.Range, len(sp.Done))
	for i, r := range sp.Done {
		rs[i] = backfill.Range{Lo: r[0], Hi: r[1]}
	}
	w.log.Info("found saved progress of an earlier run", "key", w.key, "earlier_run_id", sp.RunID,
		"saved_at", sp.SavedAt.Format(time.RFC3339), "ranges", len(rs))
	return rs, nil
}

func (w *windowCheckpoints) Save(ctx context.Context, done []backfill.Range) error {
	sp := savedProgress{RunID: w.runID, SavedAt: time.Now().UTC(), Done: make([][2]uint64, len(done))}
	for i, r := range done {
		sp.Done[i] = [2]uint64{r.Lo, r.Hi}
	}
	v, err := json.Marshal(sp)
	if err != nil {
		return err
	}
	return w.st.Put(ctx, w.key, v)
}

func (w *windowCheckpoints) Complete(ctx context.Context) error { return w.st.Put(ctx, w.key, nil) }

// stateEpochs is the backfill.Epochs of run and backfill: the epoch kept in
// the state topic. A backfill never takes a new epoch for a read-only
// server that is not the one the epoch follows (producer.ErrStaleSource).
type stateEpochs struct{ st *producer.State }

func (e stateEpochs) Epoch(ctx context.Context, srv schema.Server) (uint16, string, error) {
	era, err := e.st.ResolveEra(ctx, producer.Sighting{Server: srv})
	return era.Epoch, era.Reason, err
}
